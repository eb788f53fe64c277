"""Anomaly models: good-only training, calibration, the anomaly_v1 contract, the parity gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import ModelRegistry, TrainingError

_RUN: dict[str, Any] = {}


@pytest.fixture
def anomaly_run(
    adata: Any, network_guard: list[Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One model per process, trained with the network blocked (attempts kept in ``attempts``)."""
    if not _RUN:
        from jangin.training import AnomalyConfig, train_anomaly

        base = tmp_path_factory.mktemp("anomaly")
        ds = adata.make_anomaly_dataset(base / "ds")
        registry = ModelRegistry(ds.models_dir)
        events: list[tuple[str, int, Any]] = []
        cfg = AnomalyConfig(
            name="beads",
            imgsz=64,
            device="cpu",
            good_where="f.source_uri LIKE 'good/%'",
            allow_random_init=True,
        )
        mv = train_anomaly(
            ds,
            cfg,
            registry=registry,
            work_dir=base / "work",
            progress=lambda t, d, n: events.append((t, d, n)),
        )
        _RUN.update(
            ds=ds, mv=mv, registry=registry, events=events, cfg=cfg, base=base, attempts=list(network_guard)
        )
    return _RUN


def test_anomaly_model_beats_chance_offline(anomaly_run: dict[str, Any]) -> None:
    m = anomaly_run["mv"].manifest.metrics
    assert m["defective"] > 0 and m["good"] > 0
    assert m["auroc"] >= 0.8, m
    # against the computed trivial baseline (grey-level distance), not a hard-coded 0.5
    assert m["baseline_intensity_auroc"] is not None
    assert m["auroc"] > m["baseline_intensity_auroc"], (m["auroc"], m["baseline_intensity_auroc"])
    assert m["train_images"] > 0 and "per_station" in m
    assert any(t.startswith("fit") for t, _, _ in anomaly_run["events"])
    assert anomaly_run["attempts"] == []


def test_anomaly_manifest_contract(anomaly_run: dict[str, Any]) -> None:
    import onnxruntime as ort

    mv = anomaly_run["registry"].get("beads")  # verifies every file's sha256
    man = mv.manifest
    assert man.task == "anomaly"
    assert man.input is not None and man.input.resize == "stretch" and man.input.color == "rgb"
    assert man.input.width == man.input.height == 64 and man.input.std != (1.0, 1.0, 1.0)
    assert set(man.thresholds) == {"image", "pixel"}
    assert man.outputs["format"] == "anomaly_v1"
    assert set(man.outputs["norm"]) == {"score_min", "score_max", "map_min", "map_max"}
    assert man.parity["passed"] and man.parity["max_norm_score_diff"] <= 1e-3
    on_disk = {
        str(p.relative_to(mv.path)) for p in mv.path.rglob("*") if p.is_file() and p.name != "manifest.json"
    }
    assert on_disk == set(man.files)
    assert {"model.onnx", "report/index.html", "report/curves.png", "report/worst_examples.png"} <= on_disk
    sess = ort.InferenceSession(str(mv.file("model.onnx")), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["images"]
    s, amap = sess.run(["pred_score", "anomaly_map"], {"images": np.zeros((3, 3, 64, 64), np.float32)})
    assert s.shape == (3,) and amap.shape == (3, 1, 64, 64)


def test_parity_gate_refuses_a_broken_anomaly_export(anomaly_run: dict[str, Any]) -> None:
    import torch

    from jangin.training._anomaly import _build, _Scorer, check_anomaly_parity, export_anomaly_onnx

    torch.manual_seed(0)
    model, _ = _build(anomaly_run["cfg"], torch)
    model.eval()
    model.memory_bank = torch.randn(50, 384)
    net = _Scorer(model)
    path = export_anomaly_onnx(net, anomaly_run["base"] / "broken.onnx", 64)
    x = np.random.default_rng(0).normal(size=(4, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        raw = net(torch.from_numpy(x))[0].numpy()
    norm = {
        "score_min": float(raw.min()),
        "score_max": float(raw.max()) + 1e-3,
        "map_min": 0.0,
        "map_max": 10.0,
    }
    # the intact export passes ...
    assert check_anomaly_parity(path, net, x, float(np.median(raw)), norm)["passed"]
    # ... the exported FILE with its memory bank written wrong is refused (same reference model)
    broken = _break_memory_bank(path, anomaly_run["base"] / "broken-bank.onnx")
    with pytest.raises(TrainingError, match="parity gate refused"):
        check_anomaly_parity(broken, net, x, float(np.median(raw)), norm)


def _break_memory_bank(src: Path, dst: Path) -> Path:
    """An export bug in the file itself: the memory bank (and its transposed copy) scaled by 1.5."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    hit = 0
    for init in model.graph.initializer:
        if sorted(init.dims) == [50, 384]:
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((w * 1.5).astype(w.dtype), init.name))
            hit += 1
    assert hit >= 1, [(i.name, list(i.dims)) for i in model.graph.initializer]
    onnx.save(model, str(dst))
    return dst


def test_image_set_split_has_no_group_leakage_and_pins_snapshot(adata: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from jangin.training._image_set import select_anomaly_images

    ds = adata.make_anomaly_dataset(tmp_path / "ds", n_good=24, n_bad=8)
    snap = ds.snapshot().to_dict()
    data = select_anomaly_images(ds, group_by="session_id", fractions=(0.5, 0.25, 0.25))
    groups = {s: {r["session_id"] for r in rows} for s, rows in data.splits.items()}
    good_groups = {s: {r["session_id"] for r in rows if not r["bad"]} for s, rows in data.splits.items()}
    assert not good_groups["train"] & (good_groups["val"] | good_groups["test"])
    assert not any(r["bad"] for r in data.splits["train"])
    assert groups["train"]
    # A label added later turns a good frame bad: the pinned snapshot still sees the old data.
    fid = next(r["frame_id"] for r in data.splits["train"])
    ds.append(
        "labels",
        [
            {
                "label_id": "late",
                "target": "frame",
                "frame_id": fid,
                "session_id": "sess-0",
                "kind": "class",
                "name": "crack",
                "source": "review",
                "created_at": datetime.now(UTC),
            }
        ],
    )
    again = select_anomaly_images(ds, group_by="session_id", fractions=(0.5, 0.25, 0.25), snapshot=snap)
    assert {s: [r["frame_id"] for r in rows] for s, rows in again.splits.items()} == {
        s: [r["frame_id"] for r in rows] for s, rows in data.splits.items()
    }
    now = select_anomaly_images(ds, group_by="session_id", fractions=(0.5, 0.25, 0.25))
    assert fid not in [r["frame_id"] for r in now.splits["train"]]


def test_too_few_good_images_is_a_training_error(adata: Any, tmp_path: Path) -> None:
    from jangin.training._image_set import select_anomaly_images

    ds = adata.make_anomaly_dataset(tmp_path / "ds", n_good=3, n_bad=2)
    with pytest.raises(TrainingError, match="good image"):
        select_anomaly_images(ds)


def test_k_center_greedy_covers_clusters() -> None:
    import torch

    from jangin.training._anomaly import k_center_greedy

    centres = torch.tensor([[0.0] * 8, [10.0] * 8, [-10.0] * 8])
    x = torch.cat([c + 0.01 * torch.randn(100, 8) for c in centres])
    idx = k_center_greedy(x, 0.01)
    assert len(idx) == 3 and {int(i) // 100 for i in idx} == {0, 1, 2}
