"""Turn a finished staged session (see ``_staging``) into dataset rows.

Every append carries the transaction id ``(ingest/<session>, 1)`` and the session row is written
last, so processing that a crash interrupted is simply run again: tables already written are
skipped, nothing is duplicated.

Fault injection for tests: with ``JANGIN_TEST_CRASH_AT=<point>`` in the environment the process exits
at once (``os._exit``, as a ``kill -9`` would) when processing reaches ``<point>``: ``before:<table>`` /
``after:<table>`` around each append (tables ``sensor_samples``, ``events``, ``frames``, ``media``,
``sessions``). Nothing else reads that variable; leave it unset in production.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from jangin.capture import _rows as rows
from jangin.capture._rows import DeviceOffset, deidentify_author, event_row, wide_to_long
from jangin.capture._staging import Staging
from jangin.core import CaptureError, Dataset
from jangin.core.settings import Settings

__all__ = ["process_staged", "sensor_long_table"]

log = logging.getLogger(__name__)

#: Transaction sequence numbers of the sessions-table rows one ingested session goes through.
SEQ_CREATED, SEQ_FINISHED, SEQ_PROCESSED = 1, 2, 3


def sensor_long_table(
    session_id: str,
    device: str,
    t_us: np.ndarray,
    channels: dict[str, np.ndarray],
    units: dict[str, str | None],
    offset_us: int,
) -> tuple[pa.Table, int]:
    """Wide device samples → long ``sensor_samples`` rows (see :func:`wide_to_long`); NaN / inf dropped.

    Returns:
        The table and the number of dropped non-finite values.
    """
    table, dropped = wide_to_long(session_id, device, t_us, channels, units, offset_us)
    return table, sum(dropped.values())


def _crash_point(point: str) -> None:
    """Exit at once at ``point`` when the test-only ``JANGIN_TEST_CRASH_AT`` names it."""
    if os.environ.get("JANGIN_TEST_CRASH_AT") == point:
        log.warning("JANGIN_TEST_CRASH_AT=%s: exiting now (test fault injection)", point)
        os._exit(137)


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC)


def process_staged(ds: Dataset, staging: Staging, session_id: str, settings: Settings) -> dict[str, Any]:
    """Process one finished staged session into ``ds``; idempotent.

    Returns:
        Counts and timings: samples, events, frames, faces_blurred, dropped, offsets, seconds.

    Raises:
        CaptureError: The staged data cannot be processed (e.g. no sync step to estimate an offset).
    """
    import json

    from jangin.capture._import import camera_rows, store_video
    from jangin.capture._offsets import step_time, video_step_time
    from jangin.capture._video import FaceBlurrer

    t0 = time.perf_counter()
    meta = staging.meta(session_id)
    finish = json.loads((staging.dir(session_id) / "finish.json").read_text())
    # Site policy (JANGIN_DEIDENTIFY); only a local `jangin capture sessions finish --no-deidentify`
    # writes false into finish.json, the API never does.
    deidentify = settings.deidentify and bool(finish.get("deidentify", True))
    started_at = datetime.fromisoformat(meta["started_at"])
    out: dict[str, Any] = {
        "session_id": session_id,
        "samples": 0,
        "events": 0,
        "frames": 0,
        "faces_blurred": 0,
        "dropped_nonfinite": 0,
        "dropped_duplicate_times": 0,
        "offsets": {},
    }

    events = []
    for seq, i, e in staging.events(session_id):
        events.append(
            event_row(
                session_id,
                (seq, i),
                ts=_dt(e["ts"]),  # type: ignore[arg-type]
                kind=e["kind"],
                name=e.get("name"),
                value=e.get("value"),
                author=deidentify_author(e.get("author"), None, settings),
                segment_start=_dt(e.get("segment_start")),
                segment_end=_dt(e.get("segment_end")),
            )
        )
    events.sort(key=lambda e: e["ts"])
    _number_steps(events)
    sync = next((e["ts"] for e in events if e["kind"] == "sync"), None)
    out["events"] = len(events)

    devices = {d["name"]: d for d in meta.get("devices", [])}
    offsets: dict[str, tuple[float, str]] = {}
    sensor_parts = []
    for device, files in staging.sensor_batches(session_id).items():
        spec = devices[device]
        units = {c["name"]: c.get("unit") for c in spec.get("channels", [])}
        all_tables = [pa.ipc.open_file(pa.memory_map(str(p))).read_all() for p in files]
        tables = [t for t in all_tables if "channel" not in t.column_names]
        long = [t for t in all_tables if "channel" in t.column_names]
        if spec.get("clock_offset_s") is not None:
            offsets[device] = (float(spec["clock_offset_s"]), str(spec.get("offset_method") or "given"))
        if long:
            offsets.setdefault(device, (0.0, "none"))
            table, dropped, dups = _long_batches(session_id, device, long, units, offsets[device][0])
            out["dropped_nonfinite"] += dropped
            out["dropped_duplicate_times"] += dups
            sensor_parts.append(table)
            out["samples"] += table.num_rows
        if not tables:
            continue
        wide = pa.concat_tables(tables, promote_options="default").combine_chunks()
        t_us = wide.column("t_us").to_numpy()
        order = np.argsort(t_us, kind="stable")
        t_us = t_us[order]
        keep = np.ones(len(t_us), bool)
        keep[1:] = np.diff(t_us) > 0  # overlapping batches: keep the first sample at each time
        out["dropped_duplicate_times"] += int((~keep).sum())
        t_us = t_us[keep]
        chans = {
            c: np.asarray(wide.column(c).to_numpy(zero_copy_only=False), np.float64)[order][keep]
            for c in wide.column_names
            if c != "t_us"
        }
        if device in offsets:
            pass  # given (or measured by the recorder and declared)
        elif sync is None:
            log.warning(
                "session %s device %s: no clock offset and no sync event: offset 0", session_id, device
            )
            offsets[device] = (0.0, "none")
        else:
            ch = spec.get("sync_channel") or next(iter(units), None)
            if ch not in chans:
                raise CaptureError(
                    f"session {session_id} device {device}: sync channel {ch!r} has no samples"
                )
            step = step_time(t_us / 1e6, chans[ch], name=f"session {session_id} device {device} channel {ch}")
            offsets[device] = (round(sync.timestamp() - step, 6), f"sync_event:{ch}")
        table, dropped = sensor_long_table(
            session_id, device, t_us, chans, units, round(offsets[device][0] * 1e6)
        )
        out["dropped_nonfinite"] += dropped
        sensor_parts.append(table)
        out["samples"] += table.num_rows

    blur = FaceBlurrer() if deidentify else None
    if not deidentify:
        log.warning(
            "session %s: face blurring is OFF (%s); stored frames and video may show faces",
            session_id,
            "site policy JANGIN_DEIDENTIFY=false" if not settings.deidentify else "local --no-deidentify",
        )
    frames: list[dict[str, Any]] = []
    media: list[tuple[Any, dict[str, Any]]] = []
    cams = {c["name"]: c for c in meta.get("cameras", [])}
    for camera, path in staging.videos(session_id).items():
        spec = cams[camera]
        if spec.get("clock_offset_s") is not None:
            offsets[camera] = (float(spec["clock_offset_s"]), "given")
        elif sync is None:
            offsets[camera] = (0.0, "none")
        else:
            offsets[camera] = (
                round((sync - started_at).total_seconds() - video_step_time(path), 6),
                "sync_event:video_brightness",
            )
        cf, cm, faces = camera_rows(
            session_id,
            camera,
            path,
            video_start=started_at,
            offset_s=offsets[camera][0],
            events=events,
            frame_interval_s=float(finish.get("frame_interval_s", 1.0)),
            blur=blur,
            source_uri=f"upload/{session_id}/{camera}",
            station=meta.get("station"),
        )
        frames += cf
        out["faces_blurred"] += faces
        media.append((path, cm))
    out["frames"] = len(frames)
    out["offsets"] = offsets

    txn = (f"ingest/{session_id}", 1)
    _crash_point("before:sensor_samples")
    if sensor_parts:
        ds.append("sensor_samples", pa.concat_tables(sensor_parts), source=f"ingest {session_id}", txn=txn)
    _crash_point("after:sensor_samples")
    if events:
        ds.append("events", events, source=f"ingest {session_id}", txn=txn)
    _crash_point("after:events")
    if frames:
        ds.append("frames", frames, source=f"ingest {session_id}", txn=txn)
    _crash_point("after:frames")
    for path, row in media:
        store_video(ds, path, row, blur=blur)
    if media:
        ds.append("media", [row for _, row in media], txn=txn)
    _crash_point("after:media")
    ended = _dt(finish.get("ended_at")) or (events[-1]["ts"] if events else None)
    _crash_point("before:sessions")
    ds.append(
        "sessions",
        [session_row(meta, offsets, status="processed", ended_at=ended)],
        txn=(f"ingest/{session_id}", SEQ_PROCESSED),
    )
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def session_row(
    meta: dict[str, Any],
    offsets: dict[str, tuple[float, str]],
    *,
    status: str,
    ended_at: datetime | None = None,
) -> dict[str, Any]:
    """A ``sessions`` row from staged metadata (the technician is already a pseudonym)."""
    return rows.session_row(
        meta["session_id"],
        session_key=meta.get("session_key"),
        technician=meta.get("technician"),
        skill_level=meta.get("skill_level", "unknown"),
        site=meta.get("site"),
        line=meta.get("line"),
        station=meta.get("station"),
        process=meta.get("process"),
        task=meta.get("task"),
        started_at=datetime.fromisoformat(meta["started_at"]),
        ended_at=ended_at,
        devices=[
            DeviceOffset(d["name"], d.get("kind", "sensor"), d.get("clock_offset_s"))
            for d in meta.get("devices", [])
        ]
        + [DeviceOffset(c["name"], "camera", c.get("clock_offset_s")) for c in meta.get("cameras", [])],
        offsets=offsets,
        status=status,
        source="api",
        parameters=meta.get("parameters"),
        pending_method="pending",
        meta={"recorder": meta["recorder"]} if meta.get("recorder") else None,
    )


def _number_steps(events: list[dict[str, Any]]) -> None:
    """Number the occurrences of each step (1-based, by name, in time order) where the sender did
    not: a step seen twice is two occurrences, never merged (as the file import numbers them)."""
    seen: dict[str, int] = {}
    for e in events:
        if e["kind"] == "step_start" and e.get("occurrence") is None and e.get("name"):
            e["occurrence"] = seen[e["name"]] = seen.get(e["name"], 0) + 1
    for e in events:
        if e["kind"] == "step_end" and e.get("occurrence") is None and e.get("name"):
            e["occurrence"] = _occurrence_at(events, e)


def _occurrence_at(events: list[dict[str, Any]], end: dict[str, Any]) -> int | None:
    """The occurrence of the last start of ``end``'s step at or before it."""
    occ = None
    for e in events:
        if e["ts"] > end["ts"]:
            break
        if e["kind"] == "step_start" and e.get("name") == end["name"]:
            occ = e["occurrence"]
    return occ


