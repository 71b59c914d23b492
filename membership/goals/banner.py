"""`GET /v1/banner`: the count, the current goal and localized copy, cheap and cacheable.

`view()` is the pure view model; the blueprint serves it from the per-process `BannerCache`,
each (snapshot, locale) serialized once, with the caching and CORS headers
docs/goals-and-banner.md describes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, request
from werkzeug.http import parse_etags

from membership.core import i18n, metrics
from membership.core.config import SUPPORTED_LOCALES
from membership.core.errors import RETRY_AFTER_SECONDS, ApiError
from membership.core.runtime import runtime
from membership.goals import rules as goals
from membership.goals.cache import (
    REFRESH_SECONDS,
    RETRY_SECONDS,
    BannerCache,
    LastGood,
    Snapshot,
    State,
)
from membership.http.cors import Origins

bp = Blueprint("banner", __name__)

CACHE_EXTENSION = "membership.goals.banner"
STALE_WHILE_REVALIDATE = 300
STALE_IF_ERROR = 86400

# The 503 before any count was seen says what is true (State.reason).
UNAVAILABLE_MESSAGES = {
    "no_count": "no member has been counted yet; the banner appears once the first one is",
    None: "the member count cannot be read right now and none was seen before; try again shortly",
}


# --- View model (pure) -------------------------------------------------------


def progress(count: int, target: int) -> float:
    """count/target rounded down to 4 places, so the bar is never full before the goal is."""
    return max(0, min(count * 10000 // target, 10000)) / 10000


def view(
    snapshot: Snapshot, locale: str, *, publication: str, join_url: str, stale: bool = False
) -> dict:
    count = snapshot.count
    selection = goals.select(snapshot.goals, count)
    current, milestone = selection.current, selection.milestone
    anchor = current or milestone
    copy = anchor.copy.get(locale, {}) if anchor is not None else {}

    def text(field: str, **numbers: int) -> str:
        return i18n.render(locale, field, numbers, publication, copy.get(field))

    if current is not None:
        remaining = current.target - count
        message = text("message", count=count, goal=current.target, remaining=remaining)
        goal = {
            "target": current.target,
            "target_display": i18n.format_number(locale, current.target),
            "progress": progress(count, current.target),
            "remaining": remaining,
            "deadline": current.deadline,
            "name": current.name,
        }
    else:
        goal = None
        if milestone is not None:
            message = text("thanks", count=count, goal=milestone.target)
        else:
            message = text("invite", count=count)
    return {
        "count": count,
        "count_display": i18n.format_number(locale, count),
        "locale": locale,
        "headline": text("headline", count=count),
        "message": message,
        "cta": {"label": text("cta"), "url": join_url},
        "goal": goal,
        "milestone": (
            {"target": milestone.target, "reached_at": milestone.reached_at}
            if milestone is not None
            else None
        ),
        "stale": stale,
        "updated_at": snapshot.changed_at,
    }


def preview(
    goal_list: Iterable[goals.Goal], count: int, *, publication: str, join_url: str
) -> dict[str, dict]:
    """What /v1/banner would answer in each locale were these the goals and this the count:
    the staff dashboard's preview of copy before it is saved, by the same `view`."""
    snapshot = Snapshot(count=count, changed_at=None, goals=tuple(goal_list))
    return {
        locale: view(snapshot, locale, publication=publication, join_url=join_url)
        for locale in SUPPORTED_LOCALES
    }


