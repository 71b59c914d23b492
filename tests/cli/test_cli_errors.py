"""Every command, when something it depends on fails, prints one clear line and exits
non-zero: never a traceback. Real redis-servers, real (closed) ports, a real HTTP server
standing in for a broken STRIPE_API_BASE, real `membership` processes."""

from __future__ import annotations

import http.server
import threading

import pytest
from click.testing import CliRunner

from membership.cli import cli
from membership.store import Keys
from tests.support.processes import free_port, run_cli

KEYS = Keys()

# Every command that reaches Redis, with arguments that would otherwise succeed.
COMMANDS = [
    ["goals", "list"],
    ["goals", "list", "--json"],
    ["goals", "add", "100"],
    ["goals", "remove", "1"],
    ["members", "add", "reader@example.org", "--reason", "gift"],
    ["members", "remove", "reader@example.org", "--reason", "left"],
    ["members", "list"],
    ["events", "list"],
    ["events", "replay", "--failed"],
    ["stats"],
    ["audit", "list"],
    ["ledger", "rebuild"],
    ["sync"],
]


def _one_clear_line(result, *needles: str) -> str:
    """The run ended by a clean exit (not an exception), non-zero, with one line on stderr."""
    assert isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _run(args, env):
    return CliRunner().invoke(cli, args, env={"STRIPE_API_KEY": "sk_test_x", **env})


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_redis_unreachable(tmp_path, args):
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}", "MEMBERSHIP_DATA_DIR": str(tmp_path)}
    line = _one_clear_line(_run(args, env), "cannot reach Redis", "REDIS_URL")
    assert "Connection refused" in line


@pytest.mark.parametrize("args", [["goals", "list"], ["members", "list"], ["stats"]])
def test_data_dir_is_a_file(tmp_path, args):
    not_a_dir = tmp_path / "var"
    not_a_dir.write_text("a file, not a directory")
    _one_clear_line(_run(args, {"MEMBERSHIP_DATA_DIR": str(not_a_dir)}), "MEMBERSHIP_DATA_DIR")


def test_data_dir_cannot_be_created():
    env = {"MEMBERSHIP_DATA_DIR": "/proc/membership-cannot-be-here/var"}
    _one_clear_line(_run(["goals", "list"], env), "MEMBERSHIP_DATA_DIR", "/proc/")


def test_stripe_api_base_unreachable(env):
    env = {**env, "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"}
    _one_clear_line(
        _run(["sync"], env), "cannot reach Stripe's API", "STRIPE_API_BASE", "Connection refused"
    )


class _NotStripe(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>this is not Stripe</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_stripe_api_base_that_is_not_stripe(env):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotStripe)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        env = {**env, "STRIPE_API_BASE": f"http://127.0.0.1:{server.server_port}"}
        _one_clear_line(_run(["sync"], env), "Stripe's API at", "answered an error")
    finally:
        server.shutdown()
        server.server_close()


def test_a_corrupt_count_is_one_line(env, redis_client):
    redis_client.set(KEYS.member_count, "garbled")
    result = _run(["members", "add", "reader@example.org", "--reason", "gift"], env)
    _one_clear_line(result, "corrupt", "nothing was changed")
    assert redis_client.get(KEYS.member_count) == "garbled"


def test_a_rebuild_in_progress_is_one_line(env, redis_client):
    redis_client.set(KEYS.ledger_rebuild_lock, "another-rebuild", ex=60)
    result = _run(["members", "add", "reader@example.org", "--reason", "gift"], env)
    _one_clear_line(result, "busy", "try again")


def test_a_bug_still_shows_its_traceback(monkeypatch, env):
    """Only failures an operator can meet are turned into a line; a bug is not hidden."""
    from membership.ledger import queries

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(queries, "count", broken)
    result = _run(["goals", "list"], env)
    assert isinstance(result.exception, ZeroDivisionError)


def test_a_missing_file_outside_the_data_dir_is_a_bug_not_a_data_dir_problem(
    monkeypatch, env, tmp_path
):
    """Found in review: every OSError was "check MEMBERSHIP_DATA_DIR", so a bug that opened
    a wrong path (outside the data directory) lost its traceback and blamed the setting."""
    from membership.ledger import queries

    def broken(*args, **kwargs):
        open(tmp_path / "elsewhere" / "package-file.json")  # noqa: SIM115 - raises

    monkeypatch.setattr(queries, "count", broken)
    result = _run(["goals", "list"], env)
    assert isinstance(result.exception, FileNotFoundError), result.output


# --- As a new user meets it: a real process -------------------------------------------


def test_a_real_process_with_redis_down_prints_one_line(tmp_path):
    done = run_cli(tmp_path, "stats", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}"})
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: cannot reach Redis")


def test_the_embedded_redis_line_appears_only_with_verbose(tmp_path):
    quiet = run_cli(tmp_path / "var", "goals", "list")
    assert quiet.returncode == 0, quiet.stderr
    assert "embedded Redis" not in quiet.stderr
    assert quiet.stderr.strip() == ""
    loud = run_cli(tmp_path / "var", "--verbose", "goals", "list")
    assert loud.returncode == 0, loud.stderr
    assert "using embedded Redis" in loud.stderr
    assert quiet.stdout == loud.stdout
