"""Staff fixtures: an app with one account per role, the same in another time zone, a clock
set by hand, `membership staff`."""

from __future__ import annotations

import functools

import pytest

from membership.prompts import snapshot
from tests.support.clock import Clock
from tests.support.staff import FAST, with_role_accounts


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(make_app):
    """viewer@, editor@ and admin@news.example (password GOOD), a fast hasher, HTTP cookies."""
    return with_role_accounts(make_app(staff_hasher=FAST, staff_insecure_cookies=True))


@pytest.fixture(autouse=True)
def _stop_refreshers(request):
    """The prompts' refresher of the test's `app` stops when the test ends; a test that uses
    no app gets none made for this."""
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        snapshot.for_app(app).close()


@pytest.fixture
def newsroom_in(app, make_app):
    """newsroom_in("Europe/Kyiv"): an app on the same Redis and staff accounts as `app`, in a
    newsroom in that time zone (its TIMEZONE setting); its prompts' refresher stops when the
    test ends."""
    made = []

    def make(timezone: str):
        made.append(make_app(staff_hasher=FAST, staff_insecure_cookies=True, timezone=timezone))
        return made[-1]

    yield make
    for each in made:
        snapshot.for_app(each).close()


@pytest.fixture
def run(membership_cli):
    """`membership staff ARGS` on the test Redis; returns the click Result."""
    env = {"SECRET_KEY": "cli-secret-key-0123456789", "PUBLIC_URL": "https://members.news.example"}
    return functools.partial(membership_cli, "staff", env=env)
