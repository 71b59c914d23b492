"""Screenshots for a review: every staff dashboard page at 1280 and 375 px, and each prompt
placement on the demo article on a 375x812 phone.

    scripts/screenshots.sh [DIR] [--quick] [--members N]

Starts a throwaway redis-server (tests/support/processes.py) and the app, served in this
process by the staff pages' browser-test server (tests/support/staff_browser.py), and seeds
a small newsroom through the same writers as the service: `--members` readers who joined
through Checkout over the year (named as bench/member_search.py names them; some left,
some pay late), one-time contributions and offline members, each applied at its own time
so the Overview's daily history is the ledger's, then failed webhook events, goals (one
reached, one current), campaigns of every placement (live, paused, draft) and audit entries
by named staff. A reader on a phone then meets
each placement (banner, inline, modal, gate), each on an article of its own section; an
admin, signed in as bench/staff_pages.py signs in, visits every page reached by links from
the Overview and two member searches (bench/staff_pages.py's crawl, one page a route), and
the sign-in and set-password pages signed out. Headless Debian Chromium, launched as
tests/conftest.py launches it (never `playwright install`).

Writes DIR (default screenshots/, git-ignored): staff-<page>-<width>.png (full page) and
prompt-<placement>-375.png (the phone's viewport with the ask in view). `--quick`: 100
members and one page of each area. The redis-server is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from operator import itemgetter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from argon2 import PasswordHasher  # noqa: E402

from bench.member_search import FIRST, LAST  # noqa: E402
from bench.staff_pages import find_pages, sign_in  # noqa: E402
from membership import create_app  # noqa: E402
from membership.core import audit  # noqa: E402
from membership.core.runtime import runtime  # noqa: E402
from membership.goals import rules as goal_rules  # noqa: E402
from membership.goals import store as goals  # noqa: E402
from membership.ledger import Ledger, LedgerWriteFailed  # noqa: E402
from membership.ledger.queries import count as member_count  # noqa: E402
from membership.prompts import campaigns, store  # noqa: E402
from membership.staff import accounts_for  # noqa: E402
from membership.stripe.apply import apply_event  # noqa: E402
from tests.support import stripe_payloads as sp  # noqa: E402
from tests.support.ledger_helpers import add_offline, join  # noqa: E402
from tests.support.processes import RedisServer  # noqa: E402
from tests.support.prompt_helpers import EXAMPLE, merge  # noqa: E402
from tests.support.staff_browser import (  # noqa: E402
    CHROMIUM,
    launch_chromium,
    open_page,
    serve,
    stop_site,
    url,
)
from tests.support.widget_browser import live_campaign, serve_demo_as  # noqa: E402

WIDTHS = (1280, 375)
PHONE = {"width": 375, "height": 812}
DAY = 86_400
PLACEMENTS = {
    "banner": ("Keep Kyiv's night trams in the news", {}),
    "inline": ("Liked this story? {count} readers fund the next one", {}),
    "modal": ("Before you go: {count} readers keep us going", {}),
    "gate": (
        "You've reached this month's free articles",
        {"gate": {"dismissible": True, "free_articles": 0}},
    ),
}
# One page of each area, for --quick.
AREAS = ("home", "goals", "campaigns", "members", "member", "webhooks", "audit_log", "accounts")


def seed(app, members: int) -> None:
    """The newsroom: members, goals, campaigns, webhook events, audit entries."""
    rt = runtime(app)
    _members(rt, members)
    count = member_count(rt.redis, rt.keys) or 0
    for target, name, actor in (
        (max(count // 2, 1), "First half", "olena@news.example"),
        (count * 5 // 4 + 1, "Spring drive", "taras@news.example"),
    ):
        goals.add(rt.redis, rt.keys, goal_rules.parse_goal({"target": target, "name": name}),
                  actor=actor)  # fmt: skip
    docs = [live_campaign(f"{p}-ask", p, f"shots-{p}", headline, **extra)
            for p, (headline, extra) in PLACEMENTS.items()]  # fmt: skip
    docs.append(json.loads((REPO / "examples" / "campaign.json").read_text()))
    docs.append(merge(EXAMPLE, {"id": "summer-drive", "name": "Summer drive", "status": "paused"}))
    store.apply(rt.redis, rt.keys, [campaigns.parse(d) for d in docs], actor="maria@news.example")
    audit.record(rt.redis, rt.keys, actor="taras@news.example", action="goal_added",
                 target="goal 9", after={"target": 100})  # fmt: skip


def _members(rt, members: int) -> None:
    """`members` readers who joined through Checkout over the last 300 days (one in six has
    left since, a few pay late), each a named customer with an email; some one-time
    contributions and offline members, then events that failed (no customer). Each goes
    through the webhook writer in the order of its time, with the writer's clock at that time,
    as Stripe's events would have arrived: the Overview's daily history (each day's count,
    joins and leaves) is the ledger's own."""
    rng, now = random.Random(1), int(time.time())
    clock = [float(now)]
    ledger = Ledger.on(
        rt.redis,
        rt.keys,
        rt.settings.member_statuses,
        subscribers=rt.ledger_subscribers,
        hooks=rt.ledger_hooks,
        clock=lambda: clock[0],
    )
    steps: list[tuple[int, Callable[[], object]]] = []
    for i in range(members):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        status = rng.choices(("active", "canceled", "past_due"), weights=(80, 16, 4))[0]
        customer, at = f"cus_{i:07d}", now - rng.randint(0, 300 * DAY)
        amount = rng.choice((500, 800, 1000, 2000))
        email = f"{first}.{last}{i}@example.org".lower()
        steps.append((at, partial(join, ledger, customer, email, f"{first} {last}", at=at,
                                  amount=amount)))  # fmt: skip
        later = rng.randint(at, now)
        if status != "active" and later > at:
            sub = sp.subscription(f"sub_{customer[4:]}", customer, status,
                                  prices=[sp.price(amount=amount)], start=at)  # fmt: skip
            event = sp.subscription_event(sub, created=later)
            steps.append((later, partial(apply_event, ledger.writer, event)))
    for i in range(max(members // 20, 3)):
        created = now - rng.randint(0, 60 * DAY)
        donation = sp.checkout_payment(f"pi_shot{i}", rng.choice((1000, 2500, 5000)),
                                       created=created)  # fmt: skip
        steps.append((created, partial(apply_event, ledger.writer, donation)))
    for i in range(max(members // 20, 3)):
        added = now - rng.randint(0, 300 * DAY)
        steps.append((added, partial(add_offline, ledger, f"friend{i}@example.org", "comp")))
    for at, step in sorted(steps, key=itemgetter(0)):
        clock[0] = at
        step()
    clock[0] = now
    for i in range(3):
        orphan = sp.subscription_event(sp.subscription(f"sub_orphan{i}", f"cus_x{i}", "active"))
        orphan["data"]["object"].pop("customer")
        with contextlib.suppress(LedgerWriteFailed):  # recorded as failed, as meant
            apply_event(ledger.writer, orphan)


def shoot_placements(app, browser, out: Path) -> list[Path]:
    """Each placement on the demo article, a new reader on a phone each time."""
    base = f"http://127.0.0.1:{serve(app)}"
    written = []
    for placement in PLACEMENTS:
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()
        page.goto(serve_demo_as(page, base, f"/demo/{placement}", f"shots-{placement}"))
        ask = page.locator(f".mp-{placement}")
        ask.wait_for(state="visible", timeout=15_000)
        ask.scroll_into_view_if_needed()
        written.append(out / f"prompt-{placement}-375.png")
        # Any transition or animation shown at its end, not at the moment of the shot.
        page.screenshot(path=str(written[-1]), animations="disabled")
        context.close()
    return written


def shoot_staff(app, browser, client, out: Path, quick: bool) -> list[Path]:
    """Every page an admin reaches by links, one a route, at each width; the sign-in and
    set-password pages signed out."""
    adapter = app.url_map.bind("staff.test")
    named: dict[str, str] = {}  # name -> path
    for path in find_pages(app, client, limit=200, per_route=1):
        name = adapter.match(path.split("?")[0])[0].rpartition(".")[2]
        if name not in named and (not quick or name in AREAS):
            named[name] = path
    accounts = accounts_for(runtime(app))
    accounts.add("nadia@news.example", "editor", actor="admin@news.example")
    signed_out = {  # the sign-in page, and a new colleague's link to set a password
        "login": "/staff/login",
        "set-password": f"/staff/set-password?token={accounts.create_link('nadia@news.example')}",
    }
    signed_in = {name.replace("_", "-"): path for name, path in named.items()}
    # A page for each, at one width then the other (a new page costs more than a visit).
    tabs = ((open_page(app, browser, None, client=client), signed_in),
            (open_page(app, browser, None), signed_out))  # fmt: skip
    written = []
    for width in WIDTHS:
        for page, pages in tabs:
            page.set_viewport_size({"width": width, "height": 900})
            for name, path in pages.items():
                page.goto(url(path))
                written.append(out / f"staff-{name}-{width}.png")
                page.screenshot(path=str(written[-1]), full_page=True)
    for page, _ in tabs:
        page.close()
    return written


_T0 = time.monotonic()


def _progress(what: str) -> None:
    print(f"{time.monotonic() - _T0:5.1f} s  {what}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", nargs="?", default="screenshots", type=Path)
    parser.add_argument("--members", type=int, default=600)
    parser.add_argument("--quick", action="store_true", help="100 members, a page an area")
    args = parser.parse_args()
    if args.quick:
        args.members = 100
    if not 20 <= args.members <= 20_000:
        parser.error("--members: 20 to 20,000")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    args.dir.mkdir(parents=True, exist_ok=True)
    server = RedisServer().start()
    try:
        app = create_app({
            "redis_url": server.url, "data_dir": Path(tempfile.mkdtemp(prefix="membership-shots-")),
            "secret_key": "screenshots-secret-key-0123456789", "staff_insecure_cookies": True,
            "staff_hasher": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
            "publication_name": "The Kyiv Independent",
        })  # fmt: skip
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        seed(app, args.members)
        client = sign_in(app)
        _progress(f"seeded {args.members:,} members")
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                written = shoot_placements(app, browser, args.dir)
                _progress("the placements")
                written += shoot_staff(app, browser, client, args.dir, args.quick)
                _progress("the staff pages")
            finally:
                browser.close()
    finally:
        stop_site()
        server.stop()
    print(f"{len(written)} screenshots in {args.dir}/")


if __name__ == "__main__":
    main()
