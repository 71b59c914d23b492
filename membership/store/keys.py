"""Every Redis key name the service uses, built in one place.

All keys share one hash tag (`{prefix}`), so every multi-key script or
transaction stays on one slot and the same code runs on Redis Cluster.
Modules ask this class for names; none formats a key by hand.
"""

from __future__ import annotations


class _Base:
    """The prefix and its hash tag; every name is built by `_key`."""

    def __init__(self, prefix: str = "membership") -> None:
        self.prefix = prefix
        self._base = "{" + prefix + "}"

    def _key(self, *parts: str) -> str:
        return ":".join((self._base, *parts))


class _LedgerKeys(_Base):
    """The member ledger: the count, records, events, the member index."""

    # --- Ledger: the member count and what it is made of -------------------
    @property
    def member_count(self) -> str:
        """Integer: the number of members, maintained by the ledger; O(1) to read."""
        return self._key("count")

    @property
    def count_changed_at(self) -> str:
        """ISO-8601 UTC time the member count last changed (written with the count)."""
        return self._key("count", "changed_at")

    # --- Ledger ------------------------------------------------------------
    # The rest of the ledger (membership/ledger.py). Per-id keys are methods.
    def ledger_subscription(self, subscription_id: str) -> str:
        """Hash: one subscription's standing state and effective status."""
        return self._key("ledger", "sub", subscription_id)

    @property
    def ledger_subscriptions(self) -> str:
        """Set: every subscription id the ledger knows."""
        return self._key("ledger", "subs")

    def ledger_customer(self, customer_id: str) -> str:
        """Hash: a Stripe customer's email, name, metadata, deleted_at, live subscriptions."""
        return self._key("ledger", "customer", customer_id)

    def ledger_customer_subscriptions(self, customer_id: str) -> str:
        """Set: the customer's subscription ids."""
        return self._key("ledger", "customer", customer_id, "subs")

    def ledger_customer_timeline(self, customer_id: str) -> str:
        """List (capped, newest first): the customer's invoices and disputes, as JSON."""
        return self._key("ledger", "customer", customer_id, "timeline")

    @property
    def ledger_customers(self) -> str:
        """Set: every Stripe customer id the ledger knows."""
        return self._key("ledger", "customers")

    @property
    def ledger_unlinked_timeline(self) -> str:
        """List (capped): timeline entries whose customer is unknown (e.g. some disputes)."""
        return self._key("ledger", "timeline", "unlinked")

    def ledger_email(self, email: str) -> str:
        """Hash: one normalized email's member customers (`live`) and offline member fields."""
        return self._key("ledger", "email", email)

    @property
    def ledger_pattern(self) -> str:
        """SCAN pattern matching every ledger key (`ledger rebuild` finds records by it)."""
        return self._key("ledger", "*")

    @property
    def ledger_offline_members(self) -> str:
        """Set: emails of offline (staff-added) members."""
        return self._key("ledger", "offline")

    def ledger_event(self, event_id: str) -> str:
        """Hash (expiring): a received event's outcome, error and raw payload; the dedupe mark."""
        return self._key("ledger", "event", event_id)

    @property
    def ledger_event_log(self) -> str:
        """Stream (capped): one entry per delivery: id, type, received, outcome, error."""
        return self._key("ledger", "events")

    def ledger_event_log_by_outcome(self, outcome: str) -> str:
        """Stream (capped): the event log's entries with one outcome (`events list --outcome`)."""
        return self._key("ledger", "events", "by-outcome", outcome)

    @property
    def ledger_failed_events(self) -> str:
        """Sorted set: ids of events whose last outcome is `failed`, by time received."""
        return self._key("ledger", "events", "failed")

    def ledger_contribution(self, key: str) -> str:
        """Hash: a one-time contribution (by payment intent): amount, refunded, person."""
        return self._key("ledger", "contribution", key)

    def ledger_contributor(self, person: str) -> str:
        """Integer: a contributor's number of contributions not fully refunded."""
        return self._key("ledger", "contributor", person)

    @property
    def ledger_counters(self) -> str:
        """Hash: the `stats` counters (`subs:<status>`, `plan:<plan>`, `mrr:<currency>`,
        `contrib_sum:<currency>`, ...), kept by the writer with every change; O(1) to read."""
        return self._key("ledger", "counters")

    @property
    def ledger_version(self) -> str:
        """Integer: incremented by every committed ledger change (rebuild compares it)."""
        return self._key("ledger", "version")

    @property
    def ledger_rebuild_lock(self) -> str:
        """String (expiring): set while `ledger rebuild` commits; writers wait it out (503)."""
        return self._key("ledger", "rebuild", "lock")

    @property
    def ledger_needs_rebuild(self) -> str:
        """Hash: why and since when the counters may be wrong (cleared by `ledger rebuild`)."""
        return self._key("ledger", "rebuild", "needed")

    @property
    def ledger_history_count(self) -> str:
        """Hash: UTC day (YYYY-MM-DD) -> the member count at that day's last change."""
        return self._key("ledger", "history", "count")

    @property
    def ledger_history_joins(self) -> str:
        """Hash: UTC day -> members gained that day."""
        return self._key("ledger", "history", "joins")

    @property
    def ledger_history_leaves(self) -> str:
        """Hash: UTC day -> members lost that day."""
        return self._key("ledger", "history", "leaves")

    # --- Ledger: the member index (membership/ledger/index.py) ---------------
    # Written by the ledger writer in the change's transaction; rebuilt by `ledger rebuild`.
    @property
    def ledger_index_rows(self) -> str:
        """Hash: row id (`stripe:<customer>`, `offline:<email>`) -> the member's row as JSON
        (email, name, source, status, since, plan, amount, currency, current)."""
        return self._key("ledger", "index", "rows")

    @property
    def ledger_index_email(self) -> str:
        """Sorted set (scores 0): `<normalized email>\\0<row id>`, for prefix search."""
        return self._key("ledger", "index", "email")

    @property
    def ledger_index_name(self) -> str:
        """Sorted set (scores 0): `<name word>\\0<the name's words>\\0<row id>`, one per word
        of the name (folded: accents dropped, case folded)."""
        return self._key("ledger", "index", "name")

    @property
    def ledger_index_current(self) -> str:
        """Sorted set (scores 0): `<email>\\0<row id>` of current members (the CSV export)."""
        return self._key("ledger", "index", "current")

    @property
    def ledger_index_contributions(self) -> str:
        """Sorted set (scores 0): `<contributor>\\0<payment>` (contributor: `customer:<id>`,
        `email:<email>`, `payment:<id>`): a member's one-time contributions."""
        return self._key("ledger", "index", "contributions")


