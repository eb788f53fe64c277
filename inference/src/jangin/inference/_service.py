"""The inspection service behind the HTTP API: the active model (hot-swappable), the micro-batcher,
the verdict rules, the inspection log, reviews and control charts."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jangin.core import InferenceError, ModelLoadError, ModelRegistry, ModelVersion, NotFoundError
from jangin.core._ids import new_id, stable_id
from jangin.core.detections import Detections
from jangin.core.schema import LabelRow, ReviewRow
from jangin.inference._anomaly import AnomalyResult, OnnxAnomaly, heatmap_overlay
from jangin.inference._batcher import MicroBatcher
from jangin.inference._detector import OnnxDetector
from jangin.inference._images import MAX_PIXELS, decode_checked, sniff
from jangin.inference._log import InspectionLog, Retention, class_scores, inspection_row
from jangin.inference._rules import RulesConfig, decide_anomaly, decide_detections, load_rules
from jangin.inference._spc import Chart, p_chart, xbar_chart

if TYPE_CHECKING:
    from jangin.core import Dataset

__all__ = ["InferenceConfig", "InspectionService", "ServedModel"]

log = logging.getLogger(__name__)

#: Session id of the frames made from reviewed inspection images (labels need a session).
REVIEW_SESSION = "line-inspections"
#: The question a review label answers (labels.question): the quality engineer's verdict on the part.
REVIEW_QUESTION = "verdict"


class InferenceConfig(BaseSettings):
    """Settings of the inspection server, from ``JANGIN_INFERENCE_*`` environment variables.

    Attributes:
        model: ``name[:version]`` served at start; default the registry's first model with an ACTIVE
            version (detect or anomaly), else none until ``POST /v1/models/{name}/activate``.
        rules: Verdict rules file (YAML/JSON, see ``jangin.inference._rules``); default built-in rules.
        providers: ONNX Runtime providers, in order; default the best available.
        max_batch: Largest micro-batch (1 disables micro-batching).
        max_wait_ms: Wait this long for a batch to fill (0: run what is waiting at once).
        max_queue: Most inspections waiting; more get 503 + Retry-After.
        flush_s: Longest time an inspection row waits before it is committed.
        keep_days, keep_max, ok_sample_every: Image retention (see :class:`Retention`).
        max_pixels: Largest image accepted (pixels), checked before decoding.
        camera_interval_s: Least time between two inspections of one camera.
    """

    model_config = SettingsConfigDict(env_prefix="JANGIN_INFERENCE_", extra="ignore", frozen=True)

    model: str | None = None
    rules: Path | None = None
    providers: list[str] | None = None
    max_batch: int = Field(default=8, ge=1, le=256)
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    max_queue: int = Field(default=64, ge=1)
    flush_s: float = Field(default=1.0, gt=0, le=60)
    keep_days: int = Field(default=30, ge=0)
    keep_max: int = Field(default=100_000, ge=0)
    ok_sample_every: int = Field(default=20, ge=0)
    max_pixels: int = Field(default=MAX_PIXELS, gt=0)
    camera_interval_s: float = Field(default=0.5, ge=0)


class ServedModel:
    """A detector or an anomaly model behind one interface: ``run(images) -> outputs``."""

    def __init__(self, impl: OnnxDetector | OnnxAnomaly) -> None:
        self.impl = impl
        self.kind = "anomaly" if isinstance(impl, OnnxAnomaly) else "detect"
        self.name = impl.name
        self.version = impl.model_version
        self.loaded_at = datetime.now(UTC)

    @classmethod
    def load(cls, mv: ModelVersion, *, providers: list[str] | None, min_conf: float) -> ServedModel:
        """Load and warm ``mv`` (detector or anomaly model).

        Raises:
            ModelLoadError: A task this server does not serve, or a broken artifact.
        """
        task = mv.manifest.task
        if task == "anomaly":
            return cls(OnnxAnomaly.from_version(mv, providers=providers))
        if task == "detect":
            conf = min(float(mv.manifest.thresholds.get("conf", 0.25)), min_conf)
            return cls(OnnxDetector.from_version(mv, providers=providers, conf=conf))
        raise ModelLoadError(
            f"{mv.name}:{mv.version} is a {task} model; the server serves detect and anomaly models"
        )

    def run(self, images: list[np.ndarray]) -> list[Detections | AnomalyResult]:
        """Run the model on a batch of BGR images."""
        return list(self.impl.predict(images))

    def info(self) -> dict[str, Any]:
        """Name, version, task, classes, thresholds, load time."""
        m = self.impl.version.manifest
        return {
            "name": self.name,
            "version": self.version,
            "task": self.kind,
            "classes": list(m.classes),
            "thresholds": m.thresholds,
            "loaded_at": self.loaded_at.isoformat(),
        }


@dataclass
class _Item:
    image: np.ndarray
    model: ServedModel | None = None  # set by the worker: the model that ran it


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    raise TypeError(type(v).__name__)


class InspectionService:
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
        self.log = InspectionLog(
            ds,
            flush_s=config.flush_s,
            retention=Retention(config.keep_days, config.keep_max, config.ok_sample_every),
        )
        self._model: ServedModel | None = None
        self._swap_lock = threading.Lock()
        self.batcher = MicroBatcher(
            self._run_batch,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.max_queue,
            on_depth=self._depth,
        )
        self._review_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the configured model (if any), start the batcher and the log flusher."""
        ref = self.config.model or self._default_model()
        if ref and self._model is None:
            self.activate(ref)
        self.batcher.start()
        self.log.start()

    def stop(self) -> None:
        """Drain the batcher, flush the log."""
        self.batcher.stop()
        self.log.close()

    def _default_model(self) -> str | None:
        for name in self.registry.names():
            if self.registry.active(name):
                return name
        return None

    def _depth(self, depth: int) -> None:
        if self.metrics is not None:
            self.metrics.queue.set(depth)

    # -- models ---------------------------------------------------------------------------------

    @property
    def model(self) -> ServedModel | None:
        """The model new inspections run on."""
        return self._model

    def activate(self, ref: str, version: str | None = None, *, promote: bool = False) -> ServedModel:
        """Load and warm ``ref`` (``name[:version]``), then swap it in atomically.

        Requests already in a batch finish on the old model; the next batch runs on the new one, so no
        request fails or is dropped during the swap. A model that fails to load leaves the old one serving.

        Args:
            ref: Model name, or ``name:version``.
            version: Version (overrides one in ``ref``); default the active one, else the latest.
            promote: Also mark it ACTIVE in the registry (survives a restart).

        Raises:
            NotFoundError: No such model / version.
            ModelLoadError: It cannot be loaded.
        """
        if version is not None:
            ref = f"{ref.split(':', 1)[0]}:{version}"
        with self._swap_lock:  # one load at a time; inspections are not blocked by it
            mv = self.registry.get(ref, verify=False)
            new = ServedModel.load(mv, providers=self.config.providers, min_conf=self.rules.lowest_score)
            old, self._model = self._model, new
            if promote:
                self.registry.promote(mv.name, mv.version)
        log.info(
            "serving %s:%s (was %s)", new.name, new.version, f"{old.name}:{old.version}" if old else "none"
        )
        return new

    def models(self) -> list[dict[str, Any]]:
        """Every model version in the registry, marking the registry's ACTIVE and the one serving."""
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
                    "serving": bool(
                        self._model and self._model.name == m.name and self._model.version == m.version
                    ),
                }
            )
        return out

    # -- inspecting -----------------------------------------------------------------------------

    def _run_batch(self, items: list[_Item]) -> list[Any]:
        model = self._model  # one reference for the whole batch: a swap cannot split a batch
        if model is None:
            raise ModelLoadError("no model is active", hint="POST /v1/models/{name}/activate (admin)")
        outs = model.run([it.image for it in items])
        if self.metrics is not None:
            self.metrics.batch.observe(len(items))
        for it in items:
            it.model = model
        return outs

    def decode(self, data: bytes) -> np.ndarray:
        """Check and decode request bytes (see :func:`decode_checked`)."""
        return decode_checked(data, max_pixels=self.config.max_pixels)

    def submit(self, image: np.ndarray) -> tuple[_Item, Any]:
        """Queue a decoded image; returns the item and its future."""
        item = _Item(image)
        return item, self.batcher.submit(item)

    def record(
        self,
        item: _Item,
        out: Any,
        *,
        t0: float,
        data: bytes | None,
        station: str | None,
        camera: str | None,
        source: str | None,
    ) -> dict[str, Any]:
        """Decide the verdict of a finished item, log it, and return the API response."""
        model = item.model
        assert model is not None
        rules = self.rules.for_station(station)
        img = item.image
        ts = datetime.now(UTC)
        iid = new_id("insp")
        heat = None
        if isinstance(out, AnomalyResult):
            verdict, score, reasons = decide_anomaly(out.score, rules)
            dets = Detections.empty(model.impl.classes)
            scores = [
                {"name": "anomaly", "value": out.score},
                {"name": "anomaly_raw", "value": out.raw_score},
            ]
            amap = out.anomaly_map
            heat = lambda: heatmap_overlay(img, amap)  # noqa: E731 - made in the flusher, off the request path
        else:
            dets = out
            amap = None
            verdict, score, reasons = decide_detections(dets, rules)
            scores = class_scores(dets)
        keep = self.log.keep_image(verdict)
        kind = sniff(data) if data else None
        if keep and data is None:
            import cv2

            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            data, kind = (buf.tobytes(), "jpeg") if ok else (None, None)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        row = inspection_row(
            inspection_id=iid,
            ts=ts,
            station=station,
            camera=camera,
            model=model.name,
            model_version=model.version,
            verdict=verdict,
            score=score,
            scores=scores,
            detections=dets,
            latency_ms=latency_ms,
            image_uri=self.log.image_uri(iid, ts, "png" if kind == "png" else "jpg")
            if keep and data
            else None,
            image_sha256=hashlib.sha256(data).hexdigest() if data else None,
            source_uri=source,
        )
        self.log.add(
            row,
            image=data if keep else None,
            heat_png=heat,
            cache={"image": data, "map": amap, "shape": img.shape[:2]},
        )
        if self.metrics is not None:
            self.metrics.verdicts.labels(station=station or "", verdict=verdict).inc()
            self.metrics.latency.labels(station=station or "").observe(latency_ms / 1000.0)
        return {
            "inspection_id": iid,
            "ts": ts.isoformat(),
            "station": station,
            "camera": camera,
            "model": model.name,
            "model_version": model.version,
            "task": model.kind,
            "verdict": verdict,
            "score": score,
            "reasons": reasons,
            "scores": {s["name"]: s["value"] for s in scores},
            "detections": row["detections"],
            "anomaly_map_url": f"/v1/inspections/{iid}/anomaly.png" if amap is not None else None,
            "image_url": f"/v1/inspections/{iid}/image" if data else None,
            "image_kept": bool(row["image_uri"]),
            "latency_ms": round(latency_ms, 3),
        }

    def inspect_array(
        self,
        img: np.ndarray,
        *,
        station: str | None,
        camera: str | None,
        source: str | None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Inspect a decoded image synchronously (camera workers)."""
        t0 = time.perf_counter()
        item, fut = self.submit(img)
        out = fut.result(timeout)
        return self.record(item, out, t0=t0, data=None, station=station, camera=camera, source=source)

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

    # -- reviews --------------------------------------------------------------------------------

    def review(
        self, inspection_id: str, verdict: str, *, reviewer: str, comment: str | None = None
    ) -> dict[str, Any]:
        """Record a review: a ``reviews`` row, and a class label (source ``review``) on the inspected
        image, which is stored as a ``frames`` row first (``frame_id = stable_id("frame", "inspection",
        inspection_id)``, ``session_id = "line-inspections"``, ``source_uri = "inspection:<id>"``).
        The label's ``external_id`` is the review id and ``geometry_json`` names the inspection.
        A later review of the same inspection supersedes the earlier label.

        Without a kept or cached image, only the review is recorded (``label_id`` None).

        Raises:
            NotFoundError: No such inspection.
            ValueError: ``verdict`` is not OK or NG.
        """
        if verdict not in ("OK", "NG"):
            raise ValueError(f"review verdict must be OK or NG, got {verdict!r}")
        row = self.get(inspection_id)
        now = datetime.now(UTC)
        review_id = new_id("rev")
        with self._review_lock:
            self.ds.append(
                "reviews",
                [
                    ReviewRow(
                        review_id=review_id,
                        inspection_id=inspection_id,
                        reviewer=reviewer,
                        verdict=verdict,
                        comment=comment,
                        ts=now,
                    )
                ],
                source="review",
            )
            label_id = frame_id = None
            try:
                data, _ = self.image_bytes(inspection_id)
            except NotFoundError:
                data = None
            if data is not None:
                frame_id = self._frame_of(row, data)
                label_id = new_id("lbl")
                prior = self._prior_review_label(frame_id)
                self.ds.append(
                    "labels",
                    [
                        LabelRow(
                            label_id=label_id,
                            target="frame",
                            frame_id=frame_id,
                            session_id=REVIEW_SESSION,
                            kind="class",
                            name=verdict,
                            question=REVIEW_QUESTION,
                            source="review",
                            author=reviewer,
                            created_at=now,
                            supersedes=prior,
                            external_id=review_id,
                            geometry_json=json.dumps(
                                {
                                    "inspection_id": inspection_id,
                                    "review_id": review_id,
                                    "model_verdict": row["verdict"],
                                    "model": f"{row['model']}:{row['model_version']}",
                                }
                            ),
                        )
                    ],
                    source="review",
                )
        return {
            "review_id": review_id,
            "inspection_id": inspection_id,
            "verdict": verdict,
            "model_verdict": row["verdict"],
            "reviewer": reviewer,
            "comment": comment,
            "ts": now.isoformat(),
            "frame_id": frame_id,
            "label_id": label_id,
        }

    def _frame_of(self, row: dict[str, Any], data: bytes) -> str:
        frame_id = stable_id("frame", "inspection", row["inspection_id"])
        existing = self.ds.read(
            "frames",
            columns=["frame_id"],
            filters=[("session_id", "=", REVIEW_SESSION), ("frame_id", "=", frame_id)],
        )
        if existing.num_rows:
            return frame_id
        import cv2

        img = decode_checked(data, max_pixels=self.config.max_pixels)
        if sniff(data) != "jpeg":
            _ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            data = buf.tobytes()
        ts = row["ts"] if isinstance(row["ts"], datetime) else datetime.fromisoformat(str(row["ts"]))
        self.ds.append(
            "frames",
            [
                {
                    "frame_id": frame_id,
                    "session_id": REVIEW_SESSION,
                    "camera": row.get("camera"),
                    "ts": ts,
                    "width": int(img.shape[1]),
                    "height": int(img.shape[0]),
                    "deidentified": False,
                    "source_uri": f"inspection:{row['inspection_id']}",
                    "station": row.get("station"),
                    "image": data,
                }
            ],
            source="review",
        )
        return frame_id

    def _prior_review_label(self, frame_id: str) -> str | None:
        con = self.ds.connect()
        try:
            r = con.execute(
                "SELECT label_id FROM current_labels WHERE frame_id = ? AND source = 'review' "
                "ORDER BY created_at DESC LIMIT 1",
                [frame_id],
            ).fetchone()
        finally:
            con.close()
        return r[0] if r else None

    def precision(self, last: int = 200) -> dict[str, Any]:
        """The model's recent precision as measured by the last ``last`` reviews.

        ``ng_precision``: of reviewed NG verdicts, the fraction reviewers confirmed NG;
        ``ok_agreement``: the same for OK; ``doubtful_ng``: of reviewed DOUBTFUL ones, the fraction NG.
        """
        self.log.flush()
        con = self.ds.connect()
        try:
            rows = con.execute(
                """
                SELECT i.verdict AS model, r.verdict AS review, i.model AS name, i.model_version AS version FROM (
                  SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY inspection_id ORDER BY ts DESC) rn FROM reviews)
                  WHERE rn = 1 ORDER BY ts DESC LIMIT ?) r JOIN inspections i USING (inspection_id)""",
                [last],
            ).fetchall()
        finally:
            con.close()

        def frac(model: str, review: str) -> tuple[float | None, int]:
            sel = [r for r in rows if r[0] == model]
            return (sum(r[1] == review for r in sel) / len(sel) if sel else None), len(sel)

        ng, n_ng = frac("NG", "NG")
        ok, n_ok = frac("OK", "OK")
        dbt, n_dbt = frac("DOUBTFUL", "NG")
        return {
            "reviews": len(rows),
            "ng_precision": ng,
            "ng_reviewed": n_ng,
            "ok_agreement": ok,
            "ok_reviewed": n_ok,
            "doubtful_ng": dbt,
            "doubtful_reviewed": n_dbt,
        }

    # -- control charts -------------------------------------------------------------------------

    def charts(self, *, every: int = 20, last: int = 2000) -> dict[str, dict[str, Chart]]:
        """Per station: a p-chart of the NG rate and an X̄ chart of the mean score, over the last
        ``last`` inspections in subgroups of ``every`` consecutive inspections."""
        if every < 1:
            raise ValueError("every must be at least 1")
        self.log.flush()
        con = self.ds.connect()
        try:
            rows = con.execute(
                """SELECT coalesce(station, '') AS station, ts, verdict, score FROM (
                SELECT * FROM inspections ORDER BY ts DESC LIMIT ?) ORDER BY ts""",
                [last],
            ).fetchall()
        finally:
            con.close()
        by: dict[str, list[tuple[datetime, str, float]]] = {}
        for st, ts, v, s in rows:
            by.setdefault(st, []).append((ts, v, float(s or 0.0)))
        out: dict[str, dict[str, Chart]] = {}
        for st, items in sorted(by.items()):
            groups = [items[i : i + every] for i in range(0, len(items), every)]
            labels = [f"{g[0][0]:%m-%d %H:%M:%S}" for g in groups]
            out[st] = {
                "p": p_chart(
                    [sum(v == "NG" for _, v, _ in g) for g in groups], [len(g) for g in groups], labels
                ),
                "xbar": xbar_chart([[s for _, _, s in g] for g in groups], labels),
            }
        return out
