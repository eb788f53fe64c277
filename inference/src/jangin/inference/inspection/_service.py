"""The inspection service behind the HTTP API: the model slots, the micro-batcher, the Inspector, the
inspection log and its write-ahead log, reviews and quality statistics; one per app."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from jangin.core import InferenceError, ModelRegistry, NotFoundError
from jangin.inference._anomaly import heatmap_overlay
from jangin.inference._batcher import MicroBatcher
from jangin.inference._images import decode_checked, sniff
from jangin.inference._rules import RulesConfig, load_rules
from jangin.inference.inspection._config import InferenceConfig
from jangin.inference.inspection._inspector import Inspector
from jangin.inference.inspection._log import InspectionLog, Retention
from jangin.inference.inspection._models import IMAGE_TASKS, ModelSlots, ServedModel
from jangin.inference.inspection._quality import Quality
from jangin.inference.inspection._reviews import Reviews
from jangin.inference.inspection._wal import WriteAheadLog

if TYPE_CHECKING:
    from concurrent.futures import Future

    from jangin.core import Dataset
    from jangin.inference.inspection._inspector import _Item

__all__ = ["InspectionService"]

log = logging.getLogger(__name__)

#: Where the write-ahead log lives, relative to the dataset root.
WAL_DIR = "wal/inspections"


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    raise TypeError(type(v).__name__)


class InspectionService(Reviews, Quality):
    """Everything the inspection routes need; one per app.

    Args:
        ds: The dataset (inspections, reviews, labels, frames; models under ``models/``).
        config: Server settings.
        rules: Verdict rules; default from ``config.rules``.
        metrics: Prometheus metrics (see ``server``), or None.
    """

    def __init__(
        self, ds: Dataset, config: InferenceConfig, *, rules: RulesConfig | None = None, metrics: Any = None
    ) -> None:
        self.ds = ds
        self.config = config
        self.rules = rules or load_rules(config.rules)
        self.registry = ModelRegistry(ds.models_dir)
        self.metrics = metrics
        self.wal = WriteAheadLog(ds.root / WAL_DIR) if config.durable else None
        self.log = InspectionLog(
            ds,
            flush_s=config.flush_s,
            retention=Retention(config.keep_days, config.keep_max, config.ok_sample_every),
            wal=self.wal,
        )
        self.slots = ModelSlots(self.registry, providers=config.providers, min_conf=self.rules.lowest_score)
        self.inspector = Inspector(
            self.slots, self.rules, log=self.log, wal=self.wal, metrics=metrics, max_pixels=config.max_pixels
        )
        self.batcher = MicroBatcher(
            self.inspector.run_batch,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.max_queue,
            on_depth=self._depth,
        )
        self.inspector.batcher = self.batcher
        self._review_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Replay the write-ahead log, load the configured models, start the batcher and the log."""
        if self.wal is not None:
            self.log.replay()
            self.wal.start()
        elif WriteAheadLog(self.ds.root / WAL_DIR).segments():  # left by a durable run: commit it anyway
            InspectionLog(self.ds, wal=WriteAheadLog(self.ds.root / WAL_DIR)).replay()
        ref = self.config.model or self.slots.default_ref(IMAGE_TASKS)
        if ref and self.slots.image is None:
            self.slots.activate(ref)
        pref = self.config.process_model or self.slots.default_ref(("process",))
        if pref and self.slots.process is None:
            try:
                self.slots.activate(pref)
            except InferenceError as exc:  # a broken process model must not keep the image line down
                log.error("process model %s not served: %s", pref, exc)
        self.batcher.start()
        self.log.start()

    def stop(self) -> None:
        """Drain the batcher, make the last verdicts durable, commit the log."""
        self.batcher.stop()
        if self.wal is not None:
            self.wal.stop()
        self.log.close()

    def _depth(self, depth: int) -> None:
        if self.metrics is not None:
            self.metrics.queue.set(depth)

    # -- models ---------------------------------------------------------------------------------

    @property
    def model(self) -> ServedModel | None:
        """The model new image inspections run on."""
        return self.slots.image

    def activate(
        self, ref: str, version: str | None = None, *, promote: bool = False, runtime: str | None = None
    ) -> ServedModel:
        """Load, warm and hot-swap ``ref`` into its slot (see :meth:`ModelSlots.activate`)."""
        return self.slots.activate(ref, version, promote=promote, runtime=runtime)

    def models(self) -> list[dict[str, Any]]:
        """Every model version in the registry, marking the registry's ACTIVE and the ones serving."""
        out = []
        for mv in self.registry.list():
            m = mv.manifest
            out.append(
                {
                    "name": m.name,
                    "version": m.version,
                    "task": m.task,
                    "classes": m.classes,
                    "created_at": m.created_at.isoformat(),
                    "metrics": m.metrics,
                    "registry_active": self.registry.active(m.name) == m.version,
                    "serving": self.slots.serving(m.name, m.version),
                }
            )
        return out

    # -- inspecting (the Inspector's, for the camera workers and older callers) -----------------

    def decode(self, data: bytes) -> np.ndarray:
        """Check and decode request bytes."""
        return self.inspector.decode(data)

    def submit(self, image: np.ndarray) -> tuple[_Item, Future[Any]]:
        """Queue a decoded image; returns the item and its future."""
        return self.inspector.submit(image)

    def record(self, item: _Item, out: Any, **kw: Any) -> dict[str, Any]:
        """Decide, log and make durable a finished item; returns the API response."""
        return self.inspector.record(item, out, **kw)

    def inspect_array(
        self, img: np.ndarray, *, station: str | None, camera: str | None, source: str | None
    ) -> dict[str, Any]:
        """Inspect a decoded image synchronously."""
        return self.inspector.inspect(img, station, camera, source=source).response

    # -- reading the log ------------------------------------------------------------------------

    def get(self, inspection_id: str) -> dict[str, Any]:
        """One inspection row (from the recent cache or the table).

        Raises:
            NotFoundError: No such inspection.
        """
        hit = self.log.recent(inspection_id)
        if hit is not None:
            return dict(hit["row"])
        self.log.flush()
        con = self.ds.connect()
        try:
            rows = (
                con.sql("SELECT * FROM inspections WHERE inspection_id = ? LIMIT 1", params=[inspection_id])
                .to_arrow_table()
                .to_pylist()
            )
        finally:
            con.close()
        if not rows:
            raise NotFoundError(f"no inspection {inspection_id!r}")
        return rows[0]

    def image_bytes(self, inspection_id: str) -> tuple[bytes, str]:
        """The inspected image and its media type.

        Raises:
            NotFoundError: No such inspection, or its image was not kept (or retention removed it).
        """
        hit = self.log.recent(inspection_id)
        if hit is not None and hit.get("image"):
            data = hit["image"]
            return data, "image/png" if sniff(data) == "png" else "image/jpeg"
        row = self.get(inspection_id)
        uri = row.get("image_uri")
        if not uri:
            raise NotFoundError(
                f"the image of inspection {inspection_id} was not kept (OK images are sampled)"
            )
        root = self.ds.root.resolve()
        p = (root / uri).resolve()
        if not p.is_relative_to(root / "media") or not p.is_file():
            raise NotFoundError(f"the image of inspection {inspection_id} is gone (retention)")
        return p.read_bytes(), "image/png" if p.suffix == ".png" else "image/jpeg"

    def overlay(self, inspection_id: str) -> bytes:
        """JPEG of the image with the detection boxes drawn on it."""
        import cv2

        row = self.get(inspection_id)
        data, _ = self.image_bytes(inspection_id)
        img = decode_checked(data, max_pixels=self.config.max_pixels)
        h, w = img.shape[:2]
        for d in row.get("detections") or []:
            x1, y1, x2, y2 = (int(v * s) for v, s in zip(d["bbox_xyxy_norm"], (w, h, w, h), strict=True))
            cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), max(1, w // 300))
            cv2.putText(
                img,
                f"{d['name']} {d['score']:.2f}",
                (x1, max(10, y1 - 3)),
                cv2.FONT_HERSHEY_SIMPLEX,
                max(0.3, w / 1200),
                (0, 0, 255),
                1,
                cv2.LINE_AA,
            )
        ok, buf = cv2.imencode(".jpg", img)
        if not ok:
            raise InferenceError("cannot encode the overlay")
        return buf.tobytes()

    def anomaly_png(self, inspection_id: str) -> bytes:
        """PNG heat map overlay of an anomaly inspection.

        Raises:
            NotFoundError: Not an anomaly inspection, or neither cached nor kept.
        """
        hit = self.log.recent(inspection_id)
        if hit is not None and hit.get("map") is not None and hit.get("image"):
            img = decode_checked(hit["image"], max_pixels=self.config.max_pixels)
            return heatmap_overlay(img, hit["map"])
        row = self.get(inspection_id)
        if row.get("image_uri"):
            p = (self.ds.root / row["image_uri"]).with_name(f"{inspection_id}.heat.png")
            if p.is_file():
                return p.read_bytes()
        raise NotFoundError(f"no anomaly map for inspection {inspection_id}")

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        station: str | None = None,
        verdict: list[str] | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        reviewed: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Inspections, newest first, with their latest review (flushes the buffer first)."""
        self.log.flush()
        where, params = ["TRUE"], []
        for cond, val in (
            ("i.ts >= ?", since),
            ("i.ts < ?", until),
            ("i.station = ?", station),
            ("i.score >= ?", min_score),
            ("i.score <= ?", max_score),
        ):
            if val is not None:
                where.append(cond)
                params.append(val)
        if verdict:
            where.append(f"i.verdict IN ({', '.join('?' * len(verdict))})")
            params.extend(verdict)
        if reviewed is not None:
            where.append("r.inspection_id IS NOT NULL" if reviewed else "r.inspection_id IS NULL")
        sql = f"""
            SELECT i.inspection_id, i.ts, i.station, i.camera, i.model, i.model_version, i.verdict, i.score,
                   i.scores, i.detections, i.latency_ms, i.image_uri, i.source_uri,
                   r.verdict AS review_verdict, r.reviewer, r.comment AS review_comment, r.ts AS reviewed_at
            FROM inspections i LEFT JOIN (
                SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY inspection_id ORDER BY ts DESC) AS rn
                               FROM reviews) WHERE rn = 1) r ON r.inspection_id = i.inspection_id
            WHERE {" AND ".join(where)} ORDER BY i.ts DESC LIMIT ? OFFSET ?"""
        con = self.ds.connect()
        try:
            rows = con.sql(sql, params=[*params, int(limit), int(offset)]).to_arrow_table().to_pylist()
        finally:
            con.close()
        return json.loads(json.dumps(rows, default=_json_default))
