"""Inspections without a server: image files, folders, process windows through the one
:class:`~jangin.inference.inspection.Inspector`, logged to the dataset in one commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jangin.core import JanginError
from jangin.inference._rules import RulesConfig, StationRules

if TYPE_CHECKING:
    from jangin.core import Dataset
    from jangin.inference.inspection import Inspector

__all__ = ["IMAGE_SUFFIXES", "expand_images", "inspect_images"]

log = logging.getLogger(__name__)

#: File suffixes a folder's images are found by.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def expand_images(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders as their image files (recursively, sorted)."""
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield p


def run_images(
    inspector: Inspector,
    images: Iterable[tuple[str, np.ndarray | bytes]],
    *,
    station: str | None,
    camera: str | None,
) -> list[dict[str, Any]]:
    """Inspect ``(source, image)`` pairs with ``inspector``; returns the rows (not logged).

    Raises:
        InferenceError: An image cannot be decoded or processed (the message names its source).
    """
    rows = []
    for source, image in images:
        try:
            insp = inspector.inspect(image, station, camera, source=source)
        except JanginError as exc:
            raise type(exc)(f"{source}: {exc.message}", hint=exc.hint) from exc
        rows.append({**insp.row, "_response": insp.response})
    return rows


def inspect_images(
    ds: Dataset | None,
    detector: Any,
    images: Iterable[tuple[str, np.ndarray | bytes]],
    *,
    station: str | None,
    camera: str | None,
    ng_classes: Sequence[str] | None = None,
    min_conf: float = 0.25,
    rules: RulesConfig | None = None,
) -> list[dict[str, Any]]:
    """Inspect images one at a time with an image model and append one ``inspections`` row per image,
    in one commit.

    Args:
        ds: Dataset whose ``inspections`` table gets the rows; None to log nothing.
        detector: An image model (:class:`OnnxDetector`, :class:`OnnxClassifier`, :class:`OnnxAnomaly`),
            or a :class:`~jangin.inference.inspection.ServedModel`.
        images: ``(source, image)`` pairs: ``source`` is recorded as ``source_uri``; ``image`` is a BGR
            uint8 array or encoded bytes (then its sha256 is recorded).
        station: Station id.
        camera: Camera name.
        ng_classes: Classes that make a part NG (default: the rules', else every defect class).
        min_conf: Smallest score of an NG detection that makes the verdict NG (without ``rules``).
        rules: Verdict rules; default ``ng_classes`` and ``min_conf`` as the only rules.

    Returns:
        The rows (as written; ``detections`` as :meth:`Detections.to_rows`).

    Raises:
        InferenceError: An image cannot be decoded or processed; nothing is written.
        SchemaError, DatasetError: The append failed; nothing is written.
    """
    from jangin.inference.inspection import Inspector, ModelSlots, ServedModel

    served = detector if isinstance(detector, ServedModel) else ServedModel(detector, _kind(detector))
    if rules is None:
        rules = RulesConfig(
            default=StationRules(
                ng_classes=list(ng_classes) if ng_classes is not None else None, min_conf=min_conf
            )
        )
    inspector = Inspector(ModelSlots.of(served), rules)
    rows = run_images(inspector, images, station=station, camera=camera)
    for r in rows:
        r.pop("_response")
    if ds is not None and rows:
        ds.append("inspections", rows, source="inspect")
    log.info("inspected %d image(s): %d NG", len(rows), sum(r["verdict"] == "NG" for r in rows))
    return rows


def _kind(model: Any) -> str:
    from jangin.inference._anomaly import OnnxAnomaly
    from jangin.inference._classifier import OnnxClassifier

    if isinstance(model, OnnxAnomaly):
        return "anomaly"
    if isinstance(model, OnnxClassifier):
        return "classify"
    return "detect"
