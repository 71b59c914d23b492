"""Paywall prompts: which reader sees which ask.

The pure core, no I/O (no Redis, no Flask, no clock: every function takes `now`):

- `campaigns`  the campaign document: validation (marshmallow) into frozen dataclasses,
               `parse`, `parse_list` and `to_json` (a round trip)
- `request`    the `POST /v1/prompt` body: one msgspec Struct, decoded and validated into a
               frozen `PromptRequest` (and the OpenAPI component generated from it)
- `filters`    the named filters in their fixed order, compiled per campaign (when the
               snapshot reads them) into the checks that can fail, and `decide`: the prompts
               per placement, the holdout and, from the same checks, a debug trace per campaign
- `assign`     sticky assignment: hash(reader, campaign) -> bucket 0-9999 -> holdout or variant
- `errors`     marshmallow messages as `path: message` lines (`variants[1].copy.uk.headline`)

- `tokens`     signed decision and member tokens (HMAC-SHA256 with SECRET_KEY)
- `render`     a decision -> the `/v1/prompt` answer (copy per locale, banner data, tokens)
- `results`    the results of a campaign: rates, Wilson intervals, lift, verdicts

With I/O:

- `store`      campaigns in Redis (apply all or nothing, pause/resume/archive, export),
               audited in the same transaction
- `snapshot`   the live campaigns and the banner data in process memory, refreshed by a
               thread, so a decision sends no Redis command
- `counts`     prompt events in Redis: one Lua script a call, counted once per token and type
- `http`       `POST /v1/prompt`;  `event_api`  `POST /v1/prompt/events`
"""
