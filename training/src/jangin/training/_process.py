"""Process-quality models: the expert's OK/NG judgment of a seam segment from its sensor window.

Windows are the current span labels (``kind = 'class'``, ``target = 'span'``; name ``OK`` or a defect
name), their features :func:`jangin.core.features.window_features`, the model a scikit-learn gradient
boosting classifier. Data are few (the sample: 5 sessions × 4 segments, 2 NG), so the figures are
leave-one-session-out: every window is scored by a model (and feature spec) fitted without its session.
The baseline is a threshold on one channel's deviation from OK (``|z|`` of the window mean), per channel.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jangin.core import Dataset, DatasetError, ModelManifest, ModelRegistry, ModelVersion, TrainingError
from jangin.core.features import feature_names, fit_feature_spec, window_features
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.timeseries import read_channels
from jangin.training._metrics import binary_metrics, roc_auc

__all__ = ["ProcessConfig", "load_windows", "train_process"]

log = logging.getLogger(__name__)
OPSET = 17


class ProcessConfig(BaseModel):
    """Settings of one ``jangin train process`` run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "process-quality"
    channels: tuple[str, ...] | None = Field(None, description="default: every channel of the sessions")
    where: str | None = Field(None, description="SQL predicate on current_labels aliased l")
    ok_name: str = "OK"
    features: Literal["deviation", "all"] = Field(
        "deviation",
        description="deviation: only scale-free deviations from OK (absz_*, frac_out, max_absz_*)",
    )
    n_estimators: int = Field(100, ge=1)
    max_depth: int = Field(2, ge=1)
    learning_rate: float = Field(0.1, gt=0)
    seed: int = 0
    parity_tolerance: float = Field(1e-4, gt=0)


