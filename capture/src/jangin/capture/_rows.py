"""The one set of row builders of capture: every flow (file import, HTTP ingest, live sources) turns
what it read into dataset rows through these functions, so each table's rows are built in one place.

* :func:`session_row` — the ``sessions`` row (metadata, device clock offsets, parameters);
* :func:`event_row` — one ``events`` row;
* :func:`wide_to_long` — a wide block of samples (one time axis, many channels) → long
  ``sensor_samples`` rows, vectorised (no per-channel Python copies);
* :func:`phase_steps` — a phase / state column → ``step_start`` / ``step_end`` events numbered by
  ``occurrence`` (a phase seen twice is two occurrences, never merged);
* :func:`span_labels` — a per-sample label column → span labels carrying the column as ``question``;
* :func:`session_labels` — run-level answers (``{question: value}``) → session labels.

Builders are pure: no I/O, no dataset access. Ids are deterministic, so a re-import finds the rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jangin.core import CaptureError
from jangin.core._ids import stable_id
from jangin.core.schema import TS
from jangin.core.settings import Settings

__all__ = [
    "DeviceOffset",
    "const_dict",
    "const_str",
    "deidentify_author",
    "event_row",
    "frame_label",
    "phase_steps",
    "session_labels",
    "session_row",
    "span_labels",
    "wide_to_long",
]

#: Offsets as the flows carry them: device or camera name -> (offset in s, method).
Offsets = Mapping[str, tuple[float, str]]


@dataclass(frozen=True)
class DeviceOffset:
    """A device or camera of a session as the ``sessions.devices`` list records it."""

    name: str
    kind: str
    given_offset_s: float | None = None


def const_str(value: str | None, n: int) -> pa.Array:
    """``n`` copies of one string, built in C++ (no Python list of ``n`` items)."""
    if value is None:
        return pa.nulls(n, pa.string())
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string())
    ).cast(pa.string())


def const_dict(value: str, n: int) -> pa.DictionaryArray:
    """``n`` copies of one string as a dictionary array (no string per row is ever materialised)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string()))


def deidentify_author(author: str | None, technician: str | None, settings: Settings) -> str | None:
    """Event authors are people too: the technician's name, or anything that looks like a personal
    name (has a space), becomes the same keyed pseudonym as in ``sessions.technician``. Role ids such
    as ``inspector-1`` or ``app`` stay as they are."""
    if not author:
        return author
    norm = " ".join(author.split()).casefold()
    if (technician and norm == " ".join(technician.split()).casefold()) or " " in norm:
        return settings.pseudonym(author)
    return author


