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
        ds = Dataset.create(Path(tmp) / "ds")
        t = time.perf_counter()
        rows, rep = read_long(src, "ses-bench")
        t_read = time.perf_counter() - t
        ds.append("sensor_samples", rows)
        t_ing = time.perf_counter() - t
        del rows
        # baseline: the same rows as the table stores them, written by pyarrow.parquet alone
        ref = ds.read("sensor_samples")
        t = time.perf_counter()
        pq.write_table(ref, Path(tmp) / "raw.parquet")
        t_raw = time.perf_counter() - t
        n = ref.num_rows
        print(
            f"{n:,} long-format samples ({len(set(ref.column('channel').to_pylist()[:1000]))}+ channels), problems: {len(rep.problems)}"
        )
        print(
            f"ingest (read_long + validate + Delta write): {n / t_ing / 1e6:6.2f} M samples/s  ({t_ing:.1f} s; read+validate {t_read:.1f} s)"
        )
        print(
            f"raw pyarrow.parquet.write_table           : {n / t_raw / 1e6:6.2f} M samples/s  ({t_raw:.1f} s)"
        )
        print(f"ratio ingest/raw rate: {t_raw / t_ing:.2f}x  (goal >= 0.7x and >= 5 M samples/s)")


if __name__ == "__main__":
    main()
