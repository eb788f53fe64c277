"""Sensor files (CSV, CSV.gz, Parquet, JSONL; wide format) into long-format ``sensor_samples`` rows."""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jangin.capture._manifest import ChannelSpec, DeviceSpec
from jangin.capture._rows import const_dict, phase_steps, span_labels, wide_to_long
from jangin.core import CaptureError
from jangin.core.schema import TS

__all__ = [
    "ColumnPlan",
    "Policy",
    "Problem",
    "SensorReport",
    "plan_columns",
    "read_device",
    "read_long",
    "time_axis",
]

#: What to do with a problem: refuse the whole file, drop the offending rows, or keep them and count.
Action = Literal["reject", "drop", "flag"]


@dataclass(frozen=True)
class Policy:
    """What to do about each kind of problem in a sensor file (defaults are strict where data would
    be wrong, lenient where it is merely incomplete).

    Attributes:
        backwards: A timestamp earlier than the one before it (reject | drop).
        duplicate: A timestamp equal to the one before it (reject | drop: keep the first).
        nonfinite: NaN / inf values (reject | drop).
        gap: A step longer than ``gap_factor`` x the median period (reject | flag).
        unit_mismatch: A unit in the file differs from the manifest's (reject | flag).
        unknown_columns: Columns the manifest does not name (reject | flag: ignored and reported).
    """

    backwards: Action = "reject"
    duplicate: Action = "reject"
    nonfinite: Action = "drop"
    gap: Action = "flag"
    unit_mismatch: Action = "reject"
    unknown_columns: Action = "flag"
    gap_factor: float = 5.0

    @classmethod
    def parse(cls, items: list[str]) -> Policy:
        """From ``["duplicate=drop", "gap=reject", ...]`` (CLI flags).

        Raises:
            ValueError: Unknown problem or action.
        """
        kw: dict[str, Any] = {}
        for item in items:
            key, _, val = item.partition("=")
            if key not in cls.__dataclass_fields__ or (key == "gap_factor" and not val):
                raise ValueError(
                    f"unknown problem {key!r}: use one of backwards, duplicate, nonfinite, gap, unit_mismatch, unknown_columns"
                )
            if key != "gap_factor" and val not in ("reject", "drop", "flag"):
                raise ValueError(f"{key}={val!r}: the action must be reject, drop or flag")
            kw[key] = float(val) if key == "gap_factor" else val
        return cls(**kw)


@dataclass(frozen=True)
class Problem:
    """One kind of problem found in a file: where first, how often, and what was done."""

    file: str
    kind: str
    row: int | None
    count: int
    action: str
    message: str

    def __str__(self) -> str:
        at = f"row {self.row}: " if self.row is not None else ""
        return f"{self.file}: {at}{self.message} ({self.count} row(s), {self.action})"


log = logging.getLogger(__name__)


@dataclass
class SensorReport:
    """What reading one device file found and did."""

    file: str
    rows: int = 0
    samples: int = 0
    dropped_nonfinite: int = 0
    dropped_rows: int = 0
    channels: dict[str, float] = field(default_factory=dict)  # channel -> measured rate (Hz)
    problems: list[Problem] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)  # steps from a phase column
    labels: list[dict[str, Any]] = field(default_factory=list, repr=False)  # spans from label columns
    display_names: dict[str, str] = field(default_factory=dict)  # channel -> display name

    def note(
        self,
        policy_action: str,
        kind: str,
        row: int | None,
        count: int,
        message: str,
        *,
        hint: str | None = None,
    ) -> None:
        """Record a problem, or raise if the policy rejects the file."""
        if policy_action == "reject":
            at = f"row {row}: " if row is not None else ""
            raise CaptureError(
                f"{self.file}: {at}{message}", hint=hint or f"or import with --on {kind}=drop / flag"
            )
        self.problems.append(Problem(self.file, kind, row, count, policy_action, message))
        log.warning("%s", self.problems[-1])