class _GoalAndAuditKeys(_Base):
    """Goals, the banner and the audit log."""

    # --- Goals and banner ---------------------------------------------------
    @property
    def goals(self) -> str:
        """Hash: goal id -> the goal as JSON (target, deadline, name, copy, created_at)."""
        return self._key("goals")

    @property
    def goals_reached(self) -> str:
        """Hash: goal id -> ISO-8601 UTC time it was reached; only ever added to."""
        return self._key("goals", "reached")

    @property
    def goals_pending(self) -> str:
        """Sorted set: ids of goals not reached yet, scored by target (cheap mark_reached)."""
        return self._key("goals", "pending")

    @property
    def goals_next_id(self) -> str:
        """Integer: the last goal id handed out."""
        return self._key("goals", "next_id")

    @property
    def banner_version(self) -> str:
        """Integer: incremented with every change of the count or the goals, in the same
        transaction or script; orders banner snapshots (the last good one) by data, not clock."""
        return self._key("banner", "version")

    @property
    def banner_lineage(self) -> str:
        """String: a random id of this data's history, made by the banner's first read when
        missing (a new or emptied Redis) and replaced when the version is found to have gone
        back (a restore from an older backup): versions compare only within one lineage."""
        return self._key("banner", "lineage")

    # --- Audit ---------------------------------------------------------------
    @property
    def audit(self) -> str:
        """Stream (capped): every staff change: at, actor, action, target, before/after JSON."""
        return self._key("audit")


class _PromptKeys(_Base):
    """Campaigns, prompt events and results, conversions."""

    # --- Prompts -------------------------------------------------------------
    @property
    def campaigns(self) -> str:
        """Hash: campaign id -> the campaign as JSON (`prompts.campaigns.to_json`)."""
        return self._key("campaigns")

    @property
    def campaigns_version(self) -> str:
        """Integer: incremented with every committed campaign change (apply, pause, resume,
        archive), in the same transaction; never by an unchanged re-apply."""
        return self._key("campaigns", "version")

    # --- Prompt events and results (membership/prompts/counts.py) -------------
    # A "slot" is a variant id, or `_holdout` (never a variant id: those start with a-z0-9).
    # Counts hashes hold `<slot>:<metric>` fields: `views`, `clicks`, `dismissals` (variants),
    # `events` (the holdout: page views that listed the campaign under `holdout`), and, written
    # by the Stripe webhook through `counts.queue_conversion`,
    # `conversions` (readers who became members or gave) and `revenue:<currency>` (minor units).
    def prompt_event_mark(self, digest: str, event_type: str) -> str:
        """String (expiring when the token can no longer be read, at most ~24 h 10 min): set
        once a decision token's event of this type is counted. Named by a hash of the token's
        claim, never the token (which carries the reader id)."""
        return self._key("prompts", "seen", digest, event_type)

    def prompt_counts(self, campaign_id: str) -> str:
        """Hash: a campaign's counters over its whole life (`<slot>:<metric>`); kept as long
        as Redis keeps it (a few fields per variant), so results never lose their totals."""
        return self._key("prompts", "counts", campaign_id)

    def prompt_counts_day(self, campaign_id: str, day: str) -> str:
        """Hash: the same counters for one UTC day (YYYY-MM-DD); expires 400 days after its
        last write (`results --days`, a year back and a month to spare)."""
        return self._key("prompts", "daily", campaign_id, day)

    def prompt_readers(self, campaign_id: str, slot: str) -> str:
        """HyperLogLog (at most 12 KB): the distinct readers who saw a variant (`view`
        events) or were in the holdout (`holdout` events), all time."""
        return self._key("prompts", "readers", campaign_id, slot)

    def prompt_event_budget(self, address: str, hour: int) -> str:
        """Hash (expiring a minute after its UTC hour ends): what one client address had
        counted in that hour, `<campaign>:<type>` -> events, bounded by
        PROMPT_EVENTS_PER_ADDRESS. Named by a keyed hash of the address, never the address."""
        return self._key("prompts", "budget", address, str(hour))

    # --- Conversions (membership/prompts/conversions.py) ----------------------------------
    # Written inside the ledger writer's transaction for the Stripe event that proves them.
    def conversion(self, session_id: str) -> str:
        """Hash: a Checkout Session credited to a campaign (`campaign`, `slot`, `amount`,
        `currency`, `plan`, `price`, `at`, `payment_intent`, `invoice`, `refunded` once fully
        refunded); its presence is the once-per-session mark. Expires 400 days after it was
        written."""
        return self._key("conversions", "session", session_id)

    def conversion_payment(self, payment_intent: str) -> str:
        """Hash: a payment intent's `session` once a credited session's payment is known, and
        `refunded` when a full refund came first (kept 30 days waiting for its session)."""
        return self._key("conversions", "payment", payment_intent)

    def conversion_invoice(self, invoice_id: str) -> str:
        """Hash (30 days): a subscription session's first invoice: its `session` and its
        `payment_intent`, whichever event told first (invoice_payment.paid names the payment)."""
        return self._key("conversions", "invoice", invoice_id)


