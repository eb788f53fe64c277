"""The `jangin` command: init, query (every format), info, errors with hints, stage groups."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq


def jangin(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jangin.core.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_help_lists_core_and_stage_commands() -> None:
    r = jangin("--help")
    assert r.returncode == 0, r.stderr
    for cmd in ("init", "query", "info", "capture", "label", "train", "models", "demo"):
        assert cmd in r.stdout, cmd


def test_init_query_formats(tmp_path: Path) -> None:
    ds_dir = tmp_path / "ds"
    r = jangin("init", str(ds_dir))
    assert r.returncode == 0, r.stderr
    from jangin.core import Dataset

    ds = Dataset.open(ds_dir)
    ds.append(
        "events",
        [
            {
                "event_id": "e1",
                "session_id": "s1",
                "ts": datetime(2026, 1, 1, tzinfo=UTC),
                "kind": "judgment",
                "value": "NG:porosity",
            }
        ],
    )
    sql = "SELECT event_id, kind, value FROM events"
    r = jangin("query", sql, "--dataset", str(ds_dir), "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["event_id,kind,value", "e1,judgment,NG:porosity"]
    r = jangin("query", sql, "-d", str(ds_dir), "--format", "json")
    assert json.loads(r.stdout) == {"event_id": "e1", "kind": "judgment", "value": "NG:porosity"}
    out = tmp_path / "x.parquet"
    r = jangin("query", sql, "-d", str(ds_dir), "--format", "parquet", "-o", str(out))
    assert r.returncode == 0 and pq.read_table(out).num_rows == 1
    r = jangin("query", sql, "-d", str(ds_dir))
    assert "NG:porosity" in r.stdout and "1 row(s)" in r.stderr
    r = jangin("info", "-d", str(ds_dir))
    assert r.returncode == 0 and "events" in r.stderr


def test_dataset_from_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    jangin("init", str(tmp_path / "env-ds"))
    monkeypatch.setenv("JANGIN_DATASET", str(tmp_path / "env-ds"))
    r = jangin("query", "SELECT count(*) AS n FROM sessions", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"n": 0}


def test_errors_are_one_line_with_a_hint(tmp_path: Path) -> None:
    r = jangin("query", "SELECT 1", "-d", str(tmp_path / "missing"))
    assert r.returncode == 1
    assert "error:" in r.stderr and "not a Jangin dataset" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.stderr
    r = jangin("--debug", "query", "SELECT 1", "-d", str(tmp_path / "missing"))
    assert r.returncode == 1 and "Traceback" in r.stderr
    jangin("init", str(tmp_path / "ds"))
    r = jangin("query", "SELECT nope FROM events", "-d", str(tmp_path / "ds"))
    assert r.returncode == 1 and "query failed" in r.stderr
    r = jangin("query", "SELECT 1", "-d", str(tmp_path / "ds"), "--format", "parquet")
    assert r.returncode != 0 and "--output" in r.stderr


def test_query_csv_pipes_duplicate_names_and_intervals(tmp_path: Path) -> None:
    ds_dir = tmp_path / "ds"
    assert jangin("init", str(ds_dir)).returncode == 0
    sql = """SELECT 'plain' AS a, 'with, comma' AS a, 'say "hi"' AS b, NULL AS c, 2.5 AS d,
                    TIMESTAMPTZ '2026-01-01 00:00:00+00' AS t, INTERVAL 62.5 SECONDS AS i,
                    INTERVAL 3 DAY + INTERVAL 1 HOUR AS j"""
    r = jangin("query", sql, "-d", str(ds_dir), "--format", "csv")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "a,a_1,b,c,d,t,i,j"
    assert (
        lines[1] == 'plain,"with, comma","say ""hi""",,2.5,2026-01-01T00:00:00+00:00,00:01:02.5,3 d 01:00:00'
    )
    cut = subprocess.run(["cut", "-d,", "-f1"], input=r.stdout, capture_output=True, text=True)
    assert cut.stdout.splitlines() == ["a", "plain"]  # no quotes to strip in a pipe
    r = jangin("query", sql, "-d", str(ds_dir), "--format", "json")
    row = json.loads(r.stdout)
    assert (row["a"], row["a_1"], row["i"], row["j"]) == (
        "plain",
        "with, comma",
        "00:01:02.5",
        "3 d 01:00:00",
    )
    r = jangin("query", sql, "-d", str(ds_dir))
    assert r.returncode == 0 and "00:01:02.5" in r.stdout and "MonthDayNano" not in r.stdout
    assert "Traceback" not in r.stderr
