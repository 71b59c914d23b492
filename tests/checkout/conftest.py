"""Checkout fixtures: an app whose Stripe is the fake one with prices (priced_stripe)."""

from __future__ import annotations

import pytest

from tests.support.fake_stripe import STRIPE_KEY

SITE = "https://news.example"  # the one origin the checkout apps allow


@pytest.fixture
def checkout_app(make_app, priced_stripe):
    """make_app for checkout: priced_stripe's key and address, the monthly plan, SITE
    allowed, no rate limit on POST /v1/checkout; keyword settings override these."""

    def make(**overrides):
        config = {
            "stripe_api_key": STRIPE_KEY,
            "stripe_api_base": priced_stripe.url,
            "stripe_prices": (("monthly", "price_monthly"),),
            "allowed_origins": (SITE,),
            "rate_limit_checkout": "off",
        }
        return make_app(**{**config, **overrides})

    return make