class _AccessKeys(_Base):
    """Member sign-in links and staff access."""

    # --- Member sign-in links (membership/members/links.py) -------------------
    # Named by the SHA-256 of the link's code, never the code itself.
    def member_link(self, digest: str) -> str:
        """Hash (expiring after 15 minutes): a sign-in link not used yet: `subject`,
        `expires` (unix seconds), `return_url`, `locale`. Deleted by its first use."""
        return self._key("members", "link", digest)

    def member_link_note(self, digest: str) -> str:
        """Hash (expiring after a day): where a sign-in link led (`return_url`, `locale`) and
        `used` once it was, so a second or late click gets a page that offers a new link.
        Holds no subject."""
        return self._key("members", "link", digest, "note")

    # --- Staff access (membership/staff/) -----------------------------------
    # Secrets (session ids, password links) are named by their SHA-256, never by themselves.
    def staff_account(self, email: str) -> str:
        """Hash: a staff member: email, role, password (argon2 hash, empty until set),
        disabled (0/1), created, updated (ISO-8601 UTC), totp / totp_pending (two-factor
        secrets), totp_last (the last code step accepted)."""
        return self._key("staff", "account", email)

    @property
    def staff_accounts(self) -> str:
        """Set: every staff email."""
        return self._key("staff", "accounts")

    def staff_password_link(self, digest: str) -> str:
        """Hash (expiring after 24 h): a password-setting link not used yet: email, expires.
        Deleted by its use."""
        return self._key("staff", "link", digest)

    def staff_session(self, digest: str) -> str:
        """Hash (expiring after 12 h unused): a signed-in session: email, created, seen,
        agent."""
        return self._key("staff", "session", digest)

    def staff_account_sessions(self, email: str) -> str:
        """Set: the session digests of one staff member (stale ones pruned when listed)."""
        return self._key("staff", "account", email, "sessions")

    def staff_login_failures(self, digest: str) -> str:
        """Hash: the sign-in window of one email typed at the login page (by its SHA-256,
        known or not): `ends` (unix seconds) and `attempts`, the places taken (at most 5);
        deleted when every attempt is given back, expires after the window."""
        return self._key("staff", "failures", digest)

    def staff_api_token(self, digest: str) -> str:
        """Hash: a personal API token (by its SHA-256): email, name, created, used (unix
        seconds, at most once a minute). Kept until revoked."""
        return self._key("staff", "token", digest)

    def staff_account_api_tokens(self, email: str) -> str:
        """Set: the token digests of one staff member."""
        return self._key("staff", "account", email, "tokens")

    def staff_login_pending(self, digest: str) -> str:
        """Hash (expiring after 5 minutes): a login whose password was right, waiting for
        its two-factor code: email. Deleted by the code that completes it."""
        return self._key("staff", "pending", digest)

    # --- Long staff operations (membership/staff/operations/runner.py) ---------------------
    @property
    def operations_lock(self) -> str:
        """String (expiring unless renewed): the id of the rebuild or sync running now."""
        return self._key("operations", "lock")

    @property
    def operations_status(self) -> str:
        """Hash: the latest operation: id, kind, state, actor, started, finished, progress,
        result, error."""
        return self._key("operations", "status")


class Keys(_LedgerKeys, _GoalAndAuditKeys, _PromptKeys, _AccessKeys):
    """Every key name, by area (each area a class of its own, so none grows too big)."""
