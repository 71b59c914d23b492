"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), whose inbox the test reads.

`SmtpServer()` is plain SMTP; `tls="starttls"` offers STARTTLS, `tls="implicit"` speaks TLS
from the first byte (smtps). The certificate is a throwaway one made with `cryptography`
for localhost and 127.0.0.1; `client_context()` trusts it. `auth` = (user, password)
makes AUTH required (after TLS, as aiosmtpd insists by default).
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
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
    """A throwaway self-signed certificate for localhost and 127.0.0.1, good for a day (made
    with `cryptography`, not the openssl command, which a fresh machine may not have)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


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
