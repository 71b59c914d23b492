"""`membership dev send-event`: its events, its signature, and the command against the service.

The service runs for real under gunicorn on a real Redis; the command reaches it
over HTTP and reads the count from the same Redis. Nothing is mocked.
"""

from __future__ import annotations

import json

import pytest
import stripe
from click.testing import CliRunner

from membership.cli import cli
from membership.core.config import SUBSCRIPTION_STATUSES
from membership.store import Keys
from membership.stripe import dev_events
from membership.stripe.events import envelope_errors, subscription_from_object, to_command
from tests.support.processes import ServiceProcess, free_port, run_cli
from tests.support.settings import SECRET_KEY
from tests.support.stripe_payloads import WEBHOOK_SECRET

NOW = 1_780_000_000


def _ids(type_: str) -> dev_events.Ids:
    counter = iter(range(1000))
    return dev_events.fill_ids(type_, {}, lambda prefix: f"{prefix}_test{next(counter)}")


def _every_event() -> list[dict]:
    events = []
    for type_ in dev_events.SUBSCRIPTION_TYPES:
        statuses = ("canceled",) if type_.endswith("deleted") else SUBSCRIPTION_STATUSES
        for status in statuses:
            events.append(dev_events.build_event(type_, _ids(type_), now=NOW, status=status))
    for mode in dev_events.CHECKOUT_MODES:
        type_ = "checkout.session.completed"
        events.append(dev_events.build_event(type_, _ids(type_), now=NOW, mode=mode))
    events.append(dev_events.build_event("charge.refunded", _ids("charge.refunded"), now=NOW))
    return events


# --- pure parts ---------------------------------------------------------------


