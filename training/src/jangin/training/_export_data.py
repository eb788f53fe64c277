"""The dataset view a runtime export is checked and calibrated on: the model's own snapshot and split."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import Dataset, TrainingError
from jangin.core.artifacts import ModelVersion
from jangin.training._export import CheckSet

__all__ = ["check_set_for"]

log = logging.getLogger(__name__)


def check_set_for(
    mv: ModelVersion,
    *,
    dataset: Path | None = None,
    calibration: int = 256,
    max_check: int = 200,
    cache_dir: Path | None = None,
) -> CheckSet:
    """Held-out inputs with labels (test split, else val), ``calibration`` training inputs and, when the
    check is on the test split, the val split to choose INT8 settings on; read at the dataset snapshot
    the model was trained on, split as it was.

    Args:
        mv: The model version.
        dataset: The dataset root; default the one in the manifest.
        calibration: Training inputs for INT8 calibration.
        max_check: At most this many held-out inputs.
        cache_dir: Where a detection set is materialised again if its directory is gone.

    Raises:
        TrainingError: The model's task has no dataset view here, or the dataset is missing.
    """
    m = mv.manifest
    if not (dataset or m.dataset):
        raise TrainingError(f"{mv.name}:{mv.version} names no dataset", hint="pass --dataset")
    root = Path(dataset or m.dataset or "")
    if m.task == "detect":
        return _detect(mv, root, calibration, max_check, cache_dir)
    if m.task == "anomaly":
        return _anomaly(mv, root, calibration, max_check)
    raise TrainingError(
        f"{mv.name}:{mv.version} is a {m.task} model: `jangin models export` reads image models' check sets",
        hint="call jangin.training._export.export_runtime with a CheckSet of its windows",
    )


def _imread(p: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise TrainingError(f"{p} is not a readable image")
    return img


def _detect(
    mv: ModelVersion, root: Path, calibration: int, max_check: int, cache_dir: Path | None
) -> CheckSet:
    from jangin.training._detection_set import SET_MARKER, _load, build_detection_set

    m = mv.manifest
    cfg = m.train_config
    set_dir = Path(cfg.get("set") or "")
    if cfg.get("set") and (set_dir / SET_MARKER).is_file():
        data = _load(set_dir)
    else:
        params: dict[str, Any] = dict(cfg.get("set_params") or {})
        cache = cache_dir or Path(tempfile.mkdtemp(prefix="jangin-export-"))
        data = build_detection_set(
            Dataset.open(root),
            where=params.get("where"),
            classes=params.get("classes") or list(m.classes),
            fractions=tuple(params.get("fractions") or (0.7, 0.15, 0.15)),  # type: ignore[arg-type]
            group_by=params.get("group_by") or "session_id",
            seed=int(params.get("seed") or 0),
            cache_dir=cache,
            snapshot=m.dataset_snapshot,
        )
    split = "test" if data.splits["test"] else "val"
    imgs = data.images(split)[:max_check]
    truths = data.truths(split)[:max_check]
    cal = data.images("train")[:calibration]
    sel = data.images("val")[:max_check] if split == "test" else []
    return CheckSet(
        [_imread(p) for p in imgs],
        truths,
        [_imread(p) for p in cal],
        f"{split} split of {data.path} ({len(imgs)} images; calibration: {len(cal)} train images; "
        f"INT8 settings chosen on {len(sel)} val images)",
        [_imread(p) for p in sel],
        data.truths("val")[: len(sel)],
    )


def _anomaly(mv: ModelVersion, root: Path, calibration: int, max_check: int) -> CheckSet:
    import cv2

    from jangin.training._image_set import select_anomaly_images

    m = mv.manifest
    p: dict[str, Any] = dict(m.train_config.get("set_params") or {})
    data = select_anomaly_images(
        Dataset.open(root),
        where=p.get("where"),
        good_where=p.get("good_where"),
        group_by=p.get("group_by") or "frame_id",
        fractions=tuple(p.get("fractions") or (0.6, 0.2, 0.2)),  # type: ignore[arg-type]
        seed=int(p.get("seed") or 0),
        max_defective=p.get("max_defective"),
        snapshot=m.dataset_snapshot,
    )
    split = "test" if data.splits["test"] else "val"
    rows = data.splits[split][:max_check]

    def dec(b: bytes) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise TrainingError("an image of the anomaly set is not decodable")
        return img

    cal = data.splits["train"][:calibration]
    sel = data.splits["val"][:max_check] if split == "test" else []
    return CheckSet(
        [dec(r["image"]) for r in rows],
        [bool(r["bad"]) for r in rows],
        [dec(r["image"]) for r in cal],
        f"{split} split of {root} at the model's snapshot ({len(rows)} images; calibration: {len(cal)} "
        f"train images; INT8 settings chosen on {len(sel)} val images)",
        [dec(r["image"]) for r in sel],
        [bool(r["bad"]) for r in sel],
    )
