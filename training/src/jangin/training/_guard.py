"""Guard rails: every metric next to its trivial baselines, and models that must not be promoted.

A model's manifest carries ``extra["guard"]``::

    {"warnings": ["…"],                 # shown at the top of the report and the CLI summary
     "refuse_promotion": ["…"],         # non-empty: `jangin models promote` refuses (with these figures)
     "baselines": {"metric": {"model": x, "baseline": b, "name": "…", "beats": bool}}}

Refused: a classifier that predicts one class for every test image, an anomaly threshold that flags
95 % or more of a split's images including 95 % or more of its good ones (it flags nearly everything; a
split that is almost all defective may rightly be flagged almost whole), or a model whose figures are no
better than its trivial baseline on the test split (it would be published silently otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jangin.training._metrics import binary_metrics

__all__ = ["FLAG_ALL_SHARE", "anomaly_guard", "classifier_guard", "guard_summary"]

#: A threshold flagging at least this share of a split's images flags (nearly) everything.
FLAG_ALL_SHARE = 0.95


#: A figure at or above this is perfect for the guard: matching a perfect baseline is not failing it.
CEILING = 0.999


def _row(model: float | None, baseline: float | None, name: str) -> dict[str, Any]:
    if model is None or baseline is None:
        beats = None
    else:
        beats = bool(model > baseline + 1e-9 or min(model, baseline) >= CEILING)
    return {"model": model, "baseline": baseline, "name": name, "beats": beats}


def anomaly_guard(
    metrics: dict[str, Any],
    flagged: dict[str, tuple[int, int, int, int]],
    *,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Baselines and refusals of an anomaly model.

    Args:
        metrics: Test metrics with ``auroc``, ``f1``, ``defective``, ``images`` and
            ``baseline_intensity_auroc`` (and, with masks, ``pixel_auroc`` / ``baseline_pixel_auroc``).
        flagged: ``{split: (images flagged, images, good images flagged, good images)}`` at the threshold.
        warnings: Warnings already known (e.g. the random-init one), kept first.
    """
    n, pos = int(metrics.get("images", 0)), int(metrics.get("defective", 0))
    all_ng = binary_metrics(np.arange(n) < pos, np.ones(n, bool))["f1"] if n and pos else None
    base = {
        "auroc": _row(metrics.get("auroc"), metrics.get("baseline_intensity_auroc"), "grey-level AUROC"),
        "f1": _row(metrics.get("f1"), all_ng, "all-NG F1 (flag every image)"),
    }
    if metrics.get("pixel_auroc") is not None:
        base["pixel_auroc"] = _row(
            metrics.get("pixel_auroc"), metrics.get("baseline_pixel_auroc"), "grey-level pixel AUROC"
        )
    out_w, refuse = list(warnings), []
    for key, row in base.items():
        if row["beats"] is False:
            msg = (
                f"{key} {row['model']:.3f} does not beat the trivial baseline ({row['name']} "
                f"{row['baseline']:.3f}): this model is no better than it on the test split"
            )
            out_w.append(msg)
            refuse.append(msg)
    for split, (k, total, kg, good) in flagged.items():
        if total and good and k / total >= FLAG_ALL_SHARE and kg / good >= FLAG_ALL_SHARE:
            msg = (
                f"the threshold flags {k} of {total} {split} images ({100 * k / total:.0f} %), {kg} of "
                f"{good} good ones: it flags (nearly) everything"
            )
            out_w.append(msg)
            refuse.append(msg)
    return {"warnings": out_w, "refuse_promotion": refuse, "baselines": base}


def classifier_guard(
    y: np.ndarray,
    pred: np.ndarray,
    classes: Sequence[str],
    *,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Baselines (majority class accuracy and macro-F1), per-class recall, and the one-class refusal."""
    y, pred = np.asarray(y, int), np.asarray(pred, int)
    k = len(classes)
    counts = np.bincount(y, minlength=k)
    major = int(counts.argmax()) if len(y) else 0
    maj_pred = np.full(len(y), major)
    maj_f1 = float(np.mean([binary_metrics(y == c, maj_pred == c)["f1"] for c in range(k)])) if k else 0.0
    acc = float((pred == y).mean()) if len(y) else 0.0
    f1 = float(np.mean([binary_metrics(y == c, pred == c)["f1"] for c in range(k)])) if k else 0.0
    base = {
        "accuracy": _row(round(acc, 5), round(float(counts.max() / max(len(y), 1)), 5), "majority class"),
        "macro_f1": _row(round(f1, 5), round(maj_f1, 5), "majority class macro-F1"),
    }
    out_w, refuse = list(warnings), []
    used = sorted(set(pred.tolist()))
    if len(y) and len(used) == 1 and k > 1:
        msg = (
            f"the classifier predicts one class ({classes[used[0]]!r}) for all {len(y)} test images "
            f"(accuracy {acc:.3f} = that class's share; macro-F1 {f1:.3f})"
        )
        out_w.append(msg)
        refuse.append(msg)
    if base["macro_f1"]["beats"] is False:
        msg = (
            f"macro-F1 {f1:.3f} does not beat the majority-class baseline "
            f"{base['macro_f1']['baseline']:.3f}: the classifier is no better than always answering "
            f"{classes[major]!r}"
        )
        out_w.append(msg)
        refuse.append(msg)
    recall = {
        c: (round(float((pred[y == i] == i).mean()), 5) if counts[i] else None) for i, c in enumerate(classes)
    }
    missed = [c for c, r in recall.items() if r == 0.0]
    if missed and not refuse:
        out_w.append(f"recall 0 for {len(missed)} of {k} classes ({', '.join(missed)}): it never finds them")
    return {"warnings": out_w, "refuse_promotion": refuse, "baselines": base, "per_class_recall": recall}


def guard_summary(guard: dict[str, Any]) -> str:
    """Plain text for the CLI: baselines line by line, then warnings."""
    lines = []
    for key, row in guard.get("baselines", {}).items():
        if row["model"] is None or row["baseline"] is None:
            continue
        verdict = "beats" if row["beats"] else "does NOT beat"
        lines.append(f"  {key} {row['model']:.3f} {verdict} {row['name']} {row['baseline']:.3f}")
    lines += [f"  WARNING: {w}" for w in guard.get("warnings", [])]
    if guard.get("refuse_promotion"):
        lines.append("  this version will NOT be promoted (`jangin models promote` refuses it)")
    return "\n".join(lines)
