"""Statistics that keep a process model honest: group bootstrap intervals, a single-channel threshold
baseline chosen inside each fold, and confound checks (a feature that separates the classes by a
constant offset; labels that go with a recipe parameter, a station or a technician).

Pure numpy on arrays; :mod:`jangin.training._process` feeds them the windows' features and attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jangin.training._metrics import roc_auc

__all__ = [
    "attribute_confounds",
    "bootstrap_ci",
    "cramers_v",
    "feature_confounds",
    "hindsight_baseline",
    "inside_fold_baseline",
    "logo_folds",
]


def logo_folds(groups: Sequence[Any]) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """Leave-one-group-out folds: ``[(group, train_index, test_index)]`` in sorted group order."""
    g = np.asarray([str(x) for x in groups], object)
    out = []
    for key in sorted(set(g.tolist())):
        test = np.flatnonzero(g == key)
        train = np.flatnonzero(g != key)
        out.append((key, train, test))
    return out


def _best_accuracy_threshold(s: np.ndarray, y: np.ndarray) -> float:
    """Threshold (predict positive when ``s >= thr``) with the best accuracy on ``(s, y)``."""
    cand = np.unique(s)
    if len(cand) == 0:
        return 0.0
    mids = np.concatenate([[cand[0] - 1.0], (cand[:-1] + cand[1:]) / 2, [cand[-1] + 1.0]])
    acc = [float(((s >= t) == y).mean()) for t in mids]
    return float(mids[int(np.argmax(acc))])


def _pick(S: np.ndarray, y: np.ndarray, idx: np.ndarray) -> tuple[int, float]:
    """The column of ``S`` with the best AUROC on rows ``idx`` (ties: first) and its accuracy threshold."""
    best, best_auc = 0, -1.0
    for k in range(S.shape[1]):
        a = roc_auc(y[idx], S[idx, k])
        if a is not None and a > best_auc + 1e-12:
            best, best_auc = k, a
    return best, _best_accuracy_threshold(S[idx, best], y[idx])


def inside_fold_baseline(
    candidates: np.ndarray | Callable[[np.ndarray], np.ndarray],
    y: np.ndarray,
    groups: Sequence[Any],
    names: Sequence[str],
) -> dict[str, Any]:
    """The best single-channel threshold, chosen INSIDE each leave-one-group-out fold.

    In each fold the candidate score (a channel's level, spread or deviation, each direction) with the
    best AUROC on the training groups is picked, its threshold set for the best training accuracy, and
    both applied to the held-out group. Out-of-fold scores are pooled into one AUROC: what a user who
    tuned one threshold on past runs would have seen on the next run.

    Args:
        candidates: ``(n, k)`` candidate scores (higher = more likely positive), or a function of the
            training indices returning them (when scales are fitted on the training fold).
        y: ``(n,)`` booleans, True = positive (NG / worn).
        groups: ``(n,)`` group of each row (session, technician, station…).
        names: The ``k`` candidate names.

    Returns:
        ``{"auroc", "accuracy", "oof_score", "oof_pred", "chosen": {group: name}}``.
    """
    y = np.asarray(y, bool)
    n = len(y)
    score = np.zeros(n)
    pred = np.zeros(n, bool)
    chosen: dict[str, str] = {}
    for key, train, test in logo_folds(groups):
        S = candidates(train) if callable(candidates) else candidates
        S = np.asarray(S, np.float64)
        k, thr = _pick(S, y, train)
        # rank the held-out rows on the training rows' scale, so folds pool into one AUROC
        score[test] = S[test, k] - thr
        pred[test] = S[test, k] >= thr
        chosen[str(key)] = names[k]
    return {
        "auroc": roc_auc(y, score),
        "accuracy": round(float((pred == y).mean()), 5) if n else None,
        "oof_score": score,
        "oof_pred": pred,
        "chosen": chosen,
    }


def hindsight_baseline(S: np.ndarray, y: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """The best single candidate chosen on ALL rows (optimistic: the choice has seen the test rows)."""
    y = np.asarray(y, bool)
    per = {n: roc_auc(y, S[:, k]) for k, n in enumerate(names)}
    best = max(per, key=lambda c: per[c] or 0.0)
    return {"auroc": per[best], "name": best, "per_candidate": per}


def bootstrap_ci(
    y: np.ndarray,
    score: np.ndarray,
    pred: np.ndarray,
    groups: Sequence[Any],
    *,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile confidence intervals of AUROC and accuracy, resampling whole groups with replacement.

    Resamples with one class only give no AUROC and are skipped (their count is returned).
    """
    y = np.asarray(y, bool)
    score = np.asarray(score, np.float64)
    pred = np.asarray(pred, bool)
    g = np.asarray([str(x) for x in groups], object)
    keys = sorted(set(g.tolist()))
    rows = [np.flatnonzero(g == k) for k in keys]
    rng = np.random.default_rng(seed)
    aucs, accs = [], []
    for _ in range(n):
        pick = rng.integers(0, len(keys), len(keys))
        idx = np.concatenate([rows[i] for i in pick])
        accs.append(float((pred[idx] == y[idx]).mean()))
        a = roc_auc(y[idx], score[idx])
        if a is not None:
            aucs.append(a)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def ci(v: list[float]) -> list[float] | None:
        return [round(float(np.percentile(v, lo)), 4), round(float(np.percentile(v, hi)), 4)] if v else None

    return {
        "level": level,
        "resamples": n,
        "unit": f"{len(keys)} groups",
        "auroc_ci": ci(aucs),
        "accuracy_ci": ci(accs),
        "skipped_one_class": n - len(aucs),
    }


def feature_confounds(
    X: np.ndarray,
    names: Sequence[str],
    y: np.ndarray,
    *,
    auroc_min: float = 0.95,
    gap_min: float = 3.0,
    min_per_class: int = 5,
) -> list[dict[str, Any]]:
    """Features that separate the classes almost perfectly by a constant offset.

    A feature fires when its own AUROC (either direction) is at least ``auroc_min`` AND the gap
    between the class means is at least ``gap_min`` times the pooled within-class standard deviation:
    the signature of a set-up offset (an axis position, a sensor swapped between runs) rather than of
    the condition itself, which rarely separates runs so cleanly.

    With fewer than ``min_per_class`` windows in a class, some feature separates the classes by chance
    alone: nothing is judged (the caller says so).

    Returns:
        ``[{"feature", "auroc", "gap_sd", "direction"}]``, strongest first.
    """
    y = np.asarray(y, bool)
    out: list[dict[str, Any]] = []
    if min(int(y.sum()), int((~y).sum())) < min_per_class:
        return out
    for k, name in enumerate(names):
        x = np.asarray(X[:, k], np.float64)
        a = roc_auc(y, x)
        if a is None:
            continue
        sep = max(a, 1 - a)
        m1, m0 = x[y].mean(), x[~y].mean()
        within = np.sqrt((x[y].var() * y.sum() + x[~y].var() * (~y).sum()) / len(y))
        gap = abs(m1 - m0) / max(within, 1e-12 * max(abs(m1), abs(m0), 1.0))
        if sep >= auroc_min and gap >= gap_min:
            out.append(
                {
                    "feature": name,
                    "auroc": round(sep, 4),
                    "gap_sd": round(float(min(gap, 1e6)), 2),
                    "direction": "higher" if m1 > m0 else "lower",
                }
            )
    return sorted(out, key=lambda d: (-d["auroc"], -d["gap_sd"]))


def cramers_v(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cramér's V of two categorical variables (0 = independent, 1 = one determines the other)."""
    a_ = np.asarray([str(x) for x in a], object)
    b_ = np.asarray([str(x) for x in b], object)
    ka, kb = sorted(set(a_.tolist())), sorted(set(b_.tolist()))
    if len(ka) < 2 or len(kb) < 2:
        return None
    table = np.array([[np.sum((a_ == i) & (b_ == j)) for j in kb] for i in ka], np.float64)
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return round(float(np.sqrt(chi2 / (n * (min(len(ka), len(kb)) - 1)))), 4)


def _as_float(values: Sequence[Any]) -> np.ndarray | None:
    try:
        x = np.array([float(v) for v in values], np.float64)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x).all() else None


def attribute_confounds(
    attributes: Mapping[str, Sequence[Any]],
    y: np.ndarray,
    groups: Sequence[Any],
    *,
    v_min: float = 0.8,
    auroc_min: float = 0.9,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Session attributes (recipe parameters, station, technician…) that go with the label.

    Judged per group (a session's label share against its attribute), so that many windows of one
    session do not count as many observations. Categorical: Cramér's V of the attribute against the
    majority label; an attribute with about one level per group (an id) cannot be judged and is
    skipped. Numeric (every value parses as a number): also the AUROC of the value (either direction).

    Returns:
        ``(fired, all_figures)``: the attributes at or above the thresholds, and every figure.
    """
    y = np.asarray(y, bool)
    g = np.asarray([str(x) for x in groups], object)
    keys = sorted(set(g.tolist()))
    first = {k: int(np.flatnonzero(g == k)[0]) for k in keys}
    ylab = np.array([y[g == k].mean() >= 0.5 for k in keys], bool)
    figures: dict[str, Any] = {}
    fired = []
    for name, values in attributes.items():
        vals = [values[first[k]] for k in keys]
        if all(v is None for v in vals):
            continue
        vals = ["(none)" if v is None else v for v in vals]
        levels = len(set(map(str, vals)))
        fig: dict[str, Any] = {"levels": levels}
        if levels >= 2 and levels <= max(2, len(keys) // 2):
            fig["cramers_v"] = cramers_v(vals, ylab)
        x = _as_float(vals)
        if x is not None and levels >= 2:
            a = roc_auc(ylab, x)
            fig["auroc"] = None if a is None else round(max(a, 1 - a), 4)
        figures[name] = fig
        if (fig.get("cramers_v") or 0) >= v_min or (fig.get("auroc") or 0) >= auroc_min:
            fired.append({"attribute": name, **fig})
    return fired, figures
