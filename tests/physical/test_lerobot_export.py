"""``jangin export lerobot``: the files LeRobot v3.0 reads, checked here with pyarrow / PyAV against the
source sessions (LeRobot's own loader reads them in test_lerobot_load.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.physical.conftest import DURATION_S, FPS, H, W, brightness, build, signal

from jangin.core import ConfigError


def _export(ds: Any, out: Path, **kw: Any) -> Any:
    from jangin.training._lerobot import export_lerobot

    return export_lerobot(ds, out, **kw)


def test_layout_features_and_values(press: Any, tmp_path: Path) -> None:
    out = tmp_path / "lr"
    res = _export(press, out)
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == FPS and res.fps == FPS
    n = int(DURATION_S * FPS)
    assert info["total_episodes"] == 2 and info["total_frames"] == 2 * n
    f = info["features"]
    # roles from the process definition: operator -> action, machine -> observation.state
    assert f["action"]["names"] == ["force_set_N", "feed_mm_s"]
    assert f["observation.state"]["names"] == ["temp_C", "vib_g"]
    assert f["observation.images.top"]["shape"] == [H, W, 3]
    assert f["observation.images.top"]["info"]["video.codec"] == "h264"
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert k in f

    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert data.num_rows == 2 * n
    assert data.schema.field("action").type == pa.list_(pa.float32(), 2)
    assert data.column("index").to_pylist() == list(range(2 * n))
    eps = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in eps] == [(0, n), (n, 2 * n)]
    assert eps[1]["videos/observation.images.top/from_timestamp"] == pytest.approx(DURATION_S)
    assert json.loads(eps[0]["jangin/parameters"]) == {"force_target_N": "120", "recipe": "A"}
    assert {"question": "outcome", "answer": "good", "source": "expert"} in json.loads(
        eps[0]["jangin/judgments"]
    )
    assert eps[0]["jangin/skill_level"] == "expert"

    # values: the source signal resampled linearly at the frame times
    rows = data.to_pylist()
    for r in rows:
        k, t = r["episode_index"], r["timestamp"]
        assert r["action"][0] == pytest.approx(signal("force_set_N", np.array(t), k), abs=2e-3)
        assert r["observation.state"][0] == pytest.approx(signal("temp_C", np.array(t), k), abs=2e-2)

    # tasks: process + step text, read the way LeRobot reads them (pandas, the task is the index)
    pd = pytest.importorskip("pandas")
    tasks = pd.read_parquet(out / "meta/tasks.parquet")
    assert list(tasks.index) == ["Demo press: heat", "Demo press: hold"]
    assert tasks.loc["Demo press: hold"].task_index == 1
    step = [r["task_index"] for r in rows if r["episode_index"] == 0]
    assert step[: int(1.5 * FPS)] == [0] * int(1.5 * FPS) and step[-1] == 1

    # video: every frame of both episodes, in order, with the source brightness
    import av

    with av.open(str(out / "videos/observation.images.top/chunk-000/file-000.mp4")) as c:
        means = [fr.to_ndarray(format="rgb24").mean() for fr in c.decode(video=0)]
    assert len(means) == 2 * n
    expect = [brightness(i) for i in range(n)] * 2
    assert np.max(np.abs(np.array(means) - expect)) < 3.0

    # native-rate channels beside it, untouched
    native = pq.read_table(out / "jangin/native/chunk-000/file-000.parquet")
    vib = native.filter(pa.compute.equal(native.column("channel"), "vib_g"))
    assert vib.num_rows == 2 * (int(DURATION_S * 100) + 1)

    stats = json.loads((out / "meta/stats.json").read_text())
    acts = np.array([r["action"] for r in rows])
    assert stats["action"]["min"] == pytest.approx(acts.min(0).tolist(), rel=1e-6)
    assert stats["action"]["mean"] == pytest.approx(acts.mean(0).tolist(), rel=1e-5)
    assert stats["action"]["count"] == [2 * n]
    assert np.array(stats["observation.images.top"]["mean"]).shape == (3, 1, 1)
    card = (out / "README.md").read_text()
    assert "de-identification: every video de-identified" in card and "linear" in card


def test_asof_holds_the_last_sample(press: Any, tmp_path: Path) -> None:
    out = tmp_path / "lr"
    _export(press, out, resample="asof", fps=4)
    rows = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pylist()
    # temp_C is logged at 10 Hz: at t = 0.25 s as-of gives the sample of t = 0.2 s
    r = next(r for r in rows if r["episode_index"] == 0 and r["frame_index"] == 1)
    assert r["timestamp"] == pytest.approx(0.25)
    assert r["observation.state"][0] == pytest.approx(signal("temp_C", np.array(0.2), 0), abs=1e-4)
    assert "`asof`" in (out / "README.md").read_text()


def test_refuses_identifiable_video(tmp_path: Path) -> None:
    ds = build(tmp_path / "ds", sessions=1, deidentified=False)
    with pytest.raises(ConfigError, match="NOT de-identified"):
        _export(ds, tmp_path / "lr")
    res = _export(ds, tmp_path / "lr2", allow_identifiable=True)
    assert any("NOT de-identified" in w for w in res.warnings)
    assert "SOME VIDEO IS NOT DE-IDENTIFIED" in (tmp_path / "lr2/README.md").read_text()


def test_no_definition_falls_back_to_action_flag(tmp_path: Path) -> None:
    # the sessions name a process nobody registered
    ds = build(tmp_path / "ds", sessions=1, video=False, register=False)
    res = _export(ds, tmp_path / "lr")
    assert res.action == [] and "ambient_C" in res.state
    assert any("no process definition" in w for w in res.warnings)
    res = _export(ds, tmp_path / "lr2", action=["feed_mm_s"])
    assert res.action == ["feed_mm_s"] and "feed_mm_s" not in res.state
    with pytest.raises(ConfigError, match="no channel nope"):
        _export(ds, tmp_path / "lr3", action=["nope"])
    info = json.loads((tmp_path / "lr2/meta/info.json").read_text())
    assert info["video_path"] is None and info["fps"] >= 1


def test_output_folder_must_be_empty(press: Any, tmp_path: Path) -> None:
    out = tmp_path / "lr"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        _export(press, out)
    _export(press, out, overwrite=True)
    assert not (out / "x").exists()


def test_cli_export_and_import(press: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jangin.core.cli import _load_plugins, app

    _load_plugins()
    out = tmp_path / "lr"
    args = ["export", "lerobot", "-d", str(press.root), "-o", str(out), "--no-progress", "--fps", "5"]
    r = CliRunner().invoke(app, [*args, "--where", "skill_level = 'expert'", "--resample", "asof"])
    assert r.exit_code == 0, r.output
    assert "2 episode(s), 30 frames at 5 fps" in " ".join(r.output.split())
    r = CliRunner().invoke(app, [*args, "--overwrite", "--resample", "cubic"])
    assert r.exit_code != 0
    back = tmp_path / "back"
    r = CliRunner().invoke(app, ["capture", "import-lerobot", str(out), "-d", str(back), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert r.output.count("samples") == 2
