"""Anomaly methods without pretrained weights (cutpaste, draem, texture) and the NEU-DET patch cropping."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import ModelRegistry, TrainingError

REPO = Path(__file__).resolve().parents[2]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
S = 32


def _patches_module() -> Any:
    name = "jangin_bench_neu_det_patches"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "neu_det_patches.py")
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


# -- synthetic textures: oriented stripes; the anomaly is a region whose stripes turn 90° -------------


def texture(rng: np.random.Generator, defect: bool) -> np.ndarray:
    """Grey ``(S, S)`` uint8: diagonal stripes + noise; a defect turns the stripes in a square region.

    The defect keeps the mean grey level and its spread, so a grey-level baseline cannot see it.
    """
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    img = 128 + 50 * np.sin((xx + yy) * 0.8 + phase)
    if defect:
        k = int(rng.integers(10, 14))
        y, x = (int(v) for v in rng.integers(2, S - k - 2, 2))
        img[y : y + k, x : x + k] = (128 + 50 * np.sin((xx - yy) * 0.8 + phase))[y : y + k, x : x + k]
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def normalised(grey: np.ndarray) -> np.ndarray:
    x = np.repeat(grey[:, None], 3, 1).astype(np.float32) / 255
    return ((x - MEAN) / STD).astype(np.float32)


def grey_baseline(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Mean / std / percentiles distance to the good training images (the bench's grey baseline)."""

    def f(g: np.ndarray) -> np.ndarray:
        flat = g.reshape(len(g), -1).astype(np.float32)
        return np.column_stack([flat.mean(1), flat.std(1), *np.percentile(flat, [5, 50, 95], axis=1)])

    ft = f(train)
    mu, sd = ft.mean(0), ft.std(0) + 1e-6
    return np.sqrt((((f(test) - mu) / sd) ** 2).sum(1))


@pytest.fixture(scope="module")
def textures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    train = np.stack([texture(rng, False) for _ in range(48)])
    test_good = np.stack([texture(rng, False) for _ in range(16)])
    test_bad = np.stack([texture(rng, True) for _ in range(16)])
    return {
        "train": train,
        "test": np.concatenate([test_good, test_bad]),
        "y": np.r_[np.zeros(16, bool), np.ones(16, bool)],
    }


@pytest.mark.parametrize("method", ["cutpaste", "draem", "texture"])
def test_method_learns_textures_exports_and_beats_grey_baseline(
    method: str, textures: dict[str, np.ndarray], tmp_path: Path
) -> None:
    import torch

    from jangin.training._anomaly import check_anomaly_parity, export_anomaly_onnx
    from jangin.training._metrics import roc_auc

    torch.set_num_threads(1)
    x_train, x_test = normalised(textures["train"]), normalised(textures["test"])
    if method == "cutpaste":
        from jangin.training._ssl import SslConfig, fit_cutpaste

        net, info = fit_cutpaste(x_train, SslConfig(epochs=2, batch=16, coreset_ratio=0.5))
        assert info["bank"] > 0 and 0 <= info["pretext_accuracy"] <= 1
    elif method == "texture":
        from jangin.training._texture import TextureConfig, fit_texture

        net, info = fit_texture(x_train, TextureConfig(k=3))
        assert info["bank"] == len(x_train) and info["descriptor"] == 37
    else:
        from jangin.training._draem import DraemConfig, fit_draem

        net, info = fit_draem(x_train, DraemConfig(epochs=6, batch=8, width=8, smooth=5))
        assert np.isfinite(info["loss"]["seg"])
    with torch.no_grad():
        s, m = (t.numpy() for t in net(torch.from_numpy(x_test)))
    assert s.shape == (len(x_test),) and m.shape == (len(x_test), 1, S, S)
    auroc = roc_auc(textures["y"], s)
    base = roc_auc(textures["y"], grey_baseline(textures["train"], textures["test"]))
    assert auroc >= 0.8 and auroc >= base + 0.2, (method, auroc, base)

    onnx_path = export_anomaly_onnx(net, tmp_path / "m.onnx", S)
    thr = float(np.median(s))
    norm = {"score_min": float(s.min()), "score_max": float(s.max()), "map_min": float(m.min())}
    norm["map_max"] = max(float(m.max()), norm["map_min"] + 1e-6)
    parity = check_anomaly_parity(onnx_path, net, x_test[:8], thr, norm)
    assert parity["passed"] and parity["decision_flips"] == 0


