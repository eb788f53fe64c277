"""GPU: the anomaly model and the detector train on CUDA (skipped without one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jangin.core import ModelRegistry


@pytest.mark.gpu
def test_anomaly_and_detector_on_cuda(
    adata: Any, synth: Any, tmp_path: Path, network_guard: list[Any]
) -> None:
    from jangin.training import AnomalyConfig, build_detection_set, train_anomaly, train_detector

    ds = adata.make_anomaly_dataset(tmp_path / "ads")
    mv = train_anomaly(
        ds,
        AnomalyConfig(name="gpu-beads", imgsz=64, device="cuda", allow_random_init=True),
        registry=ModelRegistry(ds.models_dir),
        work_dir=tmp_path / "aw",
    )
    assert mv.manifest.train_config["device"] == "cuda" and mv.manifest.parity["passed"]
    dds = synth.make_detection_dataset(tmp_path / "dds")
    data = build_detection_set(dds, cache_dir=tmp_path / "cache")
    det = train_detector(
        data,
        registry=ModelRegistry(dds.models_dir),
        name="gpu-squares",
        epochs=2,
        imgsz=64,
        batch=8,
        device="auto",
        work_dir=tmp_path / "dw",
        allow_random_init=True,
    )
    assert det.manifest.train_config["device"] == "0" and det.manifest.parity["passed"] is True
    assert network_guard == []
