"""Binary-classification figures in numpy: ROC AUC, PR curve, F1 and the best-F1 threshold."""

from __future__ import annotations

import numpy as np

__all__ = ["best_f1_threshold", "binary_metrics", "pr_curve", "roc_auc", "roc_curve"]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None when only one class is present."""
    y = np.asarray(y, bool)
    s = np.asarray(score, np.float64)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return round(float(greater / (len(pos) * len(neg))), 5)


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates, thresholds descending."""
    y = np.asarray(y, bool)
    order = np.argsort(-np.asarray(score, np.float64), kind="stable")
    tp = np.concatenate([[0], np.cumsum(y[order])])
    fp = np.concatenate([[0], np.cumsum(~y[order])])
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1)


def pr_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and the threshold of each point (every distinct score, descending)."""
    y = np.asarray(y, bool)
    s = np.asarray(score, np.float64)
    thr = np.unique(s)[::-1]
    tp = np.array([(y & (s >= t)).sum() for t in thr], np.float64)
    pp = np.array([(s >= t).sum() for t in thr], np.float64)
    return tp / np.maximum(pp, 1), tp / max(y.sum(), 1), thr


def best_f1_threshold(score: np.ndarray, y: np.ndarray) -> float:
    """The score threshold with the best F1 (anomalib's ``F1AdaptiveThreshold``), midway to the next
    lower score so that small numeric differences do not flip the calibration images."""
    p, r, thr = pr_curve(y, score)
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    k = int(np.argmax(f1))
    below = np.asarray(score)[np.asarray(score) < thr[k]]
    return float((thr[k] + below.max()) / 2) if len(below) else float(thr[k])


def binary_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float | int]:
    """Accuracy, precision, recall, F1 and the confusion counts of boolean predictions."""
    y = np.asarray(y, bool)
    pred = np.asarray(pred, bool)
    tp, fp = int((y & pred).sum()), int((~y & pred).sum())
    fn, tn = int((y & ~pred).sum()), int((~y & ~pred).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": round((tp + tn) / max(len(y), 1), 5),
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }
