"""Member recognition: a member is recognized on every device, by a signed token.

Pure, no I/O:

- `rules`     what a Checkout Session proves, who is a current member by the ledger's
              records, the endpoints' bodies and where a return_url may lead
- `messages`  the sign-in email and the link pages, in English and Ukrainian

With I/O:

- `links`     one-time sign-in codes in Redis (their hash only; single use by one Lua script)
- `outbox`    a bounded queue and a worker thread: sign-in's lookups and mail stay off the
              request's path, so a member's answer is neither different nor slower
- `stripe_calls`  the session, the Billing Portal, customers by email (membership.stripe.api)
- `service`   what each endpoint does (`Members`), every refusal an ApiError
- `http`      the blueprint: /v1/member/token, sign-in, verify, token/refresh, portal
"""
