"""Signed decision and member tokens: round trips, expiry, forgery, kinds kept apart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.prompts.tokens import (
    DECISION_MAX_AGE,
    MAX_TOKEN_CHARS,
    MEMBER_MAX_AGE,
    DecisionClaim,
    Tokens,
    compact_json,
    new_decision_id,
)

NOW = 1_795_000_000
tokens = Tokens("s" * 32)


def test_decision_round_trip_and_holdout():
    t = tokens.decision("d1", "winter-drive", "a", "r_3f9c2a1b7d4e", NOW)
    assert tokens.read_decision(t, NOW + 10) == DecisionClaim(
        "d1", "winter-drive", "a", "r_3f9c2a1b7d4e", NOW
    )
    h = tokens.read_decision(tokens.decision("d2", "c", None, "reader-1", NOW), NOW)
    assert h is not None and h.holdout and h.variant is None


def test_decision_expires_after_24_hours():
    t = tokens.decision("d1", "c", "a", "reader-1", NOW)
    assert tokens.read_decision(t, NOW + DECISION_MAX_AGE - 1) is not None
    assert tokens.read_decision(t, NOW + DECISION_MAX_AGE) is None
    assert tokens.read_decision(t, NOW - 3600) is None  # issued an hour in the future


def test_another_secret_or_kind_does_not_verify():
    t = tokens.decision("d1", "c", "a", "reader-1", NOW)
    assert Tokens("o" * 32).read_decision(t, NOW) is None
    member = tokens.encode_member(tokens.member("cus_1", NOW))
    assert tokens.read_decision(member, NOW) is None
    assert tokens.read_member(t, NOW) is None


def test_member_round_trip_and_expiry():
    claim = tokens.member("email:a@example.org", NOW)
    assert claim.expires_at - claim.issued_at == MEMBER_MAX_AGE
    t = tokens.encode_member(claim)
    assert tokens.read_member(t, NOW + 1) == claim
    assert tokens.read_member(t, claim.expires_at - 1) is not None
    assert tokens.read_member(t, claim.expires_at) is None
    assert (
        tokens.member("cus_1", NOW, max_age=10 * MEMBER_MAX_AGE).expires_at == NOW + MEMBER_MAX_AGE
    )


def _forge(kind: str, values: list, secret: str = "s" * 32) -> str:
    """An independent signer written from the format's description, to prove we read it."""
    key = hmac.new(secret.encode(), f"membership.{kind}".encode(), hashlib.sha256).digest()
    payload = base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=")
    sig = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return payload.decode() + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def test_independent_signer_agrees_and_over_long_member_token_is_refused():
    assert tokens.read_decision(_forge("decision", ["d", "c", "a", "reader-1", NOW]), NOW)
    # Correctly signed with our key, but claiming 8 days: refused.
    long = _forge("member", ["cus_1", NOW, NOW + MEMBER_MAX_AGE + 1])
    assert tokens.read_member(long, NOW) is None
    assert tokens.read_member(_forge("member", ["cus_1", NOW, NOW + 60]), NOW) is not None
    # Well signed but the wrong shapes.
    for values in (
        ["d", "c", "a", "r"],
        ["d", "c", 1, "r", NOW],
        ["d", "c", "a", "r", True],
        ["d", "c", "a", "r", 1.5],
        {"d": 1},
    ):
        assert tokens.read_decision(_forge("decision", values), NOW) is None
    for values in (["", NOW, NOW + 60], ["cus", "x", NOW], ["cus", NOW, NOW + 60, 1]):
        assert tokens.read_member(_forge("member", values), NOW) is None


@given(st.one_of(st.none(), st.integers(), st.text(max_size=300), st.binary(max_size=50)))
def test_garbage_never_raises(garbage):
    assert tokens.read_decision(garbage, NOW) is None
    assert tokens.read_member(garbage, NOW) is None


@given(st.integers(min_value=0, max_value=200), st.characters(codec="utf-8"))
def test_any_one_character_changed_is_refused(position, char):
    t = tokens.decision("d1", "winter-drive", "a", "r_3f9c2a1b7d4e", NOW)
    position %= len(t)
    if t[position] == char:
        return
    tampered = t[:position] + char + t[position + 1 :]
    # Every change is refused, even one in the spare bits of the signature's last base64
    # character (which decodes to the same bytes): one token has one spelling.
    assert tokens.read_decision(tampered, NOW) is None


def test_the_spare_bits_of_the_signature_do_not_make_a_second_spelling():
    t = tokens.decision("d1", "winter-drive", "a", "r_3f9c2a1b7d4e", NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    others = [t[:-1] + c for c in alphabet if c != t[-1]]
    same_bytes = [
        o
        for o in others
        if base64.urlsafe_b64decode(o.split(".")[1] + "==")
        == base64.urlsafe_b64decode(t.split(".")[1] + "==")
    ]
    assert len(same_bytes) == 15  # 16 bytes = 22 characters, 4 spare bits
    assert all(tokens.read_decision(o, NOW) is None for o in others)


def test_decision_ids_are_random_and_empty_secret_is_refused():
    assert len({new_decision_id() for _ in range(1000)}) == 1000
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in (new_decision_id() for _ in range(10)))
    with pytest.raises(ValueError):
        Tokens("")


values = st.lists(
    st.one_of(
        st.text(),
        st.text("abcXYZ019_-.:@ ", max_size=20),
        st.sampled_from(['a"b', "a\\b", "\x7f", "\n", "é", "\ud800"]),
        st.none(),
        st.integers(),
        st.booleans(),
        st.floats(allow_nan=False),
    ),
    max_size=6,
)


@given(values)
def test_compact_json_is_json_dumps(items):
    assert compact_json(items) == json.dumps(items, separators=(",", ":"))


@given(st.text(min_size=1), st.text(min_size=1), st.none() | st.text(min_size=1), st.text())
def test_a_token_signs_what_json_dumps_writes(decision, campaign, variant, reader):
    """The signature covers the very payload json.dumps would write, as before it was
    written by hand: tokens issued by an older process still read."""
    token = tokens.decision(decision, campaign, variant, reader, NOW)
    payload, signature = token.split(".")
    raw = json.dumps([decision, campaign, variant, reader, NOW], separators=(",", ":"))
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == raw.encode()
    key = hmac.new(b"s" * 32, b"membership.decision", hashlib.sha256).digest()
    expected = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
    assert base64.urlsafe_b64decode(signature + "==") == expected
    claim = DecisionClaim(decision, campaign, variant, reader, NOW)
    # Longer than any token we issue (ids are slugs of 64 at most) is not ours: refused.
    expected_claim = claim if len(token) <= MAX_TOKEN_CHARS else None
    assert tokens.read_decision(token, NOW) == expected_claim


def _ids_in_child(_) -> list[str]:
    return [new_decision_id() for _ in range(5)]


def test_forked_workers_do_not_repeat_each_others_decision_ids():
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        children = pool.map(_ids_in_child, range(2))
    ids = [*children[0], *children[1], *_ids_in_child(0)]
    assert len(set(ids)) == len(ids)
