"""Campaigns in Redis (`keys.campaigns`, `keys.campaigns_version`: docs/ledger.md): create or
replace them (all or nothing), change their status, move or copy one, read them back
strictly, export them.

Every change is one `whole.transaction` over both keys with its audit entries; reads never
write. A campaign's `version` is a digest of its stored text: `apply(..., based_on=...)`
compares it under the WATCH, so the second of two saves never overwrites the first."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis as redis_lib

from membership.core import audit
from membership.ledger.codec import CorruptRecord, version_from
from membership.prompts.campaigns import (
    Campaign,
    CampaignError,
    duplicate_of,
    moved,
    parse,
    to_json,
)
from membership.store import Keys, whole

ACTIONS = {"pause": "paused", "resume": "live", "archive": "archived"}
# Which statuses each action may start from (the same status: nothing to do).
_FROM = {"pause": ("live",), "resume": ("paused", "draft"), "archive": ("draft", "live", "paused")}
_MAX_ATTEMPTS = 50


class CampaignStoreError(ValueError):
    """A campaign change that cannot be made; the message says why. Nothing was written."""


class CampaignNotFound(CampaignStoreError):
    pass


class CampaignConflict(CampaignStoreError):
    """The campaign is not the version the change was based on; `current` is its version
    now (None: it does not exist). Nothing was written."""

    def __init__(self, campaign_id: str, current: str | None, based_on: str | None) -> None:
        self.campaign_id, self.current, self.based_on = campaign_id, current, based_on
        if based_on is None:
            why = f"a campaign {campaign_id!r} exists already"
        elif current is None:
            why = f"campaign {campaign_id!r} no longer exists"
        else:
            why = f"campaign {campaign_id!r} was changed by someone else since this version"
        super().__init__(f"{why}; nothing was saved")


class CorruptCampaigns(CampaignStoreError):
    """Stored campaigns that do not read back; `problems` maps each id to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = [f"campaign {cid!r}: {why}" for cid, why in sorted(self.problems.items())]
        super().__init__(
            "stored campaign(s) are corrupt: "
            + "; ".join(lines)
            + " (replace them with `membership campaigns apply`)"
        )


@dataclass(frozen=True)
class Stored:
    """What `read` found: the version, the campaigns that read back, and those that do not."""

    version: int
    campaigns: tuple[Campaign, ...]
    corrupt: Mapping[str, str]
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)  # id -> version


# --- Encoding ------------------------------------------------------------------


def encode(campaign: Campaign) -> str:
    """The stored form: canonical JSON, so an unchanged campaign is the same text."""
    return json.dumps(to_json(campaign), ensure_ascii=False, sort_keys=True, allow_nan=False)


def version_of(raw: str) -> str:
    """A stored campaign's version: a digest of its stored text (the same text, the same
    version, in every process)."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:20]


@functools.lru_cache(maxsize=512)
def decode(campaign_id: str, raw: str) -> Campaign:
    """A stored campaign, validated as strictly as `apply` validates; CorruptCampaigns else.
    The same text gives the same (frozen) campaign: the last few hundred are kept, so a list
    validates only those that changed."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CorruptCampaigns({campaign_id: f"not JSON ({exc})"}) from None
    try:
        campaign = parse(data)
    except CampaignError as exc:
        raise CorruptCampaigns({campaign_id: "; ".join(exc.errors[:3])}) from None
    if campaign.id != campaign_id:
        raise CorruptCampaigns({campaign_id: f"stored under another id ({campaign.id!r})"})
    return campaign


# --- Reads ---------------------------------------------------------------------


def read(client: redis_lib.Redis, keys: Keys) -> Stored:
    """Every campaign and the version, in one round trip; corrupt ones listed apart."""
    pipe = client.pipeline(transaction=True)
    pipe.get(keys.campaigns_version)
    pipe.hgetall(keys.campaigns)
    return _stored(keys, *pipe.execute())


def _stored(keys: Keys, raw_version, raw: Mapping[str, str]) -> Stored:
    good: list[Campaign] = []
    corrupt: dict[str, str] = {}
    for campaign_id, text in raw.items():
        try:
            good.append(decode(campaign_id, text))
        except CorruptCampaigns as exc:
            corrupt.update(exc.problems)
    try:
        version = version_from(keys.campaigns_version, raw_version)
    except CorruptRecord as exc:
        corrupt["(version)"] = str(exc)
        version = 0
    versions = {campaign_id: version_of(text) for campaign_id, text in raw.items()}
    ordered = tuple(sorted(good, key=lambda c: c.rank))
    return Stored(version=version, campaigns=ordered, corrupt=corrupt, versions=versions)


