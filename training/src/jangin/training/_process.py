"""Process-quality models: an expert's judgment (OK / NG, unworn / worn…) of a window of sensor data.

Windows are span labels (``target = 'span'``) or run-level labels (``target = 'session'``: one window
per session, or per step occurrence with ``per_step``); their features
:func:`jangin.core.features.window_features`; the model a scikit-learn gradient boosting classifier.

Data are few, so everything is judged leave-one-group-out (group = session, or a session column such as
technician / station): the model, the feature scales and the single-channel threshold baseline are all
fitted without the held-out group. The run reports bootstrap intervals over groups, warns below 30
groups, saves the out-of-fold predictions, checks for confounds (a feature separating the classes by a
constant offset; labels going with a recipe parameter, station or technician) and reports the metric
without the confounded channels. It refuses unknown channels, labels that answer several questions,
and publishing a model whose AUROC is undefined or below the baseline (unless ``force``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jangin.core import Dataset, ModelManifest, ModelRegistry, ModelVersion, TrainingError
from jangin.core.features import feature_names, fit_feature_spec, window_features
from jangin.core.progress import ProgressFn, null_progress
from jangin.training._metrics import binary_metrics, roc_auc

__all__ = ["ProcessConfig", "load_windows", "train_process"]

MIN_GROUPS = 30

log = logging.getLogger(__name__)
OPSET = 17


class ProcessConfig(BaseModel):
    """Settings of one ``jangin train process`` run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "process-quality"
    channels: tuple[str, ...] | None = Field(None, description="default: every channel of the sessions")
    where: str | None = Field(None, description="SQL predicate on current_labels aliased l")
    question: str | None = Field(None, description="the label question to learn (labels.question)")
    target: Literal["auto", "span", "session"] = Field(
        "auto", description="span labels, run-level (session) labels, or auto: span if any, else session"
    )
    per_step: bool = Field(False, description="session labels: one window per step occurrence")
    group_by: str | None = Field(
        None, description="evaluation group: a session column (technician, station…) or param:<name>"
    )
    ok_name: str = "OK"
    features: Literal["deviation", "all"] = Field(
        "deviation",
        description="deviation: only scale-free deviations from OK (absz_*, frac_out, max_absz_*)",
    )
    n_estimators: int = Field(100, ge=1)
    max_depth: int = Field(2, ge=1)
    learning_rate: float = Field(0.1, gt=0)
    seed: int = 0
    balanced: bool = Field(True, description="weight the classes equally (even prior odds in every fold)")
    n_bootstrap: int = Field(1000, ge=0)
    confound_auroc: float = Field(0.95, gt=0.5, le=1.0, description="per-feature AUROC of a confound")
    confound_gap_sd: float = Field(3.0, gt=0, description="class gap / within-class SD of a confound")
    confound_v: float = Field(0.8, gt=0, le=1, description="Cramér's V of a confounding attribute")
    force: bool = Field(False, description="publish even when the metric is undefined or below baseline")
    parity_tolerance: float = Field(1e-4, gt=0)


