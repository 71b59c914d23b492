"""What docker-compose.yml, the Dockerfile, .dockerignore and deploy/ promise.

No Docker engine runs here, so the files are read; and the real tools that run without one
are run: nginx (Debian's package, which scripts/test.sh installs) with deploy/'s own
configurations in front of a real `membership serve`, and, where the docker CLI is
installed, its own packing of the build context, sent to a stand-in for the engine.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import yaml

from tests.support.processes import ServiceProcess, free_port, wait_until
from tests.support.raw_http import parse_answer
from tests.support.smtp_server import make_certificate

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


class Override(list):
    """A list Compose replaces instead of appending to (`!override`)."""


class _ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: `!override` and `!reset` are its merge tags."""


_ComposeLoader.add_constructor(
    "!override", lambda loader, node: Override(loader.construct_sequence(node))
)
_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def _compose(name: str) -> dict:
    return yaml.load((REPO / name).read_text(), Loader=_ComposeLoader)


COMPOSE = _compose("docker-compose.yml")
LOCAL_HTTP = _compose("docker-compose.local-http.yml")
PINNED = re.compile(r"^[a-z0-9./-]+:v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$")


# --- docker-compose.yml ---------------------------------------------------------------
def test_redis_7_with_aof_everysec_on_a_named_volume():
    redis = COMPOSE["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    volume = redis["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]
    assert "healthcheck" in redis


def test_app_points_at_that_redis_and_waits_for_it():
    app = COMPOSE["services"]["app"]
    assert app["build"] == "."
    assert app["environment"]["REDIS_URL"].startswith("redis://redis:6379")
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"


def test_every_image_is_pinned_to_an_exact_version():
    images = [s["image"] for s in COMPOSE["services"].values() if "image" in s]
    stages = {args.split()[-1] for args in _from_lines() if " AS " in args.upper()}
    images += [args.split()[0] for args in _from_lines() if args.split()[0] not in stages]
    assert len(images) >= 5
    floating = [image for image in images if not PINNED.match(image)]
    assert floating == []


