"""Stripe Checkout from a prompt: `POST /v1/checkout` -> a Checkout Session URL
(docs/checkout-and-members.md).
"""
