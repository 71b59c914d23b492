"""`membership campaigns apply|list|show|pause|resume|archive|export`: the prompts' campaigns.

A thin shell over membership/prompts/campaigns.py (validation) and membership/prompts/store.py
(Redis). `apply` prints every problem of an invalid document as `path: message`, one per line on
stderr, and exits 2 with nothing stored.
"""

from __future__ import annotations

import json
import time

import click

from membership.cli import with_app
from membership.cli.actor import actor_option
from membership.cli.output import echo_json, echo_table, refusals
from membership.cli.stats import money as format_money
from membership.core.runtime import runtime
from membership.prompts import counts, results, store
from membership.prompts.campaigns import CampaignError, iso, parse_list, to_json

MAX_INPUT = 10 * 1024 * 1024  # bytes of JSON that `apply` reads at most


@click.group()
def campaigns() -> None:
    """Paywall prompt campaigns: which reader sees which ask."""


def _refuse(ctx: click.Context, lines: list[str], summary: str) -> None:
    click.echo(f"error: {summary}; nothing was stored", err=True)
    for line in lines:
        click.echo(line, err=True)
    ctx.exit(2)


def _campaign(campaign_id: str):
    rt = runtime()
    with refusals(store.CampaignStoreError):
        found = store.get(rt.redis, rt.keys, campaign_id)
    if found is None:
        raise click.ClickException(f"no campaign {campaign_id!r} (see `membership campaigns list`)")
    return found


@campaigns.command("apply")
@click.argument("source", metavar="FILE|-", type=click.File("rb"))
@actor_option
@click.pass_context
@with_app
def apply_(ctx: click.Context, source, actor: str):
    """Create or replace one campaign or a list of them from JSON (FILE, or - for stdin).

    All or nothing: if any campaign is invalid, every problem is printed as
    `path: message` and nothing is stored. Re-applying an unchanged campaign changes nothing.
    """
    raw = source.read(MAX_INPUT + 1)
    if len(raw) > MAX_INPUT:
        _refuse(ctx, [], f"the input is larger than {MAX_INPUT // (1024 * 1024)} MiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        _refuse(ctx, [], "the input is not UTF-8 text")
    except ValueError as exc:
        _refuse(ctx, [], f"the input is not JSON ({exc})")
    try:
        parsed = parse_list(data)
    except CampaignError as exc:
        n = len(exc.errors)
        _refuse(ctx, exc.errors, f"{n} problem{'s' if n != 1 else ''} in the input")
    if not parsed:
        _refuse(ctx, [], "the list holds no campaign")
    rt = runtime()
    with refusals(store.CampaignStoreError):
        results = store.apply(rt.redis, rt.keys, parsed, actor=actor)
    for campaign_id, outcome in results:
        click.echo(f"{outcome} {campaign_id}")


def _row(c) -> dict:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "placement": c.placement,
        "priority": c.priority,
        "variants": [{"id": v.id, "weight": v.weight} for v in c.variants],
    }


