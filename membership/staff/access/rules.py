"""Staff access rules as plain functions: roles, emails, passwords, lockout. No I/O.

Roles are ordered: a viewer reads, an editor also changes newsroom data, an admin also
manages staff. A view asks for the least role that may use it (`allows`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from membership.core import config
from membership.ledger import LedgerInputError
from membership.ledger.model import valid_email

ROLES = ("viewer", "editor", "admin")  # least to most

MIN_PASSWORD = 12
MAX_PASSWORD = 256  # argon2 takes any length; a bound keeps a huge body from costing CPU
MIN_DISTINCT = 5  # "aaaaaaaaaaaa", "121212121212": long but guessed at once

# Brute force: at most MAX_FAILURES password or code checks fail for one email in a window of
# LOCK_SECONDS (from its first attempt); once they have, the email is locked until it ends.
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60

SESSION_IDLE = 12 * 3600  # a session unused this long is over
PASSWORD_LINK_SECONDS = 24 * 3600

_COMMON = Path(__file__).resolve().parent / "common_passwords.txt"


class StaffInputError(ValueError):
    """Input staff or an operator gave that cannot be used; the message names the field."""


def check_email(email: object) -> str:
    """The normalized email (lower case, stripped), or StaffInputError."""
    if not isinstance(email, str):
        raise StaffInputError("email: expected text")
    try:
        return valid_email(email)
    except LedgerInputError as exc:
        raise StaffInputError(f"email: {exc}") from None


def check_role(role: object) -> str:
    if role not in ROLES:
        raise StaffInputError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role  # type: ignore[return-value]


def check_timezone(name: object) -> str:
    """A staff member's time zone: one of config.zone_names(), or "" for the newsroom's TIMEZONE."""
    if name == "" or (isinstance(name, str) and name in config.zone_names()):
        return name  # type: ignore[return-value]
    raise StaffInputError("Time zone: expected a zone from the list, as in Europe/Kyiv")


def allows(role: str | None, needed: str) -> bool:
    """Whether someone with `role` may do what needs `needed` (unknown roles may do nothing)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


@cache
def common_passwords() -> frozenset[str]:
    lines = _COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: object) -> str | None:
    """Why a new password is refused, in words for the person choosing it; None when fine."""
    if not isinstance(password, str) or not password:
        return "password: expected text"
    if len(password) < MIN_PASSWORD:
        return f"password: use at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"password: use at most {MAX_PASSWORD} characters"
    if password.lower() in common_passwords():
        return "password: this is one of the most common passwords; choose another"
    if len(set(password)) < MIN_DISTINCT:
        return "password: too repetitive; use more different characters"
    return None


def check_password(password: object) -> str:
    problem = password_problem(password)
    if problem is not None:
        raise StaffInputError(problem)
    return password  # type: ignore[return-value]


def session_expired(last_seen: float, now: float) -> bool:
    return now - last_seen >= SESSION_IDLE
