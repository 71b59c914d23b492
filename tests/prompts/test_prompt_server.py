"""`POST /v1/prompt` under `membership serve` (granian), over raw sockets: bodies that arrive
slowly, stop half-way or are hostile bytes, and slow senders beside ordinary readers.

The endpoint is plain WSGI and reads the body itself (membership/prompts/http.py); these
check that doing so holds no thread hostage and that whatever a client sends gets a
decision or a JSON 4xx, never a 500.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from tests.support.processes import service_on_own_redis
from tests.support.raw_http import exchange, read_answer

pytestmark = pytest.mark.slow

BODY = json.dumps(
    {
        "reader": "r_3f9c2a1b7d4e",
        "locale": "en",
        "page": {"section": "war", "tags": ["kyiv"], "type": "article"},
        "history": {"articles": {"2026-11-25": 3}},
        "views": [{"campaign": "c", "at": "2026-11-25T10:00:00Z"}],
    }
).encode()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("var")
    # One worker, two threads: an endpoint that waited on slow bodies in its threads would stall.
    with service_on_own_redis(data_dir, {"LOG_LEVEL": "WARNING"}, workers=1, threads=2) as service:
        yield service


def _head(length: int, content_type: str = "application/json") -> bytes:
    return (
        f"POST /v1/prompt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def _decision(status: int, headers: dict, body: bytes) -> dict:
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "private, no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert len(headers["x-request-id"]) == 32
    answer = json.loads(body)
    assert set(answer) == {"prompts", "holdout"}
    return answer


def test_a_body_that_arrives_in_slow_pieces_gets_its_decision(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(_head(len(BODY)))
        for i in range(0, len(BODY), 40):
            s.sendall(BODY[i : i + 40])
            time.sleep(0.05)
        _decision(*read_answer(s))


def test_a_client_gone_half_way_through_its_body_leaves_the_service_answering(service):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", service.port), timeout=5) as s:
            s.sendall(_head(len(BODY)) + BODY[: len(BODY) // 2])
        time.sleep(0.05)
    _decision(*exchange(service.port, _head(len(BODY)) + BODY))


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00{",
        b'{"reader": "r_3f9c2a1b7d4e", "views": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
        b'{"reader": "r_3f9c2a1b7d4e", "x": ' + b"[" * 8000 + b"]" * 8000 + b"}",
        b'{"reader": "r_3f9c2a1b7d4e", "x": "\\ud800", "y": NaN}',
        b'{"reader": "r_3f9c2a1b7d4e", "x": ' + b"9" * 5000 + b"}",
        b'{"reader": "\x00\x00\x00\x00\x00\x00\x00\x00"}',
        b'{"reader": "r_3f9c2a1b7d4e", "views": [{"campaign": "c", "at": "2026-13-45T99:00Z"}]}',
        b"\x00" * 1000,
    ],
    ids=[
        "bom-utf16",
        "nested-views",
        "nested-unknown",
        "surrogate-nan",
        "long-int",
        "nul",
        "bad-at",
        "nuls",
    ],
)
def test_hostile_bytes_get_a_decision_or_a_json_4xx(service, body):
    status, headers, answer = exchange(service.port, _head(len(body)) + body)
    if status == 200:
        _decision(status, headers, answer)
    else:
        assert 400 <= status < 500, (status, answer)
        assert json.loads(answer)["error"]["code"]
    _decision(*exchange(service.port, _head(len(BODY)) + BODY))  # and it goes on answering


def test_a_length_past_16_kib_is_a_413_and_a_false_small_length_a_clean_answer(service):
    status, _, answer = exchange(service.port, _head(20_000) + b"{" * 100)
    assert status == 413 and json.loads(answer)["error"]["code"] == "request_entity_too_large"
    # A length shorter than the body: the first bytes are the body, cut JSON, a 400.
    status, _, answer = exchange(service.port, _head(10) + BODY)
    assert status == 400 and json.loads(answer)["error"]["code"] == "invalid_json"


@pytest.mark.xfail(
    strict=True,
    reason="known, not fixed: granian's WSGI threads wait on a body that is drip-fed (it has "
    "no body read timeout: emmett-framework/granian#728, wontfix), for this endpoint and for "
    "Flask routes alike; README, 'Slow request bodies'",
)
def test_slow_senders_do_not_hold_up_the_readers_beside_them(service):
    """Eight sockets trickle a prompt body a byte every 200 ms (the number that took the
    former server down); ordinary decisions beside them still come back fast."""
    stop = threading.Event()

    def trickle() -> None:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", service.port), timeout=30) as s,
        ):
            s.sendall(_head(len(BODY)))
            for byte in BODY:
                if stop.wait(0.2):
                    return
                s.sendall(bytes([byte]))

    slow = [threading.Thread(target=trickle, daemon=True) for _ in range(8)]
    for t in slow:
        t.start()
    try:
        time.sleep(0.5)
        took = []
        for _ in range(40):
            started = time.monotonic()
            # 2 s: twice what the assertion below allows, so a reader held up fails as soon.
            _decision(*exchange(service.port, _head(len(BODY)) + BODY, timeout=2))
            took.append(time.monotonic() - started)
    finally:
        stop.set()
        for t in slow:
            t.join(timeout=5)
    assert max(took) < 1.0, sorted(took)[-3:]


def test_decisions_are_counted_in_metrics_by_the_real_server(service):
    """Under `membership serve` metrics live in files shared by the workers
    (prometheus-client's multiprocess mode): the endpoint's count lands there too."""
    from tests.support.metrics import requests_total

    def counted() -> float:
        scrape = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        status, _, body = exchange(service.port, scrape)
        assert status == 200
        return requests_total(body.decode(), "/v1/prompt", "200", "POST")

    before = counted()
    for _ in range(12):
        _decision(*exchange(service.port, _head(len(BODY)) + BODY))
    assert counted() - before == 12
