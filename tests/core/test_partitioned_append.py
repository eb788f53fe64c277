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
