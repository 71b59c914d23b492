"""The dashboard's areas beyond sign-in and the staff member's own page, one module each:

    goals.py      goals and their per-locale copy, with a live banner preview
    campaigns.py  prompt campaigns: list, form, JSON, preview, status, priority, results
    members.py    search, a member's page, offline members, the CSV export
    webhooks.py   the webhook event log, an event's page, replays (operations.py: the
                  admins' rebuild and sync, run in the background)
    team.py       staff accounts (admins): roles, two-factor, sessions, disable, enable

Each module adds its routes (pages and /staff/api/ JSON) to the staff blueprint, states
the role of every view (guard.requires), and describes its JSON routes in OPENAPI, a dict
of OpenAPI paths that /openapi.json merges. The rules stay in the modules the CLI and the
public endpoints use; a page reads a form, calls them and renders.
"""

from __future__ import annotations

from membership.staff.campaigns import views as campaigns
from membership.staff.goals import views as goals
from membership.staff.members import views as members
from membership.staff.team import views as team
from membership.staff.webhooks import views as webhooks

AREAS = (goals, campaigns, members, webhooks, team)


def openapi_paths() -> dict:
    paths: dict = {}
    for area in AREAS:
        paths.update(area.OPENAPI)
    return paths
