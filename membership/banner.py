"""`GET /v1/banner`: the count, the current goal and localized copy, cheap and cacheable.

`view()` is the pure view model (snapshot + locale + settings -> dict). The
blueprint around it gets the snapshot from the per-process `BannerCache`,
serializes each (snapshot, locale) once, and answers with a strong ETag derived
from the body (so every process gives the same one), 304 on If-None-Match,
CDN-friendly Cache-Control, `Vary: Origin` and CORS for ALLOWED_ORIGINS only.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, request
from marshmallow import RAISE, Schema, ValidationError
from marshmallow import fields as mf

from membership import goals, i18n
from membership.banner_cache import (
    REFRESH_SECONDS,
    RETRY_SECONDS,
    BannerCache,
    LastGood,
    Snapshot,
    State,
)
from membership.errors import RETRY_AFTER_SECONDS, ApiError
from membership.runtime import runtime

bp = Blueprint("banner", __name__)

CACHE_EXTENSION = "membership.banner"
STALE_WHILE_REVALIDATE = 300
STALE_IF_ERROR = 86400
PREFLIGHT_MAX_AGE = 86400


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


def serialize(body: dict) -> tuple[bytes, str]:
    """Deterministic bytes and their strong ETag: same data, same ETag, in every process."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


# --- Query -------------------------------------------------------------------


class BannerQuery(Schema):
    class Meta:
        unknown = RAISE

    locale = mf.String(load_default=None)


@lru_cache(maxsize=512)
def parse_query(query_string: bytes) -> tuple[str | None, str | None]:
    """(locale, None) or (None, error message). Cached: the same few URLs come again and again."""
    try:
        raw = parse_qs(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None, "the query string is not valid UTF-8"
    if any(len(values) > 1 for values in raw.values()):
        return None, "each query parameter may be given once"
    try:
        loaded = BannerQuery().load({name: values[0] for name, values in raw.items()})
        return i18n.resolve_locale(loaded["locale"]), None
    except ValidationError as exc:
        name, problems = next(iter(sorted(exc.messages.items())))
        problem = problems[0] if isinstance(problems, list) else problems
        if problem == "Unknown field.":
            return None, f"{name}: unknown query parameter; only locale is accepted"
        return None, f"{name}: {problem}"
    except i18n.CopyError as exc:
        return None, f"locale: {exc}"


# --- HTTP (the shell) --------------------------------------------------------


@bp.record_once
def _attach_cache(state) -> None:
    rt = runtime(state.app)
    extra = rt.settings.extra
    state.app.extensions[CACHE_EXTENSION] = BannerCache(
        rt.redis,
        rt.keys,
        LastGood(rt.settings.data_dir, rt.keys.prefix),
        refresh_seconds=float(extra.get("banner_refresh_seconds", REFRESH_SECONDS)),
        retry_seconds=float(extra.get("banner_retry_seconds", RETRY_SECONDS)),
    )


def cache() -> BannerCache:
    return current_app.extensions[CACHE_EXTENSION]


def _rendered(state: State, locale: str) -> tuple[bytes, str]:
    found = state.rendered.get(locale)
    if found is None:
        settings = runtime().settings
        body = view(
            state.snapshot,
            locale,
            publication=settings.publication_name,
            join_url=settings.join_url,
            stale=state.stale,
        )
        # Racing threads compute the same bytes; the last assignment wins harmlessly.
        found = state.rendered[locale] = serialize(body)
    return found


@bp.get("/v1/banner", provide_automatic_options=False)
def get_banner():
    locale, problem = parse_query(request.query_string)
    if problem is not None:
        raise ApiError(400, "invalid_query", problem)
    state = cache().get()
    if state is None or state.snapshot is None:
        raise ApiError(
            503,
            "banner_unavailable",
            "the member count cannot be read right now and none was seen before; try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
        )
    body, etag = _rendered(state, locale)
    max_age = runtime().settings.banner_max_age
    headers = {
        "Cache-Control": f"public, max-age={max_age}, "
        f"stale-while-revalidate={STALE_WHILE_REVALIDATE}, stale-if-error={STALE_IF_ERROR}",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    inm = request.if_none_match if "If-None-Match" in request.headers else None
    if inm and inm.contains_weak(etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(body, status=200, headers=headers, content_type="application/json")


@bp.route("/v1/banner", methods=["OPTIONS"])
def preflight():
    response = Response(status=204)
    del response.headers["Content-Type"]
    if _allowed_origin() is not None:
        response.headers["Access-Control-Allow-Methods"] = "GET"
        response.headers["Access-Control-Allow-Headers"] = "If-None-Match"
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin.lower() in runtime().settings.allowed_origins:
        return origin
    return None


@bp.after_request
def _cors(response: Response) -> Response:
    # Every answer here depends on Origin (CORS), so shared caches must key on it.
    response.vary.add("Origin")
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response
