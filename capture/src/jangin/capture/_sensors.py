"""Sensor files (CSV, CSV.gz, Parquet, JSONL; wide format) into long-format ``sensor_samples`` rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jangin.capture._manifest import DeviceSpec
from jangin.core import CaptureError
from jangin.core.schema import TS

__all__ = ["Policy", "Problem", "SensorReport", "read_device", "read_long"]

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


def read_device(
    path: Path, device: DeviceSpec, session_id: str, *, policy: Policy | None = None
) -> tuple[pa.Table, SensorReport]:
    """Read one device's wide file into long ``sensor_samples`` rows, clock offset applied.

    Validation (see :class:`Policy` for what each problem does): the time column must exist and be
    strictly increasing; gaps are counted; declared channel columns must exist; NaN / inf values;
    unknown columns; a unit in a column name (``arc_current_A``) that differs from the manifest's.

    Raises:
        CaptureError: The file cannot be read or is rejected; nothing is returned.
    """
    policy = policy or Policy()
    table = _read_table(path)
    rep = SensorReport(file=str(path), rows=table.num_rows)
    if table.num_rows == 0:
        raise CaptureError(f"{path}: file is empty")
    if device.time_column not in table.column_names:
        raise CaptureError(
            f"{path}: no time column {device.time_column!r} (columns: {', '.join(table.column_names)})",
            hint="set time_column for this device in session.yaml",
        )
    ts = _times(path, table.column(device.time_column), device.time_unit, device.clock_offset_s or 0.0)
    us = ts.cast(pa.int64()).to_numpy()
    keep = _check_times(us, rep, policy)
    if not keep.all():
        table, ts, us = table.filter(pa.array(keep)), ts.filter(pa.array(keep)), us[keep]

    channels = device.channels or [_auto_channel(c) for c in table.column_names if c != device.time_column]
    declared = {c.column for c in channels} | {device.time_column}
    extra = [c for c in table.column_names if c not in declared]
    if extra:
        rep.note(
            policy.unknown_columns,
            "unknown_columns",
            None,
            len(extra),
            f"undeclared column(s) {', '.join(extra)} ignored",
        )
    for ch in channels:
        implied = _auto_channel(ch.column).unit
        if implied and ch.unit and _norm_unit(implied) != _norm_unit(ch.unit):
            rep.note(
                policy.unit_mismatch,
                "unit_mismatch",
                None,
                0,
                f"column {ch.column!r} reads as unit {implied!r} but the manifest says {ch.unit!r}",
            )
    parts = []
    for ch in channels:
        if ch.column not in table.column_names:
            raise CaptureError(
                f"{path}: channel column {ch.column!r} is missing (columns: {', '.join(table.column_names)})"
            )
        col = table.column(ch.column)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise CaptureError(f"{path}: column {ch.column!r} is {col.type}, expected numbers")
        values = col.to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(values)
        dropped = int((~ok).sum())
        if dropped:
            i = int(np.flatnonzero(~ok)[0])
            rep.note(
                policy.nonfinite if policy.nonfinite != "flag" else "drop",
                "nonfinite",
                None,
                dropped,
                f"{dropped} value(s) of {ch.column} are NaN or infinite (first at data row {i + 1})",
            )
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
                log.warning(
                    "%s: %s measured %.2f Hz, declared %.2f Hz", path, name, rep.channels[name], ch.rate_hz
                )
        rep.samples += n
    return pa.concat_tables(parts), rep


def _auto_channel(column: str):  # type: ignore[no-untyped-def]
    """Guess a channel's unit from a name like ``arc_current_A`` (suffix after the last '_')."""
    from jangin.capture._manifest import ChannelSpec

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


def _const(value: str | None, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, pa.string())
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string())
    ).cast(pa.string())


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

    def encoded(name: str) -> pa.DictionaryArray:
        col = table.column(name)
        if pa.types.is_dictionary(col.type) and pa.types.is_string(col.type.value_type):
            return col.combine_chunks()  # already dictionary-encoded (Parquet): no string copies
        return pc.dictionary_encode(col.cast(pa.string())).combine_chunks()

    dev, ch = encoded("device"), encoded("channel")
    dev_names, ch_names = dev.dictionary.to_pylist(), ch.dictionary.to_pylist()
    if len(dev_names) * len(ch_names) > 32767:
        raise CaptureError(
            f"{path}: too many device x channel combinations ({len(dev_names)} x {len(ch_names)})"
        )
    offsets = np.array(
        [round((devices[d].clock_offset_s or 0.0) * 1e6) if d in devices else 0 for d in dev_names], np.int64
    )
    di = dev.indices.to_numpy().astype(np.int16)
    ci = ch.indices.to_numpy().astype(np.int16)
    ts = _times(
        path, table.column("ts"), "iso" if pa.types.is_string(table.column("ts").type) else time_unit, 0.0
    )
    us = ts.cast(pa.int64()).to_numpy() + offsets[di]
    values = (
        np.asarray(table.column("value").to_numpy(zero_copy_only=False), np.float64)
        if (
            pa.types.is_floating(table.column("value").type)
            or pa.types.is_integer(table.column("value").type)
        )
        else None
    )
    if values is None:
        raise CaptureError(f"{path}: column 'value' is {table.column('value').type}, expected numbers")
    # Per (device, channel) series: a stable radix sort on a 16-bit group id keeps file order within each.
    gid = (di * len(ch_names) + ci).astype(np.int16)
    order = np.argsort(gid, kind="stable")
    g_sorted, us_sorted = gid[order], us[order]
    bounds = np.flatnonzero(np.diff(g_sorted)) + 1
    keep_sorted = np.ones(len(order), bool)
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
        keep_sorted[a:b] = _check_times(us_sorted[a:b], rep, policy, rows=order[a:b] + 2)
    keep = np.empty(len(order), bool)
    keep[order] = keep_sorted
    ok = np.isfinite(values)
    if not ok.all():
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
    for d in dev_names:
        spec = devices.get(d)
        if spec is None or not spec.channels or unit is None:
            continue
        declared = {c.name: c.unit for c in spec.channels}
        pairs = pc.unique(
            pc.binary_join_element_wise(
                table.column("device").cast(pa.string()),
                table.column("channel").cast(pa.string()),
                pc.fill_null(unit.cast(pa.string()), ""),
                "\x1f",
            )
        ).to_pylist()
        for p in pairs:
            dd, cc, uu = p.split("\x1f")
            if (
                dd == d
                and cc in declared
                and declared[cc]
                and uu
                and _norm_unit(uu) != _norm_unit(declared[cc])
            ):
                rep.note(
                    policy.unit_mismatch,
                    "unit_mismatch",
                    None,
                    0,
                    f"{d}/{cc} has unit {uu!r}, the manifest says {declared[cc]!r}",
                )
    mask = pa.array(keep)
    n = int(keep.sum())
    out = pa.table(
        {
            "session_id": _const(session_id, n),
            "device": pa.DictionaryArray.from_arrays(
                pa.array(di[keep].astype(np.int32)), dev.dictionary
            ).cast(pa.string()),
            "channel": pa.DictionaryArray.from_arrays(
                pa.array(ci[keep].astype(np.int32)), ch.dictionary
            ).cast(pa.string()),
            "ts": pa.array(us[keep], pa.int64()).cast(TS),
            "value": pa.array(values[keep], pa.float64()),
            "unit": unit.filter(mask).cast(pa.string()) if unit is not None else pa.nulls(n, pa.string()),
        }
    )
    rep.samples = n
    return out, rep
