"""The Inspector: one path from an image (or a window of sensor samples) to a logged verdict.

``Inspector.inspect(image | bytes, station, camera) -> Inspection`` is what the HTTP route, the camera
workers and ``jangin inspect`` all call (the route through :meth:`Inspector.inspect_async`, which does
not block the event loop). An inspection: decode (bytes) → micro-batch on the image slot's model →
verdict under the station's rules (per task: detections, class probabilities, anomaly score) → one
``inspections`` row in the log → durable in the write-ahead log (when there is one) → returned.
Process windows go through :meth:`Inspector.score_process` the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from jangin.core import ModelLoadError
from jangin.core._ids import new_id
from jangin.core.detections import Detections
from jangin.inference._images import MAX_PIXELS, decode_checked, sniff
from jangin.inference._rules import (
    RulesConfig,
    decide_anomaly,
    decide_classes,
    decide_detections,
    decide_process,
    ng_classes_of,
)
from jangin.inference.inspection._log import class_scores, inspection_row

if TYPE_CHECKING:
    from jangin.inference._batcher import MicroBatcher
    from jangin.inference.inspection._log import InspectionLog
    from jangin.inference.inspection._models import ModelSlots, ServedModel
    from jangin.inference.inspection._wal import WriteAheadLog

__all__ = ["Inspection", "Inspector"]

#: Classes listed in a classification response.
TOP_K = 3


@dataclass
class _Item:
    image: np.ndarray
    model: ServedModel | None = None  # set by the worker: the model that ran it


@dataclass
class Inspection:
    """One verdict: the ``inspections`` row as logged and the API response.

    Attributes:
        row: The ``inspections`` row.
        response: What ``POST /v1/inspect`` (or ``/v1/process/score``) answers.
        durable: Done once the row is in the write-ahead log (None: no write-ahead log).
    """

    row: dict[str, Any]
    response: dict[str, Any]
    durable: Future[None] | None = field(default=None, repr=False)

    @property
    def inspection_id(self) -> str:
        """The inspection's id."""
        return str(self.row["inspection_id"])

    @property
    def verdict(self) -> str:
        """OK, NG or DOUBTFUL."""
        return str(self.row["verdict"])

    def to_dict(self) -> dict[str, Any]:
        """The API response."""
        return self.response


