"""Process-quality models: LOSO evaluation vs per-channel thresholds, process_v1 contract, parity gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import ModelRegistry, TrainingError


def test_process_model_matches_or_beats_threshold_baseline_offline(
    adata: Any, tmp_path: Path, network_guard: list[Any]
) -> None:
    from jangin.training import ProcessConfig, train_process

    ds = adata.make_process_dataset(tmp_path / "ds")
    registry = ModelRegistry(ds.models_dir)
    mv = train_process(
        ds, ProcessConfig(name="seams", n_estimators=50), registry=registry, work_dir=tmp_path / "w"
    )
    m = mv.manifest.metrics
    assert m["ng"] >= 4 and m["evaluation"].startswith("leave-one-session-out")
    # Each NG deviates in one of three channels: no single channel sees them all; the model does.
    assert m["auroc"] >= m["baseline_auroc"] - 1e-9, m
    assert m["auroc"] >= 0.85, m
    assert network_guard == []
    man = registry.get("seams").manifest  # checks sha256 of every file
    assert man.task == "process" and man.outputs["format"] == "process_v1"
    assert man.parity["passed"] and man.parity["max_proba_diff"] <= 1e-4
    assert "report/index.html" in man.files


def test_process_onnx_follows_the_contract(adata: Any, tmp_path: Path) -> None:
    import onnxruntime as ort

    from jangin.core.features import window_features
    from jangin.core.timeseries import read_channels
    from jangin.training import ProcessConfig, train_process

    ds = adata.make_process_dataset(tmp_path / "ds", n_sessions=4)
    mv = train_process(
        ds,
        ProcessConfig(name="seams", n_estimators=20),
        registry=ModelRegistry(ds.models_dir),
        work_dir=tmp_path / "w",
    )
    out = mv.manifest.outputs
    lab = ds.query("SELECT session_id, ts_start, ts_end FROM labels ORDER BY label_id LIMIT 1").to_pylist()[0]
    window = read_channels(ds, lab["session_id"], start=lab["ts_start"], end=lab["ts_end"])
    x = window_features(window, out["feature_spec"])[out["feature_index"]][None]
    sess = ort.InferenceSession(str(mv.path / "model.onnx"), providers=["CPUExecutionProvider"])
    _, proba = sess.run(["label", "probabilities"], {"features": x})
    assert proba.shape == (1, 2) and abs(float(proba.sum()) - 1) < 1e-5
    assert x.shape[1] == out["n_features"] == len(out["feature_names"])


def _swap_features(src: Path, dst: Path) -> None:
    """A realistic export bug: two feature columns swapped (the trees test the wrong input)."""
    import onnx

    model = onnx.load(str(src))
    node = next(n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier")
    attr = next(a for a in node.attribute if a.name == "nodes_featureids")
    ids = [{0: 1, 1: 0}.get(i, i) for i in attr.ints]
    assert ids != list(attr.ints)
    del attr.ints[:]
    attr.ints.extend(ids)
    onnx.save(model, str(dst))


def _scale_leaves(src: Path, dst: Path) -> None:
    """Another: the leaf values written 10 % off (e.g. a learning rate applied twice)."""
    import onnx

    model = onnx.load(str(src))
    node = next(n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier")
    attr = next(a for a in node.attribute if a.name == "class_weights")
    w = [1.1 * v for v in attr.floats]
    del attr.floats[:]
    attr.floats.extend(w)
    onnx.save(model, str(dst))


@pytest.mark.parametrize("breaker", [_swap_features, _scale_leaves])
def test_parity_gate_refuses_a_broken_process_export(tmp_path: Path, breaker: Any) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    from jangin.training._process import check_process_parity, export_process_onnx

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    y = X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=60) > 0
    clf = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    path = export_process_onnx(clf, 5, tmp_path / "a.onnx")
    # the intact export passes ...
    assert check_process_parity(path, clf, X)["passed"]
    # ... the broken FILE (same reference model) is refused
    breaker(path, tmp_path / "broken.onnx")
    with pytest.raises(TrainingError, match="parity gate refused"):
        check_process_parity(tmp_path / "broken.onnx", clf, X)


def test_process_needs_ok_and_ng_windows(adata: Any, tmp_path: Path) -> None:
    from jangin.training import train_process

    ds = adata.make_process_dataset(tmp_path / "ds", n_sessions=1)
    with pytest.raises(TrainingError, match="need ≥ 2 sessions"):
        train_process(ds, registry=ModelRegistry(ds.models_dir), work_dir=tmp_path / "w")


def test_window_features_are_deterministic_and_finite() -> None:
    from jangin.core.features import feature_names, fit_feature_spec, window_features

    rng = np.random.default_rng(1)
    t = (np.arange(500) * 2000).astype(np.int64)
    ok = [{"a": (t, rng.normal(5, 1, 500)), "b": (t, rng.normal(0, 1, 500))} for _ in range(4)]
    spec = fit_feature_spec(["a", "b"], ok)
    f1 = window_features({"a": (t, np.full(500, 9.0))}, spec)  # "b" missing: zeros, not NaN
    assert np.isfinite(f1).all() and len(f1) == len(feature_names(["a", "b"]))
    assert np.array_equal(f1, window_features({"a": (t, np.full(500, 9.0))}, spec))
    assert f1[feature_names(["a", "b"]).index("max_absz_mean")] > 3
