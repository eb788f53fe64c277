"""Per-image detections: one validated array dataclass that every stage speaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Detections", "box_iou"]


@dataclass(frozen=True)
class Detections:
    """Boxes found in one image.

    Attributes:
        xyxy: ``(N, 4)`` float array, x1 y1 x2 y2 as fractions of the image width / height.
        scores: ``(N,)`` confidences in 0..1.
        class_ids: ``(N,)`` indices into ``classes``.
        classes: Class names of the model that produced them.
    """

    xyxy: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    class_ids: npt.NDArray[np.int64]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if not (len(xyxy) == len(scores) == len(ids)):
            raise ValueError(f"Detections: {len(xyxy)} boxes, {len(scores)} scores, {len(ids)} class ids")
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self.classes)):
            raise ValueError(f"Detections: class id out of range 0..{len(self.classes) - 1}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", ids)
        object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def empty(cls, classes: Sequence[str]) -> Detections:
        """No detections."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), tuple(classes)
        )

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        return [self.classes[i] for i in self.class_ids]

    def filter(self, mask: npt.NDArray[np.bool_]) -> Detections:
        """The detections where ``mask`` is true."""
        return Detections(self.xyxy[mask], self.scores[mask], self.class_ids[mask], self.classes)

    def area(self) -> npt.NDArray[np.float32]:
        """Box areas as fractions of the image area."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)

    def to_rows(self) -> list[dict[str, Any]]:
        """As rows of the ``detections`` column of the inspections table."""
        return [
            {"name": self.classes[c], "score": float(s), "bbox_xyxy_norm": [float(v) for v in b]}
            for b, s, c in zip(self.xyxy, self.scores, self.class_ids, strict=True)
        ]

    def pixels(self, width: int, height: int) -> npt.NDArray[np.float32]:
        """Boxes in pixels of an image of ``width`` × ``height``."""
        return self.xyxy * np.array([width, height, width, height], dtype=np.float32)


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Pairwise IoU of boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)`` in xyxy; returns ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: npt.ArrayLike, scores: npt.ArrayLike, iou: float) -> npt.NDArray[np.int64]:
    """Greedy non-maximum suppression (a box is dropped when its IoU with a kept one is > ``iou``;
    torchvision's semantics). Shared by the serving runtime and the training parity gate.

    Returns:
        Indices of the kept boxes, highest score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        order = order[1:][box_iou(boxes[i : i + 1], boxes[order[1:]])[0] <= iou]
    return np.asarray(keep, dtype=np.int64)


def letterbox_geometry(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int, int, int]:
    """Ultralytics' ``LetterBox`` arithmetic (aspect kept, centred): for an ``h`` x ``w`` image into
    ``height`` x ``width``, return ``(new_w, new_h, top, bottom, left, right)`` (resize, then pad).
    The pixel work (resize, border) stays with the caller's OpenCV."""
    r = min(height / h, width / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (width - nw) / 2, (height - nh) / 2
    return nw, nh, round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