def _long_batches(
    session_id: str, device: str, tables: list[pa.Table], units: dict[str, str | None], offset_s: float
) -> tuple[pa.Table, int, int]:
    """Long-form staged batches of a live source → ``sensor_samples`` rows: per channel in time order,
    a sample staged twice (redelivered after a crash) kept once, NaN / inf dropped.

    Returns:
        The rows, the number of non-finite values and the number of repeated samples dropped.
    """
    from jangin.core.schema import TS

    parts = tables
    names = sorted({n for t in parts for n in t.column("channel").combine_chunks().dictionary.to_pylist()})
    pos = {n: i for i, n in enumerate(names)}
    ch = np.concatenate(
        [
            np.asarray(
                [pos[n] for n in t.column("channel").combine_chunks().dictionary.to_pylist()], np.int32
            )[t.column("channel").combine_chunks().indices.to_numpy(zero_copy_only=False)]
            for t in parts
        ]
    )
    t_us = np.concatenate([t.column("t_us").to_numpy() for t in parts])
    value = np.concatenate([t.column("value").to_numpy(zero_copy_only=False) for t in parts])
    order = np.lexsort((t_us, ch))  # stable: the first staged copy of a sample comes first
    ch, t_us, value = ch[order], t_us[order], value[order]
    keep = np.ones(len(ch), bool)
    keep[1:] = (ch[1:] != ch[:-1]) | (t_us[1:] != t_us[:-1])
    dups = int((~keep).sum())
    finite = np.isfinite(value)
    nonfinite = int((keep & ~finite).sum())
    keep &= finite
    ch, t_us, value = ch[keep], t_us[keep], value[keep]
    unit_names = sorted({u for u in (units.get(n) for n in names) if u is not None})
    upos = {u: i for i, u in enumerate(unit_names)}
    uidx = np.asarray([upos.get(units.get(n), -1) for n in names], np.int32)[ch] if len(names) else ch
    m = len(ch)
    table = pa.table(
        {
            "session_id": rows.const_dict(session_id, m),
            "device": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(m, np.int32)), pa.array([device], pa.string())
            ),
            "channel": pa.DictionaryArray.from_arrays(pa.array(ch, pa.int32()), pa.array(names, pa.string())),
            "ts": pa.array(t_us + round(offset_s * 1e6), pa.int64()).cast(TS),
            "value": pa.array(value, pa.float64()),
            "unit": pa.DictionaryArray.from_arrays(
                pa.array(uidx, pa.int32(), mask=uidx < 0), pa.array(unit_names, pa.string())
            ),
        }
    )
    return table, nonfinite, dups
