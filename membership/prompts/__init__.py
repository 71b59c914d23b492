"""Paywall prompts: which reader sees which ask (issue 9).

The pure core, no I/O (no Redis, no Flask, no clock: every function takes `now`):

- `campaigns`  the campaign document: validation (marshmallow) into frozen dataclasses,
               `parse`, `parse_list` and `to_json` (a round trip)
- `request`    the `POST /v1/prompt` body: validation into a frozen `PromptRequest`
- `filters`    the named filters in their fixed order, and `decide`: the prompts per
               placement, the holdout and a debug trace per campaign
- `assign`     sticky assignment: hash(reader, campaign) -> bucket 0-9999 -> holdout or variant
- `errors`     marshmallow messages as `path: message` lines (`variants[1].copy.uk.headline`)

`store` keeps campaigns in Redis (apply all or nothing, pause/resume/archive, export), audited
in the same transaction. The snapshot, the HTTP endpoints, tokens, events, results and the
widget come later and call these.
"""
