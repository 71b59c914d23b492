"""Signed tokens: a prompt decision's (for events and checkout) and a member's (pure, no I/O).

A token is `<payload>.<signature>`: the payload a compact JSON list, base64url without
padding; the signature the first 16 bytes of HMAC-SHA256 over the payload, base64url. Each
kind signs with its own key, derived from SECRET_KEY and the kind's name, so one kind never
passes as the other. Not itsdangerous: it derives its key on every call, and a decision
signs a token per prompt on every page view.

- Decision token: [decision id, campaign, variant or null for the holdout, reader, issued
  at (unix seconds)], good for 24 hours.
- Member token: [subject, issued at, expires at, proof], at most 7 days whatever it claims
  (subjects and proofs: docs/checkout-and-members.md, "Member recognition"); a token of
  three values, made before proofs were written, proved nothing we can tell.

Reading never raises: a forged, malformed or expired token is None.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
from dataclasses import dataclass

DECISION_MAX_AGE = 24 * 3600
MEMBER_MAX_AGE = 7 * 24 * 3600
SIGNATURE_BYTES = 16
MAX_TOKEN_CHARS = 1024  # far above any token we issue; longer is not ours
CLOCK_SKEW = 300  # a token "issued" up to 5 minutes ahead still reads (another host's clock)


@dataclass(frozen=True)
class DecisionClaim:
    decision: str
    campaign: str
    variant: str | None  # None: the reader was in the campaign's holdout
    reader: str
    issued_at: int

    @property
    def holdout(self) -> bool:
        return self.variant is None


@dataclass(frozen=True)
class MemberClaim:
    subject: str  # cus_..., email:<address>, once:cs_... or once:cus_...
    issued_at: int
    expires_at: int
    proof: str | None = None  # what proved the subject, as its issuer named it; None: unsaid


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    # base64.urlsafe_b64encode, without its Python-level wrapping (a token per prompt)
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _plain(text: str) -> bool:
    """Text json.dumps writes as itself between quotes: printable ASCII, no " or \\."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def compact_json(values: list) -> str:
    """json.dumps(values, separators=(",", ":")), the same text; written directly for a
    list of plain text, None and whole numbers (a decision token's), as json.dumps costs
    more than the signature."""
    parts = []
    for v in values:
        if type(v) is str and _plain(v):
            parts.append(f'"{v}"')
        elif v is None:
            parts.append("null")
        elif type(v) is int:
            parts.append(str(v))
        else:
            return json.dumps(values, separators=(",", ":"))
    return "[" + ",".join(parts) + "]"


def new_decision_id() -> str:
    """16 hex characters, unique per decision; not a secret (the token carrying it is signed).
    From `random`, which reseeds itself in a forked worker, not os.urandom: a system call
    that lets go of the GIL, which a worker's other threads then take."""
    return f"{random.getrandbits(64):016x}"


class _Signer:
    def __init__(self, secret: str, kind: str) -> None:
        if not secret:
            raise ValueError("a signing secret is required")
        key = hmac.new(secret.encode(), f"membership.{kind}".encode(), hashlib.sha256).digest()
        # HMAC (RFC 2104) with its two keyed SHA-256 states made once: copying them costs
        # half of hmac's copy() and a third of hmac.digest() (OpenSSL 3 sets up per call).
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key.ljust(64, b"\0")))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key.ljust(64, b"\0")))

    def _signature(self, payload: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:SIGNATURE_BYTES]

    def sign(self, values: list) -> str:
        payload = _b64(compact_json(values).encode())
        return payload + "." + _b64(self._signature(payload.encode()))

    def unsign(self, token: object) -> list | None:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        try:
            expected = _b64(self._signature(payload.encode("ascii")))
            # The text itself, not its decoding: base64 ignores the spare bits of the last
            # character, and 16 spellings of one token would each pass a check by text.
            if not hmac.compare_digest(signature.encode("ascii"), expected.encode("ascii")):
                return None
            values = json.loads(_unb64(payload))
        except (ValueError, binascii.Error, UnicodeError):
            return None
        return values if isinstance(values, list) else None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Tokens:
    """Issues and reads both kinds of token with one SECRET_KEY."""

    def __init__(self, secret: str) -> None:
        self._decisions = _Signer(secret, "decision")
        self._members = _Signer(secret, "member")

    # --- Decision tokens --------------------------------------------------------------

    def decision(
        self, decision: str, campaign: str, variant: str | None, reader: str, now: float
    ) -> str:
        return self._decisions.sign([decision, campaign, variant, reader, int(now)])

    def read_decision(
        self, token: object, now: float, max_age: int = DECISION_MAX_AGE
    ) -> DecisionClaim | None:
        values = self._decisions.unsign(token)
        if values is None or len(values) != 5:
            return None
        decision, campaign, variant, reader, issued = values
        if not all(isinstance(v, str) for v in (decision, campaign, reader)):
            return None
        if not (variant is None or isinstance(variant, str)) or not _whole(issued):
            return None
        if not (now - max_age < issued <= now + CLOCK_SKEW):
            return None
        return DecisionClaim(decision, campaign, variant, reader, issued)

    # --- Member tokens ----------------------------------------------------------------

    def member(
        self, subject: str, now: float, max_age: int = MEMBER_MAX_AGE, proof: str | None = None
    ) -> MemberClaim:
        """A claim good for `max_age` seconds (at most 7 days); `encode` makes it a token.
        Without a `proof` the token is written as before proofs were (three values)."""
        issued = int(now)
        return MemberClaim(subject, issued, issued + min(max_age, MEMBER_MAX_AGE), proof)

    def encode_member(self, claim: MemberClaim) -> str:
        values = [claim.subject, claim.issued_at, claim.expires_at]
        return self._members.sign(values if claim.proof is None else [*values, claim.proof])

    def read_member(self, token: object, now: float) -> MemberClaim | None:
        values = self._members.unsign(token)
        if values is None or len(values) not in (3, 4):
            return None
        subject, issued, expires, *rest = values
        proof = rest[0] if rest else None
        if not isinstance(subject, str) or not subject or not (_whole(issued) and _whole(expires)):
            return None
        if rest and not (isinstance(proof, str) and proof):
            return None
        if expires - issued > MEMBER_MAX_AGE or issued > now + CLOCK_SKEW or now >= expires:
            return None
        return MemberClaim(subject, issued, expires, proof)