def _read_table(path: Path) -> pa.Table:
    name = path.name.lower()
    try:
        if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            import pyarrow.csv as pcsv

            delim = "\t" if ".tsv" in name else ","
            return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delim))
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            # Name columns repeat a handful of values: read them as dictionaries (no string copies).
            names = set(pq.read_schema(path).names) & {
                "device",
                "channel",
                "unit",
                "session",
                "session_id",
                "sensor",
            }
            return pq.read_table(path, read_dictionary=sorted(names) or None)
        if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            import pyarrow.json as pjson

            return pjson.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CaptureError(f"{path}: cannot read: {exc}") from exc
    raise CaptureError(f"{path}: unsupported sensor file type", hint="use .csv, .csv.gz, .parquet or .jsonl")


#: Elements per block where a loop over blocks keeps temporaries in the CPU cache.
_BLOCK = 1 << 16


def _times(path: Path, col: pa.ChunkedArray, unit: str) -> np.ndarray:
    """Device timestamps → microseconds since the epoch (int64), with as few copies as possible:
    integers are scaled exactly, floats in place."""
    if unit == "iso":
        if pa.types.is_timestamp(col.type) and col.type.tz is None:
            raise CaptureError(f"{path}: time column has times without a timezone", hint="add Z or +09:00")
        try:
            ts = pc.cast(col, TS, safe=False)
        except pa.ArrowInvalid as exc:
            raise CaptureError(f"{path}: time column is not ISO 8601 with a timezone: {exc}") from exc
        if ts.null_count:
            bad = int(pc.index(pc.is_null(ts), True).as_py())
            raise CaptureError(f"{path}: row {bad + 2}: time is missing")
        return np.asarray(ts.cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    if not pa.types.is_integer(col.type) and not pa.types.is_floating(col.type):
        raise CaptureError(f"{path}: time column has type {col.type}, expected numbers in {unit}")
    if col.null_count:
        bad = int(pc.index(pc.is_null(col), True).as_py())
        raise CaptureError(f"{path}: row {bad + 2}: time is missing or not a number")
    if pa.types.is_integer(col.type):
        raw = col.to_numpy(zero_copy_only=False) if isinstance(col, pa.ChunkedArray) else col.to_numpy()
        raw = raw.astype(np.int64, copy=False)
        if unit == "ns":
            return raw // 1000
        return raw * {"s": 1_000_000, "ms": 1000, "us": 1}[unit]
    # Floats: scaled and rounded block by block (a small float buffer that stays in cache) straight
    # into the integer result: one pass over the data, no full-size float temporary.
    scale = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}[unit]
    out = np.empty(len(col), np.int64)
    tmp = np.empty(min(len(col), _BLOCK), np.float64)
    at = 0
    for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        arr = chunk.to_numpy(zero_copy_only=False)
        for s in range(0, len(arr), _BLOCK):
            part = arr[s : s + _BLOCK]
            finite = np.isfinite(part)
            if not finite.all():
                bad = at + s + int(np.flatnonzero(~finite)[0])
                raise CaptureError(f"{path}: row {bad + 2}: time is missing or not a number")
            buf = tmp[: len(part)]
            np.multiply(part, scale, out=buf)
            np.rint(buf, out=out[at + s : at + s + len(part)], casting="unsafe")
        at += len(arr)
    return out


