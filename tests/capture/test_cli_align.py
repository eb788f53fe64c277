"""`jangin capture` CLI (import from flags, sessions, align) and alignment correctness."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from jangin.capture import import_session
from jangin.capture._align import align_session
from jangin.core import Dataset

SESSIONS = Path(__file__).resolve().parents[2] / "sample_data" / "sessions"
T0 = 1_772_438_400.0


def jangin(*args: str) -> int:
    from jangin.core.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_import_from_flags_sessions_and_align_csv(
    tmp_path: Path, make_session: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_session("flags", seconds=3)
    ds = tmp_path / "ds"
    rc = jangin(
        "capture",
        "import",
        d / "video.mp4",
        "-d",
        ds,
        "--sensor",
        f"{d / 'sensors' / 'power_source.csv.gz'}:power_source:0.25",
        "--sensor",
        f"{d / 'sensors' / 'thermo.csv'}:thermocouple:-1.5",
        "--events",
        d / "events.csv",
        "--technician",
        "Park Ji-hoon",
        "--skill",
        "expert",
        "--camera",
        "torch_cam",
        "--camera-offset",
        "0.1",
        "--unit",
        "arc_current_A=A",
        "--map",
        "plate_temp_C=plate_temp",
        "--frame-interval",
        "1",
    )
    assert rc == 0
    capsys.readouterr()
    assert jangin("capture", "sessions", "ls", "-d", ds, "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["skill_level"] == "expert" and rows[0]["technician"].startswith("tech-")
    sid = rows[0]["session_id"]
    assert jangin("capture", "sessions", "show", sid, "-d", ds) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["n_sensor_samples"] == 6030 and {c["channel"] for c in shown["channels"]} == {
        "arc_current_A",
        "arc_voltage_V",
        "plate_temp",
    }
    # The started_at default is the first event (T0 + 0.5 here), so frame 0 is at T0 + 0.6.
    assert (
        jangin(
            "capture",
            "align",
            sid,
            "-d",
            ds,
            "--channels",
            "arc_current_A",
            "--at-frames",
            "--method",
            "linear",
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].replace('"', "") == "frame_id,ts,arc_current_A"
    ts_text, value = lines[1].split(",")[1:]
    t = datetime.fromisoformat(ts_text.strip('"').replace("Z", "+00:00")).timestamp()
    assert float(value) == pytest.approx(
        100 + 10 * (t - T0), abs=0.011
    )  # the generator's current at that time
    out = tmp_path / "grid.parquet"
    assert jangin("capture", "align", sid, "-d", ds, "--rate", "100", "--format", "parquet", "-o", out) == 0
    import pyarrow.parquet as pq

    grid = pq.read_table(out)
    assert (
        set(grid.column_names) == {"ts", "arc_current_A", "arc_voltage_V", "plate_temp"}
        and 280 <= grid.num_rows <= 320
    )


def test_cli_reports_bad_policy_and_rejected_file(
    tmp_path: Path, make_session: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_session("cli-bad", csv_rows=["timestamp,arc_current_A,arc_voltage_V", "1.0,1,1", "1.0,2,2"])
    assert jangin("capture", "import", d, "-d", tmp_path / "ds", "--on", "dup=drop") != 0
    assert jangin("capture", "import", d, "-d", tmp_path / "ds") == 1
    assert "row 3: timestamp duplicated" in capsys.readouterr().err.replace("\n", "")
    assert jangin("capture", "import", d, "-d", tmp_path / "ds", "--on", "duplicate=drop") == 0


def test_known_signal_at_known_frame_times_on_sample_data(tmp_path: Path) -> None:
    """weld-03: at the first arc frame (truth) the power source already shows the arc; one frame
    earlier it was idle. This only holds if both clock offsets are applied correctly."""
    d = tmp_path / "weld-03"
    shutil.copytree(SESSIONS / "weld-03", d, ignore=shutil.ignore_patterns("video.mp4"))
    m = yaml.safe_load((d / "session.yaml").read_text())
    m["cameras"] = []
    (d / "session.yaml").write_text(yaml.safe_dump(m))
    truth = json.loads((d / "truth.json").read_text())
    ds = Dataset.create(tmp_path / "ds")
    r = import_session(ds, d)
    k = truth["sync"]["video_first_arc_frame"]
    frame_t = [truth["sync"]["video_first_frame_ts"] + i / 15 for i in (k - 1, k)]
    at = [datetime.fromtimestamp(t, tz=UTC) for t in frame_t]
    got = align_session(ds, r.session_id, channels=["arc_current_A", "plate_temp_C"], at=at)
    before, after = got.column("arc_current_A").to_pylist()
    assert before < 5 and after > 50
    # a slow channel at a frame time: the thermocouple reading as-of that time, within a 10 Hz period
    assert got.column("plate_temp_C").to_pylist()[1] == pytest.approx(
        truth["temperature"]["ambient_C"], abs=3
    )
    grid = align_session(ds, r.session_id, channels=["arc_current_A"], rate_hz=50)
    assert np.isfinite(np.asarray(grid.column("arc_current_A").to_pylist(), float)).mean() > 0.95
