"""Import recorded sessions (manifest + video + sensor files + events) and still-image sets."""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from jangin.capture._manifest import SessionManifest, load_manifest
from jangin.capture._offsets import step_time, video_step_time
from jangin.capture._rows import (
    DeviceOffset,
    deidentify_author,
    event_row,
    session_labels,
    session_row,
    still_frame_row,
)
from jangin.capture._sensors import Policy, SensorReport, read_device, read_long
from jangin.capture._video import FaceBlurrer, deidentify_video, encode_jpeg, probe_video, sample_frames
from jangin.core import CaptureError, Dataset, JanginError
from jangin.core._ids import stable_id
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.settings import Settings, get_settings

__all__ = ["ImportResult", "import_session", "import_sessions", "import_stills", "session_id_for"]

log = logging.getLogger(__name__)

EVENT_KINDS = {"sync", "step_start", "step_end", "adjustment", "judgment", "note"}


@dataclass
class ImportResult:
    """What one session import did."""

    session_id: str
    session_key: str
    skipped: bool = False
    samples: int = 0
    events: int = 0
    frames: int = 0
    labels: int = 0
    faces_blurred: int = 0
    sensors: list[SensorReport] = field(default_factory=list)
    offsets: dict[str, tuple[float, str]] = field(default_factory=dict)  # device -> (offset_s, method)
    error: str | None = None


def session_id_for(site: str, session_key: str) -> str:
    """The session id of ``session_key`` at ``site``: deterministic, so a re-import finds it."""
    return stable_id("ses", site, session_key)


def _existing_session(ds: Dataset, session_id: str) -> bool:
    t = ds.read("sessions", columns=["session_id", "status"], filters=[("session_id", "=", session_id)])
    return any(s in ("finished", "processed") for s in t.column("status").to_pylist())


def _ts(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def read_events(path: Path, session_id: str) -> list[dict[str, Any]]:
    """Read an events CSV (``timestamp`` in unix seconds or ISO 8601, ``kind``, ``name``, ``value``,
    ``author``, optional ``segment_start`` / ``segment_end``).

    Raises:
        CaptureError: Missing column, unknown kind or unreadable time, naming the row.
    """
    rows: list[dict[str, Any]] = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"timestamp", "kind"} - set(reader.fieldnames or [])
        if missing:
            raise CaptureError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for i, r in enumerate(reader, start=2):
            kind = (r.get("kind") or "").strip()
            if kind not in EVENT_KINDS:
                raise CaptureError(
                    f"{path}: row {i}: unknown event kind {kind!r} (expected one of {', '.join(sorted(EVENT_KINDS))})"
                )
            rows.append(
                event_row(
                    session_id,
                    (i, r["timestamp"], kind, r.get("name")),
                    ts=_parse_time(path, i, r["timestamp"]),
                    kind=kind,
                    name=r.get("name") or None,
                    value=r.get("value") or None,
                    author=r.get("author") or None,
                    segment_start=_parse_time(path, i, r["segment_start"])
                    if r.get("segment_start")
                    else None,
                    segment_end=_parse_time(path, i, r["segment_end"]) if r.get("segment_end") else None,
                )
            )
    _number_steps(rows)
    return rows


def _number_steps(events: list[dict[str, Any]]) -> None:
    """Set ``occurrence`` on step markers: the n-th ``step_start`` of a name (in time order) is
    occurrence n, and its ``step_end`` the same n."""
    starts: dict[str | None, int] = {}
    ends: dict[str | None, int] = {}
    for e in sorted(events, key=lambda e: e["ts"]):
        if e["kind"] == "step_start":
            e["occurrence"] = starts[e["name"]] = starts.get(e["name"], 0) + 1
        elif e["kind"] == "step_end":
            e["occurrence"] = ends[e["name"]] = ends.get(e["name"], 0) + 1