def _check_times(
    us: np.ndarray, rep: SensorReport, policy: Policy, first_row: int = 2, rows: np.ndarray | None = None
) -> np.ndarray:
    """Apply the time policies to one stream of times; returns the mask of rows to keep.

    ``rows`` gives each element's row number in the file (default ``first_row`` + index).
    """
    row_of = (lambda i: int(rows[i])) if rows is not None else (lambda i: i + first_row)
    keep = np.ones(len(us), bool)
    if len(us) < 2:
        return keep
    steps = np.diff(us)
    for kind, bad, what in (
        ("duplicate", steps == 0, "timestamp duplicated"),
        ("backwards", steps < 0, "timestamp goes backwards"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0]) + 1
            action = getattr(policy, kind)
            if action == "flag":
                action = "drop"  # rows out of time order cannot be kept in a time series
            rep.note(action, kind, row_of(i), int(bad.sum()), f"{what} (previous row {row_of(i - 1)})")
    if not keep.all() or (steps <= 0).any():
        prev_max = np.maximum.accumulate(us)
        keep[1:] = us[1:] > prev_max[:-1]
        rep.dropped_rows += int((~keep).sum())
    good = us[keep]
    if len(good) > 2:
        d = np.diff(good)
        period = float(np.median(d))
        gaps = d > policy.gap_factor * period
        if gaps.any():
            i = int(np.flatnonzero(gaps)[0])
            rep.note(
                policy.gap,
                "gap",
                None,
                int(gaps.sum()),
                f"{int(gaps.sum())} gap(s) longer than {policy.gap_factor:g} x the {period / 1e3:g} ms period, "
                f"the first {d[i] / 1e6:.3f} s long",
            )
    return keep


@dataclass(frozen=True)
class ColumnPlan:
    """What each column of a wide file becomes (see :func:`plan_columns`)."""

    channels: list[ChannelSpec]
    phase: str | None
    labels: list[str]
    ignored: list[str]  # columns not declared (reported as unknown_columns)


_GLOB_CHARS = set("*?[")


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t)


def plan_columns(path: Path, schema: pa.Schema, device: DeviceSpec, time_column: str | None) -> ColumnPlan:
    """Decide the role of every column of a wide file.

    Raises:
        CaptureError: A named column is missing, a glob matches nothing, a channel is not numeric.
    """
    names = [c for c in schema.names if c != time_column]
    types = {f.name: f.type for f in schema}
    where = f"{path}: "

    def need(col: str, what: str) -> str:
        if col not in types:
            raise CaptureError(
                f"{where}{what} {col!r} is missing (columns: {', '.join(schema.names)})",
                hint="column names are matched exactly (case too)",
            )
        return col

    def expand(patterns: list[str], what: str) -> list[str]:
        out: list[str] = []
        for p in patterns:
            if not _GLOB_CHARS & set(p):
                if p not in names:
                    known = [n for n in names if _is_numeric(types[n])]
                    raise CaptureError(
                        f"{where}unknown channel {p!r} in {what} (known channels: {', '.join(known)})"
                    )
                hits = [p]
            else:
                hits = fnmatch.filter(names, p)
                if not hits:
                    raise CaptureError(
                        f"{where}{what} {p!r} matches no column (columns: {', '.join(names)})",
                        hint="globs use * and ? and are case-sensitive",
                    )
            out += [h for h in hits if h not in out]
        return out

    declared = {c.column: c for c in device.channels}
    for c in declared:
        need(c, "channel column")
    phase = device.phase_column or next((c.column for c in device.channels if c.role == "phase"), None)
    if phase is not None:
        need(phase, "phase column")
    labels = [need(c, "label column") for c in device.label_columns]
    labels += [c.column for c in device.channels if c.role == "label" and c.column not in labels]
    dropped = set(expand(device.drop, "drop pattern")) | {
        c.column for c in device.channels if c.role == "ignore"
    }
    special = {phase, *labels} | dropped
    explicit = [c for c in device.channels if c.role == "channel"]
    if explicit or device.include:
        chosen = [c.column for c in explicit] + [
            c for c in expand(device.include, "--channels") if c not in declared
        ]
    else:
        chosen = [c for c in names if c not in special and _is_numeric(types[c])]
    channels = []
    for col in chosen:
        if col in special:
            continue
        if not _is_numeric(types[col]):
            raise CaptureError(
                f"{where}column {col!r} is {types[col]}, expected numbers",
                hint="a text column can be a phase (--phase-column), a label (--label-column) or dropped (--drop)",
            )
        spec = declared.get(col) or _auto_channel(col)
        if col in device.rename:
            spec = spec.model_copy(update={"channel": device.rename[col]})
        unit = device.units.get(spec.name) or spec.unit
        display = device.display_names.get(spec.name) or spec.display_name
        channels.append(spec.model_copy(update={"unit": unit, "display_name": display}))
    used = {c.column for c in channels} | special
    ignored = [c for c in names if c not in used]
    return ColumnPlan(channels, phase, labels, ignored)


