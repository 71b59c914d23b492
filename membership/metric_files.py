"""Each process's metrics file, made so that a full filesystem never kills the process.

prometheus-client's multiprocess mode keeps a process's values in a file mapped into its
memory (`prometheus_client.mmap_dict.MmapedDict`). It makes the file, and later doubles it,
with `truncate`, which leaves the new part sparse: a page gets its disk space only when the
process first writes to it through the mapping. On a full filesystem there is no page to
give, and the kernel answers that write with SIGBUS: the process dies at once ("Fatal Python
error: Bus error"), with whatever requests it was answering.

`AllocatedMmapedDict` reserves the space before it maps it (`posix_fallocate`, which fails
with an ordinary ENOSPC), so every page it writes through the mapping is already there.
When the space cannot be had, or the file cannot be made at all, the values go on in this
process's private memory and the file keeps what it last held (a scrape shows those values,
late but whole). At most once a second a write tries again; once there is room the file is
written whole aside and renamed over the old one, so no count is lost, only late.

`membership.metrics` puts it in place of prometheus-client's class when it turns on the
multiprocess mode.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import time

from prometheus_client import mmap_dict

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
_HEADER = 8  # the used length (4 bytes) and 4 bytes of padding


def entry_size(key: str) -> int:
    """The bytes `MmapedDict._init_value` appends for `key`: its length, the key padded to 8
    bytes, then the value and the timestamp (two doubles)."""
    encoded = len(key.encode("utf-8"))
    return 4 + encoded + (8 - (encoded + 4) % 8) + 16


def _private(size: int) -> mmap.mmap:
    """Plain process memory with the mapping's interface: nothing on disk to run out of."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)


class AllocatedMmapedDict(mmap_dict.MmapedDict):
    """prometheus-client's MmapedDict whose file never holds an unallocated mapped page."""

    def __init__(self, filename, read_mode=False):
        self._in_memory = False
        self._retry_at = 0.0
        if read_mode:  # reading maps nothing that needs space
            super().__init__(filename, read_mode=True)
            return
        self._fname = filename
        self._f = None
        try:
            size = os.stat(filename).st_size
        except OSError:
            size = 0
        if size:
            # Its own file from before (a pid used again, as prometheus-client allows):
            # reserve what it already spans, then open it as prometheus-client does.
            try:
                fd = os.open(filename, os.O_RDWR)
                try:
                    os.posix_fallocate(fd, 0, size)
                finally:
                    os.close(fd)
                super().__init__(filename)
                return
            except OSError as exc:
                self._start_in_memory(_read_whole(filename, size), exc)
                return
        self._capacity = mmap_dict._INITIAL_MMAP_SIZE
        self._m = _private(self._capacity)
        self._used = _HEADER
        mmap_dict._pack_integer(self._m, 0, self._used)
        self._positions = {}
        self._in_memory = True
        self._attach(first=True)

    # --- prometheus-client's interface -----------------------------------------------

    def _init_value(self, key):
        needed = self._used + entry_size(key)
        if needed > self._capacity:
            capacity = self._capacity
            while needed > capacity:
                capacity *= 2
            self._grow(capacity)
        super()._init_value(key)  # the room is there: it only writes

    def write_value(self, key, value, timestamp):
        if self._in_memory and time.monotonic() >= self._retry_at:
            self._attach()
        super().write_value(key, value, timestamp)

    def close(self):
        if getattr(self, "_m", None) is not None:
            self._m.close()
            self._m = None
        if getattr(self, "_f", None) is not None:
            self._f.close()
            self._f = None

    # --- room ------------------------------------------------------------------------

    def _grow(self, capacity: int) -> None:
        if not self._in_memory:
            try:
                os.posix_fallocate(self._f.fileno(), 0, capacity)
                self._m = mmap.mmap(self._f.fileno(), capacity)
                self._capacity = capacity
                return
            except OSError as exc:
                self._move_to_memory(exc)
        grown = _private(capacity)
        grown[: self._capacity] = self._m[: self._capacity]
        self._m = grown
        self._capacity = capacity

    def _move_to_memory(self, exc: OSError) -> None:
        """Go on counting in memory; the file keeps what it holds until `_attach`."""
        copy = _private(self._capacity)
        copy[:] = self._m[: self._capacity]
        self._m = copy
        self._in_memory = True
        self._retry_at = time.monotonic() + RETRY_SECONDS
        log.warning(
            "metrics: cannot grow %s (%s); counting in memory until there is room",
            self._fname,
            exc.strerror or exc,
        )

    def _start_in_memory(self, content: bytes, exc: OSError) -> None:
        capacity = mmap_dict._INITIAL_MMAP_SIZE
        while capacity < len(content):
            capacity *= 2
        self._capacity = capacity
        self._m = _private(capacity)
        self._m[: len(content)] = content
        self._used = mmap_dict._unpack_integer(self._m, 0)[0] or _HEADER
        mmap_dict._pack_integer(self._m, 0, self._used)
        self._positions = {key: pos for key, _, _, pos in self._read_all_values()}
        self._in_memory = True
        self._retry_at = time.monotonic() + RETRY_SECONDS
        log.warning(
            "metrics: cannot use %s (%s); counting in memory until there is room",
            self._fname,
            exc.strerror or exc,
        )

    def _attach(self, first: bool = False) -> bool:
        """Write everything counted so far to a file with all its space reserved, put it in
        place (rename) and map it. False, and a later retry, when there is no room yet."""
        tmp = f"{self._fname}.{os.getpid()}.new"  # not *.db: scrapes never read it
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            return self._still_in_memory(exc, first)
        try:
            os.posix_fallocate(fd, 0, self._capacity)
            mapped = mmap.mmap(fd, self._capacity)
            mapped[_HEADER : self._used] = self._m[_HEADER : self._used]
            mapped[:_HEADER] = self._m[:_HEADER]  # how much is used: last
            os.replace(tmp, self._fname)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return self._still_in_memory(exc, first)
        old_file, old_map = self._f, self._m
        self._f = open(fd, "a+b")  # noqa: SIM115 - kept open as prometheus-client keeps its own
        self._m = mapped
        self._in_memory = False
        old_map.close()
        if old_file is not None:
            old_file.close()
        if not first:
            log.warning("metrics: %s is written again", self._fname)
        return True

    def _still_in_memory(self, exc: OSError, first: bool) -> bool:
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if first:
            log.warning(
                "metrics: cannot make %s (%s); counting in memory until there is room",
                self._fname,
                exc.strerror or exc,
            )
        return False


def _read_whole(filename: str, size: int) -> bytes:
    try:
        with open(filename, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""
