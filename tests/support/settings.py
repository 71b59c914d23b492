"""The secret key every test app is made with (tests/conftest.py's make_app), to sign or read
its tokens in a test."""

from __future__ import annotations

import time

from membership.members import rules
from membership.prompts.tokens import Tokens

SECRET_KEY = "test-secret-key-0123456789"


def member_token(
    subject: str = "cus_1",
    proof: str | None = None,
    *,
    now: float | None = None,
    secret: str = SECRET_KEY,
) -> str:
    """A member token as the service makes it: an `email:` proven by a sign-in link, anything
    else by a Checkout, unless `proof` says otherwise; issued `now` (default: this moment)."""
    if proof is None:
        proof = rules.LINK if subject.startswith(rules.EMAIL_SUBJECT) else rules.CHECKOUT
    tokens = Tokens(secret)
    return tokens.encode_member(
        tokens.member(subject, time.time() if now is None else now, proof=proof)
    )
