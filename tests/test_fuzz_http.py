"""Property-based fuzzing of every documented endpoint (schemathesis, from /openapi.json).

Against a real server on a real Redis: whatever a client sends within or around the
documented shapes, the answer is never a 5xx, and every answer matches the document
(status codes, content types, bodies). A valid Stripe signature cannot be generated,
so "schema-valid data is accepted" is not checked; the webhook tests cover that path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_stripe import FakeStripe
from tests.member_count import set_member_count
from tests.processes import ServiceProcess
from tests.smtp_server import SmtpServer
from tests.stripe_payloads import WEBHOOK_SECRET

pytestmark = pytest.mark.slow


def test_no_documented_endpoint_answers_a_5xx_or_off_its_schema(redis_server, redis_url, tmp_path):
    from membership.store import Keys

    set_member_count(redis_server.client(), Keys(), 25012)
    # Stripe and mail configured (on this machine), so their endpoints answer what they would
    # in production rather than their 503 for a missing setting.
    fake_stripe = FakeStripe().start()
    smtp = SmtpServer(tmp_path).start()
    service = ServiceProcess(
        {
            "REDIS_URL": redis_url,
            "MEMBERSHIP_DATA_DIR": str(tmp_path),
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ALLOWED_ORIGINS": "https://kyivindependent.com",
            "STRIPE_API_KEY": "sk_test_fuzz_0123456789",
            "STRIPE_API_BASE": fake_stripe.url,
            "SMTP_URL": smtp.url(),
        }
    ).start()
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    try:
        result = subprocess.run(
            [
                st, "run", f"{service.url}/openapi.json",
                "--checks", "all",
                "--exclude-checks", "positive_data_acceptance",
                "--max-examples", "60",
                "--seed", "20261125",
                "--no-color",
            ],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
    finally:
        service.stop()
        smtp.stop()
        fake_stripe.stop()
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
    assert "not_a_server_error" in result.stdout or "generated" in result.stdout
