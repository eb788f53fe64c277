"""Runtime artifacts behind the parity gate (jangin.training._export, `jangin models export`).

Models are built with onnx.helper (a small conv anomaly model; the tiny colour detector of the
inference tests), so the gate's figures are known: no training run is needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import ModelManifest, ModelRegistry, TrainingError
from jangin.core.artifacts import InputSpec, ModelVersion

pytest.importorskip("onnx")

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
import onnx_models

from jangin.core.runtimes import available_runtimes, open_artifact
from jangin.training._export import CheckSet, export_runtime

if not any(rt == "openvino" for rt, _ in available_runtimes()):  # imports openvino the guarded way
    pytest.skip("install the openvino extra", allow_module_level=True)


def anomaly_conv(path: Path, size: int = 32, seed: int = 0) -> Path:
    """images (N,3,S,S) → conv 3x3 → relu → conv 1x1: pred_score = its mean, anomaly_map = channel mean."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(np.abs(rng.normal(0, 0.3, (8, 3, 3, 3))).astype(np.float32), "w1"),
        numpy_helper.from_array(np.full(8, -0.5, np.float32), "b1"),
        numpy_helper.from_array(np.abs(rng.normal(0, 0.3, (4, 8, 1, 1))).astype(np.float32), "w2"),
        helper.make_tensor("a123", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("a1", TensorProto.INT64, [1], [1]),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("ReduceMean", ["c2", "a123"], ["pred_score"], keepdims=0, name="score"),
        helper.make_node("ReduceMean", ["c2", "a1"], ["anomaly_map"], keepdims=1, name="map"),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "anomaly_conv",
        [helper.make_tensor_value_info("images", f, ["N", 3, size, size])],
        [
            helper.make_tensor_value_info("pred_score", f, ["N"]),
            helper.make_tensor_value_info("anomaly_map", f, ["N", 1, size, size]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def parts(n: int, bad: bool, seed: int) -> list[np.ndarray]:
    """Dark noisy parts; defective ones carry a bright square."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        im = rng.integers(0, 60, (48, 48, 3), dtype=np.uint8)
        if bad:
            s = int(rng.integers(6, 14))
            x, y = (int(v) for v in rng.integers(0, 48 - s, 2))
            im[y : y + s, x : x + s] = int(rng.integers(120, 255))
        out.append(im)
    return out


@pytest.fixture
def anomaly(tmp_path: Path) -> tuple[ModelVersion, CheckSet]:
    reg = ModelRegistry(tmp_path / "models")
    m = ModelManifest(
        name="anom",
        task="anomaly",
        classes=["good", "anomalous"],
        input=InputSpec(width=32, height=32, resize="stretch"),
        outputs={
            "format": "anomaly_v1",
            "norm": {"score_min": 0, "score_max": 1, "map_min": 0, "map_max": 1},
        },
        thresholds={"image": 0.5, "pixel": 0.5},
    )
    mv = reg.add(m, {"model.onnx": anomaly_conv(tmp_path / "a.onnx")})
    check = CheckSet(
        parts(20, False, 1) + parts(20, True, 2),
        [False] * 20 + [True] * 20,
        parts(16, False, 3) + parts(16, True, 4),
        "synthetic parts",
    )
    return mv, check


def test_every_runtime_and_precision_passes_and_is_recorded(anomaly: tuple[ModelVersion, CheckSet]) -> None:
    mv, check = anomaly
    combos = [("openvino", "fp32"), ("openvino", "fp16"), ("onnxruntime", "int8"), ("openvino", "int8")]
    for runtime, precision in combos:
        art = export_runtime(mv, check, runtime=runtime, precision=precision)
        p = art.parity
        assert (p["metric"], p["fp32"], p["passed"]) == ("auroc", 1.0, True), (runtime, precision, p)
        assert p["drop"] <= 0.01
        assert art.throughput and art.fp32_throughput
        if precision != "int8":
            assert p["max_rel_output_diff"] < (1e-3 if precision == "fp32" else 2e-2)
        else:
            assert p["int8"]["images"] == 32 and p["int8"]["format"] == "QDQ"
            # 7-bit weights for OpenVINO (saturating uint8 x int8 sums on CPUs without VNNI)
            assert p["int8"]["reduce_range"] is (runtime == "openvino")
    again = ModelVersion.load(mv.path)  # the manifest was rewritten; published files still verify
    assert [(r.runtime, r.precision) for r in again.manifest.runtimes] == combos
    for r in again.manifest.runtimes:
        for f in r.files:
            assert (mv.path / f).is_file() and f.startswith(f"runtimes/{r.runtime}-{r.precision}/")
    assert not list(mv.path.glob(".staging-*"))
    # each artifact opens through open_artifact and scores like the fp32 model
    from jangin.training._export import preprocess

    assert again.manifest.input is not None
    x = np.stack([preprocess(im, again.manifest.input)[0] for im in check.inputs[18:22]])  # good and bad
    ref = open_artifact(mv.path, again.manifest, prefer=["onnxruntime:fp32"]).run({"images": x})[0]
    for runtime, precision in combos:
        rt = open_artifact(mv.path, again.manifest, prefer=[f"{runtime}:{precision}"])
        assert (rt.name, rt.precision) == (runtime, precision)
        got = rt.run({"images": x})[0]
        np.testing.assert_allclose(got, ref, rtol=0.1 if precision == "int8" else 2e-2)
        assert got[:2].max() < got[2:].min()  # good parts still score below defective ones


def test_int8_gate_refuses_a_broken_calibration(
    anomaly: tuple[ModelVersion, CheckSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    import jangin.training._export as export

    monkeypatch.setattr(export, "INT8_FLOAT_STEM_DEFAULT", 0)  # the whole model quantised
    mv, check = anomaly
    before = (mv.path / "manifest.json").read_text()
    black = CheckSet(check.inputs, check.labels, [np.zeros((48, 48, 3), np.uint8)], "one black image")
    for runtime in ("onnxruntime", "openvino"):
        with pytest.raises(TrainingError) as err:
            export_runtime(mv, black, runtime=runtime, precision="int8", measure=False)
        msg = str(err.value)
        assert f"parity gate refused {runtime} int8 for anom:v1: auroc " in msg
        assert "vs fp32 1.0000" in msg and "> 0.01" in msg
    assert (mv.path / "manifest.json").read_text() == before
    assert not (mv.path / "runtimes").exists() and not list(mv.path.glob(".staging-*"))


def test_refusals_before_any_work(anomaly: tuple[ModelVersion, CheckSet]) -> None:
    mv, check = anomaly
    with pytest.raises(TrainingError, match="onnxruntime fp32 is model.onnx itself"):
        export_runtime(mv, check, runtime="onnxruntime", precision="fp32")
    with pytest.raises(TrainingError, match="fp16 on CPU computes in fp32"):
        export_runtime(mv, check, runtime="onnxruntime", precision="fp16")
    with pytest.raises(TrainingError, match="one class only"):
        export_runtime(
            mv, CheckSet(check.inputs[:20], check.labels[:20]), runtime="openvino", precision="fp32"
        )


def test_int8_chooses_its_settings_on_the_selection_split(
    anomaly: tuple[ModelVersion, CheckSet], caplog: pytest.LogCaptureFixture
) -> None:
    """The float stem is chosen on the selection split (never the check inputs): a good calibration
    passes with every convolution in int8 and nothing more is tried; after one black calibration image
    no try keeps the verdicts (with the first convolution in float AUROC holds but the scores move off
    the model's threshold), and the gate refuses on the check inputs with the verdict figure."""
    import onnx

    from jangin.training._export import stem_nodes

    mv, check = anomaly
    model = onnx.load(str(mv.file("model.onnx")))
    assert stem_nodes(model, 0) == [] and stem_nodes(model, 1) == ["conv1", "relu1"]
    assert len(stem_nodes(model, 5)) == len(model.graph.node)
    sel, sel_labels = parts(10, False, 5) + parts(10, True, 6), [False] * 10 + [True] * 10
    good = CheckSet(check.inputs, check.labels, check.calibration, "parts", sel, sel_labels)
    p = export_runtime(mv, good, runtime="onnxruntime", precision="int8", measure=False).parity
    assert p["passed"] and p["int8"]["float_stem"] == 0 and p["agreement"]["verdicts"] >= 0.95, p
    assert [t["float_stem"] for t in p["int8"]["selection"]["tried"]] == [0], p
    black = [np.zeros((48, 48, 3), np.uint8)]
    before = (mv.path / "manifest.json").read_text()
    for runtime in ("onnxruntime", "openvino"):
        with pytest.raises(
            TrainingError, match=r"only 0\.\d+ of the verdicts at the model's thresholds agree"
        ):
            export_runtime(
                mv,
                CheckSet(check.inputs, check.labels, black, "black", sel, sel_labels),
                runtime=runtime,
                precision="int8",
                measure=False,
            )
    assert (mv.path / "manifest.json").read_text() == before
    assert not list(mv.path.glob(".staging-*"))


def test_export_best_keeps_what_passes_and_says_what_was_refused(
    anomaly: tuple[ModelVersion, CheckSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    import jangin.training._export as export
    from jangin.training._export import export_best

    monkeypatch.setattr(export, "INT8_FLOAT_STEM_DEFAULT", 0)  # the whole model quantised
    mv, check = anomaly
    bad = CheckSet(check.inputs, check.labels, [np.zeros((48, 48, 3), np.uint8)], "one black image")
    passed, refused = export_best(mv, bad, stop_at=None, measure_seconds=0.2)
    # int8 calibrated on one black image is refused by the gate; OpenVINO fp32 passes and is recorded
    assert [(a.runtime, a.precision) for a in passed] == [("openvino", "fp32")]
    assert len(refused) == 2 and all("parity gate refused" in r and "int8" in r for r in refused)
    recorded = ModelVersion.load(mv.path).manifest.runtimes
    assert [(r.runtime, r.precision, r.parity["passed"]) for r in recorded] == [("openvino", "fp32", True)]
    assert recorded[0].throughput and recorded[0].fp32_throughput and recorded[0].sha256


def test_openvino_export_of_a_tree_model_is_refused_in_one_line(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "core"))
    from test_runtimes import _tree_model

    reg = ModelRegistry(tmp_path / "models")
    mv = reg.add(
        ModelManifest(name="tree", task="process", classes=["OK", "NG"]),
        {"model.onnx": _tree_model(tmp_path / "tree.onnx")},
    )
    check = CheckSet([np.array([0.2], np.float32), np.array([0.9], np.float32)], [False, True])
    with pytest.raises(
        TrainingError, match=r"tree:v1 cannot be exported to openvino: it uses ai.onnx.ml"
    ) as err:
        export_runtime(mv, check, runtime="openvino", precision="fp32")
    assert "\n" not in err.value.message and "onnxruntime" in (err.value.hint or "")


def _colours(n: int, size: int = 64) -> tuple[list[np.ndarray], list[Any]]:
    """Solid green / red images; the colour detector's box is the centre half, class by colour."""
    imgs, truths = [], []
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[:] = (20, 200, 30) if i % 2 == 0 else (30, 20, 200)
        imgs.append(img)
        truths.append((np.array([[0.25, 0.25, 0.75, 0.75]], np.float32), np.array([i % 2])))
    return imgs, truths


def test_detector_gate_measures_map50(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    mv = onnx_models.publish_detector(reg, tmp=tmp_path)
    imgs, truths = _colours(8)
    art = export_runtime(mv, CheckSet(imgs, truths, imgs, "colours"), runtime="openvino", precision="fp16")
    assert art.parity["metric"] == "mAP50" and art.parity["fp32"] == art.parity["value"] == 1.0
    wrong = [(b, 1 - c) for b, c in truths]  # every label swapped: mAP50 0 for fp32 and the artifact
    art = export_runtime(mv, CheckSet(imgs, wrong, imgs, "swapped"), runtime="openvino", precision="fp32")
    assert art.parity["fp32"] == art.parity["value"] == 0.0


def test_models_export_command(synth: Any, tmp_path: Path) -> None:
    """`jangin models export` reads the held-out split at the model's snapshot from the dataset."""
    from typer.testing import CliRunner

    from jangin.training import build_detection_set
    from jangin.training.cli import models_app

    ds = synth.make_detection_dataset(tmp_path / "ds")
    data = build_detection_set(ds, cache_dir=tmp_path / "cache")
    reg = ModelRegistry(ds.models_dir)
    onnx_path = onnx_models.detector_onnx(tmp_path / "det.onnx")
    m = ModelManifest(
        name="colors",
        task="detect",
        classes=list(data.classes),
        input=InputSpec(width=64, height=64),
        outputs={"format": "yolo_v8", "nms": False},
        thresholds={"conf": 0.25, "iou": 0.45},
        dataset=data.dataset,
        dataset_snapshot=data.snapshot,
        train_config={"set": str(tmp_path / "gone"), "set_params": data.params},  # rebuilt from the dataset
    )
    reg.add(m, {"model.onnx": onnx_path})
    args = ["colors", "--runtime", "openvino", "--precision", "fp16", "--dataset", str(ds.root)]
    r = CliRunner().invoke(models_app, ["export", *args])
    assert r.exit_code == 0, r.output
    assert "added openvino fp16 to colors:v1" in r.output and "parity: mAP50" in r.output
    man = json.loads((ds.models_dir / "colors" / "v1" / "manifest.json").read_text())
    (entry,) = man["runtimes"]
    assert entry["parity"]["check_set"].startswith(("test split", "val split"))
    assert entry["parity"]["inputs"] == len(data.images("test") or data.images("val"))
    r = CliRunner().invoke(models_app, ["export", "colors", "--runtime", "tflite", "--dataset", str(ds.root)])
    assert r.exit_code != 0
    # --runtime best: each candidate is added or refused, one line each
    r = CliRunner().invoke(models_app, ["export", "colors", "--runtime", "best", "--dataset", str(ds.root)])
    assert r.exit_code == 0, r.output
    said = [ln for ln in r.output.splitlines() if ln.startswith(("added ", "refused "))]
    assert len(said) == 3 and any("openvino fp32" in ln for ln in said), r.output
    kept = {
        (e["runtime"], e["precision"])
        for e in json.loads((ds.models_dir / "colors" / "v1" / "manifest.json").read_text())["runtimes"]
    }
    assert ("openvino", "fp32") in kept and ("openvino", "fp16") in kept


def test_demo_step(synth: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jangin.demo._runtimes import demo_runtimes
    from jangin.training import build_detection_set

    ds = synth.make_detection_dataset(tmp_path / "ds", n_sessions=4, frames_per_session=3)
    data = build_detection_set(ds, cache_dir=tmp_path / "cache")
    mv = onnx_models.publish_detector(ModelRegistry(ds.models_dir), tmp=tmp_path)
    monkeypatch.setenv("JANGIN_DEMO_SKIP", "etch,runtimes")
    assert demo_runtimes(mv, data) == {"skipped": True}
    monkeypatch.delenv("JANGIN_DEMO_SKIP")
    lines: list[str] = []
    res = demo_runtimes(mv, data, say=lines.append)
    assert lines[0] == "runtimes (held-out split, this box):"
    assert res["table"][0]["runtime"] == "onnxruntime"
    assert len(res["table"]) + len(res["refused"]) >= 2  # the reference, and int8 (or its refusal)
    assert res["served"] in ("onnxruntime:fp32", "onnxruntime:int8", "openvino:int8", "openvino:fp32")
    assert lines[-1].startswith(f"  open_artifact serves {res['served']}")
