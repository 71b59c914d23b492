"""The staff dashboard under /staff: access/ (accounts, sessions, CSRF, roles, two-factor,
API tokens) and one package per page area, each with its own blueprint; views.py is the
staff blueprint itself (sign-in, the landing page, one's own page), areas.py lists the rest.
docs/staff-dashboard.md describes the whole.

Tests tune two things through Settings.extra: `staff_clock` (a callable giving unix
seconds, so lockout and idle expiry need no sleeping) and `staff_hasher` (a cheaper
argon2 PasswordHasher).
"""

from membership.staff.access.accounts import accounts_for
from membership.staff.access.stored import clock_for

__all__ = ["accounts_for", "clock_for"]
