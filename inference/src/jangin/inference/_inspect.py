"""Inspections: run a detector on images from the line, decide a verdict, log it to the dataset."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from jangin.core._ids import new_id
from jangin.core.detections import Detections
from jangin.inference._detector import decode_image
from jangin.inference._log import inspection_row

if TYPE_CHECKING:
    from jangin.core import Dataset

__all__ = ["Detector", "inspect_images", "verdict_of"]

log = logging.getLogger(__name__)


class Detector(Protocol):
    """What :func:`inspect_images` needs of a detector (e.g. :class:`OnnxDetector`)."""

    @property
    def name(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]: ...


def verdict_of(dets: Detections, ng_classes: Iterable[str] | None, min_conf: float) -> tuple[str, float]:
    """``("NG", score)`` when a detection of an NG class scores ≥ ``min_conf``, else ``("OK", score)``.

    ``score`` is the highest NG-class score (0.0 when there is none). ``ng_classes`` None means every
    class is a defect. (A full verdict-rules engine comes later.)
    """
    ng = set(dets.classes if ng_classes is None else ng_classes)
    mask = np.array([n in ng for n in dets.names], dtype=bool)
    score = float(dets.scores[mask].max()) if mask.any() else 0.0
    return ("NG" if mask.any() and score >= min_conf else "OK"), score


def inspect_images(
    ds: Dataset | None,
    detector: Detector,
    images: Iterable[tuple[str, np.ndarray | bytes]],
    *,
    station: str | None,
    camera: str | None,
    ng_classes: Sequence[str] | None = None,
    min_conf: float = 0.25,
) -> list[dict[str, Any]]:
    """Inspect images one at a time and append one ``inspections`` row per image, in one commit.

    Args:
        ds: Dataset whose ``inspections`` table gets the rows; None to log nothing.
        detector: The detector (its ``name`` and ``model_version`` go into each row).
        images: ``(source, image)`` pairs: ``source`` is recorded as ``source_uri`` (a file path, a
            camera URI); ``image`` is a BGR uint8 array or encoded bytes (then its sha256 is recorded).
        station: Station id.
        camera: Camera name.
        ng_classes: Classes that make a part NG; default every class.
        min_conf: Smallest score of an NG detection that makes the verdict NG.

    Returns:
        The rows (as written; ``detections`` as :meth:`Detections.to_rows`).

    Raises:
        InferenceError: An image cannot be decoded or processed; nothing is written.
        SchemaError, DatasetError: The append failed; nothing is written.
    """
    rows: list[dict[str, Any]] = []
    for source, image in images:
        sha = None
        t0 = time.perf_counter()
        if isinstance(image, bytes | bytearray | memoryview):
            sha = hashlib.sha256(image).hexdigest()
            image = decode_image(bytes(image))
        dets = detector.predict([image])[0]
        latency_ms = (time.perf_counter() - t0) * 1000.0
        verdict, score = verdict_of(dets, ng_classes, min_conf)
        rows.append(
            inspection_row(
                inspection_id=new_id("insp"),
                ts=datetime.now(UTC),
                station=station,
                camera=camera,
                model=detector.name,
                model_version=detector.model_version,
                verdict=verdict,
                score=score,
                detections=dets,
                latency_ms=latency_ms,
                image_sha256=sha,
                source_uri=source,
            )
        )
    if ds is not None and rows:
        ds.append("inspections", rows, source="inspect")
    log.info("inspected %d image(s): %d NG", len(rows), sum(r["verdict"] == "NG" for r in rows))
    return rows