def time_axis(
    path: Path, table: pa.Table, device: DeviceSpec, session_start: datetime | None
) -> tuple[np.ndarray, str | None]:
    """Device times in µs since the epoch (no clock offset yet), and the time column used (if any).

    Raises:
        CaptureError: No time column and no rate, or unreadable times (naming the row).
    """
    col = device.time_column
    explicit = "time_column" in device.model_fields_set
    if col and col in table.column_names:
        data = table.column(col)
        textual = pa.types.is_string(data.type) or pa.types.is_large_string(data.type)
        unit = "iso" if textual or pa.types.is_timestamp(data.type) else device.time_unit
        us = _times(path, data, unit)
        if device.time_origin == "start" and unit != "iso":
            base = device.start or session_start
            if base is None:
                raise CaptureError(
                    f"{path}: time_origin 'start' needs a start time for the device or session"
                )
            us = us + round(base.timestamp() * 1e6)
        return us, col
    period = device.period_s or (1.0 / device.rate_hz if device.rate_hz else None)
    if period is None or (explicit and col):
        raise CaptureError(
            f"{path}: no time column {col!r} (columns: {', '.join(table.column_names)})",
            hint="name the time column (time_column / --time-column) or give a sample rate (rate_hz / --rate-hz)",
        )
    base = device.start or session_start
    if base is None:
        raise CaptureError(f"{path}: timing by rate needs a start time (start / started_at)")
    start_us = round(base.timestamp() * 1e6)
    return start_us + np.rint(np.arange(table.num_rows) * (period * 1e6)).astype(np.int64), None


