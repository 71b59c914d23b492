"""What the server does with malformed and oversized bodies, over raw sockets.

Every error carries the service's JSON error body, or no body at all where the
server itself refuses a request the app never sees; never a 500 or a traceback.
"""

import json

import pytest

from tests.support import stripe_payloads as sp
from tests.support.processes import service_on_own_redis
from tests.support.raw_http import exchange

pytestmark = pytest.mark.slow

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("var")
    env = {"STRIPE_WEBHOOK_SECRET": sp.WEBHOOK_SECRET}
    with service_on_own_redis(data_dir, env, workers=1, threads=2) as service:
        yield service


def _chunked(payload_chunks: bytes, signature: str) -> bytes:
    return (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Stripe-Signature: "
        + signature.encode()
        + b"\r\nConnection: close\r\n\r\n"
        + payload_chunks
    )


def _chunks(body: bytes, size: int = 65536) -> bytes:
    out = b"".join(
        b"%x\r\n" % len(body[i : i + size]) + body[i : i + size] + b"\r\n"
        for i in range(0, len(body), size)
    )
    return out + b"0\r\n\r\n"


def _json_error(headers, body) -> dict:
    assert headers["content-type"].startswith("application/json")
    return json.loads(body)["error"]


def test_a_signed_chunked_event_is_read_whole(service):
    payload = sp.body(sp.subscription_event(sp.subscription("sub_chunk", "cus_chunk", "active")))
    status, _, body = exchange(
        service.port, _chunked(_chunks(payload.encode(), 97), sp.sign(payload))
    )
    assert status == 200, body
    assert json.loads(body)["outcome"] == "applied"


def test_a_bad_chunk_size_is_a_400_with_a_json_body_never_a_500(service):
    payload = b'{"id": "evt_x"}'
    status, headers, body = exchange(
        service.port, _chunked(b"zz\r\n" + payload + b"\r\n0\r\n\r\n", sp.sign(payload))
    )
    assert status == 400
    assert _json_error(headers, body)["code"]
    assert "Traceback" not in service.log.read_text()


def test_a_chunked_body_over_1_mib_is_a_413_not_cut_short(service):
    payload = b'{"pad": "' + b"a" * LIMIT + b'"}'
    status, headers, body = exchange(service.port, _chunked(_chunks(payload), sp.sign(payload)))
    assert status == 413
    assert _json_error(headers, body)["code"] == "request_entity_too_large"


def test_a_declared_length_over_1_mib_is_a_413(service):
    request = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
        b"Stripe-Signature: t=1,v1=00\r\nConnection: close\r\n\r\n" % (LIMIT + 1)
    )
    status, headers, body = exchange(service.port, request + b"a" * 1024)
    assert status == 413
    assert _json_error(headers, body)["code"] == "request_entity_too_large"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/banner HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n",
        b"GET /v1/banner HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
    ],
    ids=["request-line", "header-line", "headers-over-1mb", "content-length"],
)
def test_a_request_the_server_refuses_gets_a_4xx_with_no_body(service, request_bytes):
    status, headers, body = exchange(service.port, request_bytes)
    assert 400 <= status < 500
    assert body == b""
    assert headers.get("content-length", "0") == "0"
