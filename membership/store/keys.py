"""Every Redis key name the service uses, declared in one place (docs/ledger.md describes
what each holds).

All keys share one hash tag (`{prefix}`), so every multi-key script or transaction stays on
one slot and the same code runs on Redis Cluster. Modules ask `Keys` for names: `keys.audit`
for a fixed key, `keys.ledger_customer(customer_id)` for one with variable parts ("{}" in its
template); none formats a key by hand.
"""

from __future__ import annotations

from typing import Any


class _Key:
    """A key of `Keys`: its template after the hash tag. Read on a `Keys`, a fixed key is its
    name, one with variable parts a function of them to its name; either is kept on that
    `Keys` at its first read (a webhook reads some thirty)."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.arity = template.count("{}")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, keys: Keys | None, owner: type) -> Any:
        if keys is None:
            return self
        value = f"{keys.tag}:{self.template}" if not self.arity else self._named(keys.tag)
        keys.__dict__[self.name] = value
        return value

    def _named(self, tag: str):
        head, template = tag + ":", self.template

        def name(*parts) -> str:
            return head + template.format(*parts)

        return name


class Keys:
    """Every key name, by area; the comment says the Redis type and what it holds."""

    def __init__(self, prefix: str = "membership") -> None:
        self.prefix = prefix
        self.tag = "{" + prefix + "}"

    # --- The member ledger (membership/ledger/) -------------------------------------------
    member_count = _Key("count")  # integer, O(1) to read
    count_changed_at = _Key("count:changed_at")  # ISO-8601 UTC, written with the count
    ledger_subscription = _Key("ledger:sub:{}")  # hash: state and effective status
    ledger_subscriptions = _Key("ledger:subs")  # set (versions before): a rebuild deletes it
    ledger_customer = _Key("ledger:customer:{}")  # hash: email, name, live subscriptions...
    # set (versions before): read until a rebuild folds it into the customer's hash
    ledger_customer_subscriptions = _Key("ledger:customer:{}:subs")
    ledger_customer_timeline = _Key("ledger:customer:{}:timeline")  # list: invoices, disputes
    ledger_customers = _Key("ledger:customers")  # set (versions before): a rebuild deletes it
    ledger_unlinked_timeline = _Key("ledger:timeline:unlinked")  # list: customer unknown
    ledger_email = _Key("ledger:email:{}")  # hash: an email's member customers, offline fields
    ledger_pattern = _Key("ledger:*")  # SCAN pattern of every ledger key (rebuild)
    ledger_offline_members = _Key("ledger:offline")  # set: offline members' emails
    ledger_event = _Key("ledger:event:{}")  # hash (expiring): outcome, error, payload
    ledger_event_log = _Key("ledger:events")  # stream (capped): one entry per delivery
    ledger_event_log_by_outcome = _Key("ledger:events:by-outcome:{}")  # stream (capped)
    ledger_failed_events = _Key("ledger:events:failed")  # sorted set: by time received
    ledger_contribution = _Key("ledger:contribution:{}")  # hash: a one-time contribution
    ledger_contributor = _Key("ledger:contributor:{}")  # integer: contributions not refunded
    ledger_counters = _Key("ledger:counters")  # hash: the `stats` counters
    ledger_version = _Key("ledger:version")  # integer (versions before): a rebuild deletes it
    ledger_rebuild_lock = _Key("ledger:rebuild:lock")  # string (expiring): a rebuild commits
    ledger_needs_rebuild = _Key("ledger:rebuild:needed")  # hash: why the counters may be wrong
    # string per UTC day: `<count> <joins> <leaves> <count before the day's first change>`
    ledger_history_day = _Key("ledger:history:day:{}")
    # hashes (versions before): UTC day -> the count; `+<day>`/`-<day>` -> gained, lost
    ledger_history_count = _Key("ledger:history:count")
    ledger_history_moves = _Key("ledger:history:moves")
    # hashes (versions before): UTC day -> members gained, lost; still read, added to moves
    ledger_history_joins = _Key("ledger:history:joins")
    ledger_history_leaves = _Key("ledger:history:leaves")
    # The member index (membership/ledger/index.py), written in the change's transaction.
    ledger_index_rows = _Key("ledger:index:rows")  # hash: row id -> the row as JSON
    # sorted set (scores 0): every email, name word and joined time entry, by family letter
    ledger_index_entries = _Key("ledger:index:entries")
    # sorted sets (versions before): one a family; `ledger rebuild` deletes them
    ledger_index_email = _Key("ledger:index:email")
    ledger_index_name = _Key("ledger:index:name")
    ledger_index_current = _Key("ledger:index:current")
    ledger_index_joined = _Key("ledger:index:joined")
    ledger_index_contributions = _Key("ledger:index:contributions")  # sorted set

    # --- Goals, the banner and the audit log ----------------------------------------------
    goals = _Key("goals")  # hash: goal id -> the goal as JSON
    goals_reached = _Key("goals:reached")  # hash: goal id -> when reached; only added to
    goals_pending = _Key("goals:pending")  # sorted set: goals not reached, by target
    goals_next_id = _Key("goals:next_id")  # integer: the last goal id handed out
    # the lowest pending goal's target ("": none; absent: not known, deleted by a goal's change)
    goals_lowest = _Key("goals:lowest")
    # integer: +1 with every change of the ledger or the goals (orders banner snapshots;
    # a rebuild WATCHes it)
    banner_version = _Key("banner:version")
    # string: a random id of this data's history; versions compare only within one lineage
    banner_lineage = _Key("banner:lineage")
    audit = _Key("audit")  # stream (capped): every staff change

    # --- Prompts: campaigns, events and results, conversions -------------------------------
    campaigns = _Key("campaigns")  # hash: campaign id -> the campaign as JSON
    campaigns_version = _Key("campaigns:version")  # integer: +1 per committed change
    # string (expiring with the token): an event counted, by a hash of the token's claim
    prompt_event_mark = _Key("prompts:seen:{}:{}")
    prompt_counts = _Key("prompts:counts:{}")  # hash: `<slot>:<metric>`, all time
    prompt_counts_day = _Key("prompts:daily:{}:{}")  # hash: the same for one UTC day
    prompt_readers = _Key("prompts:readers:{}:{}")  # HyperLogLog: distinct readers
    # hash (expiring after its UTC hour): one client address's events, by a keyed hash of it
    prompt_event_budget = _Key("prompts:budget:{}:{}")
    conversion = _Key("conversions:session:{}")  # hash: a credited Checkout Session
    conversion_payment = _Key("conversions:payment:{}")  # hash: a payment intent's session
    conversion_invoice = _Key("conversions:invoice:{}")  # hash: a session's first invoice

    # --- Member sign-in links and staff access (secrets named by their SHA-256) ------------
    member_link = _Key("members:link:{}")  # hash (15 minutes): a sign-in link not used yet
    member_link_note = _Key("members:link:{}:note")  # hash (a day): where a link led, `used`
    staff_account = _Key("staff:account:{}")  # hash: role, password hash, two-factor...
    staff_accounts = _Key("staff:accounts")  # set: every staff email
    staff_password_link = _Key("staff:link:{}")  # hash (24 h): a password-setting link
    staff_session = _Key("staff:session:{}")  # hash (12 h unused): a signed-in session
    staff_account_sessions = _Key("staff:account:{}:sessions")  # set: one member's sessions
    staff_login_failures = _Key("staff:failures:{}")  # hash: one email's sign-in window
    staff_api_token = _Key("staff:token:{}")  # hash: a personal API token
    staff_account_api_tokens = _Key("staff:account:{}:tokens")  # set: one member's tokens
    staff_login_pending = _Key("staff:pending:{}")  # hash (5 minutes): awaiting its code
    operations_lock = _Key("operations:lock")  # string (expiring): the operation running
    operations_status = _Key("operations:status")  # hash: the latest rebuild or sync
