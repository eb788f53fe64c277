"""Wide sensor file throughput: a 50-channel 10 Hz CSV (no time column: start + rate, one text
phase column) through ``read_device`` (CSV parse, time axis, validation, vectorised wide → long,
phase steps) and the Delta ``sensor_samples`` write, against a raw ``pyarrow.parquet.write_table``
of the same long rows, in the same run.

    python bench/bench_capture_wide.py --rows 200_000     # 10 M samples

Goal: >= 0.7x the raw Parquet write's rate.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from bench_capture_sensors import Clock


def write_wide_csv(path: Path, rows: int, channels: int = 50) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(0)
    cols = {f"ch{i:02d}": np.round(rng.normal(100, 5, rows), 3) for i in range(channels)}
    phase = np.array(["load", "heat", "run", "cool"])[(np.arange(rows) // 600) % 4]
    pcsv.write_csv(pa.table({**cols, "phase": phase}), path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    a = ap.parse_args()

    import pyarrow.parquet as pq

    from jangin.capture._manifest import DeviceSpec
    from jangin.capture._sensors import read_device
    from jangin.core import Dataset

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "wide.csv"
        write_wide_csv(src, a.rows)
        ds = Dataset.create(Path(tmp) / "ds")
        dev = DeviceSpec(name="tool", file="wide.csv", rate_hz=10, phase_column="phase", clock_offset_s=0)
        start = datetime(2026, 3, 2, 8, tzinfo=UTC)
        with Clock() as read:
            rows, rep = read_device(src, dev, "ses-bench", session_start=start)
        with Clock() as write:
            ds.append("sensor_samples", rows)
        del rows
        ref = ds.read("sensor_samples")
        with Clock() as raw:
            pq.write_table(ref, Path(tmp) / "raw.parquet")
        n = ref.num_rows
        wall, cpu = read.wall + write.wall, read.cpu + write.cpu
        print(f"{a.rows:,} rows x 50 channels at 10 Hz = {n:,} samples, {len(rep.events)} step events")
        print(
            f"import (CSV + validate + wide→long + Delta write): {n / wall / 1e6:6.2f} M samples/s wall "
            f"({wall:.1f} s; read {read.wall:.1f} s, write {write.wall:.1f} s), CPU {cpu:.1f} s"
        )
        print(
            f"raw pyarrow.parquet.write_table: {n / raw.wall / 1e6:6.2f} M samples/s wall, CPU {raw.cpu:.1f} s"
        )
        print(f"ratio import/raw rate: wall {raw.wall / wall:.2f}x, CPU {raw.cpu / cpu:.2f}x (goal >= 0.7x)")


if __name__ == "__main__":
    main()