def test_health_checks_wait_out_start_up_and_the_app_s_is_liveness_not_readiness():
    services = COMPOSE["services"]
    checked = {name for name, service in services.items() if "healthcheck" in service}
    assert checked == {"redis", "app", "proxy"}
    for name in checked:
        check = services[name]["healthcheck"]
        assert check["start_period"].endswith("s"), name
        assert int(check["start_period"][:-1]) >= 10, name
    # A Redis blip must not mark the app unhealthy while it still serves the banner.
    app_check = " ".join(services["app"]["healthcheck"]["test"])
    assert "/healthz" in app_check
    assert "/readyz" not in app_check
    # The proxy's check asks nginx itself (its health listener), not the app through it.
    proxy_check = " ".join(services["proxy"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8081/healthz" in proxy_check
    assert "listen 127.0.0.1:8081;" in (DEPLOY / "nginx" / "proxy.conf").read_text()


def test_stripe_listen_forwards_to_the_webhook_endpoint():
    stripe = COMPOSE["services"]["stripe-cli"]
    assert "stripe" in stripe["profiles"]
    assert "--forward-to" in stripe["command"]
    assert "app:8000/webhooks/stripe" in " ".join(stripe["command"])


def test_production_publishes_https_and_an_http_redirect_only():
    proxy = COMPOSE["services"]["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert sorted(proxy["ports"]) == ["443:8443", "80:8080"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert "./deploy/nginx:/etc/nginx/membership:ro" in proxy["volumes"]
    assert "${TLS_CERT_DIR:-./deploy/tls}:/etc/nginx/tls:ro" in proxy["volumes"]
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"
    app = COMPOSE["services"]["app"]
    assert "ports" not in app  # reached only through the proxy
    assert app["expose"] == ["8000"]
    assert app["init"] is True
    assert "STAFF_INSECURE_COOKIES" not in app["environment"]  # Secure cookies, over https
    # Port 8080 of the production config is one server that redirects, and nothing else.
    plain = _server_blocks((DEPLOY / "nginx.conf").read_text())["8080"]
    assert re.fullmatch(
        r"\s*listen 8080 default_server;\s*return 301 https://\$host\$request_uri;\s*", plain
    )


def test_the_local_http_form_replaces_the_proxy_config_and_ports_and_loosens_the_cookies():
    from membership.core.config import load_settings

    proxy = LOCAL_HTTP["services"]["proxy"]
    # Replaced, not added to: the production ports and config would otherwise stay.
    assert isinstance(proxy["ports"], Override)
    assert proxy["ports"] == ["127.0.0.1:8000:8080"]
    assert isinstance(proxy["volumes"], Override)
    assert "./deploy/nginx-local-http.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert "./deploy/nginx:/etc/nginx/membership:ro" in proxy["volumes"]
    environment = LOCAL_HTTP["services"]["app"]["environment"]
    assert load_settings(environment).staff_insecure_cookies is True


def test_the_app_trusts_exactly_the_one_proxy_in_front_for_client_addresses():
    from membership.core.config import load_settings

    environment = COMPOSE["services"]["app"]["environment"]
    assert environment["TRUSTED_PROXY_HOPS"] == "1"
    # the value is one the app's settings accept
    assert (
        load_settings({"TRUSTED_PROXY_HOPS": environment["TRUSTED_PROXY_HOPS"]}).trusted_proxy_hops
        == 1
    )


def test_the_worker_count_is_a_setting():
    assert COMPOSE["services"]["app"]["environment"]["MEMBERSHIP_WORKERS"] == (
        "${MEMBERSHIP_WORKERS:-4}"
    )
    final = _stages()[-1]
    assert ("ENV", "MEMBERSHIP_WORKERS=4") in final
    (command,) = [args for keyword, args in final if keyword == "CMD"]
    assert json.loads(command) == ["membership", "serve", "--host", "0.0.0.0", "--port", "8000"]


# --- Dockerfile and .dockerignore ------------------------------------------------------
def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each Dockerfile instruction, continuation lines joined."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, rest = (current + stripped).partition(" ")
        out.append((keyword.upper(), " ".join(rest.split())))
        current = ""
    return out


DOCKERFILE = _instructions((REPO / "Dockerfile").read_text())


def _from_lines() -> list[str]:
    return [args for keyword, args in DOCKERFILE if keyword == "FROM"]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in DOCKERFILE:
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args))
    return stages


def _context_copies() -> list[str]:
    """What the COPY instructions take from the build context (not from another stage)."""
    sources = []
    for keyword, args in DOCKERFILE:
        if keyword == "COPY" and "--from=" not in args:
            sources += args.split()[:-1]
    return sources


def test_dependencies_install_from_pyproject_alone_before_the_sources_are_copied():
    sequence = [(keyword, args) for keyword, args in DOCKERFILE if keyword in {"COPY", "RUN"}]
    copies = [i for i, (keyword, _) in enumerate(sequence) if keyword == "COPY"]
    first_copy = sequence[copies[0]]
    assert first_copy == ("COPY", "pyproject.toml ./")  # the layer changes with it alone
    installs = [
        i for i, (k, args) in enumerate(sequence) if k == "RUN" and "pip install -r" in args
    ]
    sources = [i for i, (k, args) in enumerate(sequence) if k == "COPY" and "membership" in args]
    assert copies[0] < installs[0] < copies[1] <= sources[0]
    # That install is of the project's dependencies, read from pyproject.toml.
    (writer,) = [args for k, args in DOCKERFILE if k == "RUN" and "> requirements.txt" in args]
    command = writer.split(" && ")[0]
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy(REPO / "pyproject.toml", directory)
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        subprocess.run(
            ["sh", "-c", command], cwd=directory, env={**os.environ, "PATH": path}, check=True
        )
        written = (Path(directory) / "requirements.txt").read_text().splitlines()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert written == project["dependencies"]


def test_the_image_keeps_no_sources_build_tree_or_wheel():
    final = _stages()[-1]
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert copies == ["--from=deps /opt/membership /opt/membership"]
    (install,) = [args for keyword, args in final if keyword == "RUN" and "pip install" in args]
    assert install.startswith("--mount=type=bind,from=wheel,source=/wheels,target=/wheels ")
    assert "--no-deps" in install
    assert not any(keyword == "WORKDIR" for keyword, _ in final)


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_is_only_what_the_dockerfile_copies():
    rules = _dockerignore()
    assert rules[0] == "*"  # everything out (.venv, build/, var/, .git, tests, caches...)
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "membership"}
    assert allowed == {source.rstrip("/") for source in _context_copies()}
    assert "**/__pycache__" in rules  # and no bytecode from a developer's tree
    later = rules[rules.index("!membership/") + 1 :]
    assert not any(rule.startswith("!") for rule in later)


class _FakeEngine(socketserver.UnixStreamServer):
    """Just enough of the Docker Engine API for `docker build` to send its context here."""

    def __init__(self, path: str) -> None:
        self.context: bytes | None = None
        super().__init__(path, _FakeEngineHandler)


