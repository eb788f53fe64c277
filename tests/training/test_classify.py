"""Classifier from box crops: no leakage, metrics, cls_v1 contract, parity gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import ModelRegistry, TrainingError


@pytest.mark.slow
def test_classifier_from_box_crops_offline(synth: Any, tmp_path: Path, network_guard: list[Any]) -> None:
    from jangin.training import build_classification_set, train_classifier

    ds = synth.make_detection_dataset(tmp_path / "ds", n_sessions=4, frames_per_session=6)
    data = build_classification_set(ds, cache_dir=tmp_path / "cache", group_by="session_id")
    assert data.classes == ("green", "red")
    again = build_classification_set(ds, cache_dir=tmp_path / "cache", group_by="session_id")
    assert again.path == data.path  # content-addressed cache hit
    registry = ModelRegistry(ds.models_dir)
    mv = train_classifier(
        data,
        registry=registry,
        work_dir=tmp_path / "w",
        name="crops",
        epochs=1,
        imgsz=32,
        batch=8,
        device="cpu",
    )
    assert network_guard == []
    m = registry.get("crops").manifest
    assert m.task == "classify" and m.outputs["format"] == "cls_v1" and m.input.resize == "center_crop"
    assert np.array(m.metrics["confusion_matrix"]).sum() == m.metrics["images"]
    assert m.parity["passed"] and {"model.onnx", "report/index.html"} <= set(m.files)
    # The parity gate refuses an export whose model is not the one evaluated.
    import torch
    from ultralytics import YOLO

    from jangin.training._classify import check_classifier_parity, preprocess

    net = YOLO(str(mv.path / "best.pt"), task="classify").model.float().eval()
    x = preprocess([p for p, _ in data.images("train")[:4]], 32)
    with torch.no_grad():
        for prm in net.parameters():
            prm.add_(0.5 * torch.randn_like(prm))
    with pytest.raises(TrainingError, match="parity gate refused"):
        check_classifier_parity(mv.path / "model.onnx", net, x)
