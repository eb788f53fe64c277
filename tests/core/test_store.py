"""The dataset store: validated atomic appends, idempotent appends, snapshots, DuckDB views."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from jangin.core import Dataset, DatasetError, SchemaError
from jangin.core.schema import TABLES

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def event(i: int, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "event_id": f"e{i}",
        "session_id": "s1",
        "ts": T0 + timedelta(seconds=i),
        "kind": "note",
        "name": f"n{i}",
    }
    row.update(over)
    return row


def test_create_makes_every_table_empty(dataset: Dataset) -> None:
    assert dataset.counts() == dict.fromkeys(TABLES, 0)
    assert json.loads((dataset.root / "jangin.json").read_text())["schema_version"] >= 1
    for name, spec in TABLES.items():
        assert dataset.read(name).schema.equals(spec.schema), name


def test_create_refuses_existing_and_open_refuses_non_dataset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    Dataset.create(tmp_path / "a")
    with pytest.raises(DatasetError, match="already a Jangin dataset"):
        Dataset.create(tmp_path / "a")
    assert Dataset.create(tmp_path / "a", exist_ok=True).root == (tmp_path / "a").resolve()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        Dataset.create(tmp_path / "b")
    with pytest.raises(DatasetError, match="jangin init"):
        Dataset.open(tmp_path / "b")


def test_append_and_read_round_trip(dataset: Dataset) -> None:
    v = dataset.append("events", [event(1), event(2, value="OK")])
    assert v == 1
    t = dataset.read("events")
    assert t.num_rows == 2
    assert t.column("value").to_pylist() == [None, "OK"]
    assert t.column("ts").to_pylist()[0] == T0 + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"event_id": "x", "ts": T0, "kind": "note"}], "required column 'session_id' is missing"),
        ([event(1, session_id=None)], "column 'session_id' is required but row 0 is null"),
        ([event(1), event(2, ts="yesterday")], "column 'ts' expects timestamp.*row 1"),
        ([event(1, ts=datetime(2026, 1, 1))], "timezone-naive"),
        ([event(1, ts=1234567890)], "expects UTC timestamps"),
        ([event(1, colour="red")], "unknown column.*'colour'"),
        ([event(1), "not a row"], "row 1 is a str"),
    ],
)
def test_bad_rows_are_rejected_and_nothing_is_written(
    dataset: Dataset, rows: list[object], message: str
) -> None:
    dataset.append("events", [event(0)])
    before = (dataset.version("events"), dataset.read("events").num_rows)
    with pytest.raises(SchemaError, match=message):
        dataset.append("events", rows)  # type: ignore[arg-type]
    assert (dataset.version("events"), dataset.read("events").num_rows) == before


def test_wrong_type_names_column_and_row(dataset: Dataset) -> None:
    rows = [
        {
            "frame_id": "f1",
            "session_id": "s",
            "ts": T0,
            "width": 10,
            "height": 10,
            "deidentified": True,
            "image": b"x",
        },
        {
            "frame_id": "f2",
            "session_id": "s",
            "ts": T0,
            "width": "wide",
            "height": 10,
            "deidentified": True,
            "image": b"x",
        },
    ]
    with pytest.raises(SchemaError, match=r"frames: column 'width' expects int32 at row 1"):
        dataset.append("frames", rows)
    assert dataset.read("frames").num_rows == 0


@pytest.mark.parametrize("box", [[0.1, 0.2, 0.3], [0.5, 0.1, 0.4, 0.3], [0.1, 0.1, 1.5, 0.3]])
def test_bad_boxes_are_rejected(dataset: Dataset, box: list[float]) -> None:
    row = {
        "label_id": "l",
        "target": "frame",
        "session_id": "s",
        "kind": "box",
        "name": "pore",
        "bbox_xyxy_norm": box,
        "source": "labeller",
        "created_at": T0,
    }
    with pytest.raises(SchemaError, match="bbox_xyxy_norm"):
        dataset.append("labels", [row])
    assert dataset.read("labels").num_rows == 0


def test_arrow_input_is_cast_and_nullable_columns_filled(dataset: Dataset) -> None:
    t = pa.table(
        {
            "session_id": ["s1"] * 3,
            "device": ["ps"] * 3,
            "channel": ["arc_current_A"] * 3,
            "ts": pa.array([1, 2, 3], pa.timestamp("ns", tz="UTC")),
            "value": pa.array([1, 2, 3], pa.int64()),
        }
    )
    dataset.append("sensor_samples", t)
    out = dataset.read("sensor_samples")
    assert out.column("value").type == pa.float64()
    assert out.column("unit").null_count == 3


def test_idempotent_append_with_transaction_id(dataset: Dataset) -> None:
    for _ in range(3):  # a client retrying batch 1 three times
        dataset.append("events", [event(1)], txn=("recorder-7/s1", 1))
    dataset.append("events", [event(2)], txn=("recorder-7/s1", 2))
    dataset.append("events", [event(1)], txn=("recorder-7/s1", 1))  # a late duplicate of batch 1
    assert sorted(dataset.read("events").column("event_id").to_pylist()) == ["e1", "e2"]
    assert dataset.committed("events", "recorder-7/s1") == 2
    assert dataset.committed("events", "someone-else") is None


def test_snapshot_and_time_travel(dataset: Dataset) -> None:
    dataset.append("events", [event(1)])
    snap = dataset.snapshot()
    dataset.append("events", [event(2)])
    assert dataset.read("events", snapshot=snap).num_rows == 1
    assert dataset.read("events").num_rows == 2
    assert dataset.query("SELECT count(*) AS n FROM events", snapshot=snap).column("n")[0].as_py() == 1
    assert snap.to_dict()["events"] == 1
    with pytest.raises(SchemaError, match="no version 99"):
        dataset.read("events", version=99)


def test_duckdb_views_and_current_labels(dataset: Dataset) -> None:
    base = {"target": "frame", "session_id": "s", "kind": "class", "source": "labeller", "created_at": T0}
    dataset.append(
        "labels",
        [
            {**base, "label_id": "a", "name": "pore"},
            {**base, "label_id": "b", "name": "crack"},
        ],
    )
    dataset.append(
        "labels",
        [
            {**base, "label_id": "a2", "name": "spatter", "supersedes": "a"},
            {**base, "label_id": "b2", "name": "crack", "supersedes": "b", "deleted": True},
        ],
    )
    all_rows = dataset.query("SELECT count(*) AS n FROM labels").column("n")[0].as_py()
    current = dataset.query("SELECT label_id, name FROM current_labels ORDER BY label_id").to_pylist()
    assert all_rows == 4
    assert current == [{"label_id": "a2", "name": "spatter"}]


def test_current_sessions_takes_latest_row(dataset: Dataset) -> None:
    row = {"session_id": "s1", "status": "recording", "updated_at": T0}
    dataset.append("sessions", [row])
    dataset.append("sessions", [{**row, "status": "finished", "updated_at": T0 + timedelta(minutes=5)}])
    assert dataset.query("SELECT status FROM current_sessions").column("status").to_pylist() == ["finished"]


def test_bad_sql_is_a_dataset_error(dataset: Dataset) -> None:
    with pytest.raises(DatasetError, match="query failed"):
        dataset.query("SELECT nope FROM events")
