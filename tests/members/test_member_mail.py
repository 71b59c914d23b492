"""membership.core.mail against a real local SMTP server (aiosmtpd): plain, STARTTLS, smtps, AUTH,
and the sign-in email's words in both languages."""

from __future__ import annotations

import socket
import threading

import pytest

from membership.core.config import parse_smtp_url
from membership.core.mail import MailError, send
from membership.members.messages import sign_in_mail
from tests.support.smtp_server import SmtpServer, free_port

LINK = "https://members.example/v1/member/verify?code=" + "A" * 43


def _message(locale: str = "en", to: str = "reader@example.org"):
    return sign_in_mail(
        locale=locale,
        to=to,
        link=LINK,
        publication="Kyiv Independent",
        mail_from="Kyiv Independent <no-reply@members.example>",
        link_seconds=900,
    )


@pytest.fixture
def smtp(tmp_path):
    servers = []

    def start(**kwargs) -> SmtpServer:
        server = SmtpServer(tmp_path, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_plain_smtp_delivers_the_english_email(smtp):
    server = smtp()
    send(parse_smtp_url(server.url()), _message("en"))
    [(sender, recipients, message)] = server.wait_for(1)
    assert sender == "no-reply@members.example"
    assert recipients == ["reader@example.org"]
    assert message["Subject"] == "Your sign-in link for Kyiv Independent"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    assert LINK in body
    assert "within 15 minutes" in body
    assert server.inbox.tls_seen == [False]


def test_the_ukrainian_email(smtp):
    server = smtp()
    send(parse_smtp_url(server.url()), _message("uk"))
    [(_, _, message)] = server.wait_for(1)
    assert message["Subject"] == "Посилання для входу — Kyiv Independent"
    body = message.get_content()
    assert LINK in body
    assert "упродовж 15 хв" in body


def test_starttls_is_used_when_offered_and_credentials_go_over_it(smtp):
    server = smtp(tls="starttls", auth=("mailer", "p@ss word"))
    target = parse_smtp_url(server.url("mailer", "p%40ss%20word"))
    send(target, _message(), tls_context=server.client_context())
    server.wait_for(1)
    assert server.inbox.tls_seen == [True]
    assert server.logins == [("mailer", "p@ss word")]


def test_smtps_speaks_tls_from_the_first_byte(smtp):
    server = smtp(tls="implicit")
    send(parse_smtp_url(server.url()), _message(), tls_context=server.client_context())
    server.wait_for(1)
    assert server.inbox.tls_seen == [True]


def test_a_certificate_we_do_not_trust_is_refused(smtp):
    server = smtp(tls="starttls")
    with pytest.raises(MailError, match="STARTTLS"):
        send(parse_smtp_url(server.url()), _message())  # the system's CAs only
    assert server.messages() == []


def test_credentials_are_not_sent_in_clear_to_another_host(smtp, monkeypatch):
    server = smtp()  # no STARTTLS on offer
    target = parse_smtp_url(f"smtp://mailer:secret@mail.example:{server.port}")
    # Reach the local server under a name that is not this host's.
    real = socket.create_connection
    monkeypatch.setattr(
        socket, "create_connection", lambda address, *a, **k: real(("127.0.0.1", address[1]), *a)
    )
    with pytest.raises(MailError, match="credentials are not sent in clear") as failure:
        send(target, _message())
    assert "secret" not in str(failure.value)
    assert server.messages() == []


def test_credentials_in_clear_to_this_host_are_allowed(smtp):
    server = smtp()
    # aiosmtpd refuses AUTH without TLS: the login is tried (in clear, loopback) and refused.
    with pytest.raises(MailError, match="login"):
        send(parse_smtp_url(server.url("mailer", "secret")), _message())


def test_nothing_listening_is_a_mail_error():
    target = parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(MailError, match="connect"):
        send(target, _message())


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        target = parse_smtp_url(f"smtp://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(MailError, match="timed out"):
            send(target, _message(), timeout=0.3)
    finally:
        listener.close()


def test_a_refused_recipient_is_not_named_in_the_error(tmp_path):
    """MailError's text is logged (`a sign-in link was not mailed: ...`): a server that
    refuses the recipient, or echoes the address in its reply, must not put it in the log."""
    from aiosmtpd.controller import Controller

    class Refusing:
        def __init__(self, at: str) -> None:
            self.at = at

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if self.at == "RCPT":
                return f"550 5.1.1 <{address}>: Recipient address rejected"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            return f"554 5.7.1 message to {envelope.rcpt_tos[0]} refused"

    for at in ("RCPT", "DATA"):
        port = free_port()
        controller = Controller(Refusing(at), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            with pytest.raises(MailError) as raised:
                send(parse_smtp_url(f"smtp://127.0.0.1:{port}"), _message(to="olena@example.org"))
        finally:
            controller.stop()
        text = str(raised.value)
        assert "olena" not in text.lower() and "example.org" not in text, text
        assert ("550" if at == "RCPT" else "554") in text, text