def load_all(client: redis_lib.Redis, keys: Keys) -> list[Campaign]:
    """Every campaign by rank (priority, then id), in one round trip; CorruptCampaigns
    names every stored campaign that does not read back."""
    stored = read(client, keys)
    if stored.corrupt:
        raise CorruptCampaigns(stored.corrupt)
    return list(stored.campaigns)


def get(client: redis_lib.Redis, keys: Keys, campaign_id: str) -> Campaign | None:
    raw = client.hget(keys.campaigns, campaign_id)
    return None if raw is None else decode(campaign_id, raw)


def get_versioned(
    client: redis_lib.Redis, keys: Keys, campaign_id: str
) -> tuple[Campaign, str] | None:
    """A campaign and its version (what a form carries as `based_on`), or None."""
    raw = client.hget(keys.campaigns, campaign_id)
    return None if raw is None else (decode(campaign_id, raw), version_of(raw))


def export(client: redis_lib.Redis, keys: Keys) -> list[dict]:
    """Every campaign as the JSON `apply` takes back unchanged (refused while any is corrupt)."""
    return [to_json(c) for c in load_all(client, keys)]


# --- Writes: each one whole transaction (store/whole.py) over the campaigns and their version


def _transaction(client: redis_lib.Redis, keys: Keys, body):
    return whole.transaction(
        client,
        body,
        watch=(keys.campaigns, keys.campaigns_version),
        attempts=_MAX_ATTEMPTS,
        busy=CampaignStoreError("the campaigns kept changing under this request; try again"),
        refused=lambda failed: CampaignStoreError(
            f"Redis refused part of the change ({failed[0]}); check `membership campaigns list`"
        ),
    )


def apply(
    client: redis_lib.Redis,
    keys: Keys,
    campaigns: Sequence[Campaign],
    *,
    actor: str,
    based_on: Mapping[str, str | None] | None = None,
) -> list[tuple[str, str]]:
    """Create or replace `campaigns` (validated by `campaigns.parse_list`), all or nothing.

    Returns (id, "created" | "replaced" | "unchanged") in the given order. A campaign equal
    to the stored one is left alone: when none changed, nothing is written at all (no
    version, no audit entry).

    `based_on` (id -> the version the change started from, None for "not stored yet") is
    checked under the transaction's WATCH: any mismatch raises CampaignConflict and nothing
    is written. Ids it leaves out are not checked (the command line's last writer wins).
    """
    actor = audit.check_actor(actor)
    ids = [c.id for c in campaigns]
    if len(set(ids)) != len(ids):
        raise CampaignStoreError("each campaign id at most once in one apply")
    based_on = dict(based_on or {})
    if not set(based_on) <= set(ids):
        raise CampaignStoreError("based_on: only for the campaigns being applied")
    if not campaigns:
        return []
    return _transaction(client, keys, lambda pipe: _write(pipe, keys, campaigns, actor, based_on))


def _write(pipe, keys: Keys, campaigns: Sequence[Campaign], actor: str, based_on=None):
    """Under the WATCH: what `apply` writes (a whole.Write), or its results when nothing
    changed."""
    ids = [c.id for c in campaigns]
    before_raw = pipe.hmget(keys.campaigns, ids)
    found = dict(zip(ids, before_raw, strict=True))
    for campaign_id, expected in (based_on or {}).items():
        text = found[campaign_id]
        current = None if text is None else version_of(text)
        if current != expected:
            raise CampaignConflict(campaign_id, current, expected)
    results: list[tuple[str, str]] = []
    changes: list[tuple[Campaign, object]] = []
    for campaign, raw in zip(campaigns, before_raw, strict=True):
        if raw is None:
            results.append((campaign.id, "created"))
            changes.append((campaign, None))
            continue
        try:
            stored = decode(campaign.id, raw)
        except CorruptCampaigns:
            before: object = raw  # mended by this apply; the audit keeps it
        else:
            before = to_json(stored)
            if encode(stored) == encode(campaign):
                results.append((campaign.id, "unchanged"))
                continue
        results.append((campaign.id, "replaced"))
        changes.append((campaign, before))
    if not changes:
        return results
    return _queued(pipe, keys, changes, actor, "campaign_applied", results)


