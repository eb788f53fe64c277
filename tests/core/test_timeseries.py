"""Aligned reads: a known signal's value at known times, on a grid and at frame times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from jangin.core import Dataset
from jangin.core.timeseries import read_aligned, read_channels

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _samples(channel: str, rate: float, seconds: float, fn, unit: str = "") -> pa.Table:  # type: ignore[no-untyped-def]
    n = int(rate * seconds)
    t_us = (T0.timestamp() * 1e6 + np.arange(n) * 1e6 / rate).astype(np.int64)
    return pa.table(
        {
            "session_id": ["s"] * n,
            "device": ["d"] * n,
            "channel": [channel] * n,
            "ts": pa.array(t_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "value": fn(np.arange(n) / rate),
            "unit": [unit] * n,
        }
    )


@pytest.fixture
def ds(dataset: Dataset) -> Dataset:
    dataset.append("sensor_samples", _samples("current", 1000, 3, lambda t: 100 + 10 * t))
    dataset.append("sensor_samples", _samples("temp", 10, 3, lambda t: 20 + 5 * t))
    return dataset


def test_asof_at_frame_times(ds: Dataset) -> None:
    frames = [T0 + timedelta(seconds=s) for s in (0.0, 1.0, 1.2345, 2.5)]
    t = read_aligned(ds, "s", at=frames)
    assert t.column_names == ["ts", "current", "temp"]
    assert t.column("current").to_pylist() == pytest.approx([100.0, 110.0, 112.34, 125.0])
    # temperature at 10 Hz: the last sample at or before 1.2345 s is the one at 1.2 s
    assert t.column("temp").to_pylist() == pytest.approx([20.0, 25.0, 26.0, 32.5])


def test_linear_grid_and_window(ds: Dataset) -> None:
    t = read_aligned(
        ds, "s", rate_hz=4, start=T0 + timedelta(seconds=1), end=T0 + timedelta(seconds=2), method="linear"
    )
    assert t.num_rows == 4
    assert t.column("temp").to_pylist() == pytest.approx([25.0, 26.25, 27.5, 28.75])


def test_gaps_and_edges_are_nan(ds: Dataset) -> None:
    t = read_aligned(
        ds, "s", at=[T0 - timedelta(seconds=1), T0 + timedelta(seconds=10)], channels=["current"]
    )
    assert np.isnan(t.column("current").to_numpy()).all()


def test_read_channels_sorted_and_argument_checks(ds: Dataset) -> None:
    ch = read_channels(ds, "s", channels=["temp", "missing"])
    assert len(ch["temp"][0]) == 30 and np.all(np.diff(ch["temp"][0]) > 0) and len(ch["missing"][0]) == 0
    with pytest.raises(ValueError, match="exactly one"):
        read_aligned(ds, "s")