def load_windows(
    ds: Dataset,
    *,
    where: str | None = None,
    snapshot: dict[str, int] | None = None,
    channels: tuple[str, ...] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Span-labelled windows and their raw samples: ``[{session_id, name, ts_start, ts_end, samples}]``."""
    import duckdb

    snap = dict(snapshot if snapshot is not None else ds.snapshot().to_dict())
    sql = f"""
        SELECT l.label_id, l.session_id, l.name, epoch_us(l.ts_start) AS t0, epoch_us(l.ts_end) AS t1
        FROM current_labels l
        WHERE l.kind = 'class' AND l.target = 'span' AND l.ts_start IS NOT NULL AND l.ts_end IS NOT NULL
          AND {f"({where})" if where else "true"}
        ORDER BY l.session_id, l.ts_start"""
    con = ds.connect(snap)
    try:
        rows = con.sql(sql).to_arrow_table().to_pylist()
        if channels is None:
            channels = tuple(
                r[0] for r in con.sql("SELECT DISTINCT channel FROM sensor_samples ORDER BY 1").fetchall()
            )
    except duckdb.Error as exc:
        raise DatasetError(f"selecting span labels failed: {exc}", hint="check --where") from exc
    finally:
        con.close()
    out = []
    by_session: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for r in rows:
        sid = r["session_id"]
        if sid not in by_session:
            by_session[sid] = read_channels(ds, sid, channels=list(channels), snapshot=snap)
        samples = {}
        for ch, (t, v) in by_session[sid].items():
            m = (t >= r["t0"]) & (t < r["t1"])
            samples[ch] = (t[m], v[m])
        out.append(
            {
                "label_id": r["label_id"],
                "session_id": sid,
                "name": r["name"],
                "ts_start": r["t0"],
                "ts_end": r["t1"],
                "samples": samples,
            }
        )
    return out, list(channels)


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
    clf.fit(X, y)
    return clf, spec


def _predict(clf: Any, spec: dict[str, Any], windows: list[dict[str, Any]]) -> np.ndarray:
    X = _features(windows, spec, spec["index"])
    return np.zeros(len(windows)) if clf is None else clf.predict_proba(X)[:, 1]


def train_process(
    ds: Dataset,
    config: ProcessConfig | None = None,
    *,
    registry: ModelRegistry,
    work_dir: Path,
    progress: ProgressFn | None = None,
) -> ModelVersion:
    """Fit the OK/NG model, evaluate it leave-one-session-out against per-channel thresholds, export
    ONNX (skl2onnx) behind a parity gate against ``predict_proba``, and publish.

    Raises:
        TrainingError: Fewer than 2 sessions or no NG window, or a refused export.
    """
    cfg = config or ProcessConfig()
    progress = progress or null_progress
    snap = ds.snapshot().to_dict()
    windows, channels = load_windows(ds, where=cfg.where, snapshot=snap, channels=cfg.channels)
    y = np.array([w["name"] != cfg.ok_name for w in windows], bool)
    sessions = sorted({w["session_id"] for w in windows})
    if len(sessions) < 2 or not y.any() or y.all():
        raise TrainingError(
            f"{len(windows)} span label(s) in {len(sessions)} session(s), {int(y.sum())} NG: need ≥ 2 sessions "
            "and both OK and NG windows",
            hint="label judgments first (`jangin label judgments`)",
        )
    work_dir = Path(work_dir) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # Leave one session out: model, bands and z-scales all fitted without the held-out session.
    oof = np.zeros(len(windows))
    base = np.zeros((len(windows), len(channels)))
    for k, sid in enumerate(sessions):
        progress("cross-validate", k, len(sessions))
        test = [i for i, w in enumerate(windows) if w["session_id"] == sid]
        train = [i for i, w in enumerate(windows) if w["session_id"] != sid]
        clf, spec = _fit(cfg, channels, [windows[i] for i in train], y[train])
        oof[test] = _predict(clf, spec, [windows[i] for i in test])
        for i in test:
            f = window_features(windows[i]["samples"], spec)
            base[i] = [f[j * 9 + 7] for j in range(len(channels))]  # absz_mean of each channel
    progress("cross-validate", len(sessions), len(sessions))
    per_channel = {ch: roc_auc(y, base[:, j]) for j, ch in enumerate(channels)}
    best_ch = max(per_channel, key=lambda c: per_channel[c] or 0)
    metrics: dict[str, Any] = {
        "evaluation": f"leave-one-session-out over {len(sessions)} sessions",
        "windows": len(windows),
        "ng": int(y.sum()),
        "auroc": roc_auc(y, oof),
        **binary_metrics(y, oof >= 0.5),
        "baseline_auroc_per_channel": per_channel,
        "baseline_best_channel": best_ch,
        "baseline_auroc": per_channel[best_ch],
        "baseline_note": "best single-channel |z| threshold, channel chosen on the same data (optimistic)",
        "prior_auroc": 0.5,
        "cv_seconds": round(time.perf_counter() - t0, 2),
    }
    # Final model on every window.
    clf, spec = _fit(cfg, channels, windows, y)
    X = _features(windows, spec, spec["index"])
    onnx_path = work_dir / "model.onnx"
    export_process_onnx(clf, X.shape[1], onnx_path)
    parity = check_process_parity(onnx_path, clf, X, tolerance=cfg.parity_tolerance)
    names = [feature_names(channels)[i] for i in spec["index"]]
    imp = sorted(zip(names, clf.feature_importances_.tolist(), strict=True), key=lambda t: -t[1])[:10]
    metrics["top_features"] = {n: round(v, 4) for n, v in imp}
    from jangin.training._report import process_report

    files: dict[str, Path] = {"model.onnx": onnx_path}
    for p in process_report(work_dir / "report", cfg.name, metrics, y, oof, 0.5, windows):
        files[f"report/{p.name}"] = p
    (work_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    files["metrics.json"] = work_dir / "metrics.json"
    import sklearn

    manifest = ModelManifest(
        name=cfg.name,
        task="process",
        framework=f"scikit-learn {sklearn.__version__} GradientBoostingClassifier",
        architecture_licence="BSD-3-Clause (scikit-learn GradientBoostingClassifier)",
        classes=[cfg.ok_name, "NG"],
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
        },
        thresholds={"ng": 0.5},
        metrics=metrics,
        dataset=str(ds.root),
        dataset_snapshot=snap,
        train_config=json.loads(cfg.model_dump_json()) | {"channels": channels, "sessions": sessions},
        parity=parity,
        extra={"report": "report/index.html"},
    )
    mv = registry.add(manifest, files)
    log.info(
        "published %s:%s (LOSO AUROC %s vs baseline %s)",
        mv.name,
        mv.version,
        metrics["auroc"],
        metrics["baseline_auroc"],
    )
    return mv


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
