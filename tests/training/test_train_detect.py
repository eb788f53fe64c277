"""train_detector end to end (imgsz 64, 2 epochs): registry version, metrics, parity gate, no network."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import ModelVersion, TrainingError
from jangin.training import check_parity, train_detector

pytestmark = pytest.mark.slow


def test_training_runs_with_the_network_blocked(trained: dict[str, Any]) -> None:
    assert trained["network_attempts"] == []


def test_onnx_runtime_telemetry_stays_off(trained: dict[str, Any], tmp_path: Path) -> None:
    """In a fresh process (other tests may have loaded onnxruntime already): Jangin's runtime sets
    ORT_DISABLE_TELEMETRY before onnxruntime loads, and a prediction leaves nothing in the cache dir."""
    import os
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from jangin.inference import OnnxDetector\n"
        "det = OnnxDetector.load(sys.argv[1], 'squares:v1')\n"
        "det.predict_bytes(open(sys.argv[2], 'rb').read())\n"
        "assert os.environ.get('ORT_DISABLE_TELEMETRY') == '1'\n"
        "assert 'onnxruntime' in sys.modules\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    image = trained["data"].images("test")[0]
    r = subprocess.run(
        [sys.executable, "-c", code, str(trained["registry"].root), str(image)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "cache" / "Microsoft").exists() and not (tmp_path / ".cache").exists()


def test_publishes_a_version_whose_manifest_lists_every_file_with_its_sha256(trained: dict[str, Any]) -> None:
    mv: ModelVersion = trained["mv"]
    m = mv.manifest
    on_disk = {str(p.relative_to(mv.path)) for p in mv.path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(m.files) == on_disk
    assert {"model.onnx", "best.pt", "metrics.json", "plots/PR_curve.png", "plots/results.csv"} <= on_disk
    for rel, digest in m.files.items():
        assert hashlib.sha256((mv.path / rel).read_bytes()).hexdigest() == digest, rel
    ModelVersion.load(mv.path, verify=True)
    assert trained["registry"].versions("squares") == ["v1"]


def test_manifest_describes_the_model(trained: dict[str, Any]) -> None:
    m = trained["mv"].manifest
    data = trained["data"]
    assert m.task == "detect" and m.classes == ["green", "red"] and m.framework == "ultralytics 8.4.190"
    assert (m.input.width, m.input.height, m.input.resize, m.input.color, m.input.pad_value) == (
        64,
        64,
        "letterbox",
        "rgb",
        114,
    )
    assert m.input.scale == pytest.approx(1 / 255)
    # 64 px: 8x8 + 4x4 + 2x2 anchors at strides 8, 16, 32
    assert m.outputs == {**m.outputs, "format": "yolo_v8", "shape": ["batch", 6, 84], "nms": False}
    assert m.thresholds == {"conf": 0.25, "iou": 0.45}
    assert m.dataset_snapshot == data.snapshot == trained["snapshot_at_training"]
    assert (
        m.train_config["epochs"] == 2 and m.train_config["amp"] is False and m.train_config["device"] == "cpu"
    )
    metrics = json.loads((trained["mv"].path / "metrics.json").read_text())
    assert metrics == m.metrics
    assert metrics["split"] == "test" and metrics["images"] == len(data.splits["test"])
    for key in ("mAP50", "mAP50-95", "precision", "recall"):
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics["per_class_ap50"]) == {"green", "red"}


def test_progress_is_reported_per_epoch(trained: dict[str, Any]) -> None:
    events = trained["events"]
    assert [e for e in events if e[0] == "train squares"] == [
        ("train squares", 0, 2),
        ("train squares", 1, 2),
        ("train squares", 2, 2),
    ]
    assert ("parity", 1, 1) in events and ("export", 1, 1) in events


def test_parity_gate_passed_and_compared_boxes(trained: dict[str, Any]) -> None:
    p = trained["mv"].manifest.parity
    assert p["passed"] is True
    assert p["raw_max_score_diff"] < 1e-4
    low = p["conf_0.001"]
    assert low["matched"] > 0 and low["boxes_reference"] == low["boxes_onnx"]
    assert low["matched"] + low["explained_by_nms_ties"] == low["boxes_reference"]
    assert low["unmatched_other"] == 0
    assert low["min_matched_iou"] >= 0.95 and low["max_score_diff"] <= 0.02


def _swap_class_channels(src: Path, dst: Path) -> None:
    """A realistic export bug: class order swapped in the output (channels 4 and 5)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    graph = model.graph
    out = graph.output[0].name
    for node in graph.node:
        for k, name in enumerate(node.output):
            if name == out:
                node.output[k] = "raw_output"
    graph.initializer.append(helper.make_tensor("perm", TensorProto.INT64, [6], [0, 1, 2, 3, 5, 4]))
    graph.node.append(helper.make_node("Gather", ["raw_output", "perm"], [out], axis=1))
    onnx.save(model, str(dst))