def test_signature_is_accepted_by_the_stripe_sdk_and_only_with_its_secret():
    payload = dev_events.body(_every_event()[0])
    header = dev_events.sign(payload, WEBHOOK_SECRET, NOW)
    assert stripe.WebhookSignature.verify_header(payload, header, WEBHOOK_SECRET, tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other", tolerance=None)


@pytest.mark.parametrize("event", _every_event(), ids=lambda e: e["type"])
def test_every_built_event_is_an_event_the_service_reads(event):
    assert envelope_errors(event) is None
    to_command(event)  # raises EventError when a handler cannot read the object
    assert event["created"] == NOW and event["api_version"] == dev_events.API_VERSION


def test_a_new_subscription_is_an_active_monthly_eur_membership_with_a_period_end():
    event = dev_events.build_event("customer.subscription.created", _ids("x"), now=NOW)
    sub = subscription_from_object(event["data"]["object"], created=NOW, source=event["id"])
    assert (sub.status, sub.currency, sub.interval, sub.amount) == ("active", "eur", "month", 500)
    assert sub.current_period_end == NOW + dev_events.PERIOD_SECONDS


def test_webhook_url_accepts_a_base_url_or_the_full_endpoint():
    full = "http://127.0.0.1:8000/webhooks/stripe"
    assert dev_events.webhook_url("http://127.0.0.1:8000") == full
    assert dev_events.webhook_url("http://127.0.0.1:8000/") == full
    assert dev_events.webhook_url(full) == full


# --- the command --------------------------------------------------------------


@pytest.fixture(scope="module")
def service(redis_single, tmp_path_factory):
    env = {
        "REDIS_URL": redis_single.url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MEMBERSHIP_DATA_DIR": str(tmp_path_factory.mktemp("server")),
        "SECRET_KEY": SECRET_KEY,
    }
    server = ServiceProcess(env, workers=1, threads=2).start()
    yield server
    server.stop()


@pytest.fixture
def send(redis_url, tmp_path):
    """Run `membership dev send-event ARGS` with the test Redis and, unless told, the secret."""

    def run(*args: str, secret: str | None = WEBHOOK_SECRET):
        env = {
            "REDIS_URL": redis_url,
            "STRIPE_WEBHOOK_SECRET": secret,
            "MEMBERSHIP_DATA_DIR": str(tmp_path),
            "SECRET_KEY": SECRET_KEY,
        }
        return CliRunner().invoke(cli, ["dev", "send-event", *args], env=env)

    return run


def _count(redis_client) -> int | None:
    raw = redis_client.get(Keys().member_count)
    return None if raw is None else int(raw)


def _reuse_args(output: str) -> list[str]:
    """The `ids:` line's options, to send a later event about the same thing."""
    line = next(line for line in output.splitlines() if line.strip().startswith("ids:"))
    return line.split()[1:]


def test_a_new_subscription_adds_a_member_and_deleting_it_removes_it(service, send, redis_client):
    created = send("customer.subscription.created", "--url", service.url)
    assert created.exit_code == 0, created.output
    assert "HTTP 200" in created.output and '"outcome":"applied"' in created.output
    assert "members: unknown -> 1" in created.output
    assert _count(redis_client) == 1

    args = _reuse_args(created.output)
    assert args[0] == "--customer" and args[2] == "--subscription"
    deleted = send("customer.subscription.deleted", *args, "--url", service.url)
    assert deleted.exit_code == 0, deleted.output
    assert "members: 1 -> 0" in deleted.output
    assert _count(redis_client) == 0


def _contributions(redis_url: str) -> dict:
    """The ledger's one-time contribution totals, as `membership stats --json` shows them."""
    env = {"REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY}
    result = CliRunner().invoke(cli, ["stats", "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["contributions"]["sum"]


def test_a_contribution_and_its_refund_leave_the_count_alone(
    service, send, redis_client, redis_url
):
    hook = service.url + "/webhooks/stripe"  # the full URL works as well as the base one
    assert send("customer.subscription.created", "--url", hook).exit_code == 0

    paid = send("checkout.session.completed", "--mode", "payment", "--url", hook)
    assert paid.exit_code == 0, paid.output
    assert '"outcome":"applied"' in paid.output and "members: 1 -> 1" in paid.output
    assert _contributions(redis_url) == {"eur": dev_events.DEV_CONTRIBUTION_AMOUNT}

    refund_args = _reuse_args(paid.output)[-2:]
    assert refund_args[0] == "--payment-intent"
    refunded = send("charge.refunded", *refund_args, "--url", hook)
    assert refunded.exit_code == 0, refunded.output
    assert '"outcome":"applied"' in refunded.output and "members: 1 -> 1" in refunded.output
    assert _contributions(redis_url) == {}  # the refund cancelled that very contribution
    assert _count(redis_client) == 1


def test_a_wrong_secret_shows_the_servers_400_and_exits_1(service, send, redis_client):
    result = send("customer.subscription.created", "--url", service.url, secret="whsec_wrong")
    assert result.exit_code == 1, result.output
    assert "HTTP 400" in result.output and "invalid_signature" in result.output
    assert _count(redis_client) is None


def _one_line_error(result) -> str:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # click's exit, not a traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_no_secret_is_one_line_saying_what_to_set(service, send):
    line = _one_line_error(send("customer.subscription.created", "--url", service.url, secret=None))
    assert "STRIPE_WEBHOOK_SECRET" in line


def test_an_unreachable_server_is_one_line_naming_the_url(send):
    url = f"http://127.0.0.1:{free_port()}"
    line = _one_line_error(send("customer.subscription.created", "--url", url))
    assert f"cannot reach the server at {url}/webhooks/stripe" in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["customer.subscription.created", "--status", "gone"], "'gone' is not one of"),
        (["customer.subscription.created", "--url", "ftp://x"], "expected an http://"),
        (["customer.subscription.created", "--customer", "sub_x"], "expected cus_..."),
        (["customer.subscription.deleted"], "needs --customer and --subscription"),
        (["charge.refunded"], "needs --payment-intent"),
        (["customer.subscription.created", "--mode", "payment"], "--mode does not apply"),
        (["invoice.paid"], "'invoice.paid' is not one of"),
    ],
)
def test_bad_options_are_usage_errors(send, args, message):
    result = send(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_verbose_shows_the_store_s_start_up_note_and_plain_keeps_to_the_report(
    service, redis_single, tmp_path
):
    """`--verbose` is the group's promise for every command, send-event included."""
    env = {
        "REDIS_URL": redis_single.url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SECRET_KEY": SECRET_KEY,
    }
    args = ("dev", "send-event", "customer.subscription.created", "--url", service.url)
    plain = run_cli(tmp_path, *args, env=env)
    loud = run_cli(tmp_path, "--verbose", *args, env=env)
    assert plain.returncode == 0 and loud.returncode == 0, plain.stderr + loud.stderr
    assert "HTTP 200" in plain.stdout and "HTTP 200" in loud.stdout
    assert "using Redis at" not in plain.stderr
    assert "using Redis at" in loud.stderr
