"""Property-based fuzzing of every documented endpoint (schemathesis, from /openapi.json).

Against a real server on a real Redis: whatever a client sends within or around the
documented shapes, the answer is never a 5xx, and every answer matches the document
(status codes, content types, bodies). Every check runs, `positive_data_acceptance` and
`negative_data_rejection` among them: what the document calls valid is accepted and what
it calls invalid is refused, so the request schemas say exactly what the validators take.
The rate limits are raised so that the limited endpoints answer their validator, not 429.

Where the check of valid data is tuned (CONFIG below):
- POST /webhooks/stripe: not checked for valid data: a valid Stripe signature cannot be
  generated (it is an HMAC of the body); the webhook tests cover that path.
- GET /v1/member/verify: a well-formed code nobody was mailed is answered 410 (the page
  that offers a new link), as a 404 would answer an unknown resource.
- Refusing invalid data with 413 counts as refusing it: a body a fuzzer makes too long
  for a maxLength may also be over the endpoint's body limit.
- The staff API (/staff/api/) answers 401 to the first run (no token), whatever the body:
  its token is checked before the body is read. That run sends it a few random cases and
  not its coverage cases (some thousands, all answered the same 401, unexpected methods
  included); a second run sends an admin's personal token, with every coverage case, and
  checks only that valid data is accepted and that nothing answers a 5xx (its routes have
  other disagreements with the document, reported apart), on every staff operation but
  STAFF_NOT_CHECKED, whose documents cannot say what is valid (reasons there).
- No stateful phase: the document's links all join staff operations, which the first run
  cannot pass (401) and the second run, with its token, did not follow either.

Each run is one schemathesis command: each command spends seconds starting (its imports,
the hooks', the document), more than most operations take to send. The two runs share one
service (a module fixture) and are two tests, which pytest-xdist gives to both workers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from membership import create_app
from membership.store import Keys
from tests.support.fake_stripe import FakeStripe
from tests.support.member_count import set_member_count
from tests.support.processes import RedisServer, ServiceProcess
from tests.support.settings import SECRET_KEY
from tests.support.smtp_server import SmtpServer
from tests.support.stripe_payloads import WEBHOOK_SECRET

pytestmark = pytest.mark.slow

# Every check runs (schemathesis enables them all by default; `--checks all` on the command
# line would override the per-operation settings below).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]

# Without a token every staff operation answers 401 before reading its body: the cases of an
# operation differ only in what comes before that (path, method, a random bearer token), so
# three of each prove the refusal and its documented shape (more only repeat it, at the price
# of generating each operation's random bodies).
[[operations]]
include-path-regex = "^/staff/api/"
generation.max-examples = 3
phases.coverage.enabled = false

[[operations]]
include-path = "/webhooks/stripe"
checks.positive_data_acceptance.enabled = false

# Where every random case meets one refusal once a single value is looked at: a Stripe
# signature that cannot match (an HMAC of the body), a sign-in code or a Checkout session
# nobody was given (gone, not found), a placement's script by a name that is none. The
# coverage phase sends each one's bounds; twenty random cases, not sixty, show the refusal.
[[operations]]
include-name = [
    "POST /webhooks/stripe",
    "GET /v1/member/verify",
    "GET /v1/member/token",
    "GET /static/prompt-{placement}.js",
]
generation.max-examples = 20

[[operations]]
include-path = "/v1/member/verify"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", 401, 403, 404, 409, 410, 429, "5xx",
]
"""
UNLIMITED = "100000/minute"
STAFF_NOT_CHECKED = (
    # A goal whose target another goal has is refused (400): stored state, which a schema
    # cannot know; so are copy templates with placeholders their field does not allow.
    "POST /staff/api/goals",
    "POST /staff/api/goals/preview",
    "PUT /staff/api/goals/{goal_id}",
    # A cursor is one this search handed out: state, as above.
    "GET /staff/api/members",
)
# What JSON Schema cannot say (a body's bytes, 100.0 as an integer):
# tests/support/schemathesis_hooks.py
ROOT = Path(__file__).resolve().parents[2]
HOOKED = {
    **os.environ,
    "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
    "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
}