def _queued(pipe, keys: Keys, changes, actor: str, action: str, result) -> whole.Write:
    """Each (campaign, its JSON before) stored, the version incremented, each audited as
    `action`; checked first (Redis does not roll back what a failing command leaves)."""
    try:
        version_from(keys.campaigns_version, pipe.get(keys.campaigns_version))
    except CorruptRecord as exc:
        raise CampaignStoreError(f"the campaigns' version is corrupt ({exc})") from None
    try:
        whole.check_types(pipe, ((keys.audit, "stream"),))
    except whole.WrongType as exc:
        raise CampaignStoreError(f"the audit log: {exc}") from None

    def queue(pipe) -> None:
        pipe.hset(keys.campaigns, mapping={c.id: encode(c) for c, _ in changes})
        pipe.incr(keys.campaigns_version)
        for campaign, before in changes:
            audit.queue(
                pipe,
                keys,
                actor=actor,
                action=action,
                target=f"campaign {campaign.id}",
                before=before,
                after=to_json(campaign),
            )

    return whole.Write(queue, result)


def set_status(
    client: redis_lib.Redis, keys: Keys, campaign_id: str, action: str, *, actor: str
) -> tuple[str, str]:
    """pause (live -> paused), resume (paused or draft -> live), archive (any -> archived).

    Returns (status before, status after); the same status is "nothing to do" (no version,
    no audit entry). An archived campaign changes only through `apply`.
    """
    if action not in ACTIONS:
        raise CampaignStoreError(f"action: expected one of {', '.join(ACTIONS)}")
    actor = audit.check_actor(actor)
    target = ACTIONS[action]

    def body(pipe):
        raw = pipe.hget(keys.campaigns, campaign_id)
        if raw is None:
            raise CampaignNotFound(f"no campaign {campaign_id!r} (see `membership campaigns list`)")
        campaign = decode(campaign_id, raw)
        if campaign.status == target:
            return (campaign.status, campaign.status)
        if campaign.status == "archived":
            raise CampaignStoreError(
                f"campaign {campaign_id!r} is archived; an archived campaign changes "
                "only through `membership campaigns apply`"
            )
        if campaign.status not in _FROM[action]:
            raise CampaignStoreError(
                f"campaign {campaign_id!r} is {campaign.status}; {action} needs a "
                f"campaign that is {' or '.join(_FROM[action])}"
            )
        changed = dataclasses.replace(campaign, status=target)
        change = [(changed, to_json(campaign))]
        audited = f"campaign_{action}d"  # campaign_paused, campaign_resumed, campaign_archived
        return _queued(pipe, keys, change, actor, audited, (campaign.status, target))

    return _transaction(client, keys, body)


def _read_watched(pipe, keys: Keys) -> Stored:
    """What `read` finds, read on the WATCHing pipeline (a change since starts over)."""
    return _stored(keys, pipe.get(keys.campaigns_version), pipe.hgetall(keys.campaigns))


def move(
    client: redis_lib.Redis, keys: Keys, campaign_id: str, offset: int, *, actor: str
) -> list[str]:
    """Move a campaign `offset` places (negative: up, considered earlier) among the
    campaigns that are not archived, by changing as few priorities as it can
    (`campaigns.moved`); each change is a `campaign_applied` entry. Returns the ids changed
    ([]: already first or last). An archived campaign is not in the order."""
    actor = audit.check_actor(actor)

    def body(pipe):
        stored = _read_watched(pipe, keys)
        if campaign_id in stored.corrupt:
            raise CorruptCampaigns({campaign_id: stored.corrupt[campaign_id]})
        order = [c for c in stored.campaigns if c.status != "archived"]
        if not any(c.id == campaign_id for c in stored.campaigns):
            raise CampaignNotFound(f"no campaign {campaign_id!r}")
        if not any(c.id == campaign_id for c in order):
            raise CampaignStoreError(f"campaign {campaign_id!r} is archived: it has no place")
        changed = moved(order, campaign_id, offset)
        if not changed:
            return []
        return _then(_write(pipe, keys, changed, actor), [c.id for c in changed])

    return _transaction(client, keys, body)


def duplicate(client: redis_lib.Redis, keys: Keys, campaign_id: str, *, actor: str) -> Campaign:
    """A copy of a campaign under a new id (`campaigns.duplicate_of`), as a draft; audited
    as `campaign_applied` (created)."""
    actor = audit.check_actor(actor)

    def body(pipe):
        stored = _read_watched(pipe, keys)
        source = next((c for c in stored.campaigns if c.id == campaign_id), None)
        if source is None:
            if campaign_id in stored.corrupt:
                raise CorruptCampaigns({campaign_id: stored.corrupt[campaign_id]})
            raise CampaignNotFound(f"no campaign {campaign_id!r}")
        copy = duplicate_of(source, {c.id for c in stored.campaigns} | set(stored.corrupt))
        return _then(_write(pipe, keys, [copy], actor), copy)

    return _transaction(client, keys, body)


def _then(planned, result):
    """`_write`'s plan, answering `result` instead of its own."""
    if isinstance(planned, whole.Write):
        return dataclasses.replace(planned, result=result)
    return result
