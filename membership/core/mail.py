"""Sending one email through SMTP_URL (smtplib; no queue here, see members/outbox.py).

`smtps://` is TLS from the first byte; `smtp://` is upgraded with STARTTLS whenever the
server offers it, certificates verified against the system's CAs. Credentials are sent only
over TLS or to this host: a plain connection elsewhere (STARTTLS not offered, or stripped on
the way) is refused with MailError rather than hand the password to whoever listens. Every
socket operation has a timeout; any failure is MailError, naming the step, never the
password nor an email address (a server's reply may echo the recipient's).
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
from email.message import EmailMessage

from membership.core.config import SmtpTarget

TIMEOUT_SECONDS = 10.0
# Anything shaped like an address, also inside the repr of a server's reply in bytes.
_ADDRESS = re.compile(r"[^\s<>()\[\]'\",;:]+@[^\s<>()\[\]'\",;:]+")


class MailError(Exception):
    """The message was not accepted; the text says at which step (no credentials in it)."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def send(
    target: SmtpTarget,
    message: EmailMessage,
    *,
    timeout: float = TIMEOUT_SECONDS,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Deliver `message` (its From/To headers name the envelope) or raise MailError."""
    context = tls_context or ssl.create_default_context()
    step = "connect"
    try:
        if target.implicit_tls:
            smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=timeout)
        with smtp:
            step = "EHLO"
            smtp.ehlo()
            secure = target.implicit_tls
            if not secure and smtp.has_extn("starttls"):
                step = "STARTTLS"
                smtp.starttls(context=context)
                smtp.ehlo()
                secure = True
            if target.username is not None:
                if not secure and not _loopback(target.host):
                    raise MailError(
                        f"{target.host} offered no STARTTLS: credentials are not sent in clear"
                        " (use smtps:// or a server that offers STARTTLS)"
                    )
                step = "login"
                smtp.login(target.username, target.password or "")
            step = "send"
            smtp.send_message(message)
    except MailError:
        raise
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        # smtplib's messages hold the server's reply, never our password.
        raise MailError(
            f"SMTP {step} with {target.host}:{target.port} failed: {_without_addresses(exc)}"
        ) from None


def _without_addresses(exc: Exception) -> str:
    """The error's text with every email address in it replaced by `[address]`; a refused
    recipient by the server's codes alone."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _ in exc.recipients.values()})
        return f"the recipient was refused ({', '.join(codes)})"
    return _ADDRESS.sub("[address]", str(exc))