def _read_files(path: Path) -> tuple[pa.Table, str]:
    """One file, or every file a glob in its name matches (in name order), as one table."""
    if not _GLOB_CHARS & set(path.name):
        return _read_table(path), str(path)
    files = sorted(path.parent.glob(path.name))
    if not files:
        raise CaptureError(f"{path}: no file matches")
    tables = [_read_table(f) for f in files]
    try:
        return pa.concat_tables(tables, promote_options="permissive"), str(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CaptureError(f"{path}: the files do not share their columns: {exc}") from exc


def _check_series(us: np.ndarray, gid: np.ndarray, rep: SensorReport, policy: Policy) -> np.ndarray:
    """The time policies for many interleaved series at once (``gid``: series of each row), in one
    vectorised pass: one stable counting sort on the 16-bit series id (Arrow's, several times faster
    than numpy's radix argsort), then each series' steps block by block (times gathered into a
    buffer that is reused, so that no full-size sorted copy is made: fresh memory is the dearest part
    at tens of millions of samples). A file with a duplicate or a step back takes the full path
    (:func:`_check_series_full`). Returns the mask of rows to keep."""
    n = len(us)
    keep = np.ones(n, bool)
    if n < 2:
        return keep
    order = pc.sort_indices(pa.array(gid)).to_numpy().view(np.int64)  # stable; indices < 2**63
    g = gid[order]
    first_of = np.searchsorted(g, np.arange(int(g[-1]) + 2))  # where each series id starts
    del g
    present = first_of[1:] > first_of[:-1]
    starts, counts = first_of[:-1][present], np.diff(first_of)[present]
    block = _BLOCK * 16
    tbuf = np.empty(min(n, block + 1), np.int64)
    dbuf = np.empty(min(n - 1, block), np.int64)
    n_gaps, first_d, first_period = 0, 0, 0.0
    for a, c in zip(starts.tolist(), counts.tolist(), strict=True):
        if c < 2:
            continue
        limit, period = np.inf, 0.0
        if c > 2:  # the median period from at most ~4096 of the series' steps (a strided sample)
            at = np.arange(a, a + c - 1, max(1, (c - 1) // 4096))
            period = float(np.median(us[order[at + 1]] - us[order[at]]))
            limit = policy.gap_factor * period
        for s in range(a, a + c - 1, block):
            m = min(block, a + c - 1 - s)
            t = np.take(us, order[s : s + m + 1], out=tbuf[: m + 1], mode="clip")
            d = np.subtract(t[1:], t[:-1], out=dbuf[:m])
            if not (d > 0).all():  # a duplicate or a step back: the full path says which and drops
                return _check_series_full(us, gid, order, rep, policy)
            over = d > limit
            k = int(np.count_nonzero(over))
            if k:
                if not n_gaps:
                    first_d, first_period = int(d[int(np.argmax(over))]), period
                n_gaps += k
    if n_gaps:
        rep.note(
            policy.gap,
            "gap",
            None,
            n_gaps,
            f"{n_gaps} gap(s) longer than {policy.gap_factor:g} x the {first_period / 1e3:g} ms period, "
            f"the first {first_d / 1e6:.3f} s long",
        )
    return keep


def _check_series_full(
    us: np.ndarray, gid: np.ndarray, order: np.ndarray, rep: SensorReport, policy: Policy
) -> np.ndarray:
    """:func:`_check_series` for files with duplicates or steps back, on full-size sorted copies
    (``order``: the stable sort of ``gid``)."""
    n = len(us)
    keep = np.ones(n, bool)
    g, t = gid[order], us[order]
    bounds = np.flatnonzero(g[1:] != g[:-1])  # steps that cross from one series to the next
    del g
    d = np.diff(t)
    suspect = d <= 0
    suspect[bounds] = False
    problems = False
    checks = (
        [
            ("duplicate", suspect & (d == 0), "timestamp duplicated"),
            ("backwards", suspect & (d < 0), "timestamp goes backwards"),
        ]
        if suspect.any()
        else []
    )
    del suspect
    for kind, bad, what in checks:
        if bad.any():
            problems = True
            pos = np.flatnonzero(bad)
            i = int(pos[np.argmin(order[pos + 1])])  # the first offending row of the file
            action = getattr(policy, kind)
            if action == "flag":
                action = "drop"  # rows out of time order cannot be kept in a time series
            rep.note(
                action, kind, int(order[i + 1]) + 2, len(pos), f"{what} (previous row {int(order[i]) + 2})"
            )
    starts = np.r_[0, bounds + 1]
    if problems:
        same = np.ones(n - 1, bool)
        same[bounds] = False
        # Running maximum within each series: shift every series onto its own band so that one
        # global maximum.accumulate never crosses series.
        lo = np.minimum.reduceat(t, starts)
        span = int((np.maximum.reduceat(t, starts) - lo).max()) + 1
        rank = np.cumsum(np.r_[0, ~same])  # series rank of each sorted row
        banded = (t - np.repeat(lo, np.diff(np.r_[starts, n]))) + rank * span
        prev_max = np.maximum.accumulate(banded)
        ks = np.ones(n, bool)
        ks[1:] = ~same | (banded[1:] > prev_max[:-1])
        keep[order] = ks
        rep.dropped_rows += int((~ks).sum())
        t = t[ks]
        g = gid[order][ks]
        bounds = np.flatnonzero(g[1:] != g[:-1])
        d = np.diff(t)
        starts = np.r_[0, bounds + 1]
    # Gaps: each series' median period, estimated from at most ~4096 of its steps (a strided sample
    # per series, so that slow series count as much as fast ones), then each series' own steps
    # against its limit (a slice of the sorted steps: no per-row limit array).
    counts = np.diff(np.r_[starts, len(t)])
    n_gaps, first, first_period = 0, None, 0.0
    for a, c in zip(starts.tolist(), counts.tolist(), strict=True):
        if c <= 2:
            continue
        steps = d[a : a + c - 1]
        period = float(np.median(steps[:: max(1, (c - 1) // 4096)]))
        over = steps > policy.gap_factor * period
        k = int(np.count_nonzero(over))
        if k:
            if first is None:
                first, first_period = a + int(np.argmax(over)), period
            n_gaps += k
    if first is not None:
        rep.note(
            policy.gap,
            "gap",
            None,
            n_gaps,
            f"{n_gaps} gap(s) longer than {policy.gap_factor:g} x the {first_period / 1e3:g} ms period, "
            f"the first {d[first] / 1e6:.3f} s long",
        )
    return keep


def read_device(
    path: Path,
    device: DeviceSpec,
    session_id: str,
    *,
    policy: Policy | None = None,
    session_start: datetime | None = None,
) -> tuple[pa.Table, SensorReport]:
    """Read one device's wide file(s) into long ``sensor_samples`` rows, clock offset applied.

    Validation (see :class:`Policy` for what each problem does): the times must be strictly
    increasing; gaps are counted; declared channel columns must exist; NaN / inf values; unknown
    columns; a unit in a column name (``pressure_bar``) that differs from the manifest's. A phase
    column becomes step events (``report.events``), label columns span labels (``report.labels``).

    Raises:
        CaptureError: The file cannot be read or is rejected; nothing is returned.
    """
    policy = policy or Policy()
    table, name = _read_files(path)
    rep = SensorReport(file=name, rows=table.num_rows)
    if table.num_rows == 0:
        raise CaptureError(f"{name}: file is empty")
    us, time_col = time_axis(path, table, device, session_start)
    plan = plan_columns(path, table.schema, device, time_col)
    us = us + round((device.clock_offset_s or 0.0) * 1e6)
    keep = _check_times(us, rep, policy)
    if not keep.all():
        table, us = table.filter(pa.array(keep)), us[keep]
    if plan.ignored:
        rep.note(
            policy.unknown_columns,
            "unknown_columns",
            None,
            len(plan.ignored),
            f"undeclared column(s) {', '.join(plan.ignored)} ignored",
        )
    for ch in plan.channels:
        implied = _auto_channel(ch.column).unit
        if implied and ch.unit and _norm_unit(implied) != _norm_unit(ch.unit):
            rep.note(
                policy.unit_mismatch,
                "unit_mismatch",
                None,
                0,
                f"column {ch.column!r} reads as unit {implied!r} but the manifest says {ch.unit!r}",
            )
    columns = {ch.name: table.column(ch.column) for ch in plan.channels}
    out, dropped = wide_to_long(session_id, device.name, us, columns, {c.name: c.unit for c in plan.channels})
    for ch in plan.channels:
        n_bad = dropped.get(ch.name, 0)
        if n_bad:
            values = columns[ch.name].to_numpy(zero_copy_only=False).astype(np.float64)
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            rep.note(
                policy.nonfinite if policy.nonfinite != "flag" else "drop",
                "nonfinite",
                None,
                n_bad,
                f"{n_bad} value(s) of {ch.column} are NaN or infinite (first at data row {i + 1})",
            )
            rep.dropped_nonfinite += n_bad
        n = len(us) - n_bad
        if n > 1 and us[-1] > us[0]:
            rep.channels[ch.name] = round(1e6 * (len(us) - 1) / float(us[-1] - us[0]), 3)
            if ch.rate_hz and abs(rep.channels[ch.name] - ch.rate_hz) > 0.05 * ch.rate_hz:
                log.warning(
                    "%s: %s measured %.2f Hz, declared %.2f Hz",
                    name,
                    ch.name,
                    rep.channels[ch.name],
                    ch.rate_hz,
                )
    if plan.phase is not None:
        rep.events = phase_steps(
            session_id,
            us,
            table.column(plan.phase),
            column=plan.phase,
            ignore=device.phase_ignore,
            where=f"{name}: ",
        )
    for col in plan.labels:
        rep.labels += span_labels(session_id, us, table.column(col), question=col)
    rep.display_names = {c.name: c.display_name for c in plan.channels if c.display_name}
    rep.samples = out.num_rows
    return out, rep


def _auto_channel(column: str) -> ChannelSpec:
    """Guess a channel's unit from a name like ``pressure_bar`` (suffix after the last '_')."""
    head, _, tail = column.rpartition("_")
    unit = (
        tail
        if head and tail in {"A", "V", "C", "degC", "deg", "mm_s", "m_min", "N", "Nm", "bar", "Hz"}
        else None
    )
    return ChannelSpec(column=column, unit=unit)


_UNIT_ALIASES = {"c": "degc", "degc": "degc", "°c": "degc", "mm_s": "mm/s", "m_min": "m/min", "deg": "deg"}


def _norm_unit(u: str) -> str:
    u = u.strip().casefold()
    return _UNIT_ALIASES.get(u, u)


def read_long(
    path: Path,
    session_id: str,
    *,
    devices: dict[str, DeviceSpec] | None = None,
    column_map: dict[str, str] | None = None,
    time_unit: str = "s",
    policy: Policy | None = None,
) -> tuple[pa.Table, SensorReport]:
    """Read a long-format file (``device, channel, ts, value, unit``; ``session`` ignored) into
    ``sensor_samples`` rows, vectorised (no Python loop over rows).

    Args:
        devices: Known devices (clock offsets, declared channels and units); a device not listed is
            taken with offset 0 and its channels as they come.
        column_map: Renames file columns to the standard ones, e.g. ``{"sensor": "device", "t": "ts"}``.
        time_unit: Unit of numeric ``ts``: s, ms, us, ns (ISO 8601 strings are read as such).
        policy: What to do about problems (checked per device and channel).

    Raises:
        CaptureError: The file cannot be read or is rejected.
    """
    import pyarrow.compute as pc

    policy = policy or Policy()
    devices = devices or {}
    table = _read_table(path)
    if column_map:
        table = table.rename_columns([column_map.get(c, c) for c in table.column_names])
    rep = SensorReport(file=str(path), rows=table.num_rows)
    if table.num_rows == 0:
        raise CaptureError(f"{path}: file is empty")
    missing = {"device", "channel", "ts", "value"} - set(table.column_names)
    if missing:
        raise CaptureError(
            f"{path}: missing column(s) {', '.join(sorted(missing))} (columns: {', '.join(table.column_names)})",
            hint="map your columns with a column map, e.g. --map sensor=device",
        )
    extra = [
        c
        for c in table.column_names
        if c not in ("device", "channel", "ts", "value", "unit", "session", "session_id")
    ]
    if extra:
        rep.note(
            policy.unknown_columns,
            "unknown_columns",
            None,
            len(extra),
            f"undeclared column(s) {', '.join(extra)} ignored",
        )
    table = table.unify_dictionaries()

    def encoded(name: str) -> pa.ChunkedArray:
        col = table.column(name)
        if pa.types.is_dictionary(col.type) and pa.types.is_string(col.type.value_type):
            return col  # already dictionary-encoded (Parquet), one dictionary for all chunks: as it is
        return pa.chunked_array([pc.dictionary_encode(col.cast(pa.string())).combine_chunks()])

    def codes(col: pa.ChunkedArray) -> np.ndarray:
        """The dictionary indices as int16, chunk by chunk into one array (no concatenated copy)."""
        out, at = np.empty(len(col), np.int16), 0
        for c in col.chunks:
            out[at : at + len(c)] = c.indices.to_numpy()
            at += len(c)
        return out

    dev, ch = encoded("device"), encoded("channel")
    dev_names, ch_names = dev.chunk(0).dictionary.to_pylist(), ch.chunk(0).dictionary.to_pylist()
    if len(dev_names) * len(ch_names) > 32767:
        raise CaptureError(
            f"{path}: too many device x channel combinations ({len(dev_names)} x {len(ch_names)})"
        )
    offsets = np.array(
        [round((devices[d].clock_offset_s or 0.0) * 1e6) if d in devices else 0 for d in dev_names], np.int64
    )
    di, ci = codes(dev), codes(ch)
    us = _times(path, table.column("ts"), "iso" if not _is_numeric(table.column("ts").type) else time_unit)
    if offsets.any():
        us = us + offsets[di]
    val_col = table.column("value")
    if not (pa.types.is_floating(val_col.type) or pa.types.is_integer(val_col.type)):
        raise CaptureError(f"{path}: column 'value' is {val_col.type}, expected numbers")
    if val_col.type != pa.float64():
        val_col = val_col.cast(pa.float64())
    gid = di * np.int16(len(ch_names))  # < 32767 (checked above): int16 throughout
    gid += ci
    keep = _check_series(us, gid, rep, policy)
    del gid
    # NaN / inf (and nulls, read as NaN): checked chunk by chunk; the whole mask only when needed.
    values: np.ndarray | None = None
    if not all(np.isfinite(c.to_numpy(zero_copy_only=False)).all() for c in val_col.chunks):
        values = val_col.to_numpy(zero_copy_only=False)
    ok = np.isfinite(values) if values is not None else None
    if ok is not None and not ok.all():
        n_bad = int((~ok).sum())
        rep.note(
            policy.nonfinite if policy.nonfinite != "flag" else "drop",
            "nonfinite",
            int(np.flatnonzero(~ok)[0]) + 2,
            n_bad,
            f"{n_bad} value(s) are NaN or infinite",
        )
        rep.dropped_nonfinite += n_bad
        keep &= ok
    unit = table.column("unit") if "unit" in table.column_names else None
    declared = {
        (d, c.name): c.unit for d, spec in devices.items() if d in dev_names for c in spec.channels if c.unit
    }
    if declared and unit is not None:
        # Each (device, channel, unit) combination once: a unique over small integer codes.
        u = pc.dictionary_encode(unit.cast(pa.string())).combine_chunks()
        ui = pc.fill_null(u.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        combo = (di.astype(np.int64) * len(ch_names) + ci) * (len(u.dictionary) + 1) + ui + 1
        units = u.dictionary.to_pylist()
        for code in np.unique(combo).tolist():
            pair, uix = divmod(code, len(units) + 1)
            dd, cc = dev_names[pair // len(ch_names)], ch_names[pair % len(ch_names)]
            uu = units[uix - 1] if uix else None
            want = declared.get((dd, cc))
            if want and uu and _norm_unit(uu) != _norm_unit(want):
                rep.note(
                    policy.unit_mismatch,
                    "unit_mismatch",
                    None,
                    0,
                    f"{dd}/{cc} has unit {uu!r}, the manifest says {want!r}",
                )
    if keep.all():  # the usual case: no copies, the dictionary columns are used as they are
        n = len(keep)
        dev_col, ch_col, ts_col = dev, ch, pa.array(us, pa.int64())
        unit_col = unit if unit is not None else pa.nulls(n, pa.string())
    else:
        mask = pa.array(keep)
        n = int(keep.sum())
        dev_col, ch_col = dev.filter(mask), ch.filter(mask)
        if values is None:
            values = val_col.to_numpy(zero_copy_only=False)
        ts_col, val_col = pa.array(us[keep], pa.int64()), pa.array(values[keep], pa.float64())
        unit_col = unit.filter(mask) if unit is not None else pa.nulls(n, pa.string())
    out = pa.table(
        {
            "session_id": const_dict(session_id, n),  # the partition value: never one string per row
            "device": dev_col,  # dictionary-encoded: the dataset writes them without string copies
            "channel": ch_col,
            "ts": ts_col.cast(TS),
            "value": val_col,
            "unit": unit_col if pa.types.is_dictionary(unit_col.type) else unit_col.cast(pa.string()),
        }
    )
    rep.samples = n
    return out, rep
