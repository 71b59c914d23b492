"""Staff access: accounts, sign-in, server-side sessions, CSRF and roles for /staff.

    rules.py     roles, passwords, lockout and idle expiry as plain functions
    accounts.py  accounts, argon2 hashes, one-time password links (Redis, audited)
    sessions.py  server-side sessions and the login lockout (Redis)
    guard.py     who may use which /staff route: sign-in, CSRF, then role
    views.py     the blueprint: login, logout, set-password, landing page, own page

Tests tune two things through Settings.extra: `staff_clock` (a callable giving unix
seconds, so lockout and idle expiry need no sleeping) and `staff_hasher` (a cheaper
argon2 PasswordHasher).
"""

from __future__ import annotations

import time

from membership.core.runtime import Runtime
from membership.staff.access.accounts import Accounts


def clock_for(rt: Runtime):
    return rt.settings.extra.get("staff_clock", time.time)


def accounts_for(rt: Runtime) -> Accounts:
    return Accounts(
        rt.redis, rt.keys, clock=clock_for(rt), hasher=rt.settings.extra.get("staff_hasher")
    )
