"""Outbound calls to Stripe's API, through one explicit StripeClient.

Only `membership sync` calls Stripe; webhooks need no API key.
"""

from __future__ import annotations

from collections.abc import Iterator

from stripe import StripeClient

from membership.config import ConfigError, Settings


def make_client(settings: Settings) -> StripeClient:
    if not settings.stripe_api_key:
        raise ConfigError("STRIPE_API_KEY: expected an sk_... or rk_... key to call the Stripe API")
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    return StripeClient(settings.stripe_api_key, base_addresses=base, max_network_retries=3)


def iter_subscriptions(client: StripeClient, page_size: int = 100) -> Iterator[dict]:
    """Every subscription in the account, whatever its status, with its customer expanded.

    Yields plain dicts in the same shape webhook events carry, so the ledger
    reads a listed subscription exactly as it reads an event's object.
    """
    first = client.v1.subscriptions.list(
        params={"status": "all", "limit": page_size, "expand": ["data.customer"]}
    )
    for subscription in first.auto_paging_iter():
        yield subscription.to_dict(recursive=True)