class _FakeEngineHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args) -> None:
        pass

    def _answer(self, body: bytes = b"OK", content_type: str = "text/plain") -> None:
        self.send_response(200)
        self.send_header("API-Version", "1.47")
        self.send_header("OSType", "linux")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        if "/build" not in self.path:
            return self._answer()
        data = io.BytesIO()
        if self.headers.get("Transfer-Encoding") == "chunked":
            while size := int(self.rfile.readline().strip(), 16):
                data.write(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
        else:
            data.write(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.context = data.getvalue()
        self._answer(b'{"error":"recorded, not built"}\n', "application/json")


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_the_docker_cli_sends_only_that_context(tmp_path):
    engine = _FakeEngine(str(tmp_path / "engine.sock"))
    thread = threading.Thread(target=engine.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{tmp_path / 'engine.sock'}",
            "DOCKER_BUILDKIT": "0",  # the classic builder packs the context in the CLI
            "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        }
        cli = subprocess.run(
            ["docker", "build", "-q", "."],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        engine.shutdown()
        engine.server_close()
    if engine.context is None:
        pytest.skip(f"this docker CLI did not send a classic build context: {cli.stderr[-500:]}")
    with tarfile.open(fileobj=io.BytesIO(engine.context)) as context:
        names = context.getnames()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "membership"}
    assert "membership/__init__.py" in names
    assert "membership/templates/staff/login.html" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert len(engine.context) < 5_000_000


# --- nginx, for real, in front of `membership serve` -----------------------------------
def _server_blocks(config: str) -> dict[str, str]:
    """The body of each top-level `server { ... }` in `config`, by its first listen port."""
    blocks = {}
    for match in re.finditer(r"\n    server \{\n(.*?)\n    \}\n", config, re.S):
        body = re.sub(r"#[^\n]*", "", match.group(1))
        port = re.search(r"listen (?:[\d.]+:)?(\d+)", body).group(1)
        blocks[port] = body
    return blocks


def _swap(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/ no longer has {old!r}: update this test's rendering"
    return text.replace(old, new)


class Nginx:
    """Debian's nginx running deploy/`main` and deploy/nginx/*.conf as they are, on free
    127.0.0.1 ports, with only what the container provides swapped in: the app's address,
    the certificate, and nginx's own writable files."""

    def __init__(self, directory: Path, main: str, app_port: int, certificate=None) -> None:
        self.dir = directory
        (directory / "membership").mkdir(parents=True)
        self.http_port, self.https_port, self.health_port = free_port(), free_port(), free_port()
        config = (DEPLOY / main).read_text()
        config = _swap(config, "listen 8080 ", f"listen 127.0.0.1:{self.http_port} ")
        if certificate is not None:
            cert, key = certificate
            config = _swap(config, "listen 8443 ", f"listen 127.0.0.1:{self.https_port} ")
            config = _swap(config, "/etc/nginx/tls/fullchain.pem", str(cert))
            config = _swap(config, "/etc/nginx/tls/privkey.pem", str(key))
        (directory / "nginx.conf").write_text(config)
        proxy = (DEPLOY / "nginx" / "proxy.conf").read_text()
        proxy = _swap(proxy, "server app:8000;", f"server 127.0.0.1:{app_port};")
        proxy = _swap(proxy, "listen 127.0.0.1:8081;", f"listen 127.0.0.1:{self.health_port};")
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            proxy += f"{kind}_temp_path {directory / kind};\n"
        (directory / "membership" / "proxy.conf").write_text(proxy)
        shutil.copy(DEPLOY / "nginx" / "app.conf", directory / "membership" / "app.conf")
        self.process: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        return [
            NGINX,
            "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
            "-e", str(self.dir / "error.log"),
            "-g", f"daemon off; pid {self.dir / 'nginx.pid'};", *extra,
        ]  # fmt: skip

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> Nginx:
        self.process = subprocess.Popen(self.command(), start_new_session=True)
        wait_until(self._answers, 15, f"nginx on {self.health_port}")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError((self.dir / "error.log").read_text()[-2000:])
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.health_port), timeout=1).close()
            return True
        return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class EnvConfiguredService(ServiceProcess):
    """`membership serve` as the image runs it: the worker count from MEMBERSHIP_WORKERS."""

    def command(self) -> list[str]:
        return ["-m", "membership.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]


STAFF_EMAIL = "editor-in-chief@example.org"
ADMIN = ("--role", "admin", "--password-stdin")


@pytest.fixture(scope="module")
def stack(redis_single):
    if NGINX is None:
        pytest.skip("nginx is not installed (scripts/test.sh installs Debian's package)")
    # Not under pytest's 0700 tmp: nginx's workers run as an unprivileged user when root.
    directory = Path(tempfile.mkdtemp(prefix="membership-nginx-"))
    directory.chmod(0o755)
    certificate = make_certificate(directory)
    env = {
        "REDIS_URL": redis_single.url,
        "MEMBERSHIP_DATA_DIR": str(directory / "var"),
        "SECRET_KEY": "compose-test-secret-key-0123456789",
        "TRUSTED_PROXY_HOPS": "1",
        "MEMBERSHIP_WORKERS": "3",
    }
    password = "a long passphrase nobody guesses " + os.urandom(6).hex()
    service = EnvConfiguredService(env).start()
    proxies = []
    try:
        added = subprocess.run(
            [sys.executable, "-m", "membership.cli", "staff", "add", STAFF_EMAIL, *ADMIN],
            input=password + "\n",
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        tls = Nginx(directory / "tls", "nginx.conf", service.port, certificate)
        local = Nginx(directory / "local", "nginx-local-http.conf", service.port)
        unreachable = Nginx(directory / "unreachable", "nginx-local-http.conf", free_port())
        proxies = [tls, local, unreachable]
        for proxy in proxies:
            proxy.start()
        yield SimpleNamespace(
            service=service,
            tls=tls,
            local=local,
            unreachable=unreachable,
            certificate=str(certificate[0]),
            password=password,
        )
    finally:
        for proxy in proxies:
            proxy.stop()
        service.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _exchange(port: int, data: bytes, certificate: Path | None = None):
    """One raw request; the answer's status, headers (lower-cased) and body. The server may
    answer and close before it has taken the whole body."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        sock = raw
        if certificate is not None:
            context = ssl.create_default_context(cafile=str(certificate))
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            sock.sendall(data)
        answer = b""
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):
            while chunk := sock.recv(65536):
                answer += chunk
    return parse_answer(answer)


def _oversize(chunked: bool, path: str = "/webhooks/stripe", origin: str = "") -> bytes:
    body = b"{" + b" " * (1024 * 1024) + b"}"  # one byte over 1 MiB
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path.encode()
    head += b"Content-Type: application/json\r\n"
    if origin:
        head += b"Origin: %s\r\n" % origin.encode()
    if not chunked:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536])
        for i in range(0, len(body), 65536)
    )
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


@pytest.mark.slow
def test_nginx_accepts_both_configurations(stack):
    for proxy in (stack.tls, stack.local):
        checked = proxy.check()
        assert checked.returncode == 0, checked.stderr
        assert "test is successful" in checked.stderr


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["declared length", "chunked"])
def test_an_oversize_body_gets_the_app_s_json_error_not_nginx_s_page(stack, chunked):
    status, headers, body = _exchange(stack.service.port, _oversize(chunked))
    assert status == 413
    app_answer = json.loads(body)
    assert app_answer["error"]["code"] == "request_entity_too_large"
    for port, certificate in (
        (stack.tls.https_port, stack.certificate),
        (stack.local.http_port, None),
    ):
        status, headers, body = _exchange(port, _oversize(chunked), certificate)
        assert status == 413
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == app_answer
        assert "x-request-id" not in headers  # nginx's own answer: the app never saw it


@pytest.mark.slow
def test_the_app_s_own_errors_pass_through_and_nginx_s_are_json_too(stack):
    https = f"https://127.0.0.1:{stack.tls.https_port}"
    missing = requests.get(https + "/no-such-page", verify=stack.certificate, timeout=10)
    assert missing.status_code == 404
    assert missing.headers["X-Request-ID"]  # the app's answer, untouched
    metrics = requests.get(https + "/metrics", verify=stack.certificate, timeout=10)
    assert metrics.status_code == 404
    assert metrics.headers["Content-Type"] == "application/json"
    expected = missing.json()["error"]["message"].replace("/no-such-page", "/metrics")
    assert metrics.json() == {"error": {"code": "not_found", "message": expected}}
    # The app down (nothing on the upstream port): JSON, not nginx's "Bad Gateway" page.
    gone = requests.get(f"http://127.0.0.1:{stack.unreachable.http_port}/v1/banner", timeout=10)
    assert gone.status_code == 502
    assert gone.headers["Content-Type"] == "application/json"
    assert gone.json()["error"]["code"] == "bad_gateway"


SITE = "https://news.example"  # a news site's page: not in the service's ALLOWED_ORIGINS here


@pytest.mark.slow
def test_nginx_s_own_errors_on_the_public_api_let_the_site_s_script_read_them(stack):
    """A 413 or 502 nginx answers itself on /v1/ carries Access-Control-Allow-Origin, or the
    page's script sees an opaque network error instead of the status."""
    for port, certificate in (
        (stack.tls.https_port, stack.certificate),
        (stack.local.http_port, None),
    ):
        status, headers, body = _exchange(port, _oversize(False, "/v1/prompt", SITE), certificate)
        assert status == 413 and json.loads(body)["error"]["code"] == "request_entity_too_large"
        assert headers["access-control-allow-origin"] == "*"
    _, headers, _ = _exchange(
        stack.tls.https_port, _oversize(True, "/v1/prompt", SITE), stack.certificate
    )
    assert headers["access-control-allow-origin"] == "*"
    assert headers["strict-transport-security"] == "max-age=63072000"  # kept beside it
    down = f"http://127.0.0.1:{stack.unreachable.http_port}"
    for method, path in (("GET", "/v1/banner"), ("POST", "/v1/prompt")):
        gone = requests.request(method, down + path, headers={"Origin": SITE}, timeout=10)
        assert gone.status_code == 502 and gone.json()["error"]["code"] == "bad_gateway"
        assert gone.headers["Access-Control-Allow-Origin"] == "*"
    # Not the public API: nginx's errors there say nothing of CORS.
    _, headers, _ = _exchange(stack.local.http_port, _oversize(False, origin=SITE))
    assert "access-control-allow-origin" not in headers
    # The app's own answers keep the app's CORS (this origin is not allowed: none).
    banner = requests.get(
        f"http://127.0.0.1:{stack.local.http_port}/v1/banner", headers={"Origin": SITE}, timeout=10
    )
    assert banner.headers["X-Request-ID"] and "Access-Control-Allow-Origin" not in banner.headers


@pytest.mark.slow
def test_plain_http_only_redirects_to_https(stack):
    http = f"http://127.0.0.1:{stack.tls.http_port}"
    for method, path in (("GET", "/v1/banner"), ("GET", "/staff/login"), ("POST", "/staff/login")):
        answer = requests.request(method, http + path, allow_redirects=False, timeout=10)
        assert answer.status_code == 301
        assert answer.headers["Location"] == f"https://127.0.0.1{path}"
        assert "X-Request-ID" not in answer.headers  # never forwarded to the app
        assert "Set-Cookie" not in answer.headers


@pytest.mark.slow
def test_every_https_answer_carries_hsts(stack):
    https = f"https://127.0.0.1:{stack.tls.https_port}"
    for path, status in (("/healthz", 200), ("/no-such-page", 404), ("/metrics", 404)):
        answer = requests.get(https + path, verify=stack.certificate, timeout=10)
        assert answer.status_code == status
        assert answer.headers["Strict-Transport-Security"] == "max-age=63072000"
    _, headers, _ = _exchange(stack.tls.https_port, _oversize(False), stack.certificate)
    assert headers["strict-transport-security"] == "max-age=63072000"


@pytest.mark.slow
def test_the_proxy_health_check_is_nginx_s_own(stack):
    answer = requests.get(f"http://127.0.0.1:{stack.tls.health_port}/healthz", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert "X-Request-ID" not in answer.headers
    gone = requests.get(f"http://127.0.0.1:{stack.unreachable.health_port}/healthz", timeout=10)
    assert gone.status_code == 200  # up, though its app is not: restarting nginx would not help


def _sign_in(base: str, verify, password: str) -> requests.Response:
    session = requests.Session()  # its verify= would lose to REQUESTS_CA_BUNDLE: per request
    page = session.get(base + "/staff/login", verify=verify, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        base + "/staff/login",
        data={"email": STAFF_EMAIL, "password": password, "csrf_token": token},
        allow_redirects=False,
        verify=verify,
        timeout=30,
    )
    if answer.status_code == 303:
        home = session.get(base + "/staff/", allow_redirects=False, verify=verify, timeout=10)
        assert home.status_code == 200
    return answer


@pytest.mark.slow
def test_the_dashboard_signs_in_over_https_and_not_over_plain_http(stack):
    # The staff cookies are Secure: a client that is not on https does not send them back.
    plain = _sign_in(f"http://127.0.0.1:{stack.local.http_port}", True, stack.password)
    assert plain.status_code == 400
    assert "The CSRF session token is missing" in plain.text
    secure = _sign_in(
        f"https://127.0.0.1:{stack.tls.https_port}", stack.certificate, stack.password
    )
    assert secure.status_code == 303


@pytest.mark.slow
def test_the_worker_count_comes_from_membership_workers(stack):
    # 3, not serve's default of 2: the CMD passes no --workers, the image sets the variable.
    wait_until(lambda: len(stack.service.worker_pids()) == 3, 30, "3 workers")
