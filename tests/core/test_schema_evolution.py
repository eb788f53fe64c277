"""A dataset written by release 0.1.0 (schema 1, committed in tests/fixtures/dataset_v1 before any
schema change) opens, reads, queries and appends with today's code; ``jangin migrate`` upgrades it."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jangin.core import Dataset, DatasetError
from jangin.core.cli import main
from jangin.core.schema import SCHEMA_VERSION, TABLES, LabelRow, SessionRow

FIXTURE = Path(__file__).parents[1] / "fixtures" / "dataset_v1"


def _run(argv: list[str]) -> None:
    from jangin.core import cli

    cli._state.pop("console", None)  # a fresh console writes to the captured stderr
    try:
        main(argv)
    except SystemExit as done:
        assert done.code in (0, None)


@pytest.fixture()
def v1(tmp_path: Path) -> Dataset:
    shutil.copytree(FIXTURE, tmp_path / "ds")
    return Dataset.open(tmp_path / "ds")


def test_fixture_is_schema_1() -> None:
    assert json.loads((FIXTURE / "jangin.json").read_text())["schema_version"] == 1
    assert not (FIXTURE / "tables" / "processes").exists()


def test_old_dataset_reads_with_new_columns_as_nulls(v1: Dataset) -> None:
    assert v1.schema_version == 1
    counts = v1.counts()
    assert counts["sensor_samples"] == 20 and counts["labels"] == 2 and counts["processes"] == 0
    labels = v1.read("labels")
    assert labels.schema == TABLES["labels"].schema
    assert labels.column("question").to_pylist() == [None, None]
    assert v1.read("sessions").column("parameters").to_pylist() == [None]
    assert v1.read("labels", filters=[("question", "=", "outcome")]).num_rows == 0
    # SQL sees the new columns (nulls) and the new views work on old data
    got = v1.query("SELECT count(*) AS n, count(question) AS q FROM labels").to_pylist()
    assert got == [{"n": 2, "q": 0}]
    assert v1.query("SELECT * FROM session_parameters").num_rows == 0
    assert v1.query("SELECT * FROM current_processes").num_rows == 0
    assert v1.snapshot()["processes"] == -1


def test_old_dataset_appends_new_columns(v1: Dataset) -> None:
    now = datetime.now(UTC)
    v1.append(
        "labels",
        [
            LabelRow(
                label_id="lbl-new",
                target="session",
                session_id="ses-v1-0001",
                kind="class",
                name="worn",
                source="import",
                created_at=now,
                question="tool_condition",
            )
        ],
    )
    labels = v1.read("labels")
    assert sorted(map(str, labels.column("question").to_pylist())) == ["None", "None", "tool_condition"]
    v1.append(
        "sessions",
        [
            SessionRow(
                session_id="ses-v1-0001", status="processed", updated_at=now, parameters={"feed": "0.2"}
            )
        ],
    )
    rows = v1.query("SELECT name, value_num FROM session_parameters").to_pylist()
    assert rows == [{"name": "feed", "value_num": 0.2}]
    # old rows untouched
    assert v1.query("SELECT count(*) AS n FROM sensor_samples").to_pylist() == [{"n": 20}]


def test_migrate_is_additive_and_idempotent(v1: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    _run(["migrate", "-d", str(v1.root)])
    out = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "processes: added (table)" in out and "question" in out and f"-> {SCHEMA_VERSION}" in out
    ds = Dataset.open(v1.root)
    assert ds.schema_version == SCHEMA_VERSION
    assert ds.read("labels").num_rows == 2
    assert ds.migrate() == {}  # a second run changes nothing
    _run(["migrate", "-d", str(v1.root)])
    assert "already at schema version" in " ".join(capsys.readouterr().err.split())


def test_newer_dataset_is_refused(v1: Dataset) -> None:
    marker = v1.root / "jangin.json"
    meta = json.loads(marker.read_text())
    meta["schema_version"] = SCHEMA_VERSION + 1
    marker.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=f"schema version {SCHEMA_VERSION + 1}"):
        Dataset.open(v1.root)


def test_record_type_is_checked(tmp_path: Path) -> None:
    from jangin.core import SchemaError

    ds = Dataset.create(tmp_path / "d")
    with pytest.raises(SchemaError, match="expected a LabelRow"):
        ds.append("labels", [SessionRow(session_id="s", status="x", updated_at=datetime.now(UTC))])
