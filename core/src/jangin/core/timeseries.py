"""Aligned reads of multi-rate sensor channels.

Channels are stored in long format, each at its own rate and with its device's clock offset already
applied. Training, skill profiles and the capture CLI read them here, aligned onto one time axis:
a regular grid (``rate_hz``) or given times (e.g. the frames' timestamps), by an as-of join (the
last sample at or before each time, within a tolerance) or linear interpolation. It lives in core
because every stage that consumes sessions needs it and stages may not import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow as pa

    from jangin.core._dataset import Dataset

__all__ = ["read_aligned", "read_channels"]


def _us(t: datetime | np.datetime64 | int) -> int:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"timezone-naive time {t!r}: give UTC times")
        return int(round(t.timestamp() * 1e6))
    if isinstance(t, np.datetime64):
        return int(t.astype("datetime64[us]").astype(np.int64))
    return int(t)


def read_channels(
    ds: Dataset,
    session_id: str,
    *,
    channels: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    snapshot: Any = None,
) -> dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
    """Each channel of a session as ``(times_us, values)`` numpy arrays, sorted by time.

    Args:
        ds: Dataset.
        session_id: Session to read.
        channels: Channel names; default all.
        start, end: Optional time window (reference clock, UTC), end exclusive.
        snapshot: Read at this snapshot.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    filters: list[tuple[str, str, Any]] = [("session_id", "=", session_id)]
    t = ds.read("sensor_samples", columns=["channel", "ts", "value"], filters=filters, snapshot=snapshot)
    if channels is not None:
        t = t.filter(pc.is_in(t.column("channel"), pa.array(list(channels), pa.string())))
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    keep = np.ones(len(ts), bool)
    if start is not None:
        keep &= ts >= _us(start)
    if end is not None:
        keep &= ts < _us(end)
    names = np.asarray(t.column("channel").to_pylist(), dtype=object)[keep]
    ts = ts[keep]
    vals = t.column("value").to_numpy(zero_copy_only=False)[keep]
    out: dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {}
    for name in sorted(set(names.tolist())) if len(names) else []:
        m = names == name
        order = np.argsort(ts[m], kind="stable")
        out[name] = (ts[m][order], vals[m][order].astype(np.float64))
    for name in channels or []:
        out.setdefault(name, (np.zeros(0, np.int64), np.zeros(0)))
    return out


def read_aligned(
    ds: Dataset,
    session_id: str,
    *,
    channels: Sequence[str] | None = None,
    rate_hz: float | None = None,
    at: Sequence[datetime] | npt.NDArray[Any] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    method: Literal["asof", "linear"] = "asof",
    tolerance_s: float | None = None,
    snapshot: Any = None,
) -> pa.Table:
    """A session's channels on one time axis, as a wide Arrow table (``ts`` + one column per channel).

    Give either ``rate_hz`` (a regular grid from ``start`` — default the first sample — to ``end``)
    or ``at`` (explicit times, e.g. frame timestamps as datetimes or microseconds since the epoch).

    Args:
        method: ``asof``: the last sample at or before each time (what a process controller saw);
            ``linear``: interpolate between the neighbouring samples.
        tolerance_s: With ``asof``, a sample older than this gives NaN (default: 2 sample periods
            of that channel, so a gap in the recording shows as NaN instead of a stale value).

    Raises:
        ValueError: Neither or both of ``rate_hz`` and ``at`` given.
    """
    import pyarrow as pa

    from jangin.core.schema import TS

    if (rate_hz is None) == (at is None):
        raise ValueError("give exactly one of rate_hz (a regular grid) or at (explicit times)")
    data = read_channels(
        ds,
        session_id,
        channels=channels,
        start=None if at is not None else start,
        end=None if at is not None else end,
        snapshot=snapshot,
    )
    if at is not None:
        grid = (
            np.asarray([_us(t) for t in at], dtype=np.int64)
            if not isinstance(at, np.ndarray) or at.dtype != np.int64
            else at
        )
    else:
        assert rate_hz is not None
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        firsts = [v[0][0] for v in data.values() if len(v[0])]
        lasts = [v[0][-1] for v in data.values() if len(v[0])]
        t0 = _us(start) if start is not None else (min(firsts) if firsts else 0)
        t1 = _us(end) if end is not None else (max(lasts) + 1 if lasts else t0)
        step = 1e6 / rate_hz
        grid = np.rint(t0 + np.arange(max(0, int(np.ceil((t1 - t0) / step)))) * step).astype(np.int64)
    cols: dict[str, Any] = {"ts": pa.array(grid, pa.int64()).cast(TS)}
    for name, (ts, vals) in data.items():
        cols[name] = pa.array(_align(ts, vals, grid, method, tolerance_s), pa.float64())
    return pa.table(cols)


def _align(
    ts: npt.NDArray[Any],
    vals: npt.NDArray[Any],
    grid: npt.NDArray[Any],
    method: str,
    tolerance_s: float | None,
) -> npt.NDArray[Any]:
    out = np.full(len(grid), np.nan)
    if len(ts) == 0 or len(grid) == 0:
        return out
    if method == "linear":
        inside = (grid >= ts[0]) & (grid <= ts[-1])
        out[inside] = np.interp(grid[inside].astype(np.float64), ts.astype(np.float64), vals)
        return out
    if method != "asof":
        raise ValueError(f"unknown method {method!r}: use 'asof' or 'linear'")
    idx = np.searchsorted(ts, grid, side="right") - 1
    ok = idx >= 0
    if tolerance_s is None:
        period = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
        tol_us = 2.0 * period if period > 0 else np.inf
    else:
        tol_us = tolerance_s * 1e6
    ok[ok] &= (grid[ok] - ts[idx[ok]]) <= tol_us
    out[ok] = vals[idx[ok]]
    return out
