"""Detection metrics in numpy, independent of any training framework."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jangin.core.detections import Detections, box_iou

__all__ = ["average_precision", "detection_map"]


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (Pascal VOC 2010+): the area under the precision envelope.

    The envelope at recall r is the highest precision at any recall ≥ r; AP sums it over each step
    of recall, starting from recall 0.
    """
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.flip(np.maximum.accumulate(np.flip(p)))
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def detection_map(
    preds: Sequence[Detections],
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    iou: float = 0.5,
) -> dict[str, Any]:
    """Mean average precision of detections against ground truth, at one IoU threshold.

    Per class, predictions of all images are ranked by score; each is a true positive when it overlaps
    a not yet matched ground-truth box of its class in its image with IoU ≥ ``iou`` (the best such box),
    else a false positive. AP is the all-point interpolated area under the precision–recall curve
    (:func:`average_precision`; COCO's 101-point sampling differs by < 0.01 typically). mAP is the mean
    over classes that have ground truth; a class without ground truth gets AP ``None``.

    Args:
        preds: Detections of each image (boxes normalised 0..1; class ids index ``classes``).
        truths: Ground truth of each image: ``(boxes_xyxy_norm (N, 4), class_ids (N,))``.
        classes: Class names, in class-id order.
        iou: IoU threshold for a match.

    Returns:
        ``{"mAP50": float, "per_class_ap": {name: float | None}, "iou": iou, "images": n}`` (the key is
        ``mAP50`` whatever ``iou`` is, matching the manifest's metrics).

    Raises:
        ValueError: ``preds`` and ``truths`` differ in length.
    """
    if len(preds) != len(truths):
        raise ValueError(f"{len(preds)} predictions but {len(truths)} ground truths")
    per_class: dict[str, float | None] = {}
    for c, cname in enumerate(classes):
        scores: list[float] = []
        hits: list[bool] = []
        n_gt = 0
        for det, (gt_boxes, gt_ids) in zip(preds, truths, strict=True):
            gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)[np.asarray(gt_ids).reshape(-1) == c]
            n_gt += len(gt)
            mask = det.class_ids == c
            boxes, sc = det.xyxy[mask], det.scores[mask]
            order = np.argsort(-sc, kind="stable")
            taken = np.zeros(len(gt), dtype=bool)
            ious = box_iou(boxes, gt) if len(gt) else np.zeros((len(boxes), 0))
            for i in order:
                scores.append(float(sc[i]))
                cand = np.where(taken, -1.0, ious[i]) if len(gt) else np.zeros(0)
                j = int(np.argmax(cand)) if len(cand) else -1
                ok = j >= 0 and cand[j] >= iou
                if ok:
                    taken[j] = True
                hits.append(bool(ok))
        if n_gt == 0:
            per_class[cname] = None
            continue
        order = np.argsort(-np.asarray(scores), kind="stable")
        tp = np.cumsum(np.asarray(hits, dtype=float)[order])
        fp = np.cumsum(1.0 - np.asarray(hits, dtype=float)[order])
        recall = tp / n_gt
        precision = tp / np.maximum(tp + fp, 1e-12)
        per_class[cname] = average_precision(recall, precision) if len(scores) else 0.0
    valid = [v for v in per_class.values() if v is not None]
    return {
        "mAP50": float(np.mean(valid)) if valid else 0.0,
        "per_class_ap": per_class,
        "iou": iou,
        "images": len(preds),
    }
