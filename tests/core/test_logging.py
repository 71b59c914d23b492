"""LOG_FORMAT=json: one JSON object a line, a request id per request, and no secrets."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membership.core import logs
from membership.core.config import load_settings
from membership.staff.access.cookies import COOKIE
from tests.support import stripe_payloads as sp
from tests.support.processes import ServiceProcess, free_port

API_KEY = "sk_live_51Hsecretkeyvalue0123456789"
RESTRICTED = "rk_test_51Hrestrictedvalue0123456789"
CARD = "4242 4242 4242 4242"
# Whatever shape they come in, none of these may be in a log line.
FORBIDDEN = re.compile(
    r"whsec_(?!\[redacted\])|sk_(live|test)_(?!\[redacted\])|rk_(live|test)_(?!\[redacted\])"
    r"|v1=[0-9a-f]{64}|4242 ?4242 ?4242 ?4242"
)


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # each line alone is one JSON object


# --- Redaction (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        sp.WEBHOOK_SECRET,
        "whsec_AbC+/=123",
        API_KEY,
        "sk_test_abc123",
        RESTRICTED,
        "t=1780000000,v1=" + "ab" * 32,
        "Bearer abc.def-ghi",
        CARD,
        "4242-4242-4242-4242",
        "4000056655665556",
    ],
)
def test_redact_removes_secrets_signatures_and_card_numbers(secret):
    text = logs.redact(f"before {secret} after")
    assert secret not in text
    assert text.startswith("before ") and text.endswith(" after")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("card 4242 4242 4242 4242 12/34", ("card ", " 12/34")),  # then its expiry
        ("card 4242424242424242 123", ("card ", " 123")),  # then a CVC
        ("exp 12 4000 0566 5566 5556", ("exp 12 ",)),  # a number before it
    ],
)
def test_a_card_number_beside_other_numbers_is_redacted(text, kept):
    """Found in review: the digits after a card made the whole run fail the Luhn check."""
    redacted = logs.redact(text)
    assert "[redacted card]" in redacted and not FORBIDDEN.search(redacted), redacted
    assert "0566" not in redacted
    for part in kept:
        assert part in redacted


def test_numbers_that_are_no_card_are_kept():
    for text in ("ids 1234 5678 9012 3456 7", "at 1764139462 1764139463"):
        assert logs.redact(text) == text


def test_redact_leaves_ordinary_numbers_and_ids():
    line = (
        "stripe customer.subscription.created evt_0000001: applied; members 12 -> 13 at 1780000000"
    )
    assert logs.redact(line) == line
    assert logs.redact("order 4242424242424241") == "order 4242424242424241"  # fails Luhn


# --- In-process: request ids, JSON lines, a webhook's logs -------------------------


@pytest.fixture
def json_app(make_app, capsys):
    app = make_app(log_format="json", stripe_api_key=API_KEY)
    capsys.readouterr()
    yield app
    logging.getLogger().setLevel(logging.WARNING)


def test_request_id_is_taken_when_safe_else_generated(client):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123.DEF:9_x"})
    assert given.headers["X-Request-ID"] == "abc-123.DEF:9_x"
    for bad in ("a" * 129, "has space", "new\\nline", "<script>", "caf\u00e9"):
        response = client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), bad
    first = client.get("/nope").headers["X-Request-ID"]
    second = client.get("/nope").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_json_lines_carry_the_request_id_and_no_secrets(json_app, capsys):
    client = json_app.test_client()
    payload = sp.body(sp.new_member_event())
    signature = sp.sign(payload)
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={
            "Stripe-Signature": signature,
            "Content-Type": "application/json",
            "X-Request-ID": "req-webhook-1",
        },
    )
    assert response.status_code == 200
    forged = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": "t=1,v1=" + "0" * 64, "X-Request-ID": "req-forged"},
    )
    assert forged.status_code == 400
    # Someone logs carelessly: the filter still keeps the secrets out.
    with json_app.test_request_context(headers={"X-Request-ID": "req-careless"}):
        logging.getLogger("membership.careless").warning(
            "config %s key %s card %s sig %s", sp.WEBHOOK_SECRET, API_KEY, CARD, signature
        )
        try:
            raise ValueError(f"boom with {RESTRICTED}")
        except ValueError:
            logging.getLogger("membership.careless").exception("failed")
    logging.getLogger("membership.outside").info("no request here")

    err = capsys.readouterr().err
    records = json_lines(err)
    assert not FORBIDDEN.search(err), err
    assert payload not in err and signature not in err
    by_message = {r["message"]: r for r in records}
    applied = next(r for r in records if "applied" in r["message"])
    assert applied["request_id"] == "req-webhook-1"
    assert applied["level"] == "INFO" and applied["logger"] == "membership.stripe.webhooks"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", applied["time"])
    careless = next(r for r in records if r["message"].startswith("config "))
    assert careless["request_id"] == "req-careless"
    assert "[redacted]" in careless["message"] and "[redacted card]" in careless["message"]
    assert "ValueError" in by_message["failed"]["exc_info"]
    assert "request_id" not in by_message["no request here"]


def test_text_stays_the_readable_default():
    record = logging.LogRecord(
        "membership.core.text",
        logging.WARNING,
        __file__,
        1,
        "plain %s",
        ("whsec_unconfigured1",),
        None,
    )
    line = logs.TextFormatter(logs.TEXT_FORMAT).format(record)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING membership\.core\.text: "
        r"plain whsec_\[redacted\]",
        line,
    ), line


def test_configure_logging_is_idempotent(make_app):
    make_app(log_format="json")
    make_app(log_format="json")
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._Handler)]
    assert len(ours) == 1


# --- The real server: every line it writes --------------------------------------------


def _post(url: str, payload: str, headers: dict) -> int:
    request = urllib.request.Request(url, data=payload.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_the_real_server_writes_only_json_lines_without_secrets(redis_url, tmp_path):
    service = ServiceProcess(
        {
            "REDIS_URL": redis_url,
            "MEMBERSHIP_DATA_DIR": str(tmp_path / "var"),
            "STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET,
            "STRIPE_API_KEY": API_KEY,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
        },
        workers=2,
        threads=2,
    ).start()
    try:
        url = service.url + "/webhooks/stripe"
        for i in range(4):
            payload = sp.body(sp.new_member_event())
            headers = {"Stripe-Signature": sp.sign(payload), "X-Request-ID": f"req-{i}"}
            assert _post(url, payload, headers) == 200
        payload = sp.body(sp.new_member_event())
        forged = {"Stripe-Signature": "t=1,v1=" + "1" * 64, "X-Request-ID": "req-forged"}
        assert _post(url, payload, forged) == 400
    finally:
        service.stop()
    text = service.log.read_text()
    records = json_lines(text)
    assert not FORBIDDEN.search(text), text
    applied = [r for r in records if r.get("logger") == "membership.stripe.webhooks"]
    assert sorted(r["request_id"] for r in applied) == [f"req-{i}" for i in range(4)]
    assert len({r["process"] for r in records}) >= 2  # the workers and the server's own process


def test_a_host_s_own_handlers_never_see_a_secret_either():
    """Text mode keeps a host's logging (as basicConfig does); its handlers still get
    redacted messages (found in review: they got the raw line)."""
    import io
    import logging

    from membership.core import logs
    from membership.core.config import load_settings

    stream = io.StringIO()
    foreign = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(foreign)
    try:
        settings = load_settings({}, overrides={"secret_key": "k" * 32, "log_format": "text"})
        logs.configure_logging(settings)
        logging.getLogger("membership.test").warning(
            "configured with %s", "whsec_" + "A1b2C3d4E5f6G7h8"
        )
    finally:
        root.removeHandler(foreign)
    assert "whsec_A1b2" not in stream.getvalue()
    assert "configured with" in stream.getvalue()


def test_the_staff_token_is_redacted_and_stripe_sdk_chatter_is_not_logged_at_info():
    """STAFF_API_TOKEN was missing from the secrets redacted; stripe-python logs two INFO
    lines for every API call (checkout, member tokens, portal)."""
    import logging

    from membership.core import logs
    from membership.core.config import load_settings

    staff = "staff-token-" + "x" * 20
    settings = load_settings(
        {}, overrides={"secret_key": "k" * 32, "staff_api_token": staff, "log_level": "INFO"}
    )
    logs.configure_logging(settings)
    assert staff not in logs.redact(f"Authorization {staff}")
    assert not logging.getLogger("stripe").isEnabledFor(logging.INFO)
    logs.configure_logging(
        load_settings({}, overrides={"secret_key": "k" * 32, "log_level": "DEBUG"})
    )
    assert logging.getLogger("stripe").isEnabledFor(logging.DEBUG)
    logs.configure_logging(load_settings({}, overrides={"secret_key": "k" * 32}))


# --- One record, one line, whatever a logged value holds ------------------------------

# Where str.splitlines() breaks a line (and so do log shippers, terminals and editors).
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: .*")
_piece = st.sampled_from([*LINE_BREAKS, "\t", "\x00", "\x1b[2J", "\x7f", "\u202e", "x", " ", "\\"])
hostile_text = st.lists(st.one_of(_piece, _piece, st.characters()), max_size=16).map("".join)
# A path segment that reaches a staff route: no "/" (another route), no LF (werkzeug's
# routing refuses it: a 404, which logs nothing), text a URL can carry (UTF-8: no lone
# surrogate, which has no bytes to percent-encode).
hostile_segment = st.lists(
    st.one_of(_piece, _piece, st.characters(codec="utf-8")).filter(lambda c: c not in "/\n"),
    min_size=1,
    max_size=16,
).map("".join)


@contextlib.contextmanager
def service_logging(log_format: str, make=None):
    """The service's own logging, as `membership serve` sets it up, writing to a string:
    pytest's capture handlers are off the root meanwhile (text mode would keep them).
    `make(log_format=...)`, if given, makes the app whose factory sets it up.
    Yields (the app or None, the string)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    for handler in saved:
        root.removeHandler(handler)
    out = io.StringIO()
    try:
        with contextlib.redirect_stderr(out):
            if make is None:
                settings_ = load_settings(
                    {}, overrides={"secret_key": "k" * 32, "log_format": log_format}
                )
                logs.configure_logging(settings_)
                app = None
            else:
                app = make(log_format=log_format)
            root.setLevel(logging.WARNING)
            yield app, out
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