def load_windows(
    ds: Dataset,
    *,
    where: str | None = None,
    snapshot: dict[str, int] | None = None,
    channels: tuple[str, ...] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Span-labelled windows and their raw samples: ``[{session_id, name, ts_start, ts_end, samples}]``."""
    from jangin.training._process_data import load_labelled_windows

    snap = dict(snapshot if snapshot is not None else ds.snapshot().to_dict())
    windows, chans, _ = load_labelled_windows(
        ds, snapshot=snap, where=where, channels=channels, target="span"
    )
    return windows, chans


def feature_index(channels: list[str], which: str) -> list[int]:
    """Indices into :func:`window_features`' vector of the features the model uses."""
    names = feature_names(channels)
    if which == "all":
        return list(range(len(names)))
    return [i for i, n in enumerate(names) if "absz" in n or n.endswith(":frac_out")]


def _features(windows: list[dict[str, Any]], spec: dict[str, Any], index: list[int]) -> np.ndarray:
    return np.stack([window_features(w["samples"], spec)[index] for w in windows])


def _fit(
    cfg: ProcessConfig, channels: list[str], windows: list[dict[str, Any]], y: np.ndarray
) -> tuple[Any, dict[str, Any]]:
    from sklearn.ensemble import GradientBoostingClassifier

    spec = fit_feature_spec(channels, [w["samples"] for w, bad in zip(windows, y, strict=True) if not bad])
    spec["index"] = feature_index(channels, cfg.features)
    X = _features(windows, spec, spec["index"])
    if y.all() or not y.any():
        return None, spec  # one class only: nothing to learn (scored as the prior)
    clf = GradientBoostingClassifier(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth,
        learning_rate=cfg.learning_rate,
        random_state=cfg.seed,
    )
    # Classes weighted to equal total weight: the model's starting point is even odds in every fold, so
    # holding out one run of a class does not tilt the prior against it (which drives a pooled
    # leave-one-out AUROC below 0.5 on weak features).
    w = np.where(y, 0.5 / y.mean(), 0.5 / (1 - y.mean())) if cfg.balanced else None
    clf.fit(X, y, sample_weight=w)
    return clf, spec


def _predict(clf: Any, spec: dict[str, Any], windows: list[dict[str, Any]]) -> np.ndarray:
    X = _features(windows, spec, spec["index"])
    return np.zeros(len(windows)) if clf is None else clf.predict_proba(X)[:, 1]


#: Single-channel baseline candidates per channel: (feature, sign). Level and spread each way, and the
#: deviations from OK (scaled on the training fold).
_CANDIDATES = (("mean", 1), ("mean", -1), ("std", 1), ("std", -1), ("absz_mean", 1), ("absz_std", 1))
_STATS = ("mean", "std", "q05", "q50", "q95", "slope", "frac_out", "absz_mean", "absz_std")


def _candidates(F: np.ndarray, channels: list[str]) -> tuple[np.ndarray, list[str]]:
    cols, names = [], []
    for j, ch in enumerate(channels):
        for stat, sign in _CANDIDATES:
            cols.append(sign * F[:, j * len(_STATS) + _STATS.index(stat)])
            names.append(f"{ch}:{stat}{'' if sign > 0 else ' (lower)'}")
    return np.stack(cols, 1), names


def _cross_validate(
    cfg: ProcessConfig,
    channels: list[str],
    windows: list[dict[str, Any]],
    y: np.ndarray,
    groups: list[str],
    progress: ProgressFn,
    task: str = "cross-validate",
) -> dict[str, Any]:
    """Leave-one-group-out: out-of-fold P(NG) of the model and of the inside-fold threshold baseline."""
    from jangin.training._confound import inside_fold_baseline, logo_folds

    folds = logo_folds(groups)
    oof = np.zeros(len(windows))
    fold_of = np.zeros(len(windows), int)
    cand_by_fold: dict[bytes, np.ndarray] = {}
    cand_names: list[str] = []
    for k, (_, train, test) in enumerate(folds):
        progress(task, k, len(folds))
        clf, spec = _fit(cfg, channels, [windows[i] for i in train], y[train])
        F = np.stack([window_features(w["samples"], spec) for w in windows]).astype(np.float64)
        S, cand_names = _candidates(F, channels)
        cand_by_fold[train.tobytes()] = S
        X = F[:, spec["index"]]
        oof[test] = 0.0 if clf is None else clf.predict_proba(X[test].astype(np.float32))[:, 1]
        fold_of[test] = k
    progress(task, len(folds), len(folds))
    base = inside_fold_baseline(lambda tr: cand_by_fold[tr.tobytes()], y, groups, cand_names)
    return {"oof": oof, "fold": fold_of, "baseline": base, "n_folds": len(folds)}


def _groups(
    cfg: ProcessConfig, windows: list[dict[str, Any]], attrs: dict[str, dict[str, Any]]
) -> tuple[list[str], str]:
    by = cfg.group_by
    if by in (None, "session", "session_id", "run"):
        return [w["session_id"] for w in windows], "session"
    assert by is not None
    known = sorted({k for a in attrs.values() for k in a})
    if by not in known:
        raise TrainingError(
            f"--group-by {by}: not a session attribute of the labelled sessions; known: {', '.join(known)}",
            hint="use session, a session column (technician, station…) or param:<name>",
        )
    return [str(attrs[w["session_id"]].get(by) or "(none)") for w in windows], by


def _raw_feature_matrix(windows: list[dict[str, Any]], channels: list[str]) -> tuple[np.ndarray, list[str]]:
    """The scale-free-of-fold raw features (level, spread, quantiles, slope) of every window."""
    spec = {"channels": channels}
    F = np.stack([window_features(w["samples"], spec) for w in windows]).astype(np.float64)
    keep = [j * len(_STATS) + s for j in range(len(channels)) for s in range(6)]
    names = feature_names(channels)
    return F[:, keep], [names[i] for i in keep]


def train_process(
    ds: Dataset,
    config: ProcessConfig | None = None,
    *,
    registry: ModelRegistry,
    work_dir: Path,
    progress: ProgressFn | None = None,
) -> ModelVersion:
    """Fit the model, evaluate it leave-one-group-out against a single-channel threshold chosen inside each
    fold, check for confounds, export ONNX (skl2onnx) behind a parity gate, and publish.

    Raises:
        TrainingError: Unknown channels, mixed label questions, fewer than 2 groups or one class only,
            a metric undefined or below the baseline (without ``force``), or a refused export.
    """
    from jangin.training._confound import (
        attribute_confounds,
        bootstrap_ci,
        feature_confounds,
        hindsight_baseline,
    )
    from jangin.training._process_data import load_labelled_windows, session_attributes

    cfg = config or ProcessConfig()
    progress = progress or null_progress
    snap = ds.snapshot().to_dict()
    windows, channels, target = load_labelled_windows(
        ds,
        snapshot=snap,
        where=cfg.where,
        channels=cfg.channels,
        target=cfg.target,
        question=cfg.question,
        per_step=cfg.per_step,
    )
    names_seen = sorted({w["name"] for w in windows})
    if windows and cfg.ok_name not in names_seen:
        raise TrainingError(
            f"no label named {cfg.ok_name!r} (the negative class) among {', '.join(names_seen)}",
            hint="give the negative class with --ok-name",
        )
    y = np.array([w["name"] != cfg.ok_name for w in windows], bool)
    sessions = sorted({w["session_id"] for w in windows})
    attrs = session_attributes(ds, sessions, snapshot=snap)
    groups, group_by = _groups(cfg, windows, attrs)
    n_groups = len(set(groups))
    if n_groups < 2 or not y.any() or y.all():
        raise TrainingError(
            f"{len(windows)} {target} window(s) in {len(sessions)} session(s) / {n_groups} group(s), "
            f"{int(y.sum())} NG: need ≥ 2 sessions and both classes",
            hint="label judgments first (`jangin label judgments`)",
        )
    work_dir = Path(work_dir) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cv = _cross_validate(cfg, channels, windows, y, groups, progress)
    oof, base = cv["oof"], cv["baseline"]
    # Hindsight figure (channel chosen on all windows, as before) for comparison only.
    spec_all = fit_feature_spec(
        channels, [w["samples"] for w, bad in zip(windows, y, strict=True) if not bad]
    )
    S_all, cand_names = _candidates(
        np.stack([window_features(w["samples"], spec_all) for w in windows]).astype(np.float64), channels
    )
    hind = hindsight_baseline(S_all, y, cand_names)
    auroc = roc_auc(y, oof)
    warnings: list[str] = []
    metrics: dict[str, Any] = {
        "evaluation": f"leave-one-{group_by}-out over {n_groups} groups",
        "target": target,
        "question": windows[0]["question"],
        "group_by": group_by,
        "groups": n_groups,
        "sessions": len(sessions),
        "windows": len(windows),
        "ng": int(y.sum()),
        "auroc": auroc,
        **binary_metrics(y, oof >= 0.5),
        "baseline_auroc": base["auroc"],
        "baseline_accuracy": base["accuracy"],
        "baseline_note": "best single-channel threshold, channel and threshold chosen inside each fold",
        "baseline_chosen": base["chosen"],
        # the candidate chosen in most folds (kept under this name for existing readers)
        "baseline_best_channel": max(
            set(base["chosen"].values()), key=lambda c: list(base["chosen"].values()).count(c)
        ),
        "baseline_hindsight_auroc": hind["auroc"],
        "baseline_hindsight_channel": hind["name"],
        "prior_auroc": 0.5,
    }
    ci = bootstrap_ci(y, oof, oof >= 0.5, groups, n=cfg.n_bootstrap, seed=cfg.seed)
    metrics["bootstrap"] = ci
    metrics["auroc_ci95"], metrics["accuracy_ci95"] = ci["auroc_ci"], ci["accuracy_ci"]
    if n_groups < MIN_GROUPS:
        warnings.append(
            f"small sample: {n_groups} groups (< {MIN_GROUPS}); the figures are uncertain, "
            f"AUROC 95 % interval {ci['auroc_ci']}, accuracy {ci['accuracy_ci']}"
        )
    # Confounds: one feature separating the classes by a constant offset; labels following an attribute.
    R, rnames = _raw_feature_matrix(windows, channels)
    feat = feature_confounds(R, rnames, y, auroc_min=cfg.confound_auroc, gap_min=cfg.confound_gap_sd)
    attr_names = sorted({k for a in attrs.values() for k in a})
    values = {k: [attrs[w["session_id"]].get(k) for w in windows] for k in attr_names}
    fired, figures = attribute_confounds(values, y, groups, v_min=cfg.confound_v)
    bad_channels = sorted({f["feature"].split(":")[0] for f in feat})
    if min(int(y.sum()), int((~y).sum())) < 5:
        warnings.append(
            f"confound check not judged: {min(int(y.sum()), int((~y).sum()))} window(s) in the smaller class "
            "(< 5), where some feature separates the classes by chance alone"
        )
    metrics["confounds"] = {
        "features": feat,
        "channels": bad_channels,
        "attributes": fired,
        "attribute_figures": figures,
    }
    for f in feat[:5]:
        warnings.append(
            f"possible confound: {f['feature']} alone separates the classes (AUROC {f['auroc']}, "
            f"{f['direction']} by {f['gap_sd']} within-class SD): a constant offset such as a set-up "
            "position, not the condition itself?"
        )
    for a in fired:
        warnings.append(
            f"labels go with {a['attribute']} (Cramér's V {a.get('cramers_v')}, AUROC {a.get('auroc')}): "
            "the model may learn the recipe/station, not the condition; evaluate within one level "
            "(--where) or --group-by it"
        )
    if bad_channels:
        rest = [c for c in channels if c not in bad_channels]
        if rest:
            cv2 = _cross_validate(cfg, rest, windows, y, groups, progress, "without confounds")
            metrics["auroc_without_confounds"] = roc_auc(y, cv2["oof"])
            metrics["baseline_auroc_without_confounds"] = cv2["baseline"]["auroc"]
        else:
            metrics["auroc_without_confounds"] = None
        warnings.append(
            f"without the confounded channel(s) {', '.join(bad_channels)}: AUROC "
            f"{metrics['auroc_without_confounds']} (with them {auroc})"
        )
    metrics["cv_seconds"] = round(time.perf_counter() - t0, 2)
    refused = None
    if auroc is None:
        refused = "its AUROC is undefined"
    elif base["auroc"] is not None and auroc < base["auroc"]:
        refused = f"its AUROC {auroc} is below the single-channel threshold baseline {base['auroc']}"
    elif auroc <= 0.5:
        refused = f"its AUROC {auroc} is no better than chance"
    if refused:
        warnings.append(
            f"published with --force although {refused}" if cfg.force else f"not published: {refused}"
        )
    metrics["warnings"] = warnings
    for w_ in warnings:
        log.warning("%s", w_)
    oof_path = _write_oof(work_dir / "oof.parquet", windows, y, oof, groups, cv["fold"], base["oof_score"])
    from jangin.training._process_report import process_report

    files: dict[str, Path] = {"oof.parquet": oof_path}
    for p in process_report(work_dir / "report", cfg.name, metrics, y, oof, 0.5, windows, groups):
        files[f"report/{p.name}"] = p
    (work_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    files["metrics.json"] = work_dir / "metrics.json"
    if refused and not cfg.force:
        raise TrainingError(
            f"model {cfg.name} not published: {refused} (leave-one-{group_by}-out, {n_groups} groups); "
            f"report in {work_dir / 'report' / 'index.html'}",
            hint="improve the data or features, or publish anyway with --force",
        )
    # Final model on every window.
    clf, spec = _fit(cfg, channels, windows, y)
    X = _features(windows, spec, spec["index"])
    onnx_path = work_dir / "model.onnx"
    export_process_onnx(clf, X.shape[1], onnx_path)
    parity = check_process_parity(onnx_path, clf, X, tolerance=cfg.parity_tolerance)
    names = [feature_names(channels)[i] for i in spec["index"]]
    imp = sorted(zip(names, clf.feature_importances_.tolist(), strict=True), key=lambda t: -t[1])[:10]
    metrics["top_features"] = {n: round(v, 4) for n, v in imp}
    (work_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    files["model.onnx"] = onnx_path
    import sklearn

    manifest = ModelManifest(
        name=cfg.name,
        task="process",
        framework=f"scikit-learn {sklearn.__version__} GradientBoostingClassifier",
        architecture_licence="BSD-3-Clause (scikit-learn GradientBoostingClassifier)",
        classes=[
            cfg.ok_name,
            next((n for n in names_seen if n != cfg.ok_name), "NG") if len(names_seen) == 2 else "NG",
        ],
        outputs={
            "format": "process_v1",
            "input": "features",
            "n_features": int(X.shape[1]),
            "outputs": ["label", "probabilities"],
            "ng_column": 1,
            "feature_names": names,
            "feature_spec": spec,
            "feature_index": spec["index"],
            "features": "jangin.core.features.window_features v1",
            "window": "per step occurrence" if cfg.per_step and target == "session" else target,
        },
        thresholds={"ng": 0.5},
        metrics=metrics,
        dataset=str(ds.root),
        dataset_snapshot=snap,
        train_config=json.loads(cfg.model_dump_json()) | {"channels": channels, "sessions": sessions},
        parity=parity,
        extra={"report": "report/index.html", "oof": "oof.parquet"},
    )
    mv = registry.add(manifest, files)
    log.info(
        "published %s:%s (%s AUROC %s vs inside-fold baseline %s)",
        mv.name,
        mv.version,
        metrics["evaluation"],
        metrics["auroc"],
        metrics["baseline_auroc"],
    )
    return mv


def _write_oof(
    path: Path,
    windows: list[dict[str, Any]],
    y: np.ndarray,
    oof: np.ndarray,
    groups: list[str],
    fold: np.ndarray,
    baseline: np.ndarray,
) -> Path:
    """Out-of-fold predictions, one row per window (per session for run-level labels)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table(
        {
            "session_id": [w["session_id"] for w in windows],
            "group": groups,
            "label_id": [w["label_id"] for w in windows],
            "step": [w["step"] for w in windows],
            "occurrence": pa.array([w["occurrence"] for w in windows], pa.int32()),
            "ts_start_us": pa.array([w["ts_start"] for w in windows], pa.int64()),
            "ts_end_us": pa.array([w["ts_end"] for w in windows], pa.int64()),
            "label": [w["name"] for w in windows],
            "y": y.tolist(),
            "p_ng": oof.astype(np.float64).tolist(),
            "baseline_score": baseline.astype(np.float64).tolist(),
            "fold": fold.astype(np.int32).tolist(),
        }
    )
    pq.write_table(t, path)
    return path


def export_process_onnx(clf: Any, n_features: int, path: Path) -> Path:
    """skl2onnx export: input ``features`` (N, F) float32; outputs ``label`` and ``probabilities`` (N, 2)."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        onx = convert_sklearn(
            clf,
            initial_types=[("features", FloatTensorType([None, n_features]))],
            options={id(clf): {"zipmap": False}},
            target_opset={"": OPSET, "ai.onnx.ml": 3},
        )
    except Exception as exc:  # skl2onnx raises many kinds
        raise TrainingError(
            f"ONNX export of the process model failed: {exc}", hint="pip install skl2onnx"
        ) from exc
    path.write_bytes(onx.SerializeToString())
    return path


def check_process_parity(
    onnx_path: Path, clf: Any, X: np.ndarray, *, tolerance: float = 1e-4
) -> dict[str, Any]:
    """ONNX Runtime vs ``predict_proba`` on ``X``; refuse beyond ``tolerance``.

    Raises:
        TrainingError: The export differs; the message carries the figures.
    """
    from jangin.training._ultralytics_env import import_onnxruntime

    ort = import_onnxruntime()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = dict(
        zip(
            [o.name for o in sess.get_outputs()],
            sess.run(None, {"features": X.astype(np.float32)}),
            strict=True,
        )
    )
    ref = clf.predict_proba(X.astype(np.float32))[:, 1]
    got = np.asarray(out["probabilities"])[:, 1]
    diff = float(np.abs(got - ref).max())
    flips = int(((got >= 0.5) != (ref >= 0.5)).sum())
    figures = {
        "windows": len(X),
        "max_proba_diff": diff,
        "decision_flips": flips,
        "tolerance": tolerance,
        "passed": diff <= tolerance and flips == 0,
    }
    if not figures["passed"]:
        raise TrainingError(
            f"parity gate refused {onnx_path}: P(NG) differs by up to {diff:.3g} "
            f"(tolerance {tolerance}), {flips} decision flip(s) on {len(X)} windows"
        )
    return figures