def test_synthetic_anomalies_are_perlin_regions_with_foreign_texture() -> None:
    from jangin.training._draem import perlin_mask, synth_anomalies

    rng = np.random.default_rng(1)
    m = perlin_mask(32, 32, rng)
    assert m.dtype == bool and 0 < m.mean() < 1
    x = normalised(np.stack([texture(rng, False) for _ in range(6)]))
    aug, masks = synth_anomalies(x, rng, p=1.0)
    changed = np.abs(aug - x).max(1) > 1e-6
    assert masks.shape == (6, 1, 32, 32)
    # pixels change only inside the mask (and do change there for most masked pixels)
    assert not (changed & ~masks[:, 0].astype(bool)).any()
    assert changed[masks[:, 0].astype(bool)].mean() > 0.5


def test_cutpaste_batch_labels_and_changes() -> None:
    from jangin.training._ssl import cutpaste_batch

    rng = np.random.default_rng(2)
    x = normalised(np.stack([texture(rng, False) for _ in range(4)]))
    xb, yb = cutpaste_batch(x, rng)
    assert xb.shape == (12, 3, S, S) and list(yb) == [0] * 4 + [1] * 4 + [2] * 4
    # every CutPaste / scar copy differs from its augmented original
    assert all(np.abs(xb[4 + i] - xb[i]).max() > 0 and np.abs(xb[8 + i] - xb[i]).max() > 0 for i in range(4))


# -- train anomaly --method cutpaste end to end (dataset -> registry -> inference) -------------------


def _publish(adata: Any, tmp_path: Path, **config: Any) -> tuple[Any, Any, ModelRegistry, Any]:
    """Train ``config`` on a small synthetic anomaly dataset: the version, dataset, registry and config."""
    import torch

    from jangin.training import AnomalyConfig, train_anomaly

    torch.set_num_threads(1)
    ds = adata.make_anomaly_dataset(tmp_path / "ds", n_good=24, n_bad=8)
    registry = ModelRegistry(ds.models_dir)
    cfg = AnomalyConfig(imgsz=32, device="cpu", good_where="f.source_uri LIKE 'good/%'", **config)
    mv = train_anomaly(ds, cfg, registry=registry, work_dir=tmp_path / "work")
    # served as published: the anomaly_v1 contract (a normalised score and a map at the input size)
    from jangin.inference import OnnxAnomaly

    res = OnnxAnomaly.from_version(registry.get(cfg.name)).predict([np.full((40, 50, 3), 120, np.uint8)])
    assert 0.0 <= res[0].score <= 1.0 and res[0].anomaly_map.shape == (32, 32)
    return mv, ds, registry, cfg


