"""HTTP/1.1 spoken by hand over a socket, for tests of what a server does with the bytes
themselves (slow bodies, chunks, oversize requests)."""

from __future__ import annotations

import contextlib
import socket


def parse_answer(raw: bytes) -> tuple[int, dict, bytes]:
    """(status, headers with lower-case names, body) of an answer read whole."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def read_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """The answer on `sock`, read until the server closes it."""
    raw = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            raw += chunk
    return parse_answer(raw)


def exchange(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send `data` to 127.0.0.1:`port` and read the answer; the server may answer and
    close before taking the whole request."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_answer(sock)
