"""`membership dev send-event`: watch the member count move without a Stripe account.

Builds a made-up Stripe event (membership/stripe/dev_events.py), signs it with the
configured STRIPE_WEBHOOK_SECRET exactly as Stripe does, POSTs it to a running
server and shows the member count before and after.
"""

from __future__ import annotations

import http.client
import secrets
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import click
import redis

from membership.cli import with_app
from membership.core.config import SUBSCRIPTION_STATUSES
from membership.core.runtime import runtime
from membership.ledger import queries as ledger_queries
from membership.stripe import dev_events

DEFAULT_URL = "http://127.0.0.1:8000/webhooks/stripe"
TIMEOUT_SECONDS = 10


@click.group()
def dev() -> None:
    """Helpers for working on the service locally."""


def _check_url(ctx, param, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("expected an http:// or https:// URL", ctx, param)
    return dev_events.webhook_url(value)


def _check_value(ctx, param, value: str | None) -> str | None:
    problem = value is not None and (
        dev_events.email_problem(value)
        if param.name == "email"
        else dev_events.id_problem(param.name, value)
    )
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return value


def _new_id(prefix: str) -> str:
    # "dev" marks made-up ids in the ledger; hex keeps them to [A-Za-z0-9_].
    return f"{prefix}_dev{secrets.token_hex(8)}"


def _count_or_unknown() -> int | None:
    # The count is only shown; the event must still be sent when Redis cannot be read.
    rt = runtime()
    try:
        return ledger_queries.count(rt.redis, rt.keys)
    except redis.RedisError:
        return None


def _show(count: int | None) -> str:
    return "unknown" if count is None else str(count)


def _webhook_secret() -> str:
    secrets_ = runtime().settings.stripe_webhook_secrets
    if not secrets_:
        raise click.ClickException(
            "no webhook secret: set STRIPE_WEBHOOK_SECRET to the same value the server uses"
        )
    return secrets_[0]  # the server tries each of its secrets; the first is the current one


def _post(url: str, payload: str, signature: str) -> tuple[int, str]:
    """(HTTP status, answer body); a server that cannot be reached is a one-line error."""
    request = urllib.request.Request(
        url,
        data=payload.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.read().decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:  # a non-2xx answer is still an answer: show it
        return exc.code, exc.read().decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException) as exc:  # refused, timed out, not HTTP
        reason = getattr(exc, "reason", None) or exc
        raise click.ClickException(f"cannot reach the server at {url}: {reason}") from None


@with_app
def _send(event_type: str, url: str, given: dict, status: str | None, mode: str) -> int:
    secret = _webhook_secret()
    ids = dev_events.fill_ids(event_type, given, _new_id)
    now = int(time.time())
    event = dev_events.build_event(
        event_type, ids, now=now, status=status, email=given.get("email"), mode=mode
    )
    payload = dev_events.body(event)
    before = _count_or_unknown()
    code, answer = _post(url, payload, dev_events.sign(payload, secret, now))
    after = _count_or_unknown()
    # Printed only once there is an answer, so an unreachable server is one line.
    reuse = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in dev_events.named_ids(event).items())
    click.echo(f"sent {event_type} {event['id']} to {url}")
    click.echo(f"  ids: {reuse}")
    click.echo(f"HTTP {code} {answer}")
    click.echo(f"members: {_show(before)} -> {_show(after)}")
    return code


@dev.command("send-event")
@click.argument("event_type", metavar="TYPE", type=click.Choice(dev_events.EVENT_TYPES))
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    callback=_check_url,
    help="The server's base URL or its full webhook URL.",
)
@click.option("--customer", callback=_check_value, help="Reuse this customer (cus_...).")
@click.option("--subscription", callback=_check_value, help="Reuse this subscription (sub_...).")
@click.option(
    "--payment-intent", callback=_check_value, help="The contribution's payment intent (pi_...)."
)
@click.option("--email", callback=_check_value, help="The checkout's customer email.")
@click.option(
    "--status",
    type=click.Choice(SUBSCRIPTION_STATUSES),
    help="The subscription's status [default: active; canceled when deleted].",
)
@click.option(
    "--mode",
    type=click.Choice(dev_events.CHECKOUT_MODES),
    help="checkout.session.completed: a membership or a one-time contribution "
    "[default: subscription].",
)
def send_event(event_type, url, customer, subscription, payment_intent, email, status, mode):
    """Send a signed, made-up Stripe event of TYPE to a running server.

    TYPE: customer.subscription.created, customer.subscription.updated,
    customer.subscription.deleted, checkout.session.completed or charge.refunded.

    With no options, customer.subscription.created adds a new member. The ids
    printed can be passed to a later event, e.g. customer.subscription.deleted
    --customer cus_... --subscription sub_... ends that membership. Needs
    STRIPE_WEBHOOK_SECRET set to the server's value; exits 1 on a non-2xx answer.
    """
    given = {
        "customer": customer,
        "subscription": subscription,
        "payment_intent": payment_intent,
        "email": email,
        "status": status,
        "mode": mode,
    }
    # Checked before the app starts, so a typo costs no Redis start-up.
    problem = dev_events.option_problem(event_type, mode or "subscription", given)
    if problem:
        raise click.UsageError(problem)
    # The command's own lines are its report: the group keeps the store's start-up note
    # out of them unless --verbose asks for it.
    code = _send(event_type, url, given, status, mode or "subscription")
    if not 200 <= code < 300:
        raise click.exceptions.Exit(1)
