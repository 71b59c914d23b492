"""Stripe Checkout from a prompt: `POST /v1/checkout` -> a Checkout Session URL.

- `request`  pure: the body validated against the offer (plans, prices, limits, currencies),
             the reader's locale as Checkout spells it, the session's parameters and metadata
- `http`     the endpoint: body, token, one Stripe call under a deadline, errors as answers

What a completed session earns a campaign is counted by `membership.prompts.conversions`,
inside the ledger's own transaction.
"""
