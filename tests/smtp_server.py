"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), whose inbox the test reads.

`SmtpServer()` is plain SMTP; `tls="starttls"` offers STARTTLS, `tls="implicit"` speaks TLS
from the first byte (smtps). The certificate is a throwaway one made with the openssl
command for localhost and 127.0.0.1; `client_context()` trusts it. `auth` = (user, password)
makes AUTH required (after TLS, as aiosmtpd insists by default).
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.arrived = threading.Condition()
        self.tls_seen: list[bool] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.arrived:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.tls_seen.append(server.transport.get_extra_info("ssl_object") is not None)
            self.arrived.notify_all()
        return "250 OK"


class SmtpServer:
    def __init__(
        self,
        directory: Path,
        tls: str | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.inbox = _Inbox()
        self.port = free_port()
        self.cert: Path | None = None
        kwargs: dict = {}
        if tls is not None:
            self.cert, key = make_certificate(directory)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            kwargs["ssl_context" if tls == "implicit" else "tls_context"] = context
        self.logins: list[tuple[str, str]] = []
        if auth is not None:
            kwargs.update(authenticator=self._authenticator(auth), auth_required=True)
        self.tls = tls
        self._controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, server_hostname="localhost", **kwargs
        )

    def _authenticator(self, expected: tuple[str, str]):
        def check(server, session, envelope, mechanism, auth_data):
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False)
            given = (auth_data.login.decode(), auth_data.password.decode())
            self.logins.append(given)
            return AuthResult(success=given == expected)

        return check

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        credentials = f"{user}:{password}@" if user else ""
        return f"{scheme}://{credentials}localhost:{self.port}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert)) if self.cert else None

    def messages(self) -> list[tuple[str, list[str], EmailMessage]]:
        with self.inbox.arrived:
            return list(self.inbox.messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list:
        with self.inbox.arrived:
            self.inbox.arrived.wait_for(lambda: len(self.inbox.messages) >= count, timeout)
            return list(self.inbox.messages)
