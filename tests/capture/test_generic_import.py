"""Generic import of recordings of any process: time from any column / unit / origin or from a
rate, per-column roles (channel, phase, label, ignore), globs, CSV / Parquet / JSONL, many files per
device, session parameters, and one clear line for each kind of bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from _machining import write_run_set

from jangin.capture import RunOptions, import_runs, import_session
from jangin.capture._rows import wide_to_long
from jangin.core import CaptureError, Dataset

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
T0_S = T0.timestamp()
N = 12
#: state: 1 1 1 2 2 2 1 1 1 3 3 3 → steps "1" (twice), "2", "3"
STATE = [1, 1, 1, 2, 2, 2, 1, 1, 1, 3, 3, 3]
QUALITY = ["", "", "ok", "ok", "ok", "", "", "chatter", "chatter", "", "", ""]


def _columns(**extra: Any) -> dict[str, Any]:
    return {
        "a_bar": [float(i) for i in range(N)],
        "b": [10.0 + i for i in range(N)],
        "c": [100 + i for i in range(N)],
        "state": STATE,
        "quality": QUALITY,
        **extra,
    }


def _write(path: Path, cols: dict[str, Any]) -> None:
    table = pa.table(cols)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".jsonl":
        rows = table.to_pylist()
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)


@pytest.fixture
def make_dir(tmp_path: Path) -> Callable[..., Path]:
    """``make_dir(device, cols=..., file='s.csv')`` writes a session folder with one wide file."""

    def make(
        device: dict[str, Any], cols: dict[str, Any] | None = None, file: str = "s.csv", **m: Any
    ) -> Path:
        d = tmp_path / "sess"
        d.mkdir(exist_ok=True)
        if cols is not None:
            _write(d / file, cols)
        manifest = {
            "session_key": "g1",
            "started_at": "2026-03-02T08:00:00Z",
            "events": None,
            "devices": [{"name": "dev", "file": file, "clock_offset_s": 0.0, **device}],
            **m,
        }
        (d / "session.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return d

    return make


def _times(ds: Dataset, channel: str = "a_bar") -> list[float]:
    q = f"SELECT epoch_us(ts) t FROM sensor_samples WHERE channel = '{channel}' ORDER BY ts"
    return [(t - T0_S * 1e6) / 1e6 for t in ds.query(q).column("t").to_pylist()]


TIME_CASES = [
    ("seconds since epoch", {"time_column": "t"}, [T0_S + 0.1 * i for i in range(N)]),
    ("milliseconds", {"time_column": "t", "time_unit": "ms"}, [int(T0_S * 1000) + 100 * i for i in range(N)]),
    (
        "nanoseconds",
        {"time_column": "t", "time_unit": "ns"},
        [int(T0_S) * 10**9 + 10**8 * i for i in range(N)],
    ),
    (
        "ISO strings",
        {"time_column": "t"},
        [f"2026-03-02T08:00:00.{i:02d}0000Z" for i in range(0, 10)]
        + ["2026-03-02T08:00:01Z", "2026-03-02T08:00:01.1Z"],
    ),
    (
        "offset from the start",
        {"time_column": "t", "time_origin": "start", "time_unit": "ms"},
        [100 * i for i in range(N)],
    ),
    ("rate, no time column", {"rate_hz": 10}, None),
    ("period, no time column", {"period_s": 0.1}, None),
]


@pytest.mark.parametrize(("name", "device", "t"), TIME_CASES, ids=[c[0] for c in TIME_CASES])
def test_time_from_any_column_unit_origin_or_rate(
    dataset: Dataset, make_dir: Callable[..., Path], name: str, device: dict[str, Any], t: list[Any] | None
) -> None:
    cols = _columns() if t is None else {"t": t, **_columns()}
    if name == "ISO strings":  # 0.0, 0.01 .. 0.09 s, then 1.0, 1.1 s
        expected = [i / 100 for i in range(10)] + [1.0, 1.1]
    else:
        expected = [0.1 * i for i in range(N)]
    r = import_session(dataset, make_dir({**device, "drop": ["state", "quality"]}, cols))
    assert r.samples == 3 * N
    assert _times(dataset) == pytest.approx(expected, abs=1e-6)


def test_every_role_from_the_manifest(dataset: Dataset, make_dir: Callable[..., Path]) -> None:
    device = {
        "rate_hz": 10,
        "channels": [
            {"column": "a_bar", "channel": "pressure", "unit": "bar", "display_name": "Clamp pressure"},
            {"column": "c", "unit": "rpm"},
            {"column": "b", "role": "ignore"},
            {"column": "state", "role": "phase"},
            {"column": "quality", "role": "label"},
        ],
    }
    r = import_session(dataset, make_dir(device, _columns()))
    assert r.sensors[0].problems == []  # nothing undeclared
    got = dataset.query(
        "SELECT channel, unit, count(*) n FROM sensor_samples GROUP BY 1, 2 ORDER BY 1"
    ).to_pylist()
    assert got == [{"channel": "c", "unit": "rpm", "n": N}, {"channel": "pressure", "unit": "bar", "n": N}]
    steps = dataset.query("SELECT name, occurrence, kind, epoch_ms(ts) AS t FROM events ORDER BY ts, kind")
    rows = [(s["name"], s["occurrence"], s["kind"], (s["t"] - T0_S * 1000) / 1000) for s in steps.to_pylist()]
    assert [x for x in rows if x[2] == "step_start"] == [
        ("1", 1, "step_start", 0.0),
        ("2", 1, "step_start", pytest.approx(0.3)),
        ("1", 2, "step_start", pytest.approx(0.6)),
        ("3", 1, "step_start", pytest.approx(0.9)),
    ]
    assert ("3", 1, "step_end", pytest.approx(1.1)) in rows
    labels = dataset.query(
        "SELECT question, target, name, epoch_ms(ts_start) s, epoch_ms(ts_end) e FROM labels ORDER BY ts_start"
    ).to_pylist()
    assert [(lab["question"], lab["target"], lab["name"]) for lab in labels] == [
        ("quality", "span", "ok"),
        ("quality", "span", "chatter"),
    ]
    assert (labels[0]["s"] - T0_S * 1000, labels[0]["e"] - T0_S * 1000) == pytest.approx((200, 500))
    meta = json.loads(dataset.query("SELECT meta_json FROM current_sessions").column(0)[0].as_py())
    assert meta["display_names"] == {"pressure": "Clamp pressure"}


@pytest.mark.parametrize("file", ["s.csv", "s.parquet", "s.jsonl"])
def test_globs_pick_and_drop_columns_in_every_format(
    dataset: Dataset, make_dir: Callable[..., Path], file: str
) -> None:
    cols = {f"X1_{k}": [float(i) for i in range(N)] for k in ("Pos", "Vel", "Acc")}
    cols |= {f"Z1_{k}": [1.0] * N for k in ("Pos", "Vel")}
    cols |= {"phase": ["cut"] * 6 + ["retract"] * 6}
    device = {"rate_hz": 10, "include": ["X1_*", "Z1_Pos"], "drop": ["X1_A*"], "phase_column": "phase"}
    r = import_session(dataset, make_dir(device, cols, file=file))
    assert sorted(r.sensors[0].channels) == ["X1_Pos", "X1_Vel", "Z1_Pos"]
    assert r.events == 4 and r.samples == 3 * N


def test_many_files_per_device_continue_one_time_axis(
    dataset: Dataset, make_dir: Callable[..., Path]
) -> None:
    d = make_dir({"file": "part_*.csv", "rate_hz": 10, "drop": ["state", "quality"]}, None, file="part_*.csv")
    cols = _columns()
    _write(d / "part_1.csv", {k: v[:5] for k, v in cols.items()})
    _write(d / "part_2.csv", {k: v[5:] for k, v in cols.items()})
    import_session(dataset, d)
    assert _times(dataset) == pytest.approx([0.1 * i for i in range(N)])
    values = dataset.query("SELECT value FROM sensor_samples WHERE channel = 'c' ORDER BY ts").column(0)
    assert values.to_pylist() == [100.0 + i for i in range(N)]


def test_manifest_parameters_reach_the_dataset(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    from jangin.capture import load_manifest

    sample = Path(__file__).resolve().parents[2] / "sample_data" / "sessions" / "weld-01" / "session.yaml"
    assert load_manifest(sample).parameters["segments"] == 4
    d = make_session()
    m = yaml.safe_load((d / "session.yaml").read_text())
    m["parameters"] = {"seam_length_mm": 120.0, "segments": 4, "gas": "Ar 82% / CO2 18%"}
    (d / "session.yaml").write_text(yaml.safe_dump(m))
    import_session(dataset, d, keep_video=False)
    got = dataset.query("SELECT name, value, value_num FROM session_parameters ORDER BY name").to_pylist()
    assert got == [
        {"name": "gas", "value": "Ar 82% / CO2 18%", "value_num": None},
        {"name": "seam_length_mm", "value": "120.0", "value_num": 120.0},
        {"name": "segments", "value": "4", "value_num": 4.0},
    ]
    steps = dataset.query("SELECT kind, occurrence FROM events WHERE kind LIKE 'step%'").to_pylist()
    assert steps == [{"kind": "step_start", "occurrence": 1}]  # markers from the events file are numbered too


def test_import_from_flags_without_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jangin.core.cli import main

    _write(tmp_path / "run.csv", _columns())
    ds_dir = tmp_path / "ds"
    args = ["capture", "import", str(tmp_path / "run.csv"), "-d", str(ds_dir), "--sensor", f"{tmp_path / 'run.csv'}:mill:0",
            "--rate-hz", "10", "--started-at", "2026-03-02T08:00:00Z", "--channels", "a_*", "--channels", "c",
            "--phase-column", "state", "--label-column", "quality", "--param", "feed=3", "--label", "outcome=good",
            "--unit", "c=rpm"]  # fmt: skip
    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    ds = Dataset.open(ds_dir)
    assert ds.query("SELECT DISTINCT channel, unit FROM sensor_samples ORDER BY 1").to_pylist() == [
        {"channel": "a_bar", "unit": "bar"},
        {"channel": "c", "unit": "rpm"},
    ]
    q = "SELECT question, target, name FROM labels ORDER BY target, ts_start"
    assert [tuple(r.values()) for r in ds.query(q).to_pylist()] == [
        ("outcome", "session", "good"),
        ("quality", "span", "ok"),
        ("quality", "span", "chatter"),
    ]
    assert ds.query("SELECT value FROM session_parameters").column(0).to_pylist() == ["3"]
    assert ds.query("SELECT count(*) FROM events").column(0)[0].as_py() == 8


def test_wide_to_long_drops_non_finite_and_keeps_units() -> None:
    t = np.arange(4, dtype=np.int64) * 1000
    table, dropped = wide_to_long(
        "s", "d", t, {"x": np.array([1.0, np.nan, 3.0, 4.0]), "y": np.array([5.0, 6, np.inf, 8])}, {"x": "V"}
    )
    assert dropped == {"x": 1, "y": 1}
    assert table.column("channel").cast(pa.string()).to_pylist() == ["x"] * 3 + ["y"] * 3
    assert table.column("value").to_pylist() == [1.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    assert table.column("unit").cast(pa.string()).to_pylist() == ["V"] * 3 + [None] * 3
    assert table.column("ts").cast(pa.int64()).to_pylist() == [0, 2000, 3000, 0, 1000, 3000]


BAD_MANIFESTS = [
    ("wrong role", {"rate_hz": 10, "channels": [{"column": "state", "role": "phases"}]}, r"session.yaml: devices.0.channels.0.role"),
    ("glob matching nothing", {"rate_hz": 10, "include": ["Q*"]}, r"s.csv: --channels 'Q\*' matches no column"),
    ("drop glob matching nothing", {"rate_hz": 10, "drop": ["Z9_*"]}, r"s.csv: drop pattern 'Z9_\*' matches no column"),
    ("unknown channel", {"rate_hz": 10, "include": ["a_bar", "nope"]}, r"s.csv: unknown channel 'nope' in --channels \(known channels: a_bar, b, c, state\)"),
    ("phase column with gaps", {"rate_hz": 10, "phase_column": "quality"}, r"s.csv: column 'quality': row 2: empty value \(7 empty row\(s\)\)"),
    ("missing phase column", {"rate_hz": 10, "phase_column": "step"}, r"s.csv: phase column 'step' is missing"),
    ("text column as a channel", {"rate_hz": 10, "include": ["quality"]}, r"s.csv: column 'quality' is string, expected numbers"),
    ("no time and no rate", {}, r"s.csv: no time column 'timestamp'"),
    ("named time column missing", {"time_column": "t", "rate_hz": 10}, r"s.csv: no time column 't'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "device", "error"), BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS])
def test_bad_column_setup_is_one_clear_line(
    dataset: Dataset, make_dir: Callable[..., Path], name: str, device: dict[str, Any], error: str
) -> None:
    with pytest.raises(CaptureError, match=error) as err:
        import_session(dataset, make_dir(device, _columns()))
    assert "\n" not in str(err.value)
    assert sum(dataset.counts().values()) == 0


def _bad_runs(root: Path) -> tuple[Path, Path | None]:
    table = write_run_set(root, n_runs=2)
    lines = table.read_text().splitlines()
    return table, lines


RUN_CASES = [
    ("missing file", lambda ls: [*ls, ls[1].replace("run_01.csv", "run_09.csv")], None, r"runs.csv: row 4: file 'run_09.csv' not found"),
    ("bad start time", lambda ls: [*ls, ls[1].replace("run_01.csv", "run_02.csv").replace("2026-03-02T01:00:00Z", "yesterday")], None, r"runs.csv: row 4: started_at 'yesterday' is not a time"),
    ("start without timezone", lambda ls: [*ls, ls[1].replace("2026-03-02T01:00:00Z", "2026-03-02T01:00:00")], None, r"runs.csv: row 4: started_at '2026-03-02T01:00:00' has no timezone"),
    ("label for an unknown session", lambda ls: ls, "session_key,question,value\nrun_01,visual_inspection,ok\nrun_99,visual_inspection,ng\n", r"labels.csv: row 3: label for unknown session 'run_99'"),
    ("phase gaps in one run", None, None, r"run_02.csv: column 'Machining_Process': row 7: empty value"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "edit", "labels", "error"), RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_a_bad_run_never_stops_the_good_runs(
    dataset: Dataset, tmp_path: Path, name: str, edit: Any, labels: str | None, error: str
) -> None:
    from _machining import write_run

    table = write_run_set(tmp_path / "runs", n_runs=2)
    if edit is not None:
        table.write_text("\n".join(edit(table.read_text().splitlines())) + "\n")
    else:
        write_run(tmp_path / "runs" / "run_02.csv", 2, phase_gap_at=5)
    label_file = None
    if labels:
        label_file = tmp_path / "runs" / "labels.csv"
        label_file.write_text(labels)
    results = import_runs(
        dataset, table, options=RunOptions(phase_column="Machining_Process"), labels=label_file
    )
    errors = [r.error for r in results if r.error]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert __import__("re").search(error, errors[0]), errors[0]
    imported = {r.session_key for r in results if not r.error}
    assert "run_01" in imported
    n = dataset.query("SELECT count(*) FROM current_sessions").column(0)[0].as_py()
    assert n == len(imported)
    if labels:
        q = "SELECT question, name FROM labels WHERE question = 'visual_inspection'"
        assert dataset.query(q).to_pylist() == [{"question": "visual_inspection", "name": "ok"}]


def test_wide_and_long_files_of_one_session(dataset: Dataset, make_dir: Callable[..., Path]) -> None:
    d = make_dir({"rate_hz": 10, "drop": ["state", "quality"]}, _columns())
    (d / "long.csv").write_text(
        "device,channel,ts,value,unit\n" + "".join(f"imu,tilt,{T0_S + i / 5},{i},deg\n" for i in range(5))
    )
    m = yaml.safe_load((d / "session.yaml").read_text())
    m["long_files"] = [{"file": "long.csv"}]
    (d / "session.yaml").write_text(yaml.safe_dump(m))
    r = import_session(dataset, d)
    assert r.samples == 3 * N + 5
    got = dataset.query("SELECT device, unit, count(*) n FROM sensor_samples GROUP BY 1, 2 ORDER BY 1, 2")
    assert got.to_pylist() == [
        {"device": "dev", "unit": "bar", "n": N},
        {"device": "dev", "unit": None, "n": 2 * N},
        {"device": "imu", "unit": "deg", "n": 5},
    ]
