"""Guard rails: baselines, refusals, registered backbone weights, pixel metrics (real files and tables)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from jangin.core import Dataset, ModelManifest, ModelRegistry, TrainingError, WeightsError
from jangin.training._guard import anomaly_guard, classifier_guard
from jangin.training._metrics import pro_score, rank_auc, roc_auc

# -- figures --------------------------------------------------------------------------------------


def test_rank_auc_matches_pairwise_auc_and_pro_orders_maps() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.3
    s = np.round(rng.random(400) + 0.4 * y, 2)  # ties included
    assert rank_auc(y, s) == roc_auc(y, s)
    assert rank_auc(np.zeros(5, bool), s[:5]) is None
    masks = np.zeros((3, 64, 64), bool)
    masks[0, 5:30, 5:30] = True
    masks[1, 40:60, 10:50] = True
    perfect = masks + 0.1 * rng.random(masks.shape)
    noise = rng.random(masks.shape)
    assert pro_score(masks, perfect) == pytest.approx(1.0, abs=1e-2)
    assert 0.08 < (pro_score(masks, noise) or 0) < 0.25  # about max_fpr / 2 = 0.15 for a random map
    assert pro_score(masks, -perfect) == 0.0
    assert pro_score(np.zeros_like(masks), noise) is None


def test_classifier_guard_refuses_one_class_and_majority_level() -> None:
    classes = ("a", "b", "c")
    y = np.array([0] * 14 + [1] * 4 + [2] * 2)
    g = classifier_guard(y, np.zeros_like(y), classes)
    assert g["baselines"]["accuracy"] == {
        "model": 0.7,
        "baseline": 0.7,
        "name": "majority class",
        "beats": False,
    }
    assert any("predicts one class ('a') for all 20" in r for r in g["refuse_promotion"])
    assert g["per_class_recall"] == {"a": 1.0, "b": 0.0, "c": 0.0}
    two = classifier_guard(y, np.where(y == 2, 0, y), classes)
    assert two["refuse_promotion"] == [] and two["warnings"] == [
        "recall 0 for 1 of 3 classes (c): it never finds them"
    ]
    good = classifier_guard(y, y, classes)
    assert good["refuse_promotion"] == [] and good["baselines"]["macro_f1"]["beats"] is True


def test_anomaly_guard_flags_everything_and_all_ng_baseline() -> None:
    m = {"images": 543, "defective": 316, "auroc": 0.53, "baseline_intensity_auroc": 0.54, "f1": 0.72}
    flagged = {"val": (100, 110, 20, 30), "test": (540, 543, 224, 227), "all-bad": (99, 100, 0, 1)}
    g = anomaly_guard(m, flagged, warnings=["random init"])
    assert g["warnings"][0] == "random init"
    all_ng = g["baselines"]["f1"]["baseline"]
    assert all_ng == pytest.approx(2 * 316 / (316 + 543), abs=1e-4)  # precision p, recall 1
    reasons = " ".join(g["refuse_promotion"])
    assert "540 of 543 test images (99 %), 224 of 227 good ones" in reasons
    assert "grey-level AUROC 0.540" in reasons
    assert "100 of 110" not in reasons  # 91 %: below the 95 % line
    assert "all-bad" not in reasons  # flagging a split of defective images is right
    perfect = anomaly_guard({**m, "auroc": 1.0, "baseline_intensity_auroc": 1.0, "f1": 1.0}, {})
    assert perfect["refuse_promotion"] == []  # matching a perfect baseline is not failing it


def test_promote_refuses_a_guarded_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    f = tmp_path / "model.onnx"
    f.write_bytes(b"onnx")
    guard = {"warnings": ["w"], "refuse_promotion": ["predicts one class"], "baselines": {}}
    mv = reg.add(ModelManifest(name="m", task="classify", extra={"guard": guard}), {"model.onnx": f})
    with pytest.raises(TrainingError, match="not promoted: predicts one class"):
        reg.promote(mv.name, mv.version)
    assert reg.active("m") is None
    reg.promote(mv.name, mv.version, force=True)
    assert reg.active("m") == mv.version


def test_detector_from_random_init_is_refused_before_training(tmp_path: Path) -> None:
    from jangin.training import train_detector

    with pytest.raises(TrainingError, match="random initialisation") as err:
        train_detector(None, registry=ModelRegistry(tmp_path), work_dir=tmp_path)  # type: ignore[arg-type]
    assert err.value.hint and "--allow-random-init" in err.value.hint
    with pytest.raises(WeightsError, match="no weights named 'nope'"):
        train_detector(None, registry=ModelRegistry(tmp_path), work_dir=tmp_path, weights_name="nope")  # type: ignore[arg-type]


# -- an anomaly model on an imported image set with masks ------------------------------------------


def _texture(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    base = cv2.GaussianBlur(rng.normal(128, 40, (size, size)).astype(np.float32), (0, 0), 1.5)
    return np.clip(base, 0, 255).astype(np.uint8)


def _image_set(root: Path, n_good: int = 22, n_bad: int = 8) -> None:
    rng = np.random.default_rng(0)
    for i in range(n_good):
        (root / "good").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "good" / f"g{i:02d}.png"), cv2.cvtColor(_texture(rng), cv2.COLOR_GRAY2BGR))
    for i in range(n_bad):
        img = _texture(rng)
        mask = np.zeros_like(img)
        x, y = rng.integers(8, 40, 2)
        cv2.line(img, (int(x), int(y)), (int(x) + 16, int(y) + 10), 255, 3)  # a bright scratch
        cv2.line(mask, (int(x), int(y)), (int(x) + 16, int(y) + 10), 255, 3)
        (root / "scratch").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "scratch" / f"s{i:02d}.png"), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        cv2.imwrite(str(root / "scratch" / f"s{i:02d}_mask.png"), mask)


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import timm
    import torch

    from jangin.capture import import_images
    from jangin.core.weights import WeightsRegistry
    from jangin.training import AnomalyConfig, train_anomaly

    base = tmp_path_factory.mktemp("guard")
    _image_set(base / "set")
    ds = Dataset.create(base / "ds")
    import_images(ds, base / "set", good_label="good", deidentify=False)
    home = base / "home"
    wfile = base / "resnet18.pth"
    torch.manual_seed(1)
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), wfile)
    entry = WeightsRegistry(home / "weights").add(
        "r18-test", wfile, architecture="resnet18", framework="timm", licence="Apache-2.0", source="test init"
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("JANGIN_HOME", str(home))
    try:
        cfg = AnomalyConfig(name="tex", imgsz=64, device="cpu", fractions=(0.6, 0.2, 0.2))
        with pytest.raises(TrainingError, match="random initialisation"):
            train_anomaly(ds, cfg, registry=ModelRegistry(ds.models_dir), work_dir=base / "work")
        mv = train_anomaly(
            ds,
            cfg.model_copy(update={"backbone_weights": "r18-test"}),
            registry=ModelRegistry(ds.models_dir),
            work_dir=base / "work",
        )
    finally:
        mp.undo()
    return {"ds": ds, "mv": mv, "entry": entry, "base": base}


def test_manifest_records_registered_weights(masked_run: dict[str, Any]) -> None:
    man = masked_run["mv"].manifest
    rec = man.train_config["backbone"]
    assert rec["weights"] == "r18-test" and rec["weights_sha256"] == masked_run["entry"].sha256
    assert rec["architecture"] == "resnet18" and rec["source"] == "test init"
    assert not any("RANDOM" in w for w in man.extra["guard"]["warnings"])


def test_pixel_threshold_metrics_and_report(masked_run: dict[str, Any]) -> None:
    mv = masked_run["mv"]
    m = mv.manifest.metrics
    assert m["defective"] > 0 and m["mask_images"] == m["defective"]
    assert m["pixel_auroc"] is not None and 0 <= m["pixel_auroc"] <= 1
    assert m["pro"] is not None and m["baseline_pixel_auroc"] is not None
    assert m["pixel_threshold_method"] == "best pixel F1 on val masks"
    assert mv.manifest.thresholds["pixel"] != mv.manifest.thresholds["image"]
    assert m["baseline_all_ng_f1"] == pytest.approx(
        2 * m["defective"] / (m["defective"] + m["images"]), abs=1e-4
    )
    assert set(m["flagged"]) == {"val", "test"}
    page = (mv.path / "report" / "index.html").read_text()
    assert "Against the trivial baselines" in page and "grey-level AUROC" in page
    assert page.index("Against the trivial baselines") < page.index("<th>split</th>")  # above the figures
    heat = sorted((mv.path / "report").glob("heatmap-*.png"))
    assert heat and cv2.imread(str(heat[0])).shape[1] == 2 * 64
    assert all(f"report/{p.name}" in mv.manifest.files for p in heat)


def test_random_init_allowed_says_so_at_the_top(masked_run: dict[str, Any], tmp_path: Path) -> None:
    from jangin.training import AnomalyConfig, train_anomaly

    ds = masked_run["ds"]
    shutil.rmtree(tmp_path, ignore_errors=True)
    cfg = AnomalyConfig(name="tex-rand", imgsz=64, device="cpu", allow_random_init=True, algorithm="padim")
    mv = train_anomaly(ds, cfg, registry=ModelRegistry(ds.models_dir), work_dir=tmp_path / "w")
    guard = mv.manifest.extra["guard"]
    assert guard["warnings"][0].startswith("the backbone started from RANDOM initialisation")
    assert mv.manifest.train_config["backbone"] == {
        "architecture": "resnet18",
        "weights": "random-init",
        "weights_sha256": None,
    }
    page = (mv.path / "report" / "index.html").read_text()
    assert page.index("RANDOM initialisation") < page.index("<table>")
    stored = json.loads((mv.path / "manifest.json").read_text())
    assert stored["extra"]["guard"]["baselines"]["auroc"]["name"] == "grey-level AUROC"


def test_explicit_and_stratified_splits(tmp_path: Path) -> None:
    from jangin.capture import import_images
    from jangin.training._classify import _split
    from jangin.training._image_set import select_anomaly_images

    _image_set(tmp_path / "set", n_good=9, n_bad=3)
    ds = Dataset.create(tmp_path / "ds")
    import_images(ds, tmp_path / "set", deidentify=False)
    lines = ["path,split"]
    lines += [f"good/g{i:02d}.png,{'train' if i < 6 else 'val' if i < 8 else 'test'}" for i in range(9)]
    lines += ["scratch/s00.png,train", "scratch/s01.png,val"]  # s02 not listed: left out
    (tmp_path / "split.csv").write_text("\n".join(lines) + "\n")
    data = select_anomaly_images(ds, split_file=tmp_path / "split.csv")
    got = {k: sorted(str(r["source_uri"]) for r in v) for k, v in data.splits.items()}
    assert got["train"] == [f"good/g{i:02d}.png" for i in range(6)]
    assert got["val"] == ["good/g06.png", "good/g07.png", "scratch/s01.png"]
    assert got["test"] == ["good/g08.png", "scratch/s00.png"]  # a defective image never trains
    # stills: each class gets its share of every split
    rows = [{"grp": f"a{i}", "name": "a", "frame_id": f"a{i}", "source_uri": None} for i in range(40)]
    rows += [{"grp": f"b{i}", "name": "b", "frame_id": f"b{i}", "source_uri": None} for i in range(10)]
    split = _split(rows, (0.6, 0.2, 0.2), 0, stratify=True, split_file=None)
    for cls, n in (("a", 40), ("b", 10)):
        counts = {
            s: sum(1 for g, v in split.items() if g.startswith(cls) and v == s)
            for s in ("train", "val", "test")
        }
        assert counts == {"train": n * 6 // 10, "val": n // 5, "test": n // 5}, (cls, counts)
