"""The embeddable widget scripts and an example article that embeds them.

Each script is served as built by scripts/build_widgets.py (`*.min.js` beside the readable
source, committed; each built of readable parts, scripts/build_widgets.py's PARTS), compressed
with brotli or gzip for a client that accepts either.

- `GET /static/banner.js`: the member-count boxes alone, for a page that wants only the count.
- `GET /static/prompt.js`: the paywall-prompt client (asks `POST /v1/prompt`, reports to
  `POST /v1/prompt/events`), which fills the member-count boxes too: the one script an article
  page embeds.
- `GET /static/prompt-banner.js`, `prompt-inline.js`, `prompt-modal.js`, `prompt-gate.js`: the
  renderer (and style) of each placement, which prompt.js loads only once an answer names it.
- `GET /static/prompt-member.js`: the member token's arrival (a sign-in link, Checkout's return)
  and renewal, which prompt.js loads only when the address carries one or the stored token is
  due.
- `GET /static/prompt-checkout.js`: Stripe Checkout for a call to action, which prompt.js loads
  only once the reader clicks one.
- `GET /demo/article?locale=en|uk&n=1..999`: a realistic news article with a count box and
  prompt.js, for staff to look at and for the browser tests: a section and tags, a prompt slot
  at the end (below the fold), and a link to article n+1. It also takes `session_id` (ignored
  here; prompt.js reads it), so it can be CHECKOUT_SUCCESS_URL: `.../demo/article?session_id=
  {CHECKOUT_SESSION_ID}`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import brotli
from flask import Blueprint, Response, render_template, request, url_for

from membership.core.errors import ApiError
from membership.core.runtime import runtime
from membership.goals.banner import parse_query
from membership.http import security

log = logging.getLogger(__name__)
bp = Blueprint("widget", __name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
SCRIPT = STATIC / "banner.js"
PROMPT_SCRIPT = STATIC / "prompt.js"
# The placements, each drawn by a module of its own, by name.
MODULES = {name: STATIC / f"prompt-{name}.js" for name in ("banner", "inline", "modal", "gate")}
# The member token's arrival and renewal, which prompt.js loads only when a page needs it.
MEMBER_MODULE = STATIC / "prompt-member.js"
# Stripe Checkout for a call to action, which prompt.js loads only once the reader clicks one.
CHECKOUT_MODULE = STATIC / "prompt-checkout.js"
# Every module prompt.js may load, served at /static/prompt-NAME.js.
LOADED = {**MODULES, "member": MEMBER_MODULE, "checkout": CHECKOUT_MODULE}
# The URLs are not versioned, so a deploy must show up within the hour.
SCRIPT_CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"
MAX_ARTICLE = 999
_ARTICLE_N = re.compile(r"[1-9][0-9]{0,2}\Z")


def built(path: Path) -> Path:
    """The minified script served for the readable source `path`."""
    return path.with_suffix(".min.js")


def loads(placement: str | None, member: bool = False) -> tuple[Path, ...]:
    """The scripts (readable sources) an article page showing an ask of `placement` (None: no
    ask) loads from us: prompt.js, the placement's module if it has one, and the member module
    if `member` (a token arriving, or due for renewal)."""
    found = [MODULES[placement]] if placement in MODULES else []
    return (PROMPT_SCRIPT, *found, *([MEMBER_MODULE] if member else []))


# The encodings each script is kept in, smallest first: brotli for the browsers that accept it,
# gzip for the rest (docs/benchmarks.md, "Reader page weight").
ENCODINGS = {
    "br": lambda body: brotli.compress(body, mode=brotli.MODE_TEXT, quality=11),
    "gzip": lambda body: gzip.compress(body, 9, mtime=0),
}


def _tag(data: bytes) -> str:
    """An ETag for `data`: 12 characters of its hash (72 bits), short because the headers
    count in the page's weight on the wire."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()[:9]).decode()


@lru_cache(maxsize=len(LOADED) + 2)
def _script(path: Path) -> dict[str | None, tuple[bytes, str]]:
    """Each representation of the script, by its encoding (None: the minified file as it is):
    its bytes and their ETag (each representation validated on its own)."""
    body = built(path).read_bytes()
    kept = {None: body, **{name: encode(body) for name, encode in ENCODINGS.items()}}
    return {coding: (data, _tag(data)) for coding, data in kept.items()}


def _serve(path: Path) -> Response:
    kept = _script(path)
    accepted = request.accept_encodings
    # By the q the client gives, br on a tie.
    coding = max(ENCODINGS, key=lambda name: accepted[name])
    coding = coding if accepted[coding] > 0 else None
    body, etag = kept[coding]
    response = Response(body, content_type="text/javascript; charset=utf-8")
    if coding:
        response.headers["Content-Encoding"] = coding
    response.set_etag(etag)
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = SCRIPT_CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


@bp.get("/static/banner.js")
def script():
    return _serve(SCRIPT)


@bp.get("/static/prompt.js")
def prompt_script():
    return _serve(PROMPT_SCRIPT)


@bp.get(f"/static/prompt-<any({', '.join(LOADED)}):name>.js")
def module_script(name: str):
    return _serve(LOADED[name])


def styles() -> list[str]:
    """The CSS the widget inserts as <style> elements: the look the count boxes and the asks
    share (banner.js's, which prompt.js inserts too), then each placement module's (each under
    its placement's class, so their order does not matter)."""
    found = []
    for path in (SCRIPT, PROMPT_SCRIPT, *MODULES.values()):
        text = path.read_text(encoding="utf-8")
        if "CSS =" not in text:  # prompt.js: its look is banner.js's
            continue
        css = security.widget_css(text)
        if css is None:  # tests/goals/test_widget.py fails first
            log.warning("cannot read the CSS of %s: its style is not allowed by the CSP", path)
        else:
            found.append(css)
    return found


@lru_cache(maxsize=1)
def demo_policy() -> str:
    """The HTML policy of membership.http.security, with each <style> the widget inserts
    allowed by its hash (security.py hashes only banner.js's)."""
    return security.html_policy(security.template_styles() + styles())


def parse_article_query(query_string: bytes) -> tuple[str, int]:
    """(locale, n) of the demo article; ApiError 400 naming the parameter otherwise."""
    try:
        pairs = parse_qsl(query_string.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_query", "the query string is not valid UTF-8") from None
    names = [name for name, _ in pairs]
    for name in names:
        if name not in ("locale", "n", "session_id"):
            raise ApiError(
                400,
                "invalid_query",
                f"{name}: unknown query parameter; only locale, n and session_id are",
            )
        if names.count(name) > 1:
            raise ApiError(400, "invalid_query", "each query parameter may be given once")
    values = dict(pairs)
    values.pop("session_id", None)  # Checkout's return, for the widget: not the page's business
    n = values.pop("n", "1")
    if not _ARTICLE_N.match(n):
        raise ApiError(400, "invalid_query", f"n: expected a whole number from 1 to {MAX_ARTICLE}")
    locale, problem = parse_query(urlencode(values).encode("ascii"))
    if problem is not None:
        raise ApiError(400, "invalid_query", problem)
    return locale, int(n)


@bp.get("/demo/article")
def article():
    locale, n = parse_article_query(request.query_string)
    html = render_template(
        "demo_article.html",
        locale=locale,
        n=n,
        next_url=url_for(
            "widget.article",
            n=n % MAX_ARTICLE + 1,
            locale=None if locale == "en" else locale,
        ),
        publication=runtime().settings.publication_name,
    )
    return Response(
        html,
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": demo_policy()},
    )
