"""Sensor ingest throughput: long-format samples from a Parquet file through ``read_long``
(validation per device/channel, offsets) and the Delta ``sensor_samples`` write, against a raw
``pyarrow.parquet.write_table`` of the same rows, in the same run.

    python bench/bench_capture_sensors.py --samples 50_000_000

Goal: >= 5 M samples/s and >= 0.7x the raw Parquet write's rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_long(n: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    # 4 devices / 6 channels at 1 kHz .. 10 Hz, interleaved in time as a logger would write them
    chans = [
        ("power_source", "arc_current_A", "A", 1000),
        ("power_source", "arc_voltage_V", "V", 1000),
        ("wire_feeder", "wire_feed_m_min", "m/min", 50),
        ("travel", "travel_speed_mm_s", "mm/s", 50),
        ("torch_imu", "torch_angle_deg", "deg", 100),
        ("thermocouple", "plate_temp_C", "degC", 10),
    ]
    rates = np.array([c[3] for c in chans], float)
    share = rates / rates.sum()
    counts = np.floor(share * n).astype(np.int64)
    counts[0] += n - counts.sum()
    gid = np.concatenate([np.full(c, i, np.int8) for i, c in enumerate(counts)])
    ts = np.concatenate([1.7e9 + np.arange(c) / rates[i] for i, c in enumerate(counts)])
    order = np.argsort(ts, kind="stable")
    gid, ts = gid[order], ts[order]
    val = np.random.default_rng(0).normal(100, 5, n)

    def dict_col(values: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(gid.astype(np.int32)), pa.array(values)).cast(
            pa.string()
        )

    return pa.table(
        {
            "device": dict_col([c[0] for c in chans]),
            "channel": dict_col([c[1] for c in chans]),
            "ts": pa.array(ts),
            "value": pa.array(val),
            "unit": dict_col([c[2] for c in chans]),
        }
    )


class Clock:
    """Wall and CPU (all threads of this process) time: on a shared machine the CPU time is the
    fairer measure, the wall time the one a user sees."""

    def __enter__(self) -> Clock:
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=50_000_000)
    a = ap.parse_args()

    import pyarrow.parquet as pq

    from jangin.capture._sensors import read_long
    from jangin.core import Dataset

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "long.parquet"
        table = make_long(a.samples)
        pq.write_table(table, src)
        del table
        ds = Dataset.create(Path(tmp) / "ds")
        with Clock() as read:
            rows, rep = read_long(src, "ses-bench")
        with Clock() as write:
            ds.append("sensor_samples", rows)
        del rows
        # baseline: the same rows as the table stores them, written by pyarrow.parquet alone
        ref = ds.read("sensor_samples")
        with Clock() as raw:
            pq.write_table(ref, Path(tmp) / "raw.parquet")
        n = ref.num_rows
        wall, cpu = read.wall + write.wall, read.cpu + write.cpu
        print(f"{n:,} long-format samples, problems: {len(rep.problems)}")
        print(
            f"ingest (read_long + validate + Delta write): {n / wall / 1e6:6.2f} M samples/s wall "
            f"({wall:.1f} s; read+validate {read.wall:.1f} s, write {write.wall:.1f} s), "
            f"CPU {cpu:.1f} s (read+validate {read.cpu:.1f} s, write {write.cpu:.1f} s)"
        )
        print(
            f"raw pyarrow.parquet.write_table           : {n / raw.wall / 1e6:6.2f} M samples/s wall "
            f"({raw.wall:.1f} s), CPU {raw.cpu:.1f} s"
        )
        print(
            f"ratio ingest/raw rate: wall {raw.wall / wall:.2f}x, CPU {raw.cpu / cpu:.2f}x "
            f"(goal >= 0.7x and >= 5 M samples/s); Delta write alone vs raw: CPU {raw.cpu / write.cpu:.2f}x"
        )


if __name__ == "__main__":
    main()
