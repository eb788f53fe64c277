"""Binary-classification figures in numpy: ROC AUC, PR curve, F1 and the best-F1 threshold."""

from __future__ import annotations

import numpy as np

__all__ = ["best_f1_threshold", "binary_metrics", "pr_curve", "pro_score", "rank_auc", "roc_auc", "roc_curve"]


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


def rank_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC by ranks (Mann-Whitney U, ties averaged): O(n log n), for millions of pixels."""
    y = np.asarray(y, bool).ravel()
    s = np.asarray(score, np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # Average ranks over ties: each run of equal scores gets the mean of its positions (1-based).
    starts = np.flatnonzero(np.concatenate([[True], sorted_s[1:] != sorted_s[:-1]]))
    ends = np.concatenate([starts[1:], [len(s)]])
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return round(float(u / (n_pos * n_neg)), 5)


def pro_score(masks: np.ndarray, maps: np.ndarray, max_fpr: float = 0.3, steps: int = 200) -> float | None:
    """Per-region overlap (PRO, Bergmann et al., MVTec AD), integrated up to ``max_fpr`` and normalised.

    For thresholds over the anomaly maps, each connected defect region's share of pixels above the
    threshold is averaged over all regions (PRO), and the false-positive rate is the share of good pixels
    above it. The area under PRO(FPR) from 0 to ``max_fpr``, divided by ``max_fpr``, is returned (1 is
    perfect; a random map scores about ``max_fpr / 2``).

    Args:
        masks: ``(N, H, W)`` bool ground truth.
        maps: ``(N, H, W)`` anomaly maps (higher: more anomalous).
        max_fpr: Upper FPR limit of the integration (0.3, as in the MVTec AD paper).
        steps: Number of thresholds.

    Returns:
        The normalised area, or None without defect or without good pixels.
    """
    import cv2

    masks = np.asarray(masks, bool)
    maps = np.asarray(maps, np.float64)
    if not masks.any() or masks.all():
        return None
    regions: list[np.ndarray] = []  # flat pixel indices of each connected region
    flat_index = np.arange(masks.size).reshape(masks.shape)
    for i in range(len(masks)):
        if not masks[i].any():
            continue
        n, lab = cv2.connectedComponents(masks[i].astype(np.uint8), connectivity=8)
        regions += [flat_index[i][lab == k] for k in range(1, n)]
    flat = maps.ravel()
    good = flat[~masks.ravel()]
    # Thresholds from the good pixels' quantiles, so that the FPR axis is sampled evenly up to max_fpr.
    qs = np.linspace(1.0, 1.0 - max_fpr, steps)
    thr = np.quantile(good, qs)
    good_sorted = np.sort(good)
    fprs, pros = [], []
    for t in thr:
        fprs.append(1.0 - np.searchsorted(good_sorted, t, side="left") / len(good_sorted))
        pros.append(float(np.mean([(flat[r] >= t).mean() for r in regions])))
    fpr, pro = np.asarray(fprs), np.asarray(pros)
    keep = fpr <= max_fpr + 1e-12
    fpr, pro = np.concatenate([[0.0], fpr[keep]]), np.concatenate([[0.0], pro[keep]])
    if fpr[-1] < max_fpr:  # extend flat to the limit
        fpr, pro = np.concatenate([fpr, [max_fpr]]), np.concatenate([pro, [pro[-1]]])
    area = float(np.sum((fpr[1:] - fpr[:-1]) * (pro[1:] + pro[:-1]) / 2))
    return round(area / max_fpr, 5)
