"""The inspection write-ahead log: a verdict (and its image) is on disk before its 2xx.

Records are appended to segment files ``seg-<n>.wal`` by one writer thread that takes every record
waiting, writes them and calls ``fsync`` once (group commit: many requests share one fsync; while one
fsync runs, the next group gathers). :meth:`WriteAheadLog.append` returns a future that is done when
the record is durable; the HTTP route answers only then.

The inspection log seals the current segment (:meth:`rotate`) as it takes its buffer for a Delta
commit, and deletes sealed segments once that commit succeeded (:meth:`drop_through`); what a crash
leaves is replayed into the ``inspections`` table on the next start, keyed by ``inspection_id`` so a
replay never duplicates a row.

Record layout: ``b"JWAL"``, then little-endian ``u32`` header length, ``u32`` blob length and the
``crc32`` of header + blob, then the JSON header and the blob (the image, or nothing). A torn record at
the end of a segment (a crash mid-write, never acknowledged) ends that segment's replay.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from jangin.core import InferenceError

__all__ = ["WalError", "WriteAheadLog", "decode_row", "encode_row"]

log = logging.getLogger(__name__)

MAGIC = b"JWAL"
_HEAD = struct.Struct("<4sIII")


class WalError(InferenceError):
    """The write-ahead log cannot be written (disk full, permissions): the verdict is not acknowledged."""


def _default(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    raise TypeError(type(v).__name__)


def _hook(d: dict[str, Any]) -> Any:
    if len(d) == 1 and "$dt" in d:
        return datetime.fromisoformat(d["$dt"])
    return d


def encode_row(header: dict[str, Any], blob: bytes | None) -> bytes:
    """One record (see the module docstring)."""
    h = json.dumps(header, default=_default, separators=(",", ":")).encode()
    b = blob or b""
    return _HEAD.pack(MAGIC, len(h), len(b), zlib.crc32(b, zlib.crc32(h))) + h + b


def decode_row(buf: bytes, pos: int) -> tuple[dict[str, Any], bytes | None, int] | None:
    """The record at ``pos`` and the position after it, or None at the end or at a torn record."""
    if pos + _HEAD.size > len(buf):
        return None
    magic, hn, bn, crc = _HEAD.unpack_from(buf, pos)
    start, end = pos + _HEAD.size, pos + _HEAD.size + hn + bn
    if magic != MAGIC or end > len(buf):
        return None
    h, b = buf[start : start + hn], buf[start + hn : end]
    if zlib.crc32(b, zlib.crc32(h)) != crc:
        return None
    return json.loads(h, object_hook=_hook), (b or None), end


class WriteAheadLog:
    """Append-only, group-committed segments under ``directory`` (see the module docstring).

    Args:
        directory: Where the segments live (created).
        fsync: Call ``fsync`` per group (off only in tests that measure the rest).
    """

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.dir = Path(directory)
        self.fsync = fsync
        self._cv = threading.Condition()
        self._pending: list[tuple[bytes, Future[None]]] = []
        self._io = threading.Lock()
        self._file: Any = None
        self._seq = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self.groups = 0
        self.records = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """The segment files, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob("seg-*.wal"), key=lambda p: int(p.stem.split("-")[1]))

    def start(self) -> None:
        """Open a new segment (after every existing one) and start the writer (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        segs = self.segments()
        self._seq = int(segs[-1].stem.split("-")[1]) if segs else 0
        self._open_next()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="jangin-inspection-wal", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is waiting, then stop the writer and close the segment."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._io:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _open_next(self) -> None:
        self._seq += 1
        self._file = open(self.dir / f"seg-{self._seq:08d}.wal", "ab")  # noqa: SIM115 - kept open
        if self.fsync:  # the new file's directory entry is durable before any record in it counts
            fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- writing --------------------------------------------------------------------------------

    def append(self, header: dict[str, Any], blob: bytes | None = None) -> Future[None]:
        """Queue one record; the future is done once it is durable (or fails with :class:`WalError`)."""
        rec = encode_row(header, blob)
        fut: Future[None] = Future()
        with self._cv:
            if self._stop or self._thread is None:
                fut.set_exception(WalError("the write-ahead log is not running"))
                return fut
            self._pending.append((rec, fut))
            self._cv.notify()
        return fut

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stop:
                    self._cv.wait()
                batch, self._pending = self._pending, []
                if not batch and self._stop:
                    return
            try:
                with self._io:
                    self._file.write(b"".join(r for r, _ in batch))
                    self._file.flush()
                    if self.fsync:
                        os.fsync(self._file.fileno())
            except (OSError, ValueError, AttributeError) as exc:
                err = WalError(f"cannot write the inspection write-ahead log in {self.dir}: {exc}")
                for _, f in batch:
                    f.set_exception(err)
                continue
            self.groups += 1
            self.records += len(batch)
            for _, f in batch:
                f.set_result(None)

    def rotate(self) -> int:
        """Seal the current segment (later records go to a new one); returns the sealed segment's number."""
        with self._io:
            sealed = self._seq
            if self._file is not None:
                self._file.close()
                self._open_next()
            return sealed

    def drop_through(self, seq: int) -> int:
        """Delete sealed segments numbered up to ``seq`` (their rows are committed); returns how many."""
        n = 0
        for p in self.segments():
            if int(p.stem.split("-")[1]) <= seq and int(p.stem.split("-")[1]) != self._seq:
                p.unlink(missing_ok=True)
                n += 1
        return n

    # -- reading --------------------------------------------------------------------------------

    def read(self) -> Iterator[tuple[dict[str, Any], bytes | None]]:
        """Every intact record of every segment, oldest first."""
        for p in self.segments():
            buf = p.read_bytes()
            pos = 0
            while (rec := decode_row(buf, pos)) is not None:
                header, blob, pos = rec
                yield header, blob
            if pos != len(buf):
                log.warning("%s: torn record at byte %d of %d (a crash mid-write); ignored", p, pos, len(buf))