def _check_lines(log_format: str, text: str, records: int) -> list:
    """Each line of `text` is one whole record; their messages (JSON) or lines (text)."""
    lines = text.splitlines()
    assert len(lines) == records, lines
    assert text.count("\n") == records and not any(c in text for c in LINE_BREAKS[1:]), text
    if log_format == "json":
        return [json.loads(line)["message"] for line in lines]
    for line in lines:
        assert TEXT_LINE.fullmatch(line), line
    return lines


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_every_record_is_one_line_whatever_a_value_holds(log_format):
    """Found in review: a path with CR, VT, FF, NEL or U+2028 split a text record into
    several lines, and JSON lines kept NEL and U+2028 raw."""
    with service_logging(log_format) as (_, out):

        @settings(max_examples=200)
        @given(path=hostile_text)
        def log_a_path(path):
            out.seek(0)
            out.truncate()
            logging.getLogger("membership.core.errors").warning(
                "Redis %s during %s %s: %s", "is unreachable", "GET", path, "refused"
            )
            try:
                raise ValueError(f"cannot read {path}")
            except ValueError:
                logging.getLogger("membership.test").exception("failed on %s", path)
            messages = _check_lines(log_format, out.getvalue(), 2)
            if log_format == "json":  # escaped, yet the same text for a JSON reader
                assert messages == [
                    logs.redact(f"Redis is unreachable during GET {path}: refused"),
                    logs.redact(f"failed on {path}"),
                ]
            else:
                assert " during GET " in messages[0] and messages[0].endswith(": refused")
                assert "Traceback (most recent call last):\\n" in messages[1]

        log_a_path()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_request_for_a_hostile_path_during_a_redis_outage_logs_one_line(log_format, make_app):
    """The review's case through the app: a staff page with a session cookie reads Redis,
    which is down; the 503 is logged with the path."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    with service_logging(log_format, lambda **kw: make_app(redis_url=down, **kw)) as (app, out):
        client = app.test_client()
        client.set_cookie(COOKIE, "a-session")

        @settings(max_examples=60)
        @given(segment=hostile_segment)
        def request(segment):
            out.seek(0)
            out.truncate()
            response = client.get("/staff/members/" + urllib.parse.quote(segment, safe=""))
            assert response.status_code == 503
            (message,) = _check_lines(log_format, out.getvalue(), 1)
            assert "Redis is unreachable during GET /staff/members/" in message
            if log_format == "json":
                assert f"/staff/members/{segment}: " in message

        request()


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_real_server_writes_one_line_a_record_for_a_hostile_path(log_format, tmp_path):
    """A raw request line, percent-encoded as a client sends it, to `membership serve`."""
    service = ServiceProcess(
        {
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens: an outage
            "MEMBERSHIP_DATA_DIR": str(tmp_path / "var"),
            "LOG_FORMAT": log_format,
        },
        workers=1,
        threads=2,
    ).start()
    # CR (no LF: routing refuses that, 404, nothing logged), then a record of its own making.
    forged = "x%0d2026-01-01%2000:00:00,000%20INFO%20forged%0b%0c%1c%c2%85%e2%80%a8%e2%80%a9y"
    try:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        connection.request("GET", "/staff/members/" + forged, headers={"Cookie": f"{COOKIE}=s"})
        assert connection.getresponse().status == 503
        connection.close()
    finally:
        service.stop()
    text = service.log.read_text()
    lines = text.splitlines()
    assert not any(c in text for c in LINE_BREAKS[1:]), text
    if log_format == "json":
        records = [json.loads(line) for line in lines]
    else:
        records = [{"message": line} for line in lines if TEXT_LINE.fullmatch(line)]
        assert len(records) == len(lines), text
    hits = [r["message"] for r in records if "/staff/members/x" in r["message"]]
    assert len(hits) == 1 and "forged" in hits[0], text
    assert not any(line.startswith("2026-01-01") for line in lines)


# --- Ids, not personal data ------------------------------------------------------------


def test_a_checkout_webhook_logs_ids_not_the_customers_email_or_name(json_app, capsys):
    """Found in review: every checkout webhook logged the customer's email at INFO."""
    client = json_app.test_client()
    customer = sp.new_id("cus")
    links = [
        (customer, "olena.k@example.org"),
        (customer, "Olena.New@Example.org"),
        (customer, "olena.new@example.org"),
    ]
    for i, (who, email) in enumerate(links):
        event = sp.checkout_subscription(who, email, name="Olena Kovalenko", created=sp.T0 + i)
        payload = sp.body(event)
        response = client.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": sp.sign(payload), "Content-Type": "application/json"},
        )
        assert response.status_code == 200
    records = json_lines(capsys.readouterr().err)
    applied = [r["message"] for r in records if r.get("logger") == "membership.stripe.webhooks"]
    assert [m.split(": ", 1)[1] for m in applied] == [
        f"applied ({customer}: email set)",
        f"applied ({customer}: email changed)",
        f"applied ({customer}: email unchanged)",
    ]
    text = json.dumps(records).lower()
    assert "olena" not in text and "@example.org" not in text, text


def test_a_failing_subscriber_is_logged_without_the_offline_members_email(redis_url, caplog):
    """The writer logged the whole outcome, whose detail names an offline member's email."""
    from membership.core.config import DEFAULT_MEMBER_STATUSES
    from membership.ledger import Ledger
    from membership.store import Keys, connect
    from tests.support.ledger_helpers import add_offline

    def broken(outcome):
        raise RuntimeError("a subscriber's bug")

    client = connect(redis_url)
    try:
        ledger = Ledger.on(client, Keys("logs"), DEFAULT_MEMBER_STATUSES, subscribers=[broken])
        with caplog.at_level(logging.ERROR, logger="membership.ledger"):
            assert add_offline(ledger, "olena.k@example.org", "gift").outcome == "applied"
    finally:
        client.close()
    (record,) = caplog.records
    assert "failed on a staff change (applied)" in record.getMessage()
    assert "olena" not in caplog.text
