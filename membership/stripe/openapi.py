"""The OpenAPI piece of the Stripe webhook, and the answers of endpoints that call Stripe."""

from __future__ import annotations

from membership.core.openapi import answer, error, json_body, obj, retry_later, too_large

STRIPE_FAILED = "Stripe refused or failed, or answered what it should not"
# Every endpoint that calls Stripe: what its slowness looks like.
STRIPE_TIMEOUT = {"504": error("Stripe did not answer in time (the whole answer within 10 s)")}

OPENAPI = {
    "/webhooks/stripe": {
        "post": {
            "summary": "Stripe webhook: verified, applied to the member ledger exactly once",
            "parameters": [
                {
                    "name": "Stripe-Signature",
                    "in": "header",
                    "required": True,
                    "description": "t=<unix time>,v1=<HMAC-SHA256 of t.body>, as Stripe signs",
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "requestBody": json_body({"type": "object"}),
            "responses": {
                "200": answer(
                    "Applied, stale, duplicate or ignored",
                    obj(
                        {
                            "id": {"type": "string"},
                            "outcome": {
                                "type": "string",
                                "enum": ["applied", "stale", "duplicate", "ignored"],
                            },
                        },
                        required=(),
                    ),
                ),
                "400": error(
                    "Missing, forged or stale signature; not UTF-8 JSON; not an event; created "
                    "after it was signed; a value Stripe never sends (nothing stored)"
                ),
                "413": too_large("1 MiB"),
                "500": error("The event could not be applied whole; logged as failed for replay"),
                "503": retry_later(
                    "Redis unreachable, no webhook secret configured, the ledger busy or "
                    "rebuilding, or a stored record corrupt (nothing recorded)"
                ),
            },
        }
    }
}