def serialize(body: dict) -> tuple[bytes, str]:
    """Deterministic bytes and their strong ETag: same data, same ETag, in every process."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


# --- Query -------------------------------------------------------------------


@lru_cache(maxsize=512)
def parse_query(query_string: bytes) -> tuple[str | None, str | None]:
    """(locale, None) or (None, error message). Cached: the same few URLs come again and again."""
    try:
        raw = parse_qs(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None, "the query string is not valid UTF-8"
    if any(len(values) > 1 for values in raw.values()):
        return None, "each query parameter may be given once"
    unknown = sorted(set(raw) - {"locale"})
    if unknown:
        return None, f"{unknown[0]}: unknown query parameter; only locale is accepted"
    try:
        return i18n.resolve_locale(raw.get("locale", [None])[0]), None
    except i18n.CopyError as exc:
        return None, f"locale: {exc}"


# --- HTTP (the shell) --------------------------------------------------------


@bp.record_once
def _attach(state) -> None:
    rt = runtime(state.app)
    extra = rt.settings.extra
    cache = BannerCache(
        rt.redis,
        rt.keys,
        LastGood(rt.settings.data_dir, rt.keys.prefix),
        refresh_seconds=float(extra.get("banner_refresh_seconds", REFRESH_SECONDS)),
        retry_seconds=float(extra.get("banner_retry_seconds", RETRY_SECONDS)),
    )
    state.app.extensions[CACHE_EXTENSION] = _Endpoint(cache, rt.settings)


class _Endpoint:
    """What the handler needs, looked up once per request: the cache and the settings it uses."""

    def __init__(self, cache: BannerCache, settings) -> None:
        self.cache = cache
        self.publication = settings.publication_name
        self.join_url = settings.join_url
        self.origins = Origins(settings.allowed_origins)
        self.allowed = self.origins.allowed
        self.cache_control = (
            f"public, max-age={settings.banner_max_age}, "
            f"stale-while-revalidate={STALE_WHILE_REVALIDATE}, stale-if-error={STALE_IF_ERROR}"
        )

    def rendered(self, state: State, locale: str) -> tuple[bytes, str, list, list]:
        """Body, ETag and the 200 and 304 headers for this state and locale, built once."""
        found = state.rendered.get(locale)
        if found is None:
            body, etag = serialize(
                view(
                    state.snapshot,
                    locale,
                    publication=self.publication,
                    join_url=self.join_url,
                    stale=state.stale,
                )
            )
            common = [
                ("Cache-Control", self.cache_control),
                ("ETag", etag),
                ("Vary", "Origin"),
                ("X-Content-Type-Options", "nosniff"),
            ]
            found = (body, etag, [("Content-Type", "application/json"), *common], common)
            # Racing threads compute the same bytes; the last assignment wins harmlessly.
            state.rendered[locale] = found
        return found


def cache() -> BannerCache:
    return current_app.extensions[CACHE_EXTENSION].cache


def _not_modified(if_none_match: str, etag: str) -> bool:
    if if_none_match == etag:  # what browsers and CDNs send back: skip parsing
        return True
    return parse_etags(if_none_match).contains_weak(etag.strip('"'))


@bp.get("/v1/banner", provide_automatic_options=False)
def get_banner():
    # The hot path: plain environ reads, headers prepared once per data change.
    endpoint: _Endpoint = current_app.extensions[CACHE_EXTENSION]
    environ = request.environ
    locale, problem = parse_query(environ.get("QUERY_STRING", "").encode("latin-1"))
    if problem is not None:
        raise ApiError(400, "invalid_query", problem)
    state = endpoint.cache.get()
    if state is None or state.snapshot is None:
        raise ApiError(
            503,
            "banner_unavailable",
            UNAVAILABLE_MESSAGES.get(state.reason if state else None, UNAVAILABLE_MESSAGES[None]),
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
        )
    if state.stale:
        metrics.banner_served_stale()
    body, etag, headers, headers_304 = endpoint.rendered(state, locale)
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None and _not_modified(if_none_match, etag):
        response = Response(status=304, headers=headers_304)
    else:
        response = Response(body, headers=headers)
    origin = environ.get("HTTP_ORIGIN")
    if endpoint.allowed(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
    response.cors_done = True
    return response


@bp.route("/v1/banner", methods=["OPTIONS"])
def preflight():
    return current_app.extensions[CACHE_EXTENSION].origins.preflight("GET", "If-None-Match")


@bp.after_request
def _cors(response: Response) -> Response:
    """Errors and preflights: every answer here depends on Origin, so caches must key on it."""
    return current_app.extensions[CACHE_EXTENSION].origins.finish(response)