def test_train_anomaly_method_cutpaste_publishes_a_servable_model(
    adata: Any, network_guard: list[Any], tmp_path: Path
) -> None:
    import torch

    from jangin.training import train_anomaly

    mv, ds, registry, cfg = _publish(
        adata, tmp_path, name="beads-cp", algorithm="cutpaste", epochs=2, coreset_ratio=0.5
    )
    man = mv.manifest
    assert man.train_config["algorithm"] == "cutpaste"
    assert man.train_config["backbone_init"].startswith("cutpaste self-supervised")
    sha = man.train_config["method_fit"]["backbone_sha256"]
    assert man.files["backbone.pt"] == sha and man.parity["passed"]
    assert "jangin cutpaste" in man.framework and network_guard == []

    # the backbone is registered in the site's weights registry, checksum pinned
    from jangin.core.weights import default_registry

    entry = default_registry().get("beads-cp-cutpaste")
    assert entry.sha256 == sha and entry.framework == "jangin"
    assert man.train_config["method_fit"]["weights_sha256"] == sha

    # it is reused by name (no pretraining); a file of another kind is refused
    cfg2 = cfg.model_copy(update={"name": "beads-cp2", "weights": Path("beads-cp-cutpaste")})
    mv2 = train_anomaly(ds, cfg2, registry=registry, work_dir=tmp_path / "work")
    fit2 = mv2.manifest.train_config["method_fit"]
    assert fit2["pretrained_from"] == "beads-cp-cutpaste" and "pretext_accuracy" not in fit2
    assert fit2["weights_sha256"] == sha and mv2.manifest.train_config["backbone_init"].startswith("weights:")
    torch.save({"x": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="not a CutPaste backbone"):
        train_anomaly(
            ds,
            cfg.model_copy(update={"weights": tmp_path / "other.pt"}),
            registry=registry,
            work_dir=tmp_path / "work",
        )


# -- NEU-DET patch cropping on a fake VOC set ---------------------------------------------------------


def _fake_voc(root: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    import cv2

    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(3)
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    for cls in ("scratches", "patches"):
        for i in range(1, 6):
            stem = f"{cls}_{i}"
            img = rng.integers(0, 255, (200, 200), dtype=np.uint8)
            cv2.imwrite(str(root / "images" / f"{stem}.jpg"), img)
            bx = [(int(rng.integers(1, 100)), int(rng.integers(1, 100)))]
            b = [(x, y, x + int(rng.integers(30, 90)), y + int(rng.integers(30, 90))) for x, y in bx]
            boxes[stem] = [(x1 - 1, y1 - 1, x2, y2) for x1, y1, x2, y2 in b]  # 0-based, end-exclusive
            objs = "".join(
                f"<object><name>{cls}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
                for x1, y1, x2, y2 in b
            )
            (root / "annotations" / f"{stem}.xml").write_text(
                f"<annotation><filename>{stem}.jpg</filename><size><width>200</width>"
                f"<height>200</height></size>{objs}</annotation>"
            )
    return boxes


def test_neu_det_patches_are_disjoint_from_boxes_and_split_by_image(tmp_path: Path) -> None:
    import cv2

    mod = _patches_module()
    data = tmp_path / "neu"
    boxes = _fake_voc(data)
    split_file = tmp_path / "split.json"
    assert mod.main(["split", "--data", str(data), "--out", str(split_file)]) == 0
    split = json.loads(split_file.read_text())
    ids = [set(split[k]) for k in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(boxes)
    # per class: every class is in every split; the split is deterministic
    assert all({mod.image_class(s) for s in i} == {"scratches", "patches"} for i in ids)
    assert mod.make_split(sorted(boxes)) == {k: split[k] for k in ("train", "val", "test")}

    out = tmp_path / "patches"
    margin, min_cover = 4, 0.3
    args = ["crop", "--data", str(data), "--split", str(split_file), "--out", str(out)]
    assert mod.main([*args, "--size", "48", "--stride", "24", "--max-good", "50", "--max-bad", "50"]) == 0
    with open(out / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and any(r["bad"] == "1" for r in rows) and any(r["bad"] == "0" for r in rows)
    for r in rows:
        y, x, size = int(r["y"]), int(r["x"]), 48
        m = mod.box_mask(boxes[r["image"]], 200, 200)[y : y + size, x : x + size]
        grown = mod.box_mask(
            [(a - margin, b - margin, c + margin, d + margin) for a, b, c, d in boxes[r["image"]]], 200, 200
        )[y : y + size, x : x + size]
        assert r["image"] in split[r["split"]]
        if r["bad"] == "0":
            assert not grown.any(), r  # good patches touch no box, not even its margin
        else:
            assert r["split"] != "train" and m.mean() >= min_cover, r
            saved = cv2.imread(str(out / r["mask"]), cv2.IMREAD_GRAYSCALE) > 127
            assert (saved == m).all(), r
        patch = cv2.imread(str(out / r["file"]), cv2.IMREAD_GRAYSCALE)
        img = cv2.imread(str(data / "images" / f"{r['image']}.jpg"), cv2.IMREAD_GRAYSCALE)
        assert (patch == img[y : y + size, x : x + size]).all()


def test_committed_neu_det_split_is_disjoint_by_image() -> None:
    split = json.loads((REPO / "bench" / "neu_det_split.json").read_text())
    a, b, c = (set(split[k]) for k in ("train", "val", "test"))
    assert len(a) + len(b) + len(c) == 1770 and not (a & b or a & c or b & c)


@pytest.mark.slow
def test_train_anomaly_command_method_draem(adata: Any, tmp_path: Path) -> None:
    import os
    import subprocess

    ds = adata.make_anomaly_dataset(tmp_path / "ds", n_good=16, n_bad=6)
    env = {**os.environ, "JANGIN_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    args = ["train", "anomaly", "--dataset", str(ds.root), "--name", "cli-draem", "--imgsz", "32"]
    good = ["--good-where", "f.source_uri LIKE 'good/%'"]
    r = subprocess.run(
        [sys.executable, "-m", "jangin.core.cli", *args, *good, "--method", "draem", "--epochs", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "published cli-draem:v1" in r.stderr and "passed" in r.stderr
    man = ModelRegistry(ds.models_dir).get("cli-draem").manifest
    assert man.train_config["algorithm"] == "draem" and man.train_config["epochs"] == 1
    assert man.architecture_licence.startswith("Apache-2.0") and man.parity["passed"]

    r = subprocess.run(
        [sys.executable, "-m", "jangin.core.cli", *args, *good, "--method", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode != 0 and "nope" in r.stderr


def test_train_anomaly_method_texture_publishes_a_servable_model_without_weights(
    adata: Any, network_guard: list[Any], tmp_path: Path
) -> None:
    mv, *_ = _publish(adata, tmp_path, name="beads-tex", algorithm="texture")
    man = mv.manifest
    assert man.train_config["algorithm"] == "texture" and man.parity["passed"]
    assert man.train_config["backbone"]["architecture"] == "texture"
    assert man.train_config["backbone_init"].startswith("none (fixed Gabor")
    assert "jangin texture" in man.framework and network_guard == []
    assert not man.extra["guard"].get("warnings")