@campaigns.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_app
def list_(as_json: bool):
    """Campaigns by priority (lower first; ties by id)."""
    rt = runtime()
    with refusals(store.CampaignStoreError):
        rows = [_row(c) for c in store.load_all(rt.redis, rt.keys)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no campaigns yet: add one with `membership campaigns apply FILE`")
        return
    for row in rows:
        row["variants"] = ", ".join(f"{v['id']}:{v['weight']}" for v in row["variants"])
    echo_table(rows, ["id", "name", "status", "placement", "priority", "variants"])


@campaigns.command("show")
@click.argument("campaign_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the campaign's JSON document.")
@with_app
def show(campaign_id: str, as_json: bool):
    """One campaign: its settings and variants (--json: the document `apply` takes)."""
    c = _campaign(campaign_id)
    if as_json:
        echo_json(to_json(c))
        return
    a, f = c.audience, c.frequency
    ar = a.articles_read
    lines = [
        ("id", c.id),
        ("name", c.name),
        ("status", c.status),
        ("placement", c.placement),
        ("priority", c.priority),
        ("starts at", iso(c.starts_at) if c.starts_at else "-"),
        ("ends at", iso(c.ends_at) if c.ends_at else "-"),
        ("locales", ", ".join(c.locales) if c.locales else "every locale"),
        ("readers", a.readers),
        ("articles read", f"{ar.min} to {ar.max or 'any'} in {ar.days} days" if ar else "-"),
        ("max views", f"{f.max_views} per {f.per_days} days" if f.max_views else "-"),
        ("dismissed", f"hidden {f.after_dismiss_days} days" if f.after_dismiss_days else "shown"),
        ("holdout", f"{c.control_share:.0%}"),
        (
            "gate",
            f"{c.gate.free_articles} free, dismissible: {c.gate.dismissible}" if c.gate else "-",
        ),
    ]
    for label, value in lines:
        click.echo(f"{label + ':':<15}{value}")
    click.echo("variants:")
    for v in c.variants:
        headline = v.copy.get("en", next(iter(v.copy.values()), {})).get("headline", "-")
        if not isinstance(headline, str):
            headline = headline.get("other", "-")
        click.echo(f"  {v.id}  weight {v.weight}  {headline}")


_STATUS_HELP = {
    "pause": "Pause a live campaign (resume makes it live again).",
    "resume": "Make a paused or draft campaign live.",
    "archive": "Archive a campaign; afterwards it changes only through `apply`.",
}


def _status_command(action: str, done: str):
    @campaigns.command(action, help=_STATUS_HELP[action])
    @click.argument("campaign_id", metavar="ID")
    @actor_option
    @with_app
    def command(campaign_id: str, actor: str):
        rt = runtime()
        with refusals(store.CampaignStoreError):
            before, after = store.set_status(rt.redis, rt.keys, campaign_id, action, actor=actor)
        if before == after:
            click.echo(f"campaign {campaign_id} is already {after}; nothing changed")
        else:
            click.echo(f"{done} {campaign_id} ({before} -> {after})")

    return command


pause = _status_command("pause", "paused")
resume = _status_command("resume", "resumed")
archive = _status_command("archive", "archived")


@campaigns.command("export")
@with_app
def export():
    """Every campaign as one JSON list on stdout, which `apply` takes back unchanged."""
    rt = runtime()
    with refusals(store.CampaignStoreError):
        echo_json(store.export(rt.redis, rt.keys))


@campaigns.command("results")
@click.argument("campaign_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (what the dashboard reads).")
@click.option(
    "--days",
    type=click.IntRange(1, 400),
    default=None,
    metavar="N",
    help="Also per UTC day, for the last N days (today included; kept 400 days).",
)
@with_app
def results_(campaign_id: str, as_json: bool, days: int | None):
    """Per variant and the holdout: views, readers, clicks, dismissals, excess (events not
    counted: one address past PROMPT_EVENTS_PER_ADDRESS in an hour), conversions, the
    conversion rate with its 95% interval, the lift against the holdout and a verdict."""
    c = _campaign(campaign_id)
    rt = runtime()
    try:
        stored = counts.read_campaign(rt.redis, rt.keys, c, time.time(), days or 0)
        data = results.build(c, stored)
    except counts.CorruptCounts as exc:
        raise click.ClickException(f"a stored prompt counter is corrupt: {exc}") from None
    if as_json:
        echo_json(data)
        return
    _echo_results(data)


def _pct(value: float | None, sign: str = "") -> str:
    return "-" if value is None else f"{value:{sign}.2%}"


RESULT_COLUMNS = [
    *("variant", "views", "readers", "clicks", "click rate", "dismissals", "excess"),
    *("conversions", "conv. rate", "95% interval", "lift", "revenue", "refunded", "verdict"),
]


def _conversion_cells(figures: dict) -> dict:
    """The cells a variant and the holdout both have."""
    low, high = figures["interval"]
    revenue = {c: n for c, n in figures["revenue"].items() if n}  # "-" when all are zero
    refunded = {c: n for c, n in figures["refunded"].items() if n}
    return {
        "readers": f"{figures['readers']:,}",
        "excess": f"{figures['excess']:,}",
        "conversions": f"{figures['conversions']:,}",
        "conv. rate": _pct(figures["conversion_rate"]),
        "95% interval": f"{_pct(low)}-{_pct(high)}",
        "revenue": format_money(revenue),
        # "1 (€25.00)": how many, and how much
        "refunded": f"{figures['refunds']:,} ({format_money(refunded)})"
        if figures["refunds"]
        else "-",
    }


def _echo_results(data: dict) -> None:
    rows = [
        {
            "variant": v["id"] + (" (retired)" if v["retired"] else ""),
            "views": f"{v['views']:,}",
            "clicks": f"{v['clicks']:,}",
            "click rate": _pct(v["click_rate"]),
            "dismissals": f"{v['dismissals']:,}",
            "lift": _pct(v["lift"], "+"),
            "verdict": v["verdict"],
            **_conversion_cells(v),
        }
        for v in data["variants"]
    ]
    held = data["holdout"]
    if held is not None:
        rows.append({"variant": "holdout", **_conversion_cells(held)})
    click.echo(f"campaign {data['campaign']}, all time (conversions: readers who joined or gave)")
    echo_table(rows, RESULT_COLUMNS)
    refused = sum(v["excess"] for v in data["variants"]) + (held or {}).get("excess", 0)
    if refused:
        click.echo(
            f"excess: {refused:,} events not counted, their address past"
            " PROMPT_EVENTS_PER_ADDRESS in the hour (someone may be steering these results)"
        )
    if not data["days"]:
        return
    click.echo("")
    click.echo("per UTC day (holdout: page views that held the reader out):")
    day_rows = []
    for day in data["days"]:
        held = {**day["holdout"], "views": day["holdout"]["events"]}
        for name, figures in [*((v["id"], v) for v in day["variants"]), ("holdout", held)]:
            cells = {k: f"{figures[k]:,}" for k in DAY_COUNTS if k in figures}
            day_rows.append({"day": day["day"], "variant": name, **cells})
    echo_table(day_rows, ["day", "variant", *DAY_COUNTS])


DAY_COUNTS = ("views", "clicks", "dismissals", "excess", "conversions", "refunds")
