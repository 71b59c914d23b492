"""Load from client processes: one keep-alive raw-socket connection each, requests back to back.

A raw socket and pre-encoded requests: http.client's header parsing cost more CPU than the
servers under test, on a machine where clients and servers share two cores. Shared by
bench/banner.py (one GET) and bench/prompt.py (many POST bodies in turn).
"""

from __future__ import annotations

import re
import socket
import time

_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
OK = (b"200", b"202", b"304")


def get(path: str, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def client(args) -> list[int]:
    """(port, requests, offset, start_at, duration) -> latencies in ns: `requests` sent in
    turn from `offset`, back to back from `start_at` for `duration` seconds."""
    port, requests, offset, start_at, duration = args
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies: list[int] = []
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + duration
    now = time.perf_counter_ns
    buffer = b""
    i = offset
    while time.time() < end:
        t0 = now()
        sock.sendall(requests[i % len(requests)])
        i += 1
        while b"\r\n\r\n" not in buffer:
            buffer += _recv(sock)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        if head[9:12] not in OK:
            raise RuntimeError(f"HTTP {head[9:12].decode()}: {head[:200]!r}")
        match = _LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        while len(buffer) < length:
            buffer += _recv(sock)
        buffer = buffer[length:]
        latencies.append(now() - t0)
    sock.close()
    return latencies


def _recv(sock) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise RuntimeError("the server closed the connection")
    return data


def redis_calls(client) -> int:
    """Every command Redis served so far (INFO commandstats), INFO itself left out."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))


def pct(values: list[int], q: float) -> float:
    """The q-quantile of latencies in ns, in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6
