"""The inspection log: buffered appends to ``inspections``, kept images, a recent-results cache.

Rows are buffered in memory and committed by a background thread at least every ``flush_s`` seconds
and on :meth:`InspectionLog.close` (the server's shutdown hook). Each flush is one Delta commit, which is
atomic: a crash loses at most the rows still in the buffer and never leaves a half-written table.
Images are written to ``media/inspections/<day>/<id>.<ext>`` *before* the rows that name them are
committed, so a committed ``image_uri`` always points at a file (a crash can leave an orphan file, which
retention removes).

With a write-ahead log (:class:`~jangin.inference.inspection._wal.WriteAheadLog`, the server's default)
no acknowledged row is lost: each flush seals the log's current segment as it takes the buffer and
deletes the sealed segments once its commit succeeded; :meth:`InspectionLog.replay` commits what a
crash left (once: rows already in the table are skipped by ``inspection_id``).

What is kept: every NG and DOUBTFUL image, one OK image in ``ok_sample_every``; retention deletes day
folders older than ``keep_days`` and the oldest files beyond ``keep_max``.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jangin.core import JanginError
from jangin.core.schema import InspectionRow, record_to_dict

if TYPE_CHECKING:
    from jangin.core import Dataset
    from jangin.core.detections import Detections
    from jangin.inference.inspection._wal import WriteAheadLog

__all__ = ["InspectionLog", "Retention", "class_scores", "inspection_row"]

log = logging.getLogger(__name__)

MEDIA_SUBDIR = "inspections"


def class_scores(dets: Detections) -> list[dict[str, Any]]:
    """The best score of each detected class, as ``inspections.scores`` entries ``max_<class>``."""
    best: dict[str, float] = {}
    for n, s in zip(dets.names, dets.scores, strict=True):
        best[n] = max(best.get(n, 0.0), float(s))
    return [{"name": f"max_{n}", "value": v} for n, v in sorted(best.items())]


def inspection_row(
    *,
    inspection_id: str,
    ts: datetime,
    model: str,
    model_version: str,
    verdict: str,
    score: float | None,
    detections: Detections,
    scores: list[dict[str, Any]] | None = None,
    station: str | None = None,
    camera: str | None = None,
    latency_ms: float | None = None,
    image_uri: str | None = None,
    image_sha256: str | None = None,
    source_uri: str | None = None,
) -> dict[str, Any]:
    """The one builder of an ``inspections`` row (typed :class:`InspectionRow`, returned as a dict
    for the buffer and the recent-results cache). ``scores`` default to :func:`class_scores`."""
    return record_to_dict(
        InspectionRow(
            inspection_id=inspection_id,
            ts=ts,
            station=station,
            camera=camera,
            model=model,
            model_version=model_version,
            verdict=verdict,
            score=score,
            scores=class_scores(detections) if scores is None else scores,
            detections=detections.to_rows(),
            latency_ms=latency_ms,
            image_uri=image_uri,
            image_sha256=image_sha256,
            source_uri=source_uri,
        )
    )


class Retention:
    """Which inspection images are kept, and for how long.

    Args:
        keep_days: Delete day folders older than this.
        keep_max: Keep at most this many images (oldest deleted first).
        ok_sample_every: Keep one OK image in this many (0: none).
    """

    def __init__(self, keep_days: int = 30, keep_max: int = 100_000, ok_sample_every: int = 20) -> None:
        self.keep_days = keep_days
        self.keep_max = keep_max
        self.ok_sample_every = ok_sample_every


class InspectionLog:
    """Buffered writer of the ``inspections`` table plus the kept images (see the module docstring).

    Args:
        ds: The dataset.
        flush_s: Longest time a row waits in the buffer.
        retention: What images to keep.
        cache_size: Recent inspections kept in memory (rows, images, anomaly maps) for the review page.
    """

    def __init__(
        self,
        ds: Dataset,
        *,
        flush_s: float = 1.0,
        retention: Retention | None = None,
        cache_size: int = 512,
        wal: WriteAheadLog | None = None,
    ) -> None:
        self.ds = ds
        self.wal = wal
        self.flush_s = flush_s
        self.retention = retention or Retention()
        self.media = ds.media_dir / MEDIA_SUBDIR
        self._buf: list[tuple[dict[str, Any], bytes | None, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._ok_seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self.flushed_rows = 0
        self.failed_flushes = 0
        self.commits = 0
        self.checkpoint_every = 100
        self.compact_every_s = 3600.0
        self._last_compact = time.monotonic()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="jangin-inspection-log", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the flusher and commit what is buffered (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
                self.maintain()
                if time.monotonic() - self._last_prune > 60:
                    self.prune()
            except Exception:
                log.exception("inspection log flush failed; will retry")

    # -- writing --------------------------------------------------------------------------------

    def keep_image(self, verdict: str) -> bool:
        """Whether an image with this verdict is kept (all NG / DOUBTFUL, OK sampled)."""
        if verdict != "OK":
            return True
        every = self.retention.ok_sample_every
        if every <= 0:
            return False
        with self._lock:
            self._ok_seen += 1
            return self._ok_seen % every == 1 or every == 1

    def image_uri(self, inspection_id: str, ts: datetime, ext: str) -> str:
        """Where an inspection's image goes, relative to the dataset root."""
        return f"media/{MEDIA_SUBDIR}/{ts:%Y-%m-%d}/{inspection_id}.{ext}"

    def add(
        self,
        row: dict[str, Any],
        *,
        image: bytes | None = None,
        heat_png: Callable[[], bytes] | None = None,
        cache: dict[str, Any] | None = None,
    ) -> None:
        """Buffer one row; ``image`` (and the PNG ``heat_png()`` makes, called in the flusher) are written
        before the row is committed, at ``row["image_uri"]`` (and beside it as ``<id>.heat.png``).
        ``cache`` goes to the recent cache."""
        with self._lock:
            self._buf.append(
                (row, image if row.get("image_uri") else None, heat_png if row.get("image_uri") else None)
            )
            self._cache[row["inspection_id"]] = {"row": row, **(cache or {})}
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    @property
    def pending(self) -> int:
        """Rows waiting in the buffer."""
        return len(self._buf)

    def flush(self) -> int:
        """Write the buffered images, then commit the buffered rows as one Delta commit.

        Returns:
            Rows committed. On failure the rows stay buffered (and the error is raised).
        """
        with self._flush_lock:
            with self._lock:
                batch, self._buf = self._buf, []
                # Rows added from here on have their WAL records in the next segment (see the module docs).
                sealed = self.wal.rotate() if self.wal is not None and batch else None
            if not batch:
                return 0
            try:
                for row, image, heat in batch:
                    if image is not None:
                        p = self.ds.root / row["image_uri"]
                        p.parent.mkdir(parents=True, exist_ok=True)
                        p.write_bytes(image)
                        if heat is not None:
                            try:
                                png = heat()
                            except JanginError as exc:  # a missing heat map must not block the log
                                log.warning("heat map of %s: %s", row["inspection_id"], exc)
                            else:
                                p.with_name(f"{row['inspection_id']}.heat.png").write_bytes(png)
                self.ds.append("inspections", [r for r, _, _ in batch], source="inspection log")
            except (JanginError, OSError):
                with self._lock:
                    self._buf[:0] = batch
                self.failed_flushes += 1
                raise
            self.flushed_rows += len(batch)
            self.commits += 1
            if sealed is not None and self.wal is not None:
                self.wal.drop_through(sealed)
            return len(batch)

    def replay(self) -> int:
        """Commit the rows (and write the images) of the write-ahead log that the table lacks, then empty
        the log. Idempotent: ids already in ``inspections`` are skipped. Returns rows committed."""
        if self.wal is None:
            return 0
        import pyarrow as pa

        recs: dict[str, tuple[dict[str, Any], bytes | None]] = {}
        for header, blob in self.wal.read():
            row = header["row"]
            recs[row["inspection_id"]] = (row, blob)
        added = 0
        if recs:
            con = self.ds.connect()
            try:
                con.register("wal_ids", pa.table({"id": list(recs)}))
                have = {
                    r[0]
                    for r in con.execute(
                        "SELECT inspection_id FROM inspections WHERE inspection_id IN (SELECT id FROM wal_ids)"
                    ).fetchall()
                }
            finally:
                con.close()
            rows = []
            for iid, (row, blob) in recs.items():
                if iid in have:
                    continue
                if blob is not None and row.get("image_uri"):
                    p = self.ds.root / row["image_uri"]
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_bytes(blob)
                rows.append(row)
            if rows:
                self.ds.append("inspections", rows, source="inspection log replay")
            added = len(rows)
            log.info(
                "replayed %d inspection(s) from the write-ahead log (%d already committed)", added, len(have)
            )
        for p in self.wal.segments():
            p.unlink(missing_ok=True)
        return added

    def maintain(self, *, force: bool = False) -> None:
        """Keep the ``inspections`` table fast to open under one commit a second: a Delta checkpoint
        every ``checkpoint_every`` commits, and small files compacted every ``compact_every_s`` (a
        compaction is one more atomic commit; time travel keeps the old files until a vacuum)."""
        from deltalake import DeltaTable

        due_ckpt = force or (self.commits and self.commits % self.checkpoint_every == 0)
        due_compact = force or time.monotonic() - self._last_compact > self.compact_every_s
        if not (due_ckpt or due_compact):
            return
        with self._flush_lock:
            dt = DeltaTable(str(self.ds.table_path("inspections")))
            if due_compact:
                self._last_compact = time.monotonic()
                dt.optimize.compact()
                dt = DeltaTable(str(self.ds.table_path("inspections")))
            dt.create_checkpoint()

    def prune(self) -> int:
        """Apply the retention policy to the kept images; returns how many files were deleted."""
        self._last_prune = time.monotonic()
        if not self.media.is_dir():
            return 0
        removed = 0
        cutoff = f"{datetime.now(UTC) - timedelta(days=self.retention.keep_days):%Y-%m-%d}"
        for day in sorted(p for p in self.media.iterdir() if p.is_dir()):
            if day.name < cutoff:
                removed += sum(1 for _ in day.iterdir())
                shutil.rmtree(day, ignore_errors=True)
        files = sorted(
            (p for p in self.media.rglob("*") if p.is_file() and ".heat." not in p.name),
            key=lambda p: (p.parent.name, p.stat().st_mtime),
        )
        for p in files[: max(0, len(files) - self.retention.keep_max)]:
            p.unlink(missing_ok=True)
            p.with_name(p.name.split(".")[0] + ".heat.png").unlink(missing_ok=True)
            removed += 1
        return removed

    # -- reading --------------------------------------------------------------------------------

    def recent(self, inspection_id: str) -> dict[str, Any] | None:
        """The cached entry (``row`` plus what was cached with it) of a recent inspection."""
        with self._lock:
            return self._cache.get(inspection_id)
