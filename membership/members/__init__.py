"""Member recognition: a member is recognized on every device, by a signed token.
Design and modules: docs/checkout-and-members.md, "Member recognition".
"""
