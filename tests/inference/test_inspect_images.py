"""inspect_images (through the one Inspector): the inspections table; the inspect command."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from typing import Any

import pytest

from jangin.core import InferenceError
from jangin.inference import OnnxDetector, inspect_images

CLASSES = ("green", "red")


def test_inspections_are_logged_in_one_commit(trained: dict[str, Any]) -> None:
    ds = trained["ds"]
    det = OnnxDetector.from_version(trained["mv"], conf=0.001)
    paths = trained["data"].images("test")[:3]
    version = ds.version("inspections")
    before = ds.query("SELECT count(*) AS n FROM inspections").column("n")[0].as_py()
    items: list[tuple[str, Any]] = [(str(p), p.read_bytes()) for p in paths[:2]]
    import cv2

    items.append(("camera://cam0", cv2.imread(str(paths[2]))))
    rows = inspect_images(ds, det, items, station="st-01", camera="cam0", ng_classes=["red"], min_conf=0.0)
    assert ds.version("inspections") == version + 1
    stored = ds.query(f"SELECT * FROM inspections ORDER BY ts LIMIT 3 OFFSET {before}").to_pylist()
    assert [r["inspection_id"] for r in stored] == [r["inspection_id"] for r in rows]
    for row, src in zip(stored, items, strict=True):
        assert (row["model"], row["model_version"], row["station"], row["camera"]) == (
            "squares",
            "v1",
            "st-01",
            "cam0",
        )
        assert row["latency_ms"] > 0 and row["source_uri"] == src[0]
        names = {d["name"] for d in row["detections"]}
        assert row["verdict"] == ("NG" if "red" in names else "OK")
    assert stored[0]["image_sha256"] == hashlib.sha256(items[0][1]).hexdigest()
    assert stored[2]["image_sha256"] is None


def test_a_bad_image_writes_nothing(trained: dict[str, Any]) -> None:
    ds = trained["ds"]
    det = OnnxDetector.from_version(trained["mv"])
    version = ds.version("inspections")
    good = trained["data"].images("test")[0].read_bytes()
    with pytest.raises(InferenceError):
        inspect_images(ds, det, [("a.jpg", good), ("b.txt", b"hello")], station=None, camera=None)
    assert ds.version("inspections") == version


@pytest.mark.slow
def test_inspect_and_models_commands(trained: dict[str, Any], tmp_path) -> None:
    ds = trained["ds"]
    images = [str(p) for p in trained["data"].images("test")[:2]]
    env = {**os.environ, "JANGIN_HOME": str(tmp_path)}

    def jangin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jangin.core.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    n = ds.query("SELECT count(*) AS n FROM inspections").column("n")[0].as_py()
    r = jangin(
        "inspect",
        *images,
        "--model",
        "squares:v1",
        "--dataset",
        str(ds.root),
        "--station",
        "st-09",
        "--conf",
        "0.001",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.split("\t")[1] in ("OK", "NG") for line in lines)
    assert (
        ds.query("SELECT count(*) AS n FROM inspections WHERE station = 'st-09'").column("n")[0].as_py() == 2
    )
    r = jangin("inspect", images[0], "--model", "squares", "--dataset", str(ds.root), "--no-log")
    assert (
        r.returncode == 0
        and ds.query("SELECT count(*) AS n FROM inspections").column("n")[0].as_py() == n + 2
    )
    r = jangin("inspect", __file__, "--model", "squares", "--dataset", str(ds.root))
    err = " ".join(r.stderr.split())  # the console wraps long lines
    assert r.returncode == 1 and "not a JPEG or PNG" in err and "test_inspect_images.py" in err
    r = jangin("models", "ls", "--dataset", str(ds.root))
    assert r.returncode == 0 and "squares" in r.stdout and "mAP50" in r.stdout
    r = jangin("models", "show", "squares:v1", "--registry", str(trained["registry"].root))
    assert r.returncode == 0 and '"task": "detect"' in r.stdout
    r = jangin("models", "promote", "squares", "v9", "--dataset", str(ds.root))
    assert r.returncode == 1 and "no version 'v9'" in r.stderr
