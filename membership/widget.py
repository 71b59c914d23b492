"""The embeddable widget (`GET /static/banner.js`) and an example article that embeds it.

`/demo/article?locale=en|uk` is a realistic news article page with the widget in
place, for staff to look at and for the browser tests.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, render_template, request

from membership.banner import parse_query
from membership.errors import ApiError
from membership.runtime import runtime

bp = Blueprint("widget", __name__)

SCRIPT = Path(__file__).parent / "static" / "banner.js"
# The URL is not versioned, so a deploy must show up within the hour.
SCRIPT_CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"


@lru_cache(maxsize=1)
def _script() -> tuple[bytes, str]:
    body = SCRIPT.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:32]


@bp.get("/static/banner.js")
def script():
    body, etag = _script()
    response = Response(body, content_type="text/javascript; charset=utf-8")
    response.set_etag(etag)
    response.headers["Cache-Control"] = SCRIPT_CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


@bp.get("/demo/article")
def article():
    locale, problem = parse_query(request.query_string)
    if problem is not None:
        raise ApiError(400, "invalid_query", problem)
    html = render_template(
        "demo_article.html", locale=locale, publication=runtime().settings.publication_name
    )
    return Response(
        html, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )
