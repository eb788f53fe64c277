"""``jangin view``: a session as a Rerun .rrd, read back with the SDK (entity paths and row counts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.physical.conftest import DURATION_S, FPS, RATES, write_video

rr = pytest.importorskip("rerun")


def _rows(path: Path) -> dict[str, int]:
    from rerun.chunk import RrdReader

    out: dict[str, int] = {}
    for c in RrdReader(path).stream():
        if not c.is_static:
            out[c.entity_path] = out.get(c.entity_path, 0) + c.num_rows
        else:
            out.setdefault(c.entity_path, 0)
    return out


def test_view_writes_every_part(press: Any, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from jangin.inference._view import view_session

    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    _ok, jpg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))
    press.append(
        "frames",
        [
            {
                "frame_id": "f1",
                "session_id": "s0",
                "camera": "top",
                "ts": start + timedelta(seconds=1),
                "pts": 10,
                "width": 64,
                "height": 48,
                "deidentified": True,
                "image": jpg.tobytes(),
            }
        ],
    )
    press.append(
        "labels",
        [
            {
                "label_id": "b1",
                "target": "frame",
                "frame_id": "f1",
                "session_id": "s0",
                "kind": "box",
                "name": "spatter",
                "bbox_xyxy_norm": [0.1, 0.1, 0.5, 0.5],
                "source": "labeller",
                "created_at": start,
                "question": "defect",
            },
            {
                "label_id": "sp1",
                "target": "span",
                "session_id": "s0",
                "kind": "span",
                "name": "wobble",
                "ts_start": start + timedelta(seconds=1),
                "ts_end": start + timedelta(seconds=2),
                "channel": "feed_mm_s",
                "source": "expert",
                "created_at": start,
                "question": "steadiness",
            },
        ],
    )
    press.append(
        "inspections",
        [
            {
                "inspection_id": f"i{j}",
                "ts": start + timedelta(seconds=j),
                "station": "st-1",
                "camera": "top",
                "model": "det",
                "model_version": "1",
                "verdict": "NG" if j == 2 else "OK",
                "score": 0.1 * j,
            }
            for j in range(3)
        ]
        + [
            {
                "inspection_id": "other",
                "ts": start,
                "station": "st-9",
                "model": "det",
                "model_version": "1",
                "verdict": "OK",
            }
        ],
    )
    # the capture stores de-identified video as MPEG-4 Part 2, which Rerun cannot play: transcoded
    write_video(press.root / "media/s0/top.mp4", int(DURATION_S * FPS), codec="mpeg4")
    rrd = tmp_path / "s0.rrd"
    res = view_session(press, "s0", rrd=rrd)
    assert any("transcoded to H.264" in n for n in res.notes)
    got = _rows(rrd)
    for ch, rate in RATES.items():
        path = f"/channels/plc/{ch}"
        assert got[path] == int(DURATION_S * rate) + 1 == res[path[1:]]  # every sample, native rate
    assert got["/video/top"] == int(DURATION_S * FPS)  # one frame reference per video frame
    assert got["/frames/top"] == 1 and got["/frames/top/labels"] == 1
    assert got["/events"] == 5  # 2 steps x start/end + 1 judgment
    assert got["/labels/spans"] == 1 and "/labels/session" in got
    assert got["/inspections/top"] == 3 and got["/inspections/top/score"] == 3  # st-9 is another station
    # no skill profile for this process: left out with a note
    assert any("skill: not shown" in n for n in res.notes)
    assert not any(p.startswith("/skill/") for p in got)


def test_view_cli_needs_one_target(press: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jangin.core.cli import _load_plugins, app

    _load_plugins()
    r = CliRunner().invoke(app, ["view", "s0", "--dataset", str(press.root)])
    assert r.exit_code != 0
    r = CliRunner().invoke(
        app, ["view", "s0", "--dataset", str(press.root), "--rrd", str(tmp_path / "x.rrd"), "--no-skill"]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "x.rrd").stat().st_size > 0


@pytest.mark.slow
def test_view_shows_the_expert_band_when_a_profile_exists(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jangin.capture import import_session
    from jangin.core import Dataset
    from jangin.core.cli import _load_plugins, app
    from jangin.core.process_definition import register_process
    from jangin.inference._view import view_session

    sample = Path(__file__).resolve().parents[2] / "sample_data"
    ds = Dataset.create(tmp_path / "ds")
    register_process(ds, sample / "processes/welding_tig.yaml")
    for k in ("weld-01", "weld-03", "weld-05", "weld-02"):  # three experts and a novice
        import_session(ds, sample / "sessions" / k, deidentify=False, keep_video=False, frame_interval_s=10.0)
    _load_plugins()
    r = CliRunner().invoke(app, ["skill", "build", "-p", "mig_butt_weld", "-d", str(ds.root)])
    assert r.exit_code == 0, r.output
    novice = ds.query("SELECT session_id FROM current_sessions WHERE skill_level = 'novice'").column(0)[0]
    res = view_session(ds, novice.as_py(), rrd=tmp_path / "n.rrd")
    got = _rows(tmp_path / "n.rrd")
    bands = [p for p in got if p.startswith("/skill/") and p.endswith("/hi")]
    assert bands and all(got[p] == got[p.replace("/hi", "/value")] > 0 for p in bands)
    assert got.get("/skill/deviations", 0) >= 1  # the novice leaves the band somewhere
    assert not any(n.startswith("skill") for n in res.notes)
