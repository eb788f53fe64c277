"""``jangin capture import-images``: class folders, an index file, images with masks (real files, real tables)."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from jangin.capture import import_images, session_id_for
from jangin.core import CaptureError, Dataset
from jangin.core.process_definition import get_process


def _img(path: Path, seed: int, size: int = 48) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def _mask(path: Path, box: tuple[int, int, int, int] | None, size: int = 48) -> None:
    m = np.zeros((size, size), np.uint8)
    if box:
        x1, y1, x2, y2 = box
        m[y1:y2, x1:x2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), m)


def _labels(ds: Dataset) -> list[dict[str, object]]:
    return ds.query("SELECT frame_id, kind, name, geometry_json, question FROM labels").to_pylist()


def test_class_folders_every_folder_counts_and_duplicates_are_counted(tmp_path: Path) -> None:
    root = tmp_path / "set"
    for i in range(3):
        _img(root / "good" / f"{i}.png", i)
        _img(root / "Imgs" / f"{i}.png", 10 + i)  # a folder name the old import skipped
    _img(root / "scratch" / "a.jpg", 20)
    (root / "scratch" / "copy.png").write_bytes((root / "good" / "0.png").read_bytes())  # same bytes
    ds = Dataset.create(tmp_path / "ds")
    r = import_images(ds, root, good_label="good", station="st-7", session_key="batch-1", deidentify=False)
    assert r.layout == "folders" and r.images_seen == 8
    assert r.frames == 7 and r.duplicates_in_import == 1
    assert r.per_class == {"Imgs": 3, "good": 3, "scratch": 2}
    frames = ds.query("SELECT station, deidentified, session_id FROM frames").to_pylist()
    assert len(frames) == 7 and {f["station"] for f in frames} == {"st-7"}
    assert not any(f["deidentified"] for f in frames)
    session = ds.query("SELECT session_id, station FROM sessions").to_pylist()
    assert session == [{"session_id": session_id_for("site", "batch-1"), "station": "st-7"}]
    names = sorted(str(lbl["name"]) for lbl in _labels(ds))
    assert names.count("Imgs") == 3 and names.count("scratch") == 2 and len(names) == 8  # copy: 2 labels
    spec = get_process(ds, "inspection")
    assert spec is not None and spec.labels[0].good == ["good"]
    # importing again adds nothing and says why
    again = import_images(ds, root, session_key="batch-1", deidentify=False)
    assert again.frames == 0 and again.already_in_dataset == 7 and again.class_labels == 0
    assert ds.query("SELECT count(*) n FROM frames").to_pylist()[0]["n"] == 7


def test_masks_become_mask_labels_never_frames(tmp_path: Path) -> None:
    root = tmp_path / "mvtec"
    for i in range(6):
        _img(root / "train" / "good" / f"00{i}.png", 30 + i)
    for i in range(2):
        _img(root / "test" / "crack" / f"00{i}.png", 5 + i)
        _mask(root / "ground_truth" / "crack" / f"00{i}_mask.png", (4, 4, 20 + 5 * i, 20))
    _img(root / "test" / "good" / "000.png", 9)
    _img(root / "flat" / "x.png", 11)
    _mask(root / "flat" / "x_mask.png", (0, 0, 10, 10))
    _img(root / "flat" / "y.png", 12)
    _mask(root / "flat" / "y_mask.png", None)  # all black: nothing to label
    _mask(root / "ground_truth" / "crack" / "zzz_mask.png", (1, 1, 3, 3))  # no image
    ds = Dataset.create(tmp_path / "ds")
    r = import_images(ds, root, deidentify=False)
    assert r.layout == "masks"
    assert r.frames == 11  # 6 + 2 + 1 + 2 images, no mask among them
    assert r.mask_labels == 3 and r.masks_empty == 1
    assert r.masks_unmatched == ["ground_truth/crack/zzz_mask.png"]
    uris = {str(row["source_uri"]) for row in ds.query("SELECT source_uri FROM frames").to_pylist()}
    assert not any("mask" in u or "ground_truth" in u for u in uris)
    masks = [lbl for lbl in _labels(ds) if lbl["kind"] == "mask"]
    assert sorted(str(m["name"]) for m in masks) == ["crack", "crack", "flat"]
    geom = json.loads(str(masks[0]["geometry_json"]))
    png = cv2.imdecode(np.frombuffer(base64.b64decode(geom["png"]), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert png.shape == (48, 48) and set(np.unique(png).tolist()) <= {0, 255} and png.any()
    assert 0 < geom["area"] < 1
    # the anomaly set reads them: masked frames are defective and carry their masks
    from jangin.training._image_set import decode_mask, select_anomaly_images

    data = select_anomaly_images(ds, fractions=(0.5, 0.25, 0.25))
    bad = [row for rows in data.splits.values() for row in rows if row["bad"]]
    assert len(bad) == 4 and sum(bool(row["masks"]) for row in bad) == 3  # y.png: class flat, empty mask
    assert decode_mask(next(row["masks"] for row in bad if row["masks"]), 32).any()


def test_index_file_and_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "idx"
    rows = ["path,label,split"]
    for i in range(4):
        _img(root / "img" / f"{i}.png", i)
        rows.append(f"img/{i}.png,{'ok' if i < 2 else 'dent'},{'train' if i % 2 else 'test'}")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    ds = Dataset.create(tmp_path / "ds")
    with caplog.at_level(logging.WARNING):
        r = import_images(ds, root, index=root / "index.csv", deidentify=False)
    assert r.layout == "index" and r.per_class == {"ok": 2, "dent": 2} and r.class_labels == 4
    assert "NOT blurred" in caplog.text and "4 images" in caplog.text
    (root / "bad.csv").write_text("path,label\nimg/missing.png,ok\n")
    with pytest.raises(CaptureError, match="row 2: image 'img/missing.png' not found"):
        import_images(ds, root, index=root / "bad.csv", deidentify=False)
    with pytest.raises(CaptureError, match="needs --index"):
        import_images(ds, root, layout="index", deidentify=False)
    with pytest.raises(CaptureError, match="no mask matches"):
        import_images(ds, root, layout="masks", deidentify=False)
    with pytest.raises(CaptureError, match="not one of the classes"):
        import_images(ds, root, good_label="good", session_key="x", deidentify=False)


def test_import_images_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jangin.capture.cli import app

    for i in range(2):
        _img(tmp_path / "set" / "good" / f"{i}.png", i)
        _img(tmp_path / "set" / "dent" / f"{i}.png", 5 + i)
    args = ["import-images", str(tmp_path / "set"), "-d", str(tmp_path / "ds"), "--no-deidentify"]
    r = CliRunner().invoke(app, [*args, "--good-label", "good", "--station", "st-2"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # rich wraps long lines at the terminal's width
    assert "4 new frames" in out and "dent 2, good 2" in out and "NOT blurred" in out
    r = CliRunner().invoke(app, [*args, "--layout", "nope"])
    assert r.exit_code != 0
