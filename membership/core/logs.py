"""Logging: readable text (the default) or one JSON object a line (`LOG_FORMAT=json`), every
line redacted and made one line (docs/observability.md shows both formats).

`configure_logging(settings)` is idempotent: the app factory calls it in every worker, the
serve process again after the server set up its loggers."""

from __future__ import annotations

import logging
import random
import re
import sys
import threading
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import has_request_context, request
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ENVIRON_KEY = "membership.request_id"
# The id of the request this thread (or task) is answering, bound by the outer layer.
bound_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# The servers' own loggers: their handlers are dropped and they propagate to the root.
SERVER_LOGGERS = ("gunicorn.error", "gunicorn.access", "_granian", "granian", "granian.access")

REDACTED = "[redacted]"
_SECRET_PATTERNS = (
    # Stripe webhook secrets, secret/restricted/publishable keys.
    (re.compile(r"\b(whsec|sk_live|sk_test|rk_live|rk_test)_[A-Za-z0-9+/=_-]+"), r"\1_" + REDACTED),
    # Stripe-Signature's HMACs (v1=<64 hex>, v0=...).
    (re.compile(r"\b(v[01])=[0-9a-fA-F]{16,}"), r"\1=" + REDACTED),
    # Authorization headers.
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 " + REDACTED),
)
# 13-19 digits, optionally grouped by spaces or dashes, that pass the Luhn check.
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match) -> str:
    text = match.group(0)
    if _luhn(re.sub(r"[ -]", "", text)):
        return "[redacted card]"
    # A card beside other numbers ("4242 4242 4242 4242 12/34", a CVC after it): the run
    # is longer than the card. Try each stretch of whole groups that could be one.
    parts = re.split(r"([ -])", text)  # group, separator, group, ...
    groups = parts[::2]
    for i in range(len(groups)):
        for j in range(len(groups), i, -1):
            digits = "".join(groups[i:j])
            if (i, j) != (0, len(groups)) and 13 <= len(digits) <= 19 and _luhn(digits):
                before, after = "".join(parts[: 2 * i]), "".join(parts[2 * j - 1 :])
                return before + "[redacted card]" + after
    return text


# What could split a record into several lines (str.splitlines() breaks at \n, \r, VT,
# FF, FS, GS, RS, NEL, LS and PS) or make it read otherwise than it is: every control
# character (C0, DEL, C1), the line and paragraph separators, the bidirectional embeddings,
# overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _text_escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def one_line(text: str) -> str:
    """`text` with every character that could break or disguise a log line escaped
    (`\\n`, `\\x85`, `\\u2028`): what the text format writes."""
    return _UNSAFE.sub(_text_escape, text)


def _json_escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def one_json_line(text: str) -> str:
    """A JSON document with the characters json.dumps leaves raw (DEL, C1, U+2028, U+2029,
    the bidirectional controls: it escapes only C0) escaped as `\\uXXXX`: still the same
    JSON, on one line. They can only be inside strings: JSON's own syntax is ASCII."""
    return _UNSAFE.sub(_json_escape, text)


class _Redactor:
    def __init__(self) -> None:
        self.literals: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return _CARD.sub(_card, text)


redact = _Redactor()


def request_id() -> str | None:
    """This request's id (the client's, when valid, else a new one); None outside a request."""
    bound = bound_request_id.get()
    if bound is not None:
        return bound
    if not has_request_context():  # a Flask request context without the outer layer (tests)
        return None
    return request_id_of(request.environ)


def request_id_of(environ: dict) -> str:
    """The id of the request `environ` describes, made once and kept in it."""
    found = environ.get(_ENVIRON_KEY)
    if found is None:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        found = given if _REQUEST_ID.fullmatch(given) else new_request_id()
        environ[_ENVIRON_KEY] = found
    return found


def new_request_id() -> str:
    """A random UUID (version 4) as 32 hex digits. From `random`, which reseeds itself in a
    forked worker, not uuid4's os.urandom: a system call per request that lets go of the
    GIL, for an id that is not a secret."""
    return uuid.UUID(int=random.getrandbits(128), version=4).hex


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id()
        if rid is not None:
            record.request_id = rid
        return True


class RedactFilter(logging.Filter):
    """For handlers that are not ours: the message is redacted, and made one line, before
    they format it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = one_line(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class TextFormatter(logging.Formatter):
    """One line a record: a traceback too shows its line breaks as `\\n`."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(redact(super().format(record)))


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, message, process, request_id, exc_info."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        return one_json_line(redact(super().format(record)))


class _Handler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (as logging's last resort
    does); ours, so a second configure_logging replaces it rather than adding another."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


_lock = threading.Lock()


def configure_logging(settings) -> None:
    """Route every logger of this process through one handler in `settings.log_format`."""
    with _lock:
        redact.literals = tuple(
            s
            for s in (
                *settings.stripe_webhook_secrets,
                settings.stripe_api_key,
                settings.secret_key,
                settings.metrics_token,
                settings.staff_api_token,
            )
            if s and len(s) >= 8
        )
        # stripe-python logs two INFO lines per API call ("Request to Stripe api"): noise
        # in our log at INFO; they still show when the service runs at DEBUG.
        logging.getLogger("stripe").setLevel(
            logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
        )
        root = logging.getLogger()
        for old in [h for h in root.handlers if isinstance(h, _Handler)]:
            root.removeHandler(old)
        json_lines = settings.log_format == "json"
        sys.excepthook = _log_uncaught if json_lines else sys.__excepthook__
        threading.excepthook = _log_uncaught_in_thread if json_lines else threading.__excepthook__
        if not json_lines and root.handlers:
            # As logging.basicConfig: a host that set up logging (pytest, an embedding
            # server) keeps its handlers; they still never see a secret.
            for handler in root.handlers:
                if not any(isinstance(f, RedactFilter) for f in handler.filters):
                    handler.addFilter(RedactFilter())
            return
        handler = _Handler()
        handler.setFormatter(JsonLineFormatter() if json_lines else TextFormatter(TEXT_FORMAT))
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
        root.setLevel(settings.log_level)
        adopt_server_loggers()
        logging.captureWarnings(True)


def adopt_server_loggers() -> None:
    """Send the server's loggers through the root handler (call again after the server
    configures them, e.g. after gunicorn's Logger.setup or granian's start-up)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def server_log_config() -> dict:
    """A logging dictConfig for a server's own `log_dictconfig`/`logconfig_dict`: its
    loggers keep no handlers of their own and propagate to the root handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": {},
        "loggers": {name: {"handlers": [], "propagate": True} for name in SERVER_LOGGERS},
    }


def _log_uncaught(exc_type, exc, tb) -> None:
    logging.getLogger("membership").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("membership").critical(
        "uncaught exception in thread %s",
        getattr(args.thread, "name", "?"),
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