# The admin's run. Its coverage phase sends each of the three operations that take a campaign
# document some 580 cases: every field's bounds, every enum value, each required field
# missing. Random Campaign documents are by far the slowest cases to generate; ten more per
# operation (thirty, all read by the same parser) add the random combinations.
ADMIN_CONFIG = """
[[operations]]
include-name = [
    "POST /staff/api/campaigns",
    "POST /staff/api/campaigns/preview",
    "PUT /staff/api/campaigns/{campaign_id}",
]
generation.max-examples = 10
"""


def _staff_token(redis_url: str, data_dir: Path) -> str:
    """An admin's personal API token, in the run's Redis."""
    from membership.core.runtime import runtime
    from membership.staff import accounts_for
    from membership.staff.access.api_tokens import api_tokens_for

    config = {"redis_url": redis_url, "data_dir": data_dir, "secret_key": SECRET_KEY}
    rt = runtime(create_app(config, start_embedded_redis=False))
    accounts_for(rt).add("fuzz@news.example", "admin", actor="t", password="correct horse battery")
    return api_tokens_for(rt).create("fuzz@news.example", "fuzz")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """The service every run's part sends to, on a Redis of its own (a banner to show, an
    admin's token), and that token."""
    data_dir = tmp_path_factory.mktemp("fuzzed")
    redis = RedisServer().start()
    set_member_count(redis.client(), Keys(), 25012)
    token = _staff_token(redis.url, data_dir)
    # Stripe and mail configured (on this machine), so their endpoints answer what they would
    # in production rather than their 503 for a missing setting.
    fake_stripe = FakeStripe().start()
    smtp = SmtpServer(data_dir).start()
    service = None
    try:
        service = ServiceProcess(
            {
                "REDIS_URL": redis.url,
                "MEMBERSHIP_DATA_DIR": str(data_dir),
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "ALLOWED_ORIGINS": "https://kyivindependent.com",
                "STRIPE_API_KEY": "sk_test_fuzz_0123456789",
                "STRIPE_API_BASE": fake_stripe.url,
                "SMTP_URL": smtp.url(),
                **{
                    name: UNLIMITED
                    for name in (
                        "RATE_LIMIT_PROMPT_EVENTS",
                        "RATE_LIMIT_CHECKOUT",
                        "RATE_LIMIT_SIGN_IN",
                        "RATE_LIMIT_SIGN_IN_EMAIL",
                    )
                },
            },
            workers=1,  # schemathesis sends one request at a time
            threads=2,
        ).start()
        yield service, token
    finally:
        if service is not None:
            service.stop()
        smtp.stop()
        fake_stripe.stop()
        redis.stop()


def _schemathesis(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    return subprocess.run(
        [st, *args, "--phases", "examples,coverage,fuzzing", "--seed", "20261125", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=cwd, env=HOOKED,
    )  # fmt: skip


def test_no_documented_endpoint_answers_a_5xx_or_off_its_schema(fuzzed, tmp_path):
    service, _ = fuzzed
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    result = _schemathesis(
        "--config-file", str(config), "run", f"{service.url}/openapi.json",
        "--max-examples", "60",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
    assert "not_a_server_error" in result.stdout or "generated" in result.stdout


def test_an_admin_s_valid_staff_requests_are_accepted(fuzzed, tmp_path):
    service, token = fuzzed
    config = tmp_path / "schemathesis.toml"
    config.write_text(ADMIN_CONFIG)
    result = _schemathesis(
        "--config-file", str(config), "run", f"{service.url}/openapi.json",
        "-H", f"Authorization: Bearer {token}",
        "--checks", "positive_data_acceptance,not_a_server_error",
        "--include-path-regex", "^/staff/api/",
        *(arg for name in STAFF_NOT_CHECKED for arg in ("--exclude-name", name)),
        "--max-examples", "20",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and "401" not in result.stdout.split("SUMMARY")[-1]
