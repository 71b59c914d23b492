"""Conversions: a paid Checkout Session from a prompt credits its variant once, with the
ledger's own change, in any order and under any number of event ids; full refunds show.

Sessions are made by POST /v1/checkout against the fake Stripe, or by the fake's own
create_session with the same parameters (hypothesis: no HTTP to Stripe per example); their
events are the fake's, signed as Stripe signs them and verified by the SDK at /webhooks/stripe.
The oracle in the property test is a few set operations over the delivered events, not the
hook's state machine.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membership.checkout.request import CheckoutRequest, Offer, session_params
from membership.cli import cli
from membership.core.runtime import runtime
from membership.ledger import ledger_for
from membership.prompts import counts, results
from membership.prompts.counts import HOLDOUT
from membership.prompts.tokens import DecisionClaim
from tests.support import stripe_payloads as sp
from tests.support.fake_stripe import STRIPE_KEY
from tests.support.prompt_helpers import EXAMPLE
from tests.support.webhooks import deliver

CAMPAIGN = EXAMPLE["id"]  # winter-drive: variants a and b, a holdout
OFFER = Offer(
    prices={"monthly": "price_monthly", "yearly": "price_yearly"},
    once_min=100,
    once_max=100_000,
    currencies=("eur",),
    publication="our newsroom",
    success_url="https://news.example/thanks?session_id={CHECKOUT_SESSION_ID}",
    cancel_url="https://news.example/",
)


@pytest.fixture
def app(make_app, priced_stripe):
    return make_app(
        stripe_api_key=STRIPE_KEY,
        stripe_api_base=priced_stripe.url,
        stripe_prices=tuple(OFFER.prices.items()),
        rate_limit_checkout="off",
    )


def again(event: dict) -> dict:
    """The same object under a new event id (Stripe sends a session's news more than once)."""
    return sp.event(event["type"], event["data"]["object"], created=event["created"])


def figures(app) -> dict:
    rt = runtime(app)
    stored = counts.read(rt.redis, rt.keys, CAMPAIGN, ["a", "b", HOLDOUT])
    out = results.tabulate(CAMPAIGN, ["a", "b"], True, stored)
    shown = {v["id"]: v for v in out["variants"]}
    shown[HOLDOUT] = out["holdout"]
    return {
        slot: (
            f["conversions"],
            f["revenue"].get("eur", 0),
            f["refunds"],
            f["refunded"].get("eur", 0),
        )
        for slot, f in shown.items()
    }


def claim(variant: str | None, decision: str) -> DecisionClaim:
    return DecisionClaim(decision, CAMPAIGN, variant, "r_reader01", int(time.time()))


def new_session(priced_stripe, plan: str, variant: str | None, decision: str) -> dict:
    amount = 2500 if plan == "once" else None
    req = CheckoutRequest(
        plan=plan, locale="auto", amount=amount, currency="eur" if amount else None
    )
    return priced_stripe.checkout.create_session(
        session_params(req, OFFER, decision, claim(variant, decision))
    )


# --- from a click to a credited variant --------------------------------------------------


def test_a_click_becomes_one_conversion_for_its_variant(app, priced_stripe, tokens):
    client = app.test_client()
    token = tokens.decision("dec0000000000001", CAMPAIGN, "a", "r_reader01", time.time())
    response = client.post("/v1/checkout", json={"plan": "monthly", "token": token})
    assert response.status_code == 200
    [session_id] = priced_stripe.checkout.sessions
    events = priced_stripe.complete(session_id)
    count_before = ledger_for(runtime(app)).queries.count()
    # the session's news first, then everything twice, under the same and new event ids
    for event in [events[-1], *events, *events, *(again(e) for e in events)]:
        deliver(client, event)
    assert figures(app)["a"] == (1, 500, 0, 0)
    assert figures(app)["b"] == figures(app)[HOLDOUT] == (0, 0, 0, 0)
    assert ledger_for(runtime(app)).queries.count() == (count_before or 0) + 1
    record = runtime(app).redis.hgetall(runtime(app).keys.conversion(session_id))
    assert record["plan"] == "monthly" and record["price"] == "price_monthly"


def test_a_holdout_reader_who_pays_counts_for_the_holdout(app, priced_stripe):
    session = new_session(priced_stripe, "once", None, "dec0000000000002")
    for event in priced_stripe.complete(session["id"]):
        deliver(app.test_client(), event)
    assert figures(app)[HOLDOUT] == (1, 2500, 0, 0)


def test_an_unpaid_session_credits_only_when_its_payment_succeeds(app, priced_stripe):
    client = app.test_client()
    session = new_session(priced_stripe, "once", "b", "dec0000000000003")
    [completed] = priced_stripe.complete(session["id"], async_payment=True)
    deliver(client, completed)
    assert figures(app)["b"] == (0, 0, 0, 0)
    succeeded = priced_stripe.succeed_async(session["id"])
    deliver(client, succeeded)
    deliver(client, again(succeeded))
    assert figures(app)["b"] == (1, 2500, 0, 0)


def test_a_session_without_our_metadata_credits_nothing(app, priced_stripe):
    req = CheckoutRequest(plan="monthly", locale="auto")
    session = priced_stripe.checkout.create_session(
        session_params(req, OFFER, "rnd0000000000001", None)
    )
    for event in priced_stripe.complete(session["id"]):
        deliver(app.test_client(), event)
    assert all(f == (0, 0, 0, 0) for f in figures(app).values())


def test_concurrent_deliveries_of_one_session_credit_once(app, priced_stripe):
    session = new_session(priced_stripe, "once", "a", "dec0000000000004")
    [completed] = priced_stripe.complete(session["id"])
    clones = [completed] + [again(completed) for _ in range(11)]
    start = threading.Barrier(len(clones))

    def send(event):
        client = app.test_client()
        start.wait()
        deliver(client, event)

    threads = [threading.Thread(target=send, args=(e,)) for e in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert figures(app)["a"] == (1, 2500, 0, 0)


def test_a_corrupt_counter_refuses_the_event_whole_until_mended(app, priced_stripe):
    rt = runtime(app)
    rt.redis.hset(rt.keys.prompt_counts(CAMPAIGN), "a:conversions", "many")
    session = new_session(priced_stripe, "once", "a", "dec0000000000005")
    [completed] = priced_stripe.complete(session["id"])
    payload = sp.body(completed)
    client = app.test_client()
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": sp.sign(payload)},
        content_type="application/json",
    )
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert not rt.redis.exists(rt.keys.conversion(session["id"]))
    assert not rt.redis.exists(rt.keys.ledger_event(completed["id"]))  # Stripe will retry
    rt.redis.hset(rt.keys.prompt_counts(CAMPAIGN), "a:conversions", "0")
    deliver(client, completed)
    assert figures(app)["a"] == (1, 2500, 0, 0)


# --- refunds --------------------------------------------------------------------------------


def test_a_full_refund_shows_as_refunded_once(app, priced_stripe):
    client = app.test_client()
    once = new_session(priced_stripe, "once", "a", "dec0000000000006")
    monthly = new_session(priced_stripe, "monthly", "b", "dec0000000000007")
    for event in [*priced_stripe.complete(once["id"]), *priced_stripe.complete(monthly["id"])]:
        deliver(client, event)
    deliver(client, priced_stripe.refund(once["id"], 1000))  # partial: still a conversion
    assert figures(app)["a"] == (1, 2500, 0, 0)
    for _ in range(2):
        deliver(client, again(priced_stripe.refund(once["id"])))
        deliver(client, again(priced_stripe.refund(monthly["id"])))  # the first invoice's payment
    assert figures(app)["a"] == (1, 2500, 1, 2500)
    assert figures(app)["b"] == (1, 500, 1, 500)


def test_a_refund_before_the_sessions_news_is_kept_for_it(app, priced_stripe):
    client = app.test_client()
    monthly = new_session(priced_stripe, "monthly", "a", "dec0000000000008")
    events = priced_stripe.complete(monthly["id"])
    deliver(client, priced_stripe.refund(monthly["id"]))  # before anything else
    for event in reversed(events):
        deliver(client, event)
    assert figures(app)["a"] == (1, 500, 1, 500)


def test_campaigns_results_shows_conversions_and_refunds(app, priced_stripe, redis_url, tmp_path):
    env = {"REDIS_URL": redis_url, "MEMBERSHIP_DATA_DIR": str(tmp_path / "cli")}
    run = CliRunner().invoke
    assert run(cli, ["campaigns", "apply", "-"], env=env, input=json.dumps(EXAMPLE)).exit_code == 0
    client = app.test_client()
    for plan, variant in (("once", "a"), ("yearly", "a"), ("once", None)):
        session = new_session(priced_stripe, plan, variant, f"dec{plan}{variant}")
        for event in priced_stripe.complete(session["id"]):
            deliver(client, event)
        if plan == "once" and variant == "a":
            deliver(client, priced_stripe.refund(session["id"]))
    result = run(cli, ["campaigns", "results", CAMPAIGN, "--json", "--days", "1"], env=env)
    data = json.loads(result.stdout)
    a = data["variants"][0]
    assert (a["conversions"], a["revenue"], a["refunds"], a["refunded"]) == (
        2,
        {"eur": 7500},
        1,
        {"eur": 2500},
    )
    assert (data["holdout"]["conversions"], data["holdout"]["refunds"]) == (1, 0)
    assert data["days"][0]["variants"][0]["refunds"] == 1
    table = run(cli, ["campaigns", "results", CAMPAIGN], env=env).stdout
    assert "REFUNDED" in table and "1 (€25.00)" in table


# --- any order, any duplication: the property ----------------------------------------------

SESSION = st.tuples(
    st.sampled_from(["monthly", "once", "once-async"]),
    st.sampled_from(["a", "b", None]),
    st.sampled_from(["none", "partial", "full"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sessions=st.lists(SESSION, min_size=1, max_size=3), data=st.data())
def test_exactly_once_in_any_order_under_any_event_ids(app, priced_stripe, sessions, data):
    rt = runtime(app)
    rt.redis.flushall()
    events: list[dict] = []
    for i, (plan, variant, refund) in enumerate(sessions):
        session = new_session(priced_stripe, plan.split("-")[0], variant, f"dec{i:013d}")
        events += priced_stripe.complete(session["id"], async_payment=plan == "once-async")
        if plan == "once-async":
            events.append(priced_stripe.succeed_async(session["id"]))
        if refund != "none":
            total = session["amount_total"]
            events.append(
                priced_stripe.refund(session["id"], total if refund == "full" else total // 2)
            )
    # Deliveries: every event at least once, some again (same id or a new one), in any order.
    extra = data.draw(st.lists(st.tuples(st.sampled_from(events), st.booleans()), max_size=8))
    deliveries = events + [again(e) if new_id else e for e, new_id in extra]
    order = data.draw(st.permutations(range(len(deliveries))))
    client = app.test_client()
    for i in order:
        deliver(client, deliveries[i])
    assert figures(app) == oracle(deliveries)


def oracle(deliveries: list[dict]) -> dict:
    """Per slot: (conversions, revenue, refunds, refunded) from the events as sets."""
    paid: dict[str, dict] = {}  # session id -> the session object
    intents: dict[str, str] = {}  # payment intent -> session id
    invoice_intent = {}
    refunded_intents = set()
    for e in deliveries:
        obj = e["data"]["object"]
        if e["type"].startswith("checkout.session.") and obj["payment_status"] == "paid":
            paid[obj["id"]] = obj
        elif e["type"] == "invoice_payment.paid":
            invoice_intent[obj["invoice"]] = obj["payment"]["payment_intent"]
        elif e["type"] == "charge.refunded" and obj["amount_refunded"] >= obj["amount"]:
            refunded_intents.add(obj["payment_intent"])
    for session_id, obj in paid.items():
        intent = obj["payment_intent"] or invoice_intent.get(obj["invoice"])
        intents[intent] = session_id
    out = {slot: [0, 0, 0, 0] for slot in ("a", "b", HOLDOUT)}
    for obj in paid.values():
        variant = obj["metadata"]["variant"]
        slot = out[HOLDOUT if variant == "holdout" else variant]
        slot[0] += 1
        slot[1] += obj["amount_total"]
    for intent in refunded_intents:
        if intent in intents:
            obj = paid[intents[intent]]
            variant = obj["metadata"]["variant"]
            slot = out[HOLDOUT if variant == "holdout" else variant]
            slot[2] += 1
            slot[3] += obj["amount_total"]
    return {slot: tuple(v) for slot, v in out.items()}


def test_no_variant_may_be_called_holdout():
    """A checkout's metadata names the holdout `holdout`: no variant may take that id."""
    from membership.prompts import campaigns

    doc = {**EXAMPLE, "variants": [{**EXAMPLE["variants"][0], "id": "holdout"}]}
    with pytest.raises(campaigns.CampaignError, match=r"variants\[0\]\.id: holdout is reserved"):
        campaigns.parse(doc)
