"""Large appends to a partitioned table (sensor samples) take the fast path: Parquet written by
pyarrow into the partition folders and one Delta commit with statistics and the app transaction.
The rows must read back exactly as through the ordinary path, per partition, and idempotently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from jangin.core import Dataset
from jangin.core._partitioned import FAST_APPEND_ROWS
from jangin.core.schema import TS


def _samples(n: int, sessions: list[str]) -> pa.Table:
    rng = np.random.default_rng(1)
    sid = np.array(sessions)[np.arange(n) % len(sessions)]
    return pa.table(
        {
            "session_id": pa.array(sid),
            "device": pa.array(["dev"] * n),
            "channel": pa.array(np.array(["a", "b"])[np.arange(n) % 2]),
            "ts": pa.array(1_772_438_400_000_000 + np.arange(n, dtype=np.int64) * 1000).cast(TS),
            "value": pa.array(np.where(np.arange(n) == 5, np.nan, rng.normal(size=n))),
            "unit": pa.array([None] * n, pa.string()),
        }
    )


def test_large_partitioned_append_reads_back_like_a_small_one(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "ds")
    big = _samples(FAST_APPEND_ROWS + 10, ["ses-a", "ses b/2"])  # a name that needs quoting in a path
    v = ds.append("sensor_samples", big, txn=("bench/1", 1))
    assert ds.committed("sensor_samples", "bench/1") == 1
    assert ds.append("sensor_samples", big, txn=("bench/1", 1)) == v  # idempotent: skipped
    ds.append("sensor_samples", _samples(10, ["ses-c"]))  # the ordinary path, same table
    got = ds.query(
        "SELECT session_id, count(*) n, count(value) nv, min(ts) t0, sum(value) s FROM sensor_samples "
        "GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert [(g["session_id"], g["n"]) for g in got] == [
        ("ses b/2", (FAST_APPEND_ROWS + 10) // 2),
        ("ses-a", (FAST_APPEND_ROWS + 10) // 2),
        ("ses-c", 10),
    ]
    assert got[1]["nv"] == got[1]["n"]  # NaN is a value, not a null
    ref = big.filter(pa.compute.equal(big.column("session_id"), "ses-a"))
    part = ds.read("sensor_samples", filters=[("session_id", "=", "ses-a")])
    assert part.num_rows == ref.num_rows
    assert part.sort_by("ts").column("value").to_pylist()[3:] == pytest.approx(
        ref.column("value").to_pylist()[3:], nan_ok=True
    )
    # statistics let a time filter skip nothing it should keep
    t_last = ref.column("ts")[-1].as_py()
    q = "SELECT count(*) FROM sensor_samples WHERE session_id = 'ses-a' AND ts >= $1"
    assert ds.connect().execute(q.replace("$1", f"TIMESTAMPTZ '{t_last.isoformat()}'")).fetchone()[0] == 1


def test_dictionary_session_ids_are_written_as_partition_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session id given as a dictionary (as the importers build it: no string per row) takes both
    paths, reads back as text in its own partition, and only text columns are dictionary-encoded."""
    import pyarrow.parquet as pq

    monkeypatch.setattr("jangin.core._dataset.FAST_APPEND_ROWS", 100)
    ds = Dataset.create(tmp_path / "ds")

    def encoded(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("session_id")
        return t.set_column(i, "session_id", t.column("session_id").dictionary_encode())

    big = encoded(_samples(300, ["ses-a", "ses b/2"]))
    assert pa.types.is_dictionary(big.schema.field("session_id").type)
    ds.append("sensor_samples", big)  # fast path: two partitions out of one dictionary column
    ds.append("sensor_samples", encoded(_samples(200, ["ses-c"])))  # fast path, one partition
    ds.append("sensor_samples", encoded(_samples(10, ["ses-d"])))  # write_deltalake path
    got = ds.query("SELECT session_id, count(*) n FROM sensor_samples GROUP BY 1 ORDER BY 1").to_pylist()
    assert got == [
        {"session_id": "ses b/2", "n": 150},
        {"session_id": "ses-a", "n": 150},
        {"session_id": "ses-c", "n": 200},
        {"session_id": "ses-d", "n": 10},
    ]
    back = ds.read("sensor_samples", filters=[("session_id", "=", "ses-c")])
    assert back.column("session_id").to_pylist() == ["ses-c"] * 200
    files = sorted((tmp_path / "ds" / "tables" / "sensor_samples" / "session_id=ses-c").glob("*.parquet"))
    assert len(files) == 1
    meta = pq.ParquetFile(files[0]).metadata.row_group(0)
    enc = {meta.column(j).path_in_schema: meta.column(j).encodings for j in range(meta.num_columns)}
    assert any("DICTIONARY" in e for e in enc["channel"])
    assert not any("DICTIONARY" in e for e in enc["ts"] + enc["value"])