def session_row(
    session_id: str,
    *,
    session_key: str | None,
    technician: str | None,
    skill_level: str | None,
    site: str | None,
    line: str | None,
    station: str | None,
    process: str | None,
    task: str | None,
    started_at: datetime,
    ended_at: datetime | None,
    devices: Sequence[DeviceOffset],
    offsets: Offsets | None,
    status: str,
    source: str,
    parameters: Mapping[str, Any] | None = None,
    process_definition: str | None = None,
    pending_method: str = "none",
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``sessions`` row. ``technician`` must already be a pseudonym.

    Args:
        devices: Devices and cameras; their offset is taken from ``offsets`` when measured, else the
            given one (method ``given``), else 0 with ``pending_method``.
        parameters: Recipe / session parameters; values are stored as text.
        meta: Extra free-form metadata stored in ``meta_json`` next to the session key.
    """
    offsets = offsets or {}

    def dev(d: DeviceOffset) -> dict[str, Any]:
        given = d.given_offset_s
        off, method = offsets.get(d.name, (given or 0.0, "given" if given is not None else pending_method))
        return {"name": d.name, "kind": d.kind, "clock_offset_ns": round(off * 1e9), "offset_method": method}

    return {
        "session_id": session_id,
        "technician": technician,
        "skill_level": skill_level or "unknown",
        "site": site,
        "line": line,
        "station": station,
        "process": process,
        "task": task,
        "started_at": started_at,
        "ended_at": ended_at,
        "devices": [dev(d) for d in devices],
        "status": status,
        "source": source,
        "meta_json": json.dumps({"session_key": session_key, **(meta or {})}),
        "updated_at": datetime.now(UTC),
        "parameters": _params(parameters),
        "process_definition": process_definition,
    }


def _params(parameters: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not parameters:
        return None
    return {str(k): _text(v) for k, v in parameters.items() if v is not None}


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return repr(v)  # 120.0 stays "120.0": the number as written
    return str(v)


def event_row(
    session_id: str,
    key: Iterable[Any],
    *,
    ts: datetime,
    kind: str,
    name: str | None = None,
    value: str | None = None,
    author: str | None = None,
    segment_start: datetime | None = None,
    segment_end: datetime | None = None,
    occurrence: int | None = None,
) -> dict[str, Any]:
    """One ``events`` row; ``key`` (e.g. file row and time) makes its id deterministic."""
    return {
        "event_id": stable_id("evt", session_id, *key),
        "session_id": session_id,
        "ts": ts,
        "kind": kind,
        "name": name,
        "value": value,
        "author": author,
        "segment_start": segment_start,
        "segment_end": segment_end,
        "occurrence": occurrence,
    }


def wide_to_long(
    session_id: str,
    device: str,
    t_us: np.ndarray,
    columns: Mapping[str, np.ndarray | pa.Array | pa.ChunkedArray],
    units: Mapping[str, str | None] | None = None,
    offset_us: int = 0,
) -> tuple[pa.Table, dict[str, int]]:
    """Wide samples (one time axis, one array per channel) → long ``sensor_samples`` rows.

    Vectorised: the time axis is tiled once, the values are stacked column-major into one float64
    buffer, and the name columns are dictionary arrays; non-finite values are dropped with one mask.
    Rows come channel by channel (each channel in time order).

    Returns:
        The table and, per channel, the number of dropped non-finite values (only channels with any).
    """
    units = units or {}
    names = list(columns)
    n, k = len(t_us), len(names)
    values = np.empty((k, n), np.float64)
    for i, name in enumerate(names):
        col = columns[name]
        if isinstance(col, np.ndarray):
            values[i] = col
        elif pa.types.is_null(col.type):  # an all-empty column: nothing to keep
            values[i] = np.nan
        else:
            arr = col.cast(pa.float64())
            values[i] = (pc.fill_null(arr, np.nan) if arr.null_count else arr).to_numpy(zero_copy_only=False)
    flat = values.reshape(-1)
    ok = np.isfinite(flat)
    all_ok = bool(ok.all())
    dropped = {} if all_ok else {names[i]: int(c) for i, c in enumerate(n - ok.reshape(k, n).sum(1)) if c}
    unit_values = [units.get(c) for c in names]
    unit_dict = pa.array(sorted({u for u in unit_values if u is not None}), pa.string())
    pos = {u: i for i, u in enumerate(unit_dict.to_pylist())}
    ts = np.tile(np.asarray(t_us, np.int64) + int(offset_us), k)
    ch_idx = np.repeat(np.arange(k, dtype=np.int32), n)
    unit_idx = np.repeat(np.array([pos.get(u, -1) for u in unit_values], np.int32), n)
    if not all_ok:
        flat, ts, ch_idx, unit_idx = flat[ok], ts[ok], ch_idx[ok], unit_idx[ok]
    m = len(flat)
    # Name columns stay dictionary-encoded (the dataset writes them without string copies).
    unit_col = pa.DictionaryArray.from_arrays(
        pa.array(unit_idx, mask=unit_idx < 0) if None in unit_values else pa.array(unit_idx), unit_dict
    )
    table = pa.table(
        {
            "session_id": const_dict(session_id, m),
            "device": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(m, np.int32)), pa.array([device], pa.string())
            ),
            "channel": pa.DictionaryArray.from_arrays(pa.array(ch_idx), pa.array(names, pa.string())),
            "ts": pa.array(ts, pa.int64()).cast(TS),
            "value": pa.array(flat, pa.float64()),
            "unit": unit_col,
        }
    )
    return table, dropped


def _runs(values: pa.Array | pa.ChunkedArray, what: str) -> tuple[np.ndarray, list[Any]]:
    """Start indices and values of the runs of equal consecutive values; nulls are refused."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    arr = arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr
    empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True)
    if pc.any(empty).as_py():
        first = int(pc.index(empty, True).as_py())
        n_empty = int(pc.sum(empty).as_py())
        raise CaptureError(
            f"{what}: row {first + 2}: empty value ({n_empty} empty row(s))",
            hint="every sample needs a phase; fill the gaps or mark them (e.g. 'idle') and list them as ignored",
        )
    enc = pc.dictionary_encode(arr)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if len(idx) else np.zeros(0, np.int64)
    dictionary = enc.dictionary.to_pylist()
    return starts, [dictionary[i] for i in idx[starts]]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _run_bounds(t_us: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end time of each run: a run ends where the next one starts (the last at its last sample)."""
    begin = t_us[starts]
    end = np.r_[t_us[starts[1:]], t_us[-1]] if len(starts) else begin
    return begin, end


def phase_steps(
    session_id: str,
    t_us: np.ndarray,
    phase: pa.Array | pa.ChunkedArray,
    *,
    column: str,
    ignore: Iterable[str] = (),
    author: str | None = "import",
    where: str = "",
) -> list[dict[str, Any]]:
    """A phase / state column → ``step_start`` and ``step_end`` events.

    Each run of equal consecutive values is one step; a value seen again later is a new
    ``occurrence`` of the same step (1-based, per step name). Values in ``ignore`` are not steps.

    Raises:
        CaptureError: The column has empty values (gaps), naming the file, column and first row.
    """
    starts, values = _runs(phase, f"{where}column {column!r}" if where else f"column {column!r}")
    begin, end = _run_bounds(np.asarray(t_us, np.int64), starts)
    skip = {str(v) for v in ignore}
    seen: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for b, e, v in zip(begin, end, values, strict=True):
        name = str(v)
        if name in skip:
            continue
        occ = seen[name] = seen.get(name, 0) + 1
        for kind, t in (("step_start", b), ("step_end", e)):
            rows.append(
                event_row(
                    session_id,
                    ("phase", column, name, occ, kind),
                    ts=_dt(int(t)),
                    kind=kind,
                    name=name,
                    author=author,
                    occurrence=occ,
                )
            )
    return rows


def _label(session_id: str, key: Iterable[Any], **fields: Any) -> dict[str, Any]:
    return {
        "label_id": stable_id("lbl", session_id, *key),
        "session_id": session_id,
        "frame_id": None,
        "source": "import",
        "created_at": datetime.now(UTC),
        **fields,
    }


def frame_label(session_id: str, frame_id: str, key: Iterable[Any], **fields: Any) -> dict[str, Any]:
    """One imported label on a frame (``kind``, ``name`` and the rest in ``fields``); its id is derived
    from the session, the frame and ``key``, so importing the same label again finds it."""
    return _label(session_id, (frame_id, *key), target="frame", frame_id=frame_id, **fields)


def span_labels(
    session_id: str,
    t_us: np.ndarray,
    labels: pa.Array | pa.ChunkedArray,
    *,
    question: str,
    author: str | None = None,
) -> list[dict[str, Any]]:
    """A per-sample label column → one span label per run of equal values (empty values: no label)."""
    arr = labels.combine_chunks() if isinstance(labels, pa.ChunkedArray) else labels
    arr = arr.cast(pa.string())
    empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True)
    filled = pc.if_else(empty, "\x00", arr)  # no label here: a run of its own, dropped below
    starts, values = _runs(filled, f"column {question!r}")
    begin, end = _run_bounds(np.asarray(t_us, np.int64), starts)
    return [
        _label(
            session_id,
            ("span", question, int(b)),
            target="span",
            ts_start=_dt(int(b)),
            ts_end=_dt(int(e)),
            kind="span",
            name=str(v),
            author=author,
            question=question,
        )
        for b, e, v in zip(begin, end, values, strict=True)
        if v != "\x00" and str(v).strip()
    ]


def session_labels(
    session_id: str, answers: Mapping[str, Any], *, author: str | None = None
) -> list[dict[str, Any]]:
    """Run-level answers ``{question: value}`` → one session label each (empty answers skipped)."""
    return [
        _label(
            session_id,
            ("session", q),
            target="session",
            kind="class",
            name=str(v),
            author=author,
            question=q,
        )
        for q, v in answers.items()
        if v is not None and str(v).strip()
    ]


def still_frame_row(
    frame_id: str,
    session_id: str,
    ts: datetime,
    shape: Sequence[int],
    jpeg: bytes,
    *,
    source_uri: str,
    station: str | None,
    deidentified: bool,
    deid_json: str | None,
) -> dict[str, Any]:
    """A ``frames`` row for a still image (camera ``still``, no pts or sharpness) of ``shape`` (h, w, ...)."""
    return {
        "frame_id": frame_id,
        "session_id": session_id,
        "camera": "still",
        "ts": ts,
        "pts": None,
        "width": int(shape[1]),
        "height": int(shape[0]),
        "sharpness": None,
        "deidentified": deidentified,
        "source_uri": source_uri,
        "station": station,
        "image": jpeg,
        "deid_json": deid_json,
    }
