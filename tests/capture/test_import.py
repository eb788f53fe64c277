"""Importing recorded sessions: offsets applied, validation names file and row, nothing half-written."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jangin.capture import import_session, import_sessions, import_stills
from jangin.core import CaptureError, Dataset


def test_import_applies_clock_offsets_and_keeps_rates(
    dataset: Dataset, make_session: Callable[..., Path]
) -> None:
    d = make_session()
    r = import_session(dataset, d)
    assert not r.skipped and r.samples == 3000 * 2 + 30 and r.events == 4
    rates = {c: hz for rep in r.sensors for c, hz in rep.channels.items()}
    assert rates["arc_current_A"] == pytest.approx(1000, rel=1e-3) and rates["plate_temp"] == pytest.approx(
        10, rel=1e-3
    )
    # The generator wrote current = 100 + 10 A per second of *reference* time, on a clock 0.25 s off:
    # after the offset is applied, the sample at reference t = 2.0 s must read 120 A.
    row = dataset.query(
        "SELECT value FROM sensor_samples WHERE channel = 'arc_current_A' AND ts = TIMESTAMPTZ '2026-03-02 08:00:02+00'"
    ).to_pylist()
    assert row == [{"value": pytest.approx(120.0)}]
    temp = dataset.query(
        "SELECT value FROM sensor_samples WHERE channel = 'plate_temp' AND ts = TIMESTAMPTZ '2026-03-02 08:00:01+00'"
    ).to_pylist()
    assert temp == [{"value": pytest.approx(25.0)}]
    s = dataset.query("SELECT * FROM current_sessions").to_pylist()[0]
    assert s["status"] == "processed" and s["technician"].startswith("tech-")
    assert {d["name"]: d["clock_offset_ns"] for d in s["devices"]}["power_source"] == 250_000_000
    media = dataset.read("media").to_pylist()[0]
    assert (dataset.root / media["uri"]).is_file() and len(media["sha256"]) == 64


def test_real_name_never_reaches_a_table(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    import_session(dataset, make_session(technician="Park Ji-hoon"))
    for table in dataset.counts():
        con = dataset.connect()
        text = str(
            con.execute(f"SELECT * {'EXCLUDE (image)' if table == 'frames' else ''} FROM {table}").fetchall()
        )
        con.close()
        assert "park" not in text.casefold(), table
    pseudonym = dataset.query("SELECT technician FROM sessions").column("technician")[0].as_py()
    authors = (
        dataset.query("SELECT author FROM events WHERE kind = 'adjustment'").column("author").to_pylist()
    )
    assert authors == [pseudonym]  # the same keyed pseudonym links the technician's own markers


def test_frames_are_sampled_sharp_and_timed(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    import_session(dataset, make_session(), frame_interval_s=1.0)
    frames = dataset.query("SELECT pts, ts, width, height, deidentified FROM frames ORDER BY pts").to_pylist()
    assert frames and all(f["deidentified"] for f in frames)
    assert frames[0]["width"] == 160 and frames[0]["height"] == 96
    # camera offset 0.1 s: frame 0 is at reference 08:00:00.1
    first = frames[0]
    assert first["pts"] == 0 and first["ts"] == datetime(2026, 3, 2, 8, 0, 0, 100000, tzinfo=UTC)


def test_reimport_is_skipped_and_adds_nothing(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    d = make_session()
    import_session(dataset, d)
    before = dataset.counts()
    assert import_session(dataset, d).skipped
    assert dataset.counts() == before


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["timestamp,arc_current_A,arc_voltage_V", "1.000,1,2", "1.001,1,2", "1.001,1,2"],
            r"row 4: timestamp duplicated",
        ),
        (
            ["timestamp,arc_current_A,arc_voltage_V", "1.000,1,2", "0.999,1,2"],
            r"row 3: timestamp goes backwards",
        ),
        (["timestamp,arc_current_A"], r"file is empty"),
        (["time,arc_current_A,arc_voltage_V", "1.0,1,2"], r"no time column 'timestamp'"),
        (["timestamp,arc_current_A", "1.0,1", "1.1,2"], r"channel column 'arc_voltage_V' is missing"),
        (
            ["timestamp,arc_current_A,arc_voltage_V", "1.0,abc,2", "1.1,x,2"],
            r"column 'arc_current_A' is string",
        ),
    ],
)
def test_bad_sensor_file_rejects_import_and_writes_nothing(
    dataset: Dataset, make_session: Callable[..., Path], rows: list[str], message: str
) -> None:
    d = make_session(csv_rows=rows)
    with pytest.raises(CaptureError, match=message) as err:
        import_session(dataset, d)
    assert "power_source.csv.gz" in str(err.value)
    assert sum(dataset.counts().values()) == 0


def test_nan_rows_are_dropped_and_counted(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    rows = ["timestamp,arc_current_A,arc_voltage_V", "1.000,1,2", "1.001,nan,2", "1.002,inf,2", "1.003,4,2"]
    r = import_session(dataset, make_session(csv_rows=rows))
    assert r.sensors[0].dropped_nonfinite == 2
    assert (
        dataset.query("SELECT count(*) AS n FROM sensor_samples WHERE channel = 'arc_current_A'")
        .column("n")[0]
        .as_py()
        == 2
    )


def test_truncated_video_is_rejected(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    d = make_session(seconds=4)
    data = (d / "video.mp4").read_bytes()
    (d / "video.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(CaptureError, match="video.mp4"):
        import_session(dataset, d)
    assert sum(dataset.counts().values()) == 0


def test_batch_import_survives_a_bad_session(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    make_session("good-1")
    bad = make_session("bad")
    with gzip.open(bad / "sensors" / "power_source.csv.gz", "wt") as f:
        f.write("timestamp,arc_current_A,arc_voltage_V\n2,1,1\n1,1,1\n")
    make_session("good-2")
    results = import_sessions(dataset, bad.parent)
    assert [(r.session_key, r.error is None) for r in results] == [
        ("bad", False),
        ("good-1", True),
        ("good-2", True),
    ]
    assert dataset.query("SELECT count(*) AS n FROM current_sessions").column("n")[0].as_py() == 2


def test_stills_import(dataset: Dataset, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    d = tmp_path / "stills"
    (d / "images").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(d / "images" / f"im{i}.jpg"), np.full((32, 48, 3), 50 * i, np.uint8))
    (d / "images.csv").write_text(
        "image,station,width,height\n" + "".join(f"images/im{i}.jpg,st-0{i},48,32\n" for i in range(3))
    )
    r = import_stills(dataset, d, session_key="stills")
    assert r.frames == 3
    rows = dataset.query(
        "SELECT source_uri, station, width, height FROM frames ORDER BY source_uri"
    ).to_pylist()
    assert rows[1] == {"source_uri": "images/im1.jpg", "station": "st-01", "width": 48, "height": 32}
    (d / "images" / "im1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CaptureError, match="im1.jpg: missing or not a readable image"):
        import_stills(dataset, d, session_key="stills-2")
