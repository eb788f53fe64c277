"""Sensor files (CSV, CSV.gz, Parquet, JSONL; wide format) into long-format ``sensor_samples`` rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jangin.capture._manifest import DeviceSpec
from jangin.core import CaptureError
from jangin.core.schema import TS

__all__ = ["SensorReport", "read_device"]

log = logging.getLogger(__name__)


@dataclass
class SensorReport:
    """What reading one device file found and did."""

    file: str
    rows: int = 0
    samples: int = 0
    dropped_nonfinite: int = 0
    channels: dict[str, float] = field(default_factory=dict)  # channel -> measured rate (Hz)


def _read_table(path: Path) -> pa.Table:
    name = path.name.lower()
    try:
        if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            import pyarrow.csv as pcsv

            delim = "\t" if ".tsv" in name else ","
            return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delim))
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            import pyarrow.json as pjson

            return pjson.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CaptureError(f"{path}: cannot read: {exc}") from exc
    raise CaptureError(f"{path}: unsupported sensor file type", hint="use .csv, .csv.gz, .parquet or .jsonl")


def _times(path: Path, col: pa.ChunkedArray, unit: str, offset_s: float) -> pa.Array:
    """Device timestamps → reference-clock ``timestamp[us, UTC]``."""
    offset_us = round(offset_s * 1e6)
    if unit == "iso":
        try:
            ts = pc.cast(col, TS)
        except pa.ArrowInvalid as exc:
            raise CaptureError(f"{path}: time column is not ISO 8601 with a timezone: {exc}") from exc
        us = ts.cast(pa.int64()).to_numpy()
    else:
        if not pa.types.is_integer(col.type) and not pa.types.is_floating(col.type):
            raise CaptureError(f"{path}: time column has type {col.type}, expected numbers in {unit}")
        scale = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}[unit]
        raw = col.to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.all(np.isfinite(raw)):
            bad = int(np.flatnonzero(~np.isfinite(raw))[0])
            raise CaptureError(f"{path}: row {bad + 2}: time is missing or not a number")
        us = np.rint(raw * scale).astype(np.int64)
    return pa.array(us + offset_us, pa.int64()).cast(TS)


def read_device(path: Path, device: DeviceSpec, session_id: str) -> tuple[pa.Table, SensorReport]:
    """Read one device's wide file into long ``sensor_samples`` rows, clock offset applied.

    Validation: the time column must exist and be strictly increasing (a duplicated or backwards
    time rejects the file, naming the row); declared channel columns must exist; rows with NaN / inf
    values are dropped and counted; columns neither declared nor the time column are reported.

    Raises:
        CaptureError: The file cannot be read or fails validation; nothing is returned.
    """
    table = _read_table(path)
    rep = SensorReport(file=str(path), rows=table.num_rows)
    if table.num_rows == 0:
        raise CaptureError(f"{path}: file is empty")
    if device.time_column not in table.column_names:
        raise CaptureError(
            f"{path}: no time column {device.time_column!r} (columns: {', '.join(table.column_names)})",
            hint="set time_column for this device in session.yaml",
        )
    ts = _times(path, table.column(device.time_column), device.time_unit, device.clock_offset_s)
    us = ts.cast(pa.int64()).to_numpy()
    steps = np.diff(us)
    if len(steps) and steps.min() <= 0:
        i = int(np.flatnonzero(steps <= 0)[0])
        what = "duplicated" if steps[i] == 0 else "goes backwards"
        raise CaptureError(f"{path}: row {i + 3}: timestamp {what} (previous row {i + 2})")

    channels = device.channels or [
        _auto_channel(c) for c in table.column_names if c != device.time_column
    ]
    declared = {c.column for c in channels} | {device.time_column}
    extra = [c for c in table.column_names if c not in declared]
    if extra:
        log.warning("%s: ignoring undeclared column(s) %s", path, ", ".join(extra))
    parts = []
    for ch in channels:
        if ch.column not in table.column_names:
            raise CaptureError(f"{path}: channel column {ch.column!r} is missing (columns: {', '.join(table.column_names)})")
        col = table.column(ch.column)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise CaptureError(f"{path}: column {ch.column!r} is {col.type}, expected numbers")
        values = col.to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(values)
        dropped = int((~ok).sum())
        if dropped:
            log.warning("%s: dropped %d row(s) of %s that are NaN or infinite", path, dropped, ch.column)
            rep.dropped_nonfinite += dropped
        n = int(ok.sum())
        name = ch.name
        parts.append(
            pa.table(
                {
                    "session_id": pa.array([session_id] * n, pa.string()),
                    "device": pa.array([device.name] * n, pa.string()),
                    "channel": pa.array([name] * n, pa.string()),
                    "ts": ts.filter(pa.array(ok)),
                    "value": pa.array(values[ok], pa.float64()),
                    "unit": pa.array([ch.unit] * n, pa.string()),
                }
            )
        )
        if n > 1:
            t = us[ok]
            rep.channels[name] = round(1e6 * (n - 1) / float(t[-1] - t[0]), 3)
            if ch.rate_hz and abs(rep.channels[name] - ch.rate_hz) > 0.05 * ch.rate_hz:
                log.warning("%s: %s measured %.2f Hz, declared %.2f Hz", path, name, rep.channels[name], ch.rate_hz)
        rep.samples += n
    return pa.concat_tables(parts), rep


def _auto_channel(column: str):  # type: ignore[no-untyped-def]
    """Guess a channel's unit from a name like ``arc_current_A`` (suffix after the last '_')."""
    from jangin.capture._manifest import ChannelSpec

    head, _, tail = column.rpartition("_")
    unit = tail if head and tail in {"A", "V", "C", "degC", "deg", "mm_s", "m_min", "N", "Nm", "bar", "Hz"} else None
    return ChannelSpec(column=column, unit=unit)