def _perturb_head(src: Path, dst: Path) -> None:
    """Another: the detection head's last convolutions (box and class branches) off by ~10 %."""
    import re

    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    rng = np.random.default_rng(0)
    hit = 0
    for init in model.graph.initializer:
        if re.fullmatch(r"model\.\d+\.cv[23]\.\d+\.2\.(weight|bias)", init.name):
            w = numpy_helper.to_array(init)
            noisy = (w * (1 + 0.1 * rng.standard_normal(w.shape))).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
            hit += 1
    assert hit >= 6, hit  # 3 scales x (box, class) x weight (identical biases may be shared)
    onnx.save(model, str(dst))


@pytest.mark.parametrize("breaker", [_swap_class_channels, _perturb_head])
def test_parity_gate_refuses_a_broken_export(trained: dict[str, Any], tmp_path: Path, breaker: Any) -> None:
    mv = trained["mv"]
    broken = tmp_path / "broken.onnx"
    breaker(mv.file("model.onnx"), broken)
    images = trained["data"].images("test")
    # the intact export passes the same check ...
    check_parity(mv.file("model.onnx"), mv.file("best.pt"), images, imgsz=64)
    # ... the broken one is refused, with the figures
    with pytest.raises(TrainingError, match="parity gate refused") as err:
        check_parity(broken, mv.file("best.pt"), images, imgsz=64)
    assert "Figures: {" in err.value.message and "raw_max_score_diff" in err.value.message
    assert err.value.message.count("passed': False") == 1


def test_weights_are_never_downloaded(trained: dict[str, Any], tmp_path: Path, network_guard: list) -> None:
    with pytest.raises(TrainingError, match="never downloads"):
        train_detector(trained["data"], registry=trained["registry"], model="yolo11n.pt", work_dir=tmp_path)
    with pytest.raises(ValueError, match="multiple of 32"):
        train_detector(trained["data"], registry=trained["registry"], imgsz=100, work_dir=tmp_path)
    assert network_guard == []


def test_an_interrupted_run_resumes_from_its_last_epoch(
    synth: Any, tmp_path: Path, network_guard: list
) -> None:
    """A run cut after its first of 3 epochs (the progress callback raises, as a power cut would end
    it) continues with resume=True at epoch 2, publishes a version trained for 3 epochs, and a
    finished run is not resumable."""
    from jangin.core import ModelRegistry
    from jangin.training import build_detection_set

    ds = synth.make_detection_dataset(tmp_path / "ds")
    data = build_detection_set(ds, cache_dir=tmp_path / "cache")
    registry = ModelRegistry(ds.models_dir)
    kw: dict[str, Any] = {
        "registry": registry,
        "name": "cut",
        "epochs": 3,
        "imgsz": 64,
        "batch": 8,
        "work_dir": tmp_path / "work",
        "allow_random_init": True,
    }

    def power_cut(task: str, done: int, total: int | None) -> None:
        if task == "train cut" and done == 1:
            raise RuntimeError("power cut")

    with pytest.raises(TrainingError, match="power cut"):
        train_detector(data, progress=power_cut, **kw)
    assert registry.versions("cut") == []
    events: list[tuple[str, int, int | None]] = []
    mv = train_detector(data, resume=True, progress=lambda *e: events.append(e), **kw)
    done = [d for t, d, _ in events if t == "train cut"]
    assert done[1:] == [2, 3], done  # (0 is the start marker) epoch 1 was not trained again
    assert mv.manifest.metrics["epochs_run"] == 3 and registry.versions("cut") == ["v1"]
    with pytest.raises(TrainingError, match="nothing to resume"):
        train_detector(data, resume=True, **kw)
    assert network_guard == []
