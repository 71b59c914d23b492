"""Paywall prompts: which reader sees which ask (docs/prompts.md).

Pure, no I/O (every function takes `now`): `campaigns` (the campaign document, validated
into frozen dataclasses), `request` (the one parser of the `POST /v1/prompt` body),
`filters` (the filters compiled per campaign, and `decide`, the one decider with its debug
trace), `assign` (sticky assignment), `errors` (`path: message` lines), `tokens` (signed
decision and member tokens), `render` (a decision -> the answer), `results` (a campaign's
rates, intervals, lift and verdicts).

With I/O: `store` (campaigns in Redis, audited), `snapshot` (the live campaigns and banner
data in process memory), `counts` (prompt events in Redis), `conversions` (the ledger's hook
that credits a paid checkout), `http` (`POST /v1/prompt`), `event_api`
(`POST /v1/prompt/events`), `openapi` (their piece of the document).
"""
