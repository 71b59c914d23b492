"""`membership serve` refuses what it cannot do with one line, before starting anything."""

import os
import socket
import subprocess
import sys

import pytest

from tests.processes import REPO

pytestmark = pytest.mark.slow


def test_an_address_in_use_is_one_line_and_no_embedded_redis_is_left(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "STRIPE_"))}
        env["MEMBERSHIP_DATA_DIR"] = str(tmp_path / "var")
        result = subprocess.run(
            [sys.executable, "-m", "membership.cli", "serve", "--port", str(port)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    line = f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert result.stderr.strip() == line
    assert not (tmp_path / "var" / "redis.pid").exists()
