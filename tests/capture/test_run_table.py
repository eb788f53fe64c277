"""A folder of runs + one run table imports in one command: 47 channels at 100 ms with no time
column, a text phase column (a phase seen twice is two occurrences), recipe parameters and one
worn / unworn label per run; `jangin query` then shows parameters, steps and labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _machining import CHANNELS, PHASES, ROWS, write_run_set

from jangin.core import Dataset


def jangin(*args: str | Path) -> int:
    from jangin.core.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    table = write_run_set(tmp_path / "runs", n_runs=3)
    ds = tmp_path / "ds"
    return table, ds


def test_import_runs_in_one_command(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    table, ds_dir = runs
    rc = jangin("capture", "import-runs", table, "-d", ds_dir, "--phase-column", "Machining_Process")
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "3 imported or skipped, 0 failed" in err
    ds = Dataset.open(ds_dir)
    counts = ds.query("SELECT count(*) n, count(DISTINCT channel) c FROM sensor_samples").to_pylist()[0]
    assert counts == {"n": 3 * ROWS * len(CHANNELS), "c": 47}
    # time from started_at + rate_hz: row k of run 2 is at 02:00:00 + k x 100 ms
    got = ds.query(
        """SELECT epoch_us(ts) - epoch_us(TIMESTAMPTZ '2026-03-02 02:00:00+00') AS dt_us, value
           FROM sensor_samples s JOIN current_sessions c USING (session_id)
           WHERE json_extract_string(c.meta_json, '$.session_key') = 'run_02'
             AND channel = 'X1_ActualPosition' ORDER BY ts"""
    ).to_pylist()
    assert [g["dt_us"] for g in got[:3]] == [0, 100_000, 200_000] and len(got) == ROWS
    assert got[7]["value"] == pytest.approx(7 * 0.5 + 2)
    # steps: one start/end pair per phase run; 'Layer 1 Up' twice, numbered 1 and 2
    steps = ds.query(
        """SELECT name, occurrence, count(*) n FROM events e JOIN current_sessions c USING (session_id)
           WHERE json_extract_string(c.meta_json, '$.session_key') = 'run_01'
           GROUP BY 1, 2 ORDER BY min(ts)"""
    ).to_pylist()
    assert [(s["name"], s["occurrence"]) for s in steps] == [
        ("Prep", 1),
        ("Layer 1 Up", 1),
        ("Layer 1 Down", 1),
        ("Repositioning", 1),
        ("Layer 1 Up", 2),
    ]
    assert all(s["n"] == 2 for s in steps)
    second = ds.query(
        """SELECT kind, epoch(ts) - epoch(TIMESTAMPTZ '2026-03-02 01:00:00+00') AS t FROM events
           WHERE name = 'Layer 1 Up' AND occurrence = 2 AND session_id IN (SELECT session_id FROM
           current_sessions WHERE json_extract_string(meta_json, '$.session_key') = 'run_01') ORDER BY ts"""
    ).to_pylist()
    first_row = sum(n for _, n in PHASES[:4])
    assert second[0] == {"kind": "step_start", "t": pytest.approx(first_row / 10)}
    assert second[1] == {"kind": "step_end", "t": pytest.approx((ROWS - 1) / 10)}

    # parameters and labels, through `jangin query` (csv, no needless quotes)
    sql = """SELECT json_extract_string(c.meta_json, '$.session_key') AS run, p.name, p.value, p.value_num
             FROM session_parameters p JOIN current_sessions c USING (session_id)
             WHERE p.name = 'clamp_pressure' ORDER BY run"""
    assert jangin("query", sql, "-d", ds_dir, "--format", "csv") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "run,name,value,value_num",
        "run_01,clamp_pressure,2.6,2.6",
        "run_02,clamp_pressure,2.7,2.7",
        "run_03,clamp_pressure,2.8,2.8",
    ]
    sql = """SELECT json_extract_string(c.meta_json, '$.session_key') AS run, l.question, l.name, l.target
             FROM current_labels l JOIN current_sessions c USING (session_id) ORDER BY run"""
    assert jangin("query", sql, "-d", ds_dir, "--format", "json") == 0
    labels = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(lab["run"], lab["question"], lab["name"], lab["target"]) for lab in labels] == [
        ("run_01", "tool_condition", "unworn", "session"),
        ("run_02", "tool_condition", "worn", "session"),
        ("run_03", "tool_condition", "unworn", "session"),
    ]
    # `sessions show` has the parameters, the steps and the labels
    sid = ds.query(
        "SELECT session_id FROM current_sessions WHERE json_extract_string(meta_json, '$.session_key') = 'run_03'"
    ).column(0)[0]
    assert jangin("capture", "sessions", "show", sid.as_py(), "-d", ds_dir) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["parameters"] == {"feedrate": "9", "clamp_pressure": "2.8", "material": "wax"}
    assert shown["skill_level"] == "expert" and shown["n_labels"] == 1 and len(shown["steps"]) == 5
    assert shown["ended_at"].startswith("2026-03-02 03:00:11.4")  # the last sample, (ROWS - 1) x 100 ms
    assert shown["labels"][0]["question"] == "tool_condition"
    # a second run of the same command adds nothing
    assert jangin("capture", "import-runs", table, "-d", ds_dir, "--phase-column", "Machining_Process") == 0
    assert "skipped run_01" in capsys.readouterr().err
    assert ds.query("SELECT count(*) FROM sensor_samples").column(0)[0].as_py() == 3 * ROWS * 47


def test_process_definition_supplies_phase_column_and_units(runs: tuple[Path, Path]) -> None:
    from jangin.capture import RunOptions, import_runs
    from jangin.core.process_definition import ProcessDefinition, register_process

    table, ds_dir = runs
    ds = Dataset.create(ds_dir)
    defn = ProcessDefinition.model_validate(
        {
            "name": "milling",
            "channels": [
                {"name": "S1_OutputPower", "unit": "kW", "display_name": "spindle power"},
                {"name": "M1_CURRENT_FEEDRATE", "unit": "mm/min"},
            ],
            "steps": {"source": "phase_column", "column": "Machining_Process", "ignore": ["Prep"]},
        }
    )
    register_process(ds, defn)
    results = import_runs(ds, table, options=RunOptions(process="milling", drop=("Y1_*",)))
    assert [r.error for r in results] == [None, None, None]
    rows = ds.query("SELECT DISTINCT channel, unit FROM sensor_samples WHERE unit IS NOT NULL").to_pylist()
    units = {r["channel"]: r["unit"] for r in rows}
    assert units == {"S1_OutputPower": "kW", "M1_CURRENT_FEEDRATE": "mm/min"}
    n_channels = ds.query("SELECT count(DISTINCT channel) FROM sensor_samples").column(0)[0].as_py()
    assert n_channels == 47 - 11  # Y1_* dropped
    names = ds.query("SELECT DISTINCT name FROM events ORDER BY 1").column(0).to_pylist()
    assert names == ["Layer 1 Down", "Layer 1 Up", "Repositioning"]  # "Prep" is ignored
    sess = ds.query("SELECT process, process_definition, meta_json FROM current_sessions").to_pylist()
    assert {(s["process"], s["process_definition"]) for s in sess} == {("milling", "milling")}
    assert json.loads(sess[0]["meta_json"])["display_names"] == {"S1_OutputPower": "spindle power"}
