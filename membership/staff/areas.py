"""The dashboard's page areas beyond sign-in and one's own page, each a package with its
blueprint (nested in the staff blueprint, views.py) and, for its /staff/api/ routes, its
OpenAPI piece (merged into /openapi.json):

    goals/       goals and their per-locale copy, with a live banner preview
    campaigns/   prompt campaigns: list, form, JSON, preview, status, priority, results
    members/     search, a member's page, offline members, the CSV export
    webhooks/    the webhook event log, an event's page, replays
    operations/  the admins' ledger rebuild and sync, run in the background
    team/        staff accounts (admins): roles, two-factor, sessions, disable, enable
    audit/       the audit log

Every view states its role (access/guard.requires). The rules stay in the modules the CLI
and the public endpoints use; a page reads a form, calls them and renders.
"""

from __future__ import annotations

from membership.staff.audit import views as audit
from membership.staff.campaigns import openapi as campaigns_doc
from membership.staff.campaigns import views as campaigns
from membership.staff.goals import openapi as goals_doc
from membership.staff.goals import views as goals
from membership.staff.members import openapi as members_doc
from membership.staff.members import views as members
from membership.staff.operations import openapi as operations_doc
from membership.staff.operations import views as operations
from membership.staff.team import views as team
from membership.staff.webhooks import openapi as webhooks_doc
from membership.staff.webhooks import views as webhooks

BLUEPRINTS = (goals.bp, campaigns.bp, members.bp, webhooks.bp, operations.bp, team.bp, audit.bp)
OPENAPI_PIECES = (goals_doc, campaigns_doc, members_doc, webhooks_doc, operations_doc)


def openapi_paths() -> dict:
    return {path: item for piece in OPENAPI_PIECES for path, item in piece.OPENAPI.items()}


def openapi_schemas() -> dict:
    return campaigns_doc.openapi_schemas()
