"""Tiny ONNX models built with ``onnx.helper`` that follow the serving contracts exactly, with outputs
that are simple functions of the image, so tests can steer verdicts by colour:

* detector (``yolo_v8``, classes ``green``, ``red``): one box (the centre half of the input) whose class
  scores are the mean green and mean red of the input (0..1);
* anomaly model (``anomaly_v1``): ``pred_score`` = mean brightness, ``anomaly_map`` = per-pixel brightness;
  raw threshold 0.5, norm range 0..1, so the normalised score is the brightness too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _save(model: Any, path: Path) -> Path:
    import onnx

    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def detector_onnx(path: Path, size: int = 64) -> Path:
    """(N,3,S,S) → (N, 6, 1): [cx, cy, w, h, mean G, mean R]."""
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 6, 1])
    inits = [
        helper.make_tensor("gather_idx", TensorProto.INT64, [2], [1, 0]),
        helper.make_tensor("w", TensorProto.FLOAT, [3, 4], [0.0] * 12),
        helper.make_tensor("b", TensorProto.FLOAT, [4], [size / 2, size / 2, size / 2, size / 2]),
        helper.make_tensor("axes23", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images", "axes23"], ["mean"], keepdims=0),
        helper.make_node("Gather", ["mean", "gather_idx"], ["cls"], axis=1),
        helper.make_node("MatMul", ["mean", "w"], ["box0"]),
        helper.make_node("Add", ["box0", "b"], ["box"]),
        helper.make_node("Concat", ["box", "cls"], ["pred"], axis=1),
        helper.make_node("Unsqueeze", ["pred", "axis2"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "tiny_detector", [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    return _save(model, path)


def anomaly_onnx(path: Path, size: int = 32) -> Path:
    """(N,3,S,S) → pred_score (N,) = mean, anomaly_map (N,1,S,S) = channel mean."""
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])
    outs = [
        helper.make_tensor_value_info("pred_score", TensorProto.FLOAT, ["N"]),
        helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", 1, size, size]),
    ]
    inits = [
        helper.make_tensor("axes123", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes123"], ["pred_score"], keepdims=0),
        helper.make_node("ReduceMean", ["input", "axis1"], ["anomaly_map"], keepdims=1),
    ]
    graph = helper.make_graph(nodes, "tiny_anomaly", [inp], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    return _save(model, path)


def publish_detector(registry: Any, name: str = "colors", *, tmp: Path, size: int = 64) -> Any:
    """Publish the tiny detector as a new version of ``name``; returns the ModelVersion."""
    from jangin.core import ModelManifest
    from jangin.core.artifacts import InputSpec

    onnx_path = detector_onnx(tmp / f"{name}-det.onnx", size)
    m = ModelManifest(
        name=name,
        task="detect",
        framework="onnx-helper",
        classes=["green", "red"],
        input=InputSpec(width=size, height=size),
        outputs={"format": "yolo_v8", "nms": False},
        thresholds={"conf": 0.25, "iou": 0.45},
    )
    return registry.add(m, {"model.onnx": onnx_path})


def publish_anomaly(registry: Any, name: str = "bright", *, tmp: Path, size: int = 32) -> Any:
    """Publish the tiny anomaly model as a new version of ``name``."""
    from jangin.core import ModelManifest
    from jangin.core.artifacts import InputSpec

    onnx_path = anomaly_onnx(tmp / f"{name}-anom.onnx", size)
    m = ModelManifest(
        name=name,
        task="anomaly",
        framework="onnx-helper",
        classes=["anomalous"],
        input=InputSpec(width=size, height=size, resize="stretch"),
        outputs={
            "format": "anomaly_v1",
            "norm": {"score_min": 0.0, "score_max": 1.0, "map_min": 0.0, "map_max": 1.0},
        },
        thresholds={"image": 0.5, "pixel": 0.5},
    )
    return registry.add(m, {"model.onnx": onnx_path})


def solid(bgr: tuple[int, int, int], size: int = 64, fmt: str = ".jpg") -> bytes:
    """An encoded image of one colour (BGR)."""
    import cv2

    img = np.zeros((size, size, 3), np.uint8)
    img[:] = bgr
    ok, buf = cv2.imencode(fmt, img)
    assert ok
    return buf.tobytes()


def classifier_onnx(path: Path, size: int = 32) -> Path:
    """(N,3,S,S) RGB → softmax(10 · [mean G, mean R]): classes ``good`` (green) and ``scratch`` (red)."""
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 2])
    inits = [
        helper.make_tensor("axes23", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor("gr", TensorProto.INT64, [2], [1, 0]),
        helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images", "axes23"], ["mean"], keepdims=0),
        helper.make_node("Gather", ["mean", "gr"], ["logit0"], axis=1),
        helper.make_node("Mul", ["logit0", "ten"], ["logit"]),
        helper.make_node("Softmax", ["logit"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny_classifier", [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    return _save(model, path)


def publish_classifier(registry: Any, name: str = "finish", *, tmp: Path, size: int = 32) -> Any:
    """Publish the tiny classifier (classes ``good``, ``scratch``) as a new version of ``name``."""
    from jangin.core import ModelManifest
    from jangin.core.artifacts import InputSpec

    onnx_path = classifier_onnx(tmp / f"{name}-cls.onnx", size)
    m = ModelManifest(
        name=name,
        task="classify",
        framework="onnx-helper",
        classes=["good", "scratch"],
        input=InputSpec(width=size, height=size, color="rgb", resize="center_crop"),
        outputs={"format": "cls_v1", "softmax": True},
    )
    return registry.add(m, {"model.onnx": onnx_path})


#: The tiny process model's feature spec: channels ``pressure`` and ``flow``; it uses their means.
PROCESS_SPEC = {"version": 1, "channels": ["pressure", "flow"], "band": {}, "centre": {}, "scale": {}}


def process_onnx(path: Path) -> Path:
    """features (N, 2) = [mean pressure, mean flow] → probabilities (N, 2), P(NG) = clip(mean pressure)."""
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 2])
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])
    inits = [
        helper.make_tensor("i0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("hi", TensorProto.FLOAT, [], [1.0]),
    ]
    nodes = [
        helper.make_node("Gather", ["features", "i0"], ["p0"], axis=1),
        helper.make_node("Clip", ["p0", "lo", "hi"], ["p"]),
        helper.make_node("Sub", ["hi", "p"], ["q"]),
        helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny_process", [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    return _save(model, path)


def publish_process(registry: Any, name: str = "pressure-judge", *, tmp: Path) -> Any:
    """Publish the tiny process model (P(NG) = mean pressure, clipped to 0..1)."""
    from jangin.core import ModelManifest
    from jangin.core.features import feature_names

    names = feature_names(PROCESS_SPEC["channels"])  # type: ignore[arg-type]
    index = [names.index("pressure:mean"), names.index("flow:mean")]
    m = ModelManifest(
        name=name,
        task="process",
        framework="onnx-helper",
        classes=["OK", "NG"],
        outputs={
            "format": "process_v1",
            "input": "features",
            "n_features": 2,
            "ng_column": 1,
            "feature_spec": {**PROCESS_SPEC, "index": index},
            "feature_index": index,
        },
        thresholds={"ng": 0.5},
    )
    return registry.add(m, {"model.onnx": process_onnx(tmp / f"{name}.onnx")})
