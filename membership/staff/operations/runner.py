"""Long staff operations (`ledger rebuild`, `sync`) run from the dashboard in a background
thread: at most one at a time across every process (a Redis lock the running thread renews;
a dead process frees it within LOCK_SECONDS), its status in Redis for every page to read.
The work is the service the CLI calls; each start is audited with who asked.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

from membership.core import audit
from membership.core.config import ConfigError
from membership.ledger import LedgerBusy, ledger_for
from membership.ledger.codec import CorruptRecord
from membership.ledger.events import iso
from membership.ledger.rebuild import rebuild as rebuild_ledger
from membership.ledger.rebuild import records_about
from membership.store import patient_client
from membership.stripe import sync as reconcile
from membership.stripe.api import iter_subscriptions, make_client

log = logging.getLogger(__name__)

KINDS = {
    "rebuild": "Rebuild the ledger (recompute the count and counters from the records)",
    "sync_check": "Compare with Stripe (report drift, change nothing)",
    "sync_apply": "Sync with Stripe (make the ledger match Stripe)",
}
LOCK_SECONDS = 60
RENEW_EVERY = 10  # seconds between renewals of the lock by the running thread
SHOWN_IDS = 50  # subscription ids kept per list in a sync's result (the counts are whole)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class OperationBusy(Exception):
    """Another operation is running (in this process or another); nothing was started."""


class OperationRefused(ValueError):
    """This operation cannot run here; the message starts with the field it is about."""


def sync_available(settings) -> bool:
    return bool(settings.stripe_api_key)


class Operations:
    """Start, and read the status of, the one background operation of a running app."""

    def __init__(self, rt, *, app=None, clock: Callable[[], float] = time.time) -> None:
        """`app`: the Flask app whose context the background thread runs in, so a ledger
        subscriber may use what a request would (runtime(), config)."""
        self.rt = rt
        self.app = app
        self.redis = rt.redis
        self.lock_key = rt.keys.operations_lock
        self.status_key = rt.keys.operations_status
        self.clock = clock

    def status(self) -> dict | None:
        """The running or last operation, or None if none ran. `state` is running, done,
        failed, or interrupted (its process ended without finishing it)."""
        fields = self.redis.hgetall(self.status_key)
        if not fields:
            return None
        status = {**fields, "result": _json(fields.get("result"))}
        if status.get("state") == "running" and self.redis.get(self.lock_key) != status.get("id"):
            status["state"] = "interrupted"
        return status

    def running(self) -> bool:
        return self.redis.exists(self.lock_key) == 1

    def start(self, kind: str, *, actor: str, wait: bool = False) -> dict:
        """Start `kind` in a background thread as `actor`; returns its status. Raises
        OperationRefused (bad kind, sync without STRIPE_API_KEY) and OperationBusy.
        `wait`: run it in this thread instead (the tests and scripts that must see the end)."""
        if kind not in KINDS:
            raise OperationRefused(f"operation: expected one of {', '.join(KINDS)}")
        if kind.startswith("sync") and not sync_available(self.rt.settings):
            raise OperationRefused("operation: sync needs STRIPE_API_KEY, which is not set")
        audit.check_actor(actor)
        token = secrets.token_hex(8)
        if not self.redis.set(self.lock_key, token, nx=True, ex=LOCK_SECONDS):
            raise OperationBusy("another operation is running; wait for it to finish")
        now = iso(self.clock())
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.status_key)
            pipe.hset(
                self.status_key,
                mapping={"id": token, "kind": kind, "state": "running", "actor": actor,
                         "started": now, "progress": "starting"},
            )  # fmt: skip
            audit.queue(pipe, self.rt.keys, actor=actor, action="operation_started",
                        target=kind, after={"id": token})  # fmt: skip
            pipe.execute()
        if wait:
            self._run(token, kind, actor)
        else:
            threading.Thread(
                target=self._run, args=(token, kind, actor), name=f"operation-{kind}", daemon=True
            ).start()
        return self.status() or {}

    # --- the background thread ----------------------------------------------------------

    def _run(self, token: str, kind: str, actor: str) -> None:
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(token, stop), daemon=True)
        renewer.start()
        try:
            with self.app.app_context() if self.app is not None else nullcontext():
                result = RUNNERS[kind](self.rt, actor, lambda text: self._progress(token, text))
            self._finish(token, "done", result=result)
        except (LedgerBusy, CorruptRecord, reconcile.SyncRefused, ConfigError) as exc:
            self._finish(token, "failed", error=f"nothing was changed: {exc}")
        except Exception as exc:  # the page must say it failed; the log has the trace
            log.exception("operation %s (%s) failed", kind, token)
            self._finish(token, "failed", error=f"{type(exc).__name__}: the operation failed")
        finally:
            stop.set()
            self.redis.eval(_RELEASE, 1, self.lock_key, token)

    def _renew(self, token: str, stop: threading.Event) -> None:
        while not stop.wait(RENEW_EVERY):
            try:
                self.redis.eval(_RENEW, 1, self.lock_key, token, LOCK_SECONDS)
            except Exception:  # Redis away for a moment: the next renewal may succeed
                log.warning("operation %s: could not renew its lock", token, exc_info=True)

    def _progress(self, token: str, text: str) -> None:
        if self.redis.hget(self.status_key, "id") == token:
            self.redis.hset(self.status_key, "progress", text)

    def _finish(self, token: str, state: str, *, result=None, error: str = "") -> None:
        if self.redis.hget(self.status_key, "id") != token:
            return  # a newer operation's status: leave it
        self.redis.hset(
            self.status_key,
            mapping={"state": state, "finished": iso(self.clock()), "progress": "",
                     "result": json.dumps(result), "error": error},
        )  # fmt: skip


def _json(raw: str | None):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


# --- what each operation runs: the CLI's services ----------------------------------------


def run_rebuild(rt, actor: str, progress: Callable[[str], None]) -> dict:
    client = rt.redis
    total = records_about(client, rt.keys)
    done = 0

    def counted(n: int) -> None:
        nonlocal done
        done += n
        progress(f"read {done:,} of about {total:,} records")

    with patient_client(rt.redis_url) as patient:  # its one EXEC may take long
        report = rebuild_ledger(
            patient,
            rt.keys,
            rt.settings.member_statuses,
            actor=actor,
            progress=counted,
            subscribers=rt.ledger_subscribers,
        )
    return report.as_dict()


def run_sync(rt, actor: str, progress: Callable[[str], None], *, apply: bool) -> dict:
    """`membership sync [--apply]`: list Stripe's subscriptions, report or repair the drift;
    an applied sync is audited as the CLI audits it (`sync_applied`)."""
    done = reconcile.run_audited(
        ledger_for(rt),
        iter_subscriptions(make_client(rt.settings)),
        actor=actor,
        observed_at=int(time.time()),
        apply=apply,
        progress=lambda n: progress(f"listed {n:,} subscriptions from Stripe"),
    )
    result, count_before, count_after = done.result, done.members_before, done.members_after
    drift = result.drift.as_dict()
    lists = {
        "missing": drift["missing"],
        "extra": drift["extra"],
        "status_differs": drift["status_differs"],
        "applied": result.applied,
        "kept_newer": result.kept_newer,
        "unrepairable": result.unrepairable,
    }
    return {
        "applied_changes": apply,
        "listed": result.listed,
        "clean": result.drift.clean,
        "counts": {name: len(items) for name, items in lists.items()},
        "shown": {name: items[:SHOWN_IDS] for name, items in lists.items()},
        "members_before": count_before,
        "members_after": count_after,
    }


RUNNERS: dict[str, Callable] = {
    "rebuild": run_rebuild,
    "sync_check": lambda rt, actor, progress: run_sync(rt, actor, progress, apply=False),
    "sync_apply": lambda rt, actor, progress: run_sync(rt, actor, progress, apply=True),
}
