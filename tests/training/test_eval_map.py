"""detection_map on hand-made cases whose AP is derived by hand."""

from __future__ import annotations

import numpy as np
import pytest

from jangin.core import Detections
from jangin.training import detection_map

CLASSES = ("a", "b")
GT_BOXES = np.array([[0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.9, 0.9]])
TRUTH = (GT_BOXES, np.array([0, 1]))


def det(boxes: list[list[float]], scores: list[float], ids: list[int]) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores), np.array(ids), CLASSES)


def test_perfect_predictions_score_one() -> None:
    r = detection_map([det(GT_BOXES.tolist(), [0.9, 0.8], [0, 1])], [TRUTH], CLASSES)
    assert r["mAP50"] == pytest.approx(1.0)
    assert r["per_class_ap"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}


def test_right_boxes_wrong_classes_score_zero() -> None:
    r = detection_map([det(GT_BOXES.tolist(), [0.9, 0.8], [1, 0])], [TRUTH], CLASSES)
    assert r["mAP50"] == 0.0 and r["per_class_ap"] == {"a": 0.0, "b": 0.0}


def test_no_predictions_score_zero_and_classes_without_truth_are_left_out() -> None:
    r = detection_map([Detections.empty(CLASSES)], [(GT_BOXES[:1], np.array([0]))], CLASSES)
    assert r["per_class_ap"] == {"a": 0.0, "b": None} and r["mAP50"] == 0.0


def test_half_right_case_derived_by_hand() -> None:
    # Class a: 2 truths over two images. Ranked predictions: FP (0.9), TP (0.8); the second truth is
    # missed. Precision/recall after each: (0, 0), (0.5, 0.5). The envelope is 0.5 from recall 0 to 0.5,
    # then 0: AP_a = 0.5 * 0.5 = 0.25.
    # Class b: one truth, found by the only prediction: AP_b = 1.0.   mAP = (0.25 + 1.0) / 2 = 0.625.
    img1 = det([[0.5, 0.0, 0.6, 0.1], [0.1, 0.1, 0.3, 0.3]], [0.9, 0.8], [0, 0])
    img2 = det([[0.6, 0.6, 0.9, 0.9]], [0.7], [1])
    truths = [
        (GT_BOXES[:1], np.array([0])),
        (np.array([[0.1, 0.5, 0.2, 0.6], [0.6, 0.6, 0.9, 0.9]]), np.array([0, 1])),
    ]
    r = detection_map([img1, img2], truths, CLASSES)
    assert r["per_class_ap"]["a"] == pytest.approx(0.25)
    assert r["per_class_ap"]["b"] == pytest.approx(1.0)
    assert r["mAP50"] == pytest.approx(0.625)


def test_duplicates_are_false_positives_and_iou_threshold_applies() -> None:
    # Two predictions on one truth: TP then FP -> precision 1 at recall 1 -> AP 1 (a duplicate ranked
    # last costs nothing under all-point interpolation) ...
    truth = [(GT_BOXES[:1], np.array([0]))]
    dup = det([[0.1, 0.1, 0.3, 0.3], [0.1, 0.1, 0.3, 0.3]], [0.9, 0.8], [0, 0])
    assert detection_map([dup], truth, CLASSES)["per_class_ap"]["a"] == pytest.approx(1.0)
    # ... but ranked first with a poor box (IoU 0.01 / 0.04 = 0.25), it is an FP before the TP: AP 0.5.
    poor = det([[0.1, 0.1, 0.3, 0.15], [0.1, 0.1, 0.3, 0.3]], [0.9, 0.8], [0, 0])
    assert detection_map([poor], truth, CLASSES)["per_class_ap"]["a"] == pytest.approx(0.5)
    # A box with IoU 0.75 (0.2 x 0.15 inside 0.2 x 0.2) counts at IoU 0.5, not at 0.8.
    shifted = det([[0.1, 0.1, 0.3, 0.25]], [0.9], [0])
    assert detection_map([shifted], truth, CLASSES, iou=0.5)["mAP50"] == pytest.approx(1.0)
    assert detection_map([shifted], truth, CLASSES, iou=0.8)["mAP50"] == pytest.approx(0.0)


def test_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1"):
        detection_map([Detections.empty(CLASSES)] * 2, [TRUTH], CLASSES)
