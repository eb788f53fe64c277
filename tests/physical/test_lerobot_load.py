"""LeRobot's own loader reads Jangin's exports: ``LeRobotDataset(repo_id, root=DIR)`` offline, in LeRobot's
own venv (scripts/lerobot.sh install), every frame checked against the source. Skipped when that venv is
not installed (scripts/test-deps.sh installs it)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.physical.conftest import DURATION_S, FPS, H, W, brightness, build

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"
pytestmark = pytest.mark.slow
# Fixed at import (as tests/labeling does for Label Studio): other test folders point XDG_CACHE_HOME at a
# tmp dir during the run, and scripts/lerobot.sh would then look for the venv there.
LEROBOT_VENV = os.environ.get("JANGIN_LEROBOT_VENV") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jangin" / "lerobot-venv"
)
_SCRIPT_ENV = {**os.environ, "JANGIN_LEROBOT_VENV": LEROBOT_VENV}


def _lerobot_python() -> str:
    script = str(REPO / "scripts/lerobot.sh")
    wait = os.environ.get("JANGIN_LEROBOT_WAIT")  # CI installs LeRobot's venv in the background
    if wait:
        subprocess.run(["bash", script, "wait", wait], capture_output=True, text=True, env=_SCRIPT_ENV)
    r = subprocess.run(["bash", script, "path"], capture_output=True, text=True, env=_SCRIPT_ENV)
    if r.returncode != 0:
        if os.environ.get("JANGIN_REQUIRE_LEROBOT") == "1":  # CI: a missing loader is a failure
            pytest.fail("LeRobot's venv is not installed (scripts/lerobot.sh install)")
        pytest.skip("LeRobot's venv is not installed (scripts/lerobot.sh install)")
    return r.stdout.strip()


def _load(root: Path, tmp: Path, backend: str = "pyav") -> dict[str, Any]:
    py = _lerobot_python()
    out = tmp / f"{root.name}.json"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp / "hf"),
        "HF_LEROBOT_HOME": str(tmp / "lerobot"),
    }
    r = subprocess.run(
        [py, str(Path(__file__).with_name("lerobot_check.py")), str(root), str(out), backend],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


def _check_against_export(got: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """Frames, features, fps and stats as LeRobot read them == what the export wrote."""
    info = json.loads((root / "meta/info.json").read_text())
    data = pq.read_table(root / "data/chunk-000/file-000.parquet").to_pylist()
    assert got["fps"] == info["fps"]
    assert got["num_frames"] == info["total_frames"] == len(data) == len(got["frames"])
    assert got["num_episodes"] == info["total_episodes"]
    import pandas as pd

    tasks = list(pd.read_parquet(root / "meta/tasks.parquet").index)
    for row, src in zip(got["frames"], data, strict=True):
        assert row["index"] == src["index"] and row["episode_index"] == src["episode_index"]
        assert row["timestamp"] == pytest.approx(src["frame_index"] / info["fps"], abs=1e-5)
        assert row["task"] == tasks[src["task_index"]]
        for key in ("observation.state", "action"):
            if key in src:
                assert np.allclose(row[key], np.atleast_1d(src[key]), equal_nan=True)
    stats = json.loads((root / "meta/stats.json").read_text())
    for key, d in got["stats"].items():
        for s, v in d.items():
            assert np.allclose(np.asarray(v, float), np.asarray(stats[key][s], float)), (key, s)
    return data


def _has_torchcodec() -> bool:
    r = subprocess.run([_lerobot_python(), "-c", "import torchcodec.decoders"], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_lerobot_reads_the_synthetic_export(tmp_path: Path, backend: str) -> None:
    from jangin.training._lerobot import export_lerobot

    if backend == "torchcodec" and not _has_torchcodec():
        pytest.skip("torchcodec cannot load FFmpeg's libraries here (scripts/lerobot.sh install adds them)")
    ds = build(tmp_path / "ds")
    root = tmp_path / "press"
    export_lerobot(ds, root)
    got = _load(root, tmp_path, backend)
    assert got["backend"] == backend
    _check_against_export(got, root)
    assert got["features"]["observation.images.top"] == [H, W, 3]
    n = int(DURATION_S * FPS)
    for row in got["frames"]:
        img = row["observation.images.top"]
        assert img["shape"] == [3, H, W]
        assert abs(img["mean"] - brightness(row["index"] % n)) < 3.0  # the right frame, decoded


def test_lerobot_reads_both_sample_processes(tmp_path: Path) -> None:
    from jangin.capture import import_session
    from jangin.capture._runs import RunOptions, import_runs
    from jangin.core import Dataset
    from jangin.core.process_definition import register_process
    from jangin.training._lerobot import export_lerobot

    ds = Dataset.create(tmp_path / "ds")
    for y in sorted((SAMPLE / "processes").glob("*.yaml")):
        register_process(ds, y)
    # welding (video): the synthetic sample has no faces; blurring is skipped to keep the test short
    import_session(ds, SAMPLE / "sessions/weld-01", deidentify=False, frame_interval_s=5.0)
    # plasma etch (no video): two runs of the generated run table
    with open(SAMPLE / "etch/runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:2]
    for r in rows:
        r["file"] = str(SAMPLE / "etch" / r["file"])
    table = tmp_path / "runs.csv"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert not any(r.error for r in import_runs(ds, table, options=RunOptions(process="plasma_etch")))

    weld = tmp_path / "weld"
    res = export_lerobot(ds, weld, where="process = 'mig_butt_weld'", allow_identifiable=True)
    assert res.action and res.cameras == ["torch_cam"]
    got = _load(weld, tmp_path)
    _check_against_export(got, weld)
    cam = "observation.images.torch_cam"
    # the decoded frames are the source video's frames at the episode's times
    from jangin.training._lerobot import _frames

    m = ds.query("SELECT uri, started_at FROM media").to_pylist()[0]
    ep = pq.read_table(weld / "meta/episodes/chunk-000/file-000.parquet").to_pylist()[0]
    info = json.loads((weld / "meta/info.json").read_text())
    h, w = info["features"][cam]["shape"][:2]
    idx = list(range(0, ep["length"], max(1, ep["length"] // 25)))
    assert ep["videos/" + cam + "/from_timestamp"] == 0.0
    # the episode starts at the video's first frame: frame i is at i / fps in the source video
    src = list(_frames(ds.root / m["uri"], np.array(idx) / info["fps"], w, h))
    for i, s in zip(idx, src, strict=True):
        assert abs(got["frames"][i][cam]["mean"] - float(s.mean())) < 4.0

    etch = tmp_path / "etch"
    res = export_lerobot(ds, etch, where="process = 'plasma_etch'")
    assert res.cameras == [] and res.action and res.state
    got = _load(etch, tmp_path)
    _check_against_export(got, etch)
    assert got["video_keys"] == [] and got["num_episodes"] == 2