def _parse_time(path: Path, row: int, text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CaptureError(f"{path}: row {row}: cannot read time {text!r}") from None
    if dt.tzinfo is None:
        raise CaptureError(f"{path}: row {row}: time {text!r} has no timezone")
    return dt.astimezone(UTC)


#: Kept for callers of the old private name; the builder lives in ``_rows``.
_deidentify_author = deidentify_author


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return h.hexdigest()


def import_session(
    ds: Dataset,
    directory: str | Path,
    *,
    settings: Settings | None = None,
    frame_interval_s: float = 1.0,
    deidentify: bool = True,
    keep_video: bool = True,
    policy: Policy | None = None,
    manifest: SessionManifest | None = None,
    video_detect_hz: float = 2.0,
    progress: ProgressFn = null_progress,
) -> ImportResult:
    """Import one recorded session directory (``session.yaml`` + files it names) into ``ds``.

    All files are read and validated before anything is written; the ``sessions`` row is written
    last, so an interrupted import is invisible (and is redone by the next call). A session already
    imported is skipped.

    Args:
        ds: Target dataset.
        directory: Folder with ``session.yaml``.
        settings: Site settings (for the pseudonym key); default from the environment.
        frame_interval_s: Seconds between sampled frames (plus frames around each event).
        deidentify: Blur faces in stored frames. Turning it off is logged as a warning.
        keep_video: Store the video under the dataset's ``media/`` with its checksum.
        policy: What to do about each kind of problem in sensor files (default: :class:`Policy`).
        manifest: Use this instead of ``directory/session.yaml`` (metadata given as flags).
        video_detect_hz: Face detections per second of the stored video (each costs ~100 frame
            decodes; a face is covered from the detection before to the one after).
        progress: Progress callback.

    Raises:
        CaptureError: A file is missing or fails validation; nothing was written.
    """
    directory = Path(directory)
    settings = settings or get_settings()
    m = manifest or load_manifest(directory / "session.yaml")
    sid = session_id_for(m.site, m.session_key)
    result = ImportResult(session_id=sid, session_key=m.session_key)
    if _existing_session(ds, sid):
        result.skipped = True
        return result
    if not deidentify:
        log.warning(
            "session %s: face blurring is OFF (explicit opt-out); stored frames may show faces", m.session_key
        )

    # 1. Read and validate everything first (events first: the sync event sets missing offsets).
    events = read_events(directory / m.events, sid) if m.events and (directory / m.events).is_file() else []
    for e in events:
        e["author"] = _deidentify_author(e["author"], m.technician, settings)
    result.events = len(events)
    sync = next((e["ts"] for e in events if e["kind"] == "sync"), None)
    sensor_tables = []
    derived_events: list[dict[str, Any]] = []  # steps from phase columns
    labels = session_labels(sid, m.labels)
    display_names: dict[str, str] = {}
    for lf in m.long_files:
        table, rep = read_long(
            directory / lf.file,
            sid,
            devices={d.name: d for d in m.devices},
            column_map=lf.column_map,
            time_unit=lf.time_unit,
            policy=policy,
        )
        sensor_tables.append(table)
        result.sensors.append(rep)
        result.samples += rep.samples
    for dev in m.devices:
        if dev.file is None:
            result.offsets[dev.name] = (
                float(dev.clock_offset_s or 0.0),
                "given" if dev.clock_offset_s is not None else "none",
            )
            continue
        given = dev.clock_offset_s is not None
        table, rep = read_device(
            directory / dev.file,
            dev if given else dev.model_copy(update={"clock_offset_s": 0.0}),
            sid,
            policy=policy,
            session_start=m.started_at,
        )
        if given:
            result.offsets[dev.name] = (float(dev.clock_offset_s or 0.0), "given")
        else:
            off, method = _estimate_sensor_offset(table, dev, sync, directory / dev.file)
            table = shift_times(table, off)
            _shift_rows(rep, off)
            result.offsets[dev.name] = (off, method)
        derived_events += rep.events
        labels += rep.labels
        display_names.update(rep.display_names)
        sensor_tables.append(table)
        result.sensors.append(rep)
        result.samples += rep.samples
    frames: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    blur = FaceBlurrer() if deidentify else None
    for cam in m.cameras:
        video_start = _ts(cam.started_at) if cam.started_at else m.started_at
        if cam.clock_offset_s is not None:
            result.offsets[cam.name] = (float(cam.clock_offset_s), "given")
        else:
            result.offsets[cam.name] = _estimate_video_offset(directory / cam.file, video_start, sync)
        cam_frames, cam_media, faces = camera_rows(
            sid,
            cam.name,
            directory / cam.file,
            video_start=video_start,
            offset_s=result.offsets[cam.name][0],
            events=events,
            frame_interval_s=frame_interval_s,
            blur=blur,
            source_uri=str(Path(m.session_key) / cam.file),
            station=m.station,
            progress=progress,
            task=f"frames {m.session_key}",
        )
        frames += cam_frames
        result.faces_blurred += faces
        if keep_video:
            media.append(cam_media)
    result.frames = len(frames)
    events += derived_events
    result.events = len(events)
    result.labels = len(labels)

    # 2. Write: data tables first, the session row last. Each append carries the transaction id
    # (import/<session>, 1), so re-running an interrupted import skips the tables already written.
    txn = (f"import/{sid}", 1)
    try:
        if sensor_tables:
            ds.append("sensor_samples", _concat_samples(sensor_tables), source=str(directory), txn=txn)
        if events:
            ds.append("events", events, source=str(directory / (m.events or "")), txn=txn)
        if labels:
            ds.append("labels", labels, source=str(directory), txn=txn)
        if frames:
            ds.append("frames", frames, source=str(directory), txn=txn)
        for row, cam in zip(media, m.cameras if keep_video else [], strict=True):
            store_video(ds, directory / cam.file, row, blur=blur, detect_hz=video_detect_hz)
        if media:
            ds.append("media", media, txn=txn)
        ds.append(
            "sessions",
            [
                _session_row(
                    m,
                    sid,
                    settings,
                    events,
                    source="file",
                    offsets=result.offsets,
                    # no events at all (a run table): the session ends with its last sample
                    ended_at=None if events else _last_sample(sensor_tables),
                    meta={"display_names": display_names} if display_names else None,
                )
            ],
            txn=txn,
        )
    except JanginError:
        raise
    return result


def camera_rows(
    sid: str,
    camera: str,
    path: Path,
    *,
    video_start: datetime,
    offset_s: float,
    events: list[dict[str, Any]],
    frame_interval_s: float,
    blur: FaceBlurrer | None,
    source_uri: str,
    station: str | None,
    progress: ProgressFn = null_progress,
    task: str = "frames",
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Sample one camera's video into ``frames`` rows and describe it as a ``media`` row.

    Returns:
        ``(frame rows, media row, faces blurred)``. The media row's ``uri`` is where
        :func:`store_video` puts the file.

    Raises:
        CaptureError: The video is missing, truncated or corrupt.
    """
    info = probe_video(path)
    offset = timedelta(seconds=offset_s)
    around = [
        ((e["ts"] - video_start - offset).total_seconds())
        for e in events
        if e["kind"] in ("adjustment", "judgment", "sync")
    ]
    total = max(1, int(info.duration_s / frame_interval_s))
    frames: list[dict[str, Any]] = []
    faces = 0

    def finish(fr: Any) -> tuple[dict[str, Any], int]:
        image, dets = blur.blur(fr.image) if blur is not None else (fr.image, [])
        n_faces = len(dets)
        h, w = image.shape[:2]
        return {
            "frame_id": stable_id("frm", sid, camera, fr.index),
            "session_id": sid,
            "camera": camera,
            "ts": video_start + offset + timedelta(seconds=fr.t_s),
            "pts": fr.index,
            "width": w,
            "height": h,
            "sharpness": fr.sharpness,
            "deidentified": blur is not None,
            "source_uri": source_uri,
            "station": station,
            "image": encode_jpeg(image),
            "deid_json": blur.record(dets) if blur is not None else None,
        }, n_faces

    # Face blurring and JPEG run in a worker thread while the main thread keeps decoding (OpenCV
    # releases the GIL): on 2 cores the import costs about max(decode, blur) instead of their sum.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jangin-frames") as pool:
        futures = []
        for n, fr in enumerate(
            sample_frames(info, interval_s=frame_interval_s, around_s=around, blur=None), start=1
        ):
            progress(task, min(n, total), total)
            futures.append(pool.submit(finish, fr))
        for fut in futures:
            row, n_faces = fut.result()
            frames.append(row)
            faces += n_faces
    progress(task, total, total)  # blurred / near-duplicate frames were skipped: the scan is done
    media = {
        "session_id": sid,
        "camera": camera,
        "uri": f"media/{sid}/{camera}.mp4",
        "codec": info.codec,
        "fps": info.fps,
        "frames": info.frames,
        "duration_s": info.duration_s,
        "width": info.width,
        "height": info.height,
        "clock_offset_ns": round(offset_s * 1e9),
        "started_at": video_start + offset,
        "deidentified": blur is not None,
        "sha256": "",  # set by store_video
    }
    return frames, media, faces


def store_video(
    ds: Dataset, src: Path, media: dict[str, Any], *, blur: FaceBlurrer | None, detect_hz: float = 2.0
) -> None:
    """Put a video under the dataset's ``media/`` (at ``media['uri']``) and set its ``sha256``.

    With ``blur``, the stored file is re-encoded with every face blurred (``deidentified``); without
    it, the file is copied as recorded (an explicit opt-out, logged by the caller).
    """
    if blur is None:
        media["uri"] = str(Path(media["uri"]).with_suffix(src.suffix or ".mp4"))
    dst = ds.root / media["uri"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.tmp{dst.suffix}")
    if blur is not None:
        media["deid_json"] = deidentify_video(src, tmp, blur, detect_hz=detect_hz)["record"]
    else:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)
    media["sha256"] = _sha256(dst)
    media["deidentified"] = blur is not None


def shift_times(table: pa.Table, offset_s: float) -> pa.Table:
    """``table`` with ``offset_s`` seconds added to its ``ts`` column."""
    import pyarrow.compute as pc

    from jangin.core.schema import TS

    i = table.schema.get_field_index("ts")
    us = pc.add(table.column("ts").cast(pa.int64()), pa.scalar(round(offset_s * 1e6), pa.int64()))
    return table.set_column(i, table.schema.field(i), us.cast(TS))


def _last_sample(tables: list[pa.Table]) -> datetime | None:
    import pyarrow.compute as pc

    ends = [pc.max(t.column("ts")).as_py() for t in tables if t.num_rows]
    return max(ends) if ends else None


def _concat_samples(tables: list[pa.Table]) -> pa.Table:
    """Sample tables of several files as one; name columns that are dictionary-encoded in one and
    plain in another become plain strings."""
    if all(t.schema == tables[0].schema for t in tables):
        return pa.concat_tables(tables)
    plain = pa.schema(
        [
            pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
            for f in tables[0].schema
        ]
    )
    return pa.concat_tables([t.cast(plain) for t in tables])


def _shift_rows(rep: SensorReport, offset_s: float) -> None:
    """Move the steps and span labels derived from a device file by its estimated clock offset."""
    delta = timedelta(seconds=offset_s)
    for e in rep.events:
        e["ts"] += delta
    for lab in rep.labels:
        lab["ts_start"] += delta
        lab["ts_end"] += delta


def _estimate_sensor_offset(
    table: pa.Table, dev: Any, sync: datetime | None, path: Path
) -> tuple[float, str]:
    import pyarrow.compute as pc

    if sync is None:
        log.warning("%s: no clock_offset_s and no sync event: offset 0 assumed", path)
        return 0.0, "none"
    channel = dev.sync_channel or (dev.channels[0].name if dev.channels else None)
    part = table.filter(pc.equal(table.column("channel"), channel)) if channel else table
    t_s = part.column("ts").cast(pa.int64()).to_numpy() / 1e6
    step = step_time(
        t_s, part.column("value").to_numpy(zero_copy_only=False), name=f"{path} channel {channel}"
    )
    return round(sync.timestamp() - step, 6), f"sync_event:{channel}"


def _estimate_video_offset(path: Path, video_start: datetime, sync: datetime | None) -> tuple[float, str]:
    if sync is None:
        log.warning("%s: no clock_offset_s and no sync event: offset 0 assumed", path)
        return 0.0, "none"
    t_video = video_step_time(path)
    return round((sync - video_start).total_seconds() - t_video, 6), "sync_event:video_brightness"


def _session_row(
    m: SessionManifest,
    sid: str,
    settings: Settings,
    events: list[dict[str, Any]],
    *,
    source: str,
    offsets: dict[str, tuple[float, str]] | None = None,
    status: str = "processed",
    ended_at: datetime | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ends = [e["ts"] for e in events]
    return session_row(
        sid,
        session_key=m.session_key,
        technician=settings.pseudonym(m.technician) if m.technician else None,
        skill_level=m.skill_level,
        site=m.site,
        line=m.line,
        station=m.station,
        process=m.process,
        task=m.task,
        started_at=m.started_at,
        ended_at=ended_at or (max(ends) if ends else None),
        devices=[DeviceOffset(d.name, d.kind, d.clock_offset_s) for d in m.devices]
        + [DeviceOffset(c.name, "camera", c.clock_offset_s) for c in m.cameras],
        offsets=offsets,
        status=status,
        source=source,
        parameters=m.parameters,
        process_definition=m.process_definition,
        meta=meta,
    )


def import_sessions(
    ds: Dataset,
    root: str | Path,
    *,
    settings: Settings | None = None,
    progress: ProgressFn = null_progress,
    **kwargs: Any,
) -> list[ImportResult]:
    """Import every session directory under ``root`` (each with a ``session.yaml``).

    A session that fails validation is reported in its result's ``error`` and does not stop the
    others.
    """
    dirs = sorted(p.parent for p in Path(root).glob("*/session.yaml"))
    if not dirs:
        raise CaptureError(f"{root}: no session directories (folders with a session.yaml)")
    results = []
    for i, d in enumerate(dirs):
        progress("import sessions", i, len(dirs))
        try:
            results.append(import_session(ds, d, settings=settings, progress=progress, **kwargs))
        except CaptureError as exc:
            log.error("%s", exc)
            results.append(ImportResult(session_id="", session_key=d.name, error=str(exc)))
    progress("import sessions", len(dirs), len(dirs))
    return results


def import_stills(
    ds: Dataset,
    directory: str | Path,
    *,
    session_key: str | None = None,
    site: str = "site",
    process: str = "inspection",
    settings: Settings | None = None,
    deidentify: bool = True,
    limit: int | None = None,
    progress: ProgressFn = null_progress,
    station: str | None = None,
) -> ImportResult:
    """Import a folder of still inspection images as one session (one frame per image).

    Images are listed in ``images.csv`` (``image, station, width, height``) when present, else every
    ``*.jpg`` / ``*.png`` below the folder (the first ``limit`` only, if given). ``frames.source_uri``
    keeps each image's relative path so that label files can be matched to frames.

    Raises:
        CaptureError: An image cannot be read (named), or the folder has none.
    """
    import cv2
    import numpy as np

    directory = Path(directory)
    settings = settings or get_settings()
    key = session_key or directory.name
    sid = session_id_for(site, key)
    result = ImportResult(session_id=sid, session_key=key)
    if _existing_session(ds, sid):
        result.skipped = True
        return result
    listing = directory / "images.csv"
    if listing.is_file():
        with open(listing, newline="") as f:
            entries = [(r["image"], r.get("station") or None) for r in csv.DictReader(f)]
    else:
        entries = [
            (str(p.relative_to(directory)), None)
            for p in sorted(directory.rglob("*"))
            if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        ]
    if limit is not None:
        entries = entries[:limit]
    if not entries:
        raise CaptureError(f"{directory}: no images found")
    if not deidentify:
        log.warning("faces are NOT blurred in the %d stills of session %s (%s)", len(entries), key, directory)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    blur = FaceBlurrer() if deidentify else None
    frames = []
    for i, (rel, row_station) in enumerate(entries):
        progress(f"stills {key}", i, len(entries))
        path = directory / rel
        data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
        if img is None:
            raise CaptureError(f"{path}: missing or not a readable image")
        faces, deid = 0, None
        if blur is not None:
            img, dets = blur.blur(img)
            faces, deid = len(dets), blur.record(dets)
        result.faces_blurred += faces
        # Keep the original bytes when nothing changed, so no JPEG generation loss.
        jpeg = (
            path.read_bytes() if faces == 0 and path.suffix.lower() in (".jpg", ".jpeg") else encode_jpeg(img)
        )
        frames.append(
            still_frame_row(
                stable_id("frm", sid, rel),
                sid,
                start + timedelta(seconds=i),
                img.shape,
                jpeg,
                source_uri=rel,
                station=row_station or station,
                deidentified=deidentify,
                deid_json=deid,
            )
        )
    progress(f"stills {key}", len(entries), len(entries))
    txn = (f"import/{sid}", 1)
    ds.append("frames", frames, source=str(directory), txn=txn)
    m = SessionManifest(
        session_key=key, site=site, station=station, process=process, task="still images", started_at=start
    )
    ds.append("sessions", [_session_row(m, sid, settings, [], source="file")], txn=txn)
    result.frames = len(frames)
    return result