class Inspector:
    """Decide and log verdicts (see the module docstring).

    Args:
        slots: The served models.
        rules: Verdict rules.
        log: The inspection log (None: log nothing, e.g. ``jangin inspect`` collects the rows itself).
        wal: The write-ahead log (None: a verdict is acknowledged before it is durable).
        batcher: The micro-batcher whose ``run`` is :meth:`run_batch` (None: run each image at once).
        metrics: Prometheus metrics or None.
        max_pixels: Largest image accepted.
    """

    def __init__(
        self,
        slots: ModelSlots,
        rules: RulesConfig,
        *,
        log: InspectionLog | None = None,
        wal: WriteAheadLog | None = None,
        batcher: MicroBatcher | None = None,
        metrics: Any = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        self.slots = slots
        self.rules = rules
        self.log = log
        self.wal = wal
        self.batcher = batcher
        self.metrics = metrics
        self.max_pixels = max_pixels

    # -- running --------------------------------------------------------------------------------

    def run_batch(self, items: list[_Item]) -> list[Any]:
        """Run one micro-batch on the image slot's model (one reference for the whole batch)."""
        model = self.slots.image
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
        return decode_checked(data, max_pixels=self.max_pixels)

    def submit(self, image: np.ndarray) -> tuple[_Item, Future[Any]]:
        """Queue a decoded image (or run it at once without a batcher); returns the item and its future.

        Raises:
            Overloaded: The batcher's queue is full.
        """
        item = _Item(image)
        if self.batcher is not None:
            return item, self.batcher.submit(item)
        fut: Future[Any] = Future()
        try:
            fut.set_result(self.run_batch([item])[0])
        except Exception as exc:
            fut.set_exception(exc)
        return item, fut

    # -- deciding and logging -------------------------------------------------------------------

    def finish(
        self,
        item: _Item,
        out: Any,
        *,
        t0: float,
        data: bytes | None,
        station: str | None,
        camera: str | None,
        source: str | None,
    ) -> Inspection:
        """Decide the verdict of a finished item, log it (durable later: ``Inspection.durable``)."""
        from jangin.inference._anomaly import AnomalyResult, heatmap_overlay
        from jangin.inference._classifier import ClassResult

        model = item.model
        assert model is not None
        rules = self.rules.for_station(station)
        img = item.image
        extra: dict[str, Any] = {}
        heat = amap = None
        dets = Detections.empty(getattr(model.impl, "classes", ()))
        if isinstance(out, AnomalyResult):
            verdict, score, reasons = decide_anomaly(out.score, rules)
            scores = [
                {"name": "anomaly", "value": out.score},
                {"name": "anomaly_raw", "value": out.raw_score},
            ]
            amap = out.anomaly_map
            heat = lambda: heatmap_overlay(img, amap)  # noqa: E731 - made in the flusher, off the request path
        elif isinstance(out, ClassResult):
            ng = ng_classes_of(out.classes, model.impl.version.manifest.extra, rules)
            verdict, score, reasons = decide_classes(out.classes, out.probs, ng, rules)
            top = out.top(TOP_K)
            scores = [
                {"name": f"p_{c}", "value": float(p)} for c, p in zip(out.classes, out.probs, strict=True)
            ]
            extra["classes"] = [{"name": c, "score": round(p, 6), "ng": c in ng} for c, p in top]
        else:
            dets = out
            verdict, score, reasons = decide_detections(dets, rules)
            scores = class_scores(dets)
        keep = self.log is not None and self.log.keep_image(verdict)
        kind = sniff(data) if data else None
        if keep and data is None:
            import cv2

            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            data, kind = (buf.tobytes(), "jpeg") if ok else (None, None)
        return self._log(
            model,
            verdict=verdict,
            score=score,
            reasons=reasons,
            scores=scores,
            dets=dets,
            t0=t0,
            data=data,
            keep=keep,
            kind=kind,
            station=station,
            camera=camera,
            source=source,
            extra=extra,
            heat=heat,
            cache={"image": data, "map": amap, "shape": img.shape[:2]},
            anomaly=amap is not None,
        )

    def _log(
        self,
        model: ServedModel,
        *,
        verdict: str,
        score: float,
        reasons: list[str],
        scores: list[dict[str, Any]],
        dets: Detections,
        t0: float,
        data: bytes | None,
        keep: bool,
        kind: str | None,
        station: str | None,
        camera: str | None,
        source: str | None,
        extra: dict[str, Any],
        heat: Any = None,
        cache: dict[str, Any] | None = None,
        anomaly: bool = False,
    ) -> Inspection:
        ts = datetime.now(UTC)
        iid = new_id("insp")
        latency_ms = (time.perf_counter() - t0) * 1000.0
        kept = bool(keep and data and self.log is not None)
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
            image_uri=self.log.image_uri(iid, ts, "png" if kind == "png" else "jpg") if kept else None,  # type: ignore[union-attr]
            image_sha256=hashlib.sha256(data).hexdigest() if data else None,
            source_uri=source,
        )
        durable = None
        if self.log is not None:
            # Buffer first, then the write-ahead record: see InspectionLog's module docstring for why.
            self.log.add(row, image=data if kept else None, heat_png=heat, cache=cache)
            if self.wal is not None:
                durable = self.wal.append({"row": row}, data if kept else None)
        if self.metrics is not None:
            self.metrics.verdicts.labels(station=station or "", verdict=verdict).inc()
            self.metrics.latency.labels(station=station or "").observe(latency_ms / 1000.0)
        response = {
            "inspection_id": iid,
            "ts": ts.isoformat(),
            "station": station,
            "camera": camera,
            "model": model.name,
            "model_version": model.version,
            "task": model.kind,
            "runtime": model.runtime,
            "verdict": verdict,
            "score": score,
            "reasons": reasons,
            "scores": {s["name"]: s["value"] for s in scores},
            "detections": row["detections"],
            **extra,
            "anomaly_map_url": f"/v1/inspections/{iid}/anomaly.png" if anomaly else None,
            "image_url": f"/v1/inspections/{iid}/image" if data and self.log is not None else None,
            "image_kept": kept,
            "latency_ms": round(latency_ms, 3),
            "durable": self.wal is not None,
        }
        return Inspection(row, response, durable)

    # -- the three ways in ----------------------------------------------------------------------

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
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """:meth:`finish`, then wait until it is durable; returns the API response (camera workers)."""
        insp = self.finish(item, out, t0=t0, data=data, station=station, camera=camera, source=source)
        if insp.durable is not None:
            insp.durable.result(timeout)
        return insp.response

    def inspect(
        self,
        image: np.ndarray | bytes,
        station: str | None = None,
        camera: str | None = None,
        *,
        source: str | None = None,
        timeout: float = 30.0,
    ) -> Inspection:
        """Inspect one image (BGR array or JPEG/PNG bytes), synchronously, durable when it returns.

        Raises:
            InferenceError: Undecodable or too large an image, no model, a failed run.
            Overloaded: The queue is full.
        """
        t0 = time.perf_counter()
        data = bytes(image) if isinstance(image, bytes | bytearray | memoryview) else None
        img = self.decode(data) if data is not None else image
        item, fut = self.submit(img)  # type: ignore[arg-type]
        out = fut.result(timeout)
        insp = self.finish(item, out, t0=t0, data=data, station=station, camera=camera, source=source)
        if insp.durable is not None:
            insp.durable.result(timeout)
        return insp

    async def inspect_async(
        self, data: bytes, station: str | None, camera: str | None, *, source: str | None, t0: float
    ) -> Inspection:
        """:meth:`inspect` for the event loop: decode inline when small, wait for the model and the
        write-ahead log without blocking."""
        from starlette.concurrency import run_in_threadpool

        # Small images (most line cameras at model size) decode in well under a millisecond: do it here
        # rather than pay a thread hop; large ones go to the thread pool so the event loop stays free.
        img = self.decode(data) if len(data) <= 256 * 1024 else await run_in_threadpool(self.decode, data)
        item, fut = self.submit(img)
        out = await asyncio.wrap_future(fut)
        insp = self.finish(item, out, t0=t0, data=data, station=station, camera=camera, source=source)
        if insp.durable is not None:
            await asyncio.wrap_future(insp.durable)
        return insp

    def score_process(
        self,
        window: Mapping[str, tuple[np.ndarray, np.ndarray]],
        *,
        model: str | None = None,
        station: str | None = None,
        camera: str | None = None,
        source: str | None = None,
        wait: bool = True,
    ) -> Inspection:
        """Score a window of sensor samples with a process model and log the verdict as an inspection.

        Args:
            window: ``{channel: (times_us, values)}``.
            model: ``name[:version]``; default the process slot's model.
            station, camera, source: Recorded with the row (``camera`` may name the sensor box).
            wait: Wait until the row is durable.

        Raises:
            WindowError: A channel the model needs is missing.
            ModelLoadError: No process model.
        """
        t0 = time.perf_counter()
        served = self.slots.process_model(model)
        res = served.impl.score([window])[0]
        verdict, score, reasons = decide_process(
            res.p_ng, served.impl.threshold, self.rules.for_station(station)
        )
        insp = self._log(
            served,
            verdict=verdict,
            score=score,
            reasons=reasons,
            scores=[{"name": "p_ng", "value": res.p_ng}],
            dets=Detections.empty(()),
            t0=t0,
            data=None,
            keep=False,
            kind=None,
            station=station,
            camera=camera,
            source=source,
            extra={"p_ng": res.p_ng, "samples": res.n_samples},
        )
        if wait and insp.durable is not None:
            insp.durable.result(30)
        return insp
