"""Checkout, public URL and mail settings. Each bad value is one line naming it."""

from __future__ import annotations

import pytest

from membership.core.config import ConfigError, load_settings, parse_smtp_url

BASE = {"SECRET_KEY": "x" * 16}


def test_defaults():
    s = load_settings(BASE)
    assert s.stripe_prices == ()
    assert (
        s.checkout_success_url == "https://example.org/membership?session_id={CHECKOUT_SESSION_ID}"
    )
    assert s.checkout_cancel_url == "https://example.org/membership"
    assert (s.checkout_once_min, s.checkout_once_max) == (100, 100_000)
    assert s.checkout_currencies == ("eur",)
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.mail_from == "our newsroom <no-reply@localhost>"
    assert s.smtp_url is None
    assert s.rate_limit("checkout") == "20/minute"
    assert s.rate_limit("sign_in") == "30/hour"
    assert s.rate_limit("sign_in_email") == "5/hour"


def test_values_are_parsed():
    s = load_settings(
        {
            **BASE,
            "STRIPE_PRICES": " monthly=price_1Abc , yearly=plan_legacy-2024 ",
            "CHECKOUT_SUCCESS_URL": "https://news.example/thanks?s={CHECKOUT_SESSION_ID}",
            "CHECKOUT_CANCEL_URL": "https://news.example/join",
            "CHECKOUT_ONCE_MIN": "500",
            "CHECKOUT_ONCE_MAX": "500",
            "CHECKOUT_CURRENCIES": "EUR, usd,eur",
            "PUBLIC_URL": "https://members.news.example/",
            "MAIL_FROM": "Kyiv News <members@news.example>",
            "SMTP_URL": "smtp://user:p%40ss@mail.example:587",
        }
    )
    assert s.stripe_prices == (("monthly", "price_1Abc"), ("yearly", "plan_legacy-2024"))
    assert s.checkout_success_url == "https://news.example/thanks?s={CHECKOUT_SESSION_ID}"
    assert s.checkout_cancel_url == "https://news.example/join"
    assert (s.checkout_once_min, s.checkout_once_max) == (500, 500)
    assert s.checkout_currencies == ("eur", "usd")
    assert s.public_url == "https://members.news.example"
    assert s.mail_from == "Kyiv News <members@news.example>"
    target = parse_smtp_url(s.smtp_url)
    assert (target.host, target.port, target.implicit_tls) == ("mail.example", 587, False)
    assert (target.username, target.password) == ("user", "p@ss")
    assert parse_smtp_url("smtps://mail.example").port == 465


def test_the_default_success_url_follows_join_url_and_the_sender_the_name():
    s = load_settings({**BASE, "JOIN_URL": "https://n.example/join?x=1#top"})
    assert (
        s.checkout_success_url == "https://n.example/join?x=1&session_id={CHECKOUT_SESSION_ID}#top"
    )
    s = load_settings({**BASE, "PUBLICATION_NAME": "Новини, Київ"})
    assert s.mail_from == '"Новини, Київ" <no-reply@localhost>'


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("STRIPE_PRICES", "weekly=price_1", "unknown plan 'weekly'"),
        ("STRIPE_PRICES", "monthly", "expected plan=price_id pairs"),
        ("STRIPE_PRICES", "monthly=price_1,monthly=price_2", "expected plan=price_id pairs"),
        ("STRIPE_PRICES", "monthly=price 1", "expected plan=price_id pairs"),
        ("CHECKOUT_SUCCESS_URL", "https://news.example/thanks", "{CHECKOUT_SESSION_ID}"),
        ("CHECKOUT_SUCCESS_URL", "javascript:alert(1)//{CHECKOUT_SESSION_ID}", "http"),
        ("CHECKOUT_CANCEL_URL", "ftp://x", "expected an http:// or https:// URL"),
        ("CHECKOUT_ONCE_MIN", "0", "from 1 to 99999999"),
        ("CHECKOUT_ONCE_MAX", "100000000", "from 1 to 99999999"),
        ("CHECKOUT_ONCE_MIN", "ten", "whole number"),
        ("CHECKOUT_CURRENCIES", "euro", "ISO 4217"),
        ("PUBLIC_URL", "members.example", "expected an http:// or https:// URL"),
        ("MAIL_FROM", "nobody", "expected an address"),
        ("MAIL_FROM", "News <a@b.org>\r\nBcc: victim@x.org", "expected an address"),
        ("SMTP_URL", "http://mail.example", "expected smtp://"),
        ("SMTP_URL", "smtp://mail.example:25x", "numeric port"),
        ("SMTP_URL", "smtp://mail.example/path", "no path"),
        ("RATE_LIMIT_SIGN_IN_EMAIL", "lots", "expected"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(name, value, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and expected in message and "\n" not in message


def test_the_largest_contribution_cannot_be_below_the_smallest():
    with pytest.raises(
        ConfigError, match=r"^CHECKOUT_ONCE_MAX: expected at least CHECKOUT_ONCE_MIN"
    ):
        load_settings({**BASE, "CHECKOUT_ONCE_MIN": "5000", "CHECKOUT_ONCE_MAX": "1000"})
