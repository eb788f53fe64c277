"""``jangin train detect`` end to end, in a subprocess (the installed command's entry points)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jangin.core import ModelRegistry


@pytest.mark.slow
def test_train_detect_command(synth: Any, tmp_path: Path) -> None:
    ds = synth.make_detection_dataset(tmp_path / "ds")
    env = {**os.environ, "JANGIN_HOME": str(tmp_path / "home"), "COLUMNS": "400"}

    def jangin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jangin.core.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    r = jangin(
        "train",
        "detect",
        "--dataset",
        str(ds.root),
        "--name",
        "cli",
        "--epochs",
        "1",
        "--imgsz",
        "64",
        "--batch",
        "8",
        "--where",
        "f.camera = 'cam0'",
        "--allow-random-init",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "RANDOM initialisation" in r.stderr  # the summary says it was trained from scratch
    assert "published cli:v1" in r.stderr and "mAP50" in r.stderr and "passed" in r.stderr
    mv = ModelRegistry(ds.models_dir).get("cli")
    assert mv.manifest.train_config["epochs"] == 1 and mv.manifest.parity["passed"]
    assert (tmp_path / "home" / "cache" / "detection-sets").is_dir() and (tmp_path / "home" / "runs").is_dir()

    r = jangin("train", "detect", "--dataset", str(ds.root), "--name", "cli", "--epochs", "1")
    assert r.returncode == 1 and "random initialisation" in r.stderr and "--allow-random-init" in r.stderr
    r = jangin(
        "train",
        "detect",
        "--dataset",
        str(ds.root),
        "--name",
        "cli",
        "--where",
        "f.nope = 1",
        "--allow-random-init",
    )
    assert r.returncode == 1 and "error:" in r.stderr and "hint:" in r.stderr
