"""Settings (JANGIN_* variables, pseudonyms) and the model registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jangin.core import ModelLoadError, ModelManifest, ModelRegistry, NotFoundError
from jangin.core.detections import Detections, box_iou
from jangin.core.settings import Role, Settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JANGIN_DATASET", str(tmp_path / "d"))
    monkeypatch.setenv("JANGIN_API_KEYS", '{"k-eng": "engineer", "k-rec": "recorder"}')
    monkeypatch.setenv("JANGIN_SITE_KEY", "secret")
    s = Settings()
    assert s.dataset == tmp_path / "d"
    assert s.role_of("k-eng") is Role.ENGINEER
    assert s.role_of("wrong") is None and s.role_of(None) is None
    assert s.pseudonym("Kim  Min-jun") == s.pseudonym("kim min-jun")
    assert s.pseudonym("Kim Min-jun").startswith("tech-") and "kim" not in s.pseudonym("Kim Min-jun")
    assert Settings(site_key="other").pseudonym("Kim Min-jun") != s.pseudonym("Kim Min-jun")


def _publish(reg: ModelRegistry, payload: bytes) -> str:
    with reg.publish(ModelManifest(name="det", task="detect", classes=["a"])) as d:
        (d / "model.onnx").write_bytes(payload)
    return reg.last_published.version


def test_registry_versions_manifest_and_checksums(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    assert _publish(reg, b"one") == "v1"
    assert _publish(reg, b"two") == "v2"
    assert reg.versions("det") == ["v1", "v2"]
    mv = reg.get("det")
    assert mv.version == "v2"  # latest when nothing is promoted
    reg.promote("det", "v1")
    assert reg.get("det").version == "v1" and reg.get("det:latest").version == "v2"
    import hashlib

    assert mv.manifest.files == {"model.onnx": hashlib.sha256(b"two").hexdigest()}
    (mv.path / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelLoadError, match="does not match its checksum"):
        reg.get("det", "v2")
    with pytest.raises(NotFoundError, match="no version 'v9'"):
        reg.get("det", "v9")
    with pytest.raises(NotFoundError, match="no model named"):
        reg.get("nothing")


def test_failed_publish_leaves_nothing(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    with pytest.raises(RuntimeError), reg.publish(ModelManifest(name="det", task="detect")) as d:
        (d / "model.onnx").write_bytes(b"half")
        raise RuntimeError("export crashed")
    assert reg.versions("det") == []
    assert list((tmp_path / "models" / "det").iterdir()) == []


def test_detections_validate_and_iou() -> None:
    d = Detections(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([0.9]), np.array([1]), ("a", "b"))
    assert d.names == ["b"] and len(d) == 1
    assert d.to_rows()[0]["bbox_xyxy_norm"] == pytest.approx([0.1, 0.1, 0.5, 0.5])
    with pytest.raises(ValueError, match="class id out of range"):
        Detections(np.zeros((1, 4)), np.ones(1), np.array([2]), ("a", "b"))
    with pytest.raises(ValueError, match="1 boxes, 2 scores"):
        Detections(np.zeros((1, 4)), np.ones(2), np.zeros(1), ("a",))
    iou = box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    assert iou[0] == pytest.approx([1 / 7, 1.0, 0.0])
