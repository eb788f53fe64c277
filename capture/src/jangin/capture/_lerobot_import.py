"""Import a LeRobot v3.0 dataset (``jangin capture import-lerobot DIR``): one session per episode, so robot
demonstrations can be scored against the human experts' profile.

Per episode: ``observation.state`` and ``action`` become sensor channels (devices ``observation.state``
and ``action``, channel names from the features' ``names``) at the dataset's fps; the per-frame task
becomes steps (a run of equal tasks is one step occurrence; the text after ``"<process>: "`` is the step
name); each camera's segment of the shared MP4 becomes the session's video (sampled frames + stored
media, faces blurred like any import). Episodes written by ``jangin export lerobot`` bring back their
session metadata (skill level, recipe parameters, session labels, start time).

Rows are built by the one set of capture row builders (:mod:`jangin.capture._rows`).
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from jangin.capture._import import ImportResult, _existing_session, camera_rows, session_id_for, store_video
from jangin.capture._rows import DeviceOffset, phase_steps, session_labels, session_row, wide_to_long
from jangin.core import CaptureError, Dataset
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.settings import Settings, get_settings

__all__ = ["import_lerobot"]

log = logging.getLogger(__name__)

_T0 = datetime(2000, 1, 1, tzinfo=UTC)


def _names(feature: dict[str, Any], key: str) -> list[str]:
    n = int(feature["shape"][0])
    names = feature.get("names")
    if isinstance(names, dict):  # {"motors": [...]}
        names = next(iter(names.values()), None)
    if isinstance(names, list) and len(names) == n and all(isinstance(x, str) for x in names):
        return list(names)
    return [f"{key}_{i}" for i in range(n)]


def _tasks(root: Path) -> dict[int, str]:
    import pyarrow.parquet as pq

    t = pq.read_table(root / "meta" / "tasks.parquet")
    text = next((c for c in ("task", "__index_level_0__") if c in t.column_names), None)
    if text is None or "task_index" not in t.column_names:
        raise CaptureError(f"{root / 'meta/tasks.parquet'}: no task / task_index columns")
    return dict(zip(t.column("task_index").to_pylist(), t.column(text).to_pylist(), strict=True))


def _segment(src: Path, dst: Path, start_s: float, end_s: float, fps: float) -> int:
    """Copy the frames of ``[start_s, end_s)`` of ``src`` into a new MP4 (re-encoded, time from 0)."""
    import av

    n = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ist = inp.streams.video[0]
        tb = float(ist.time_base) if ist.time_base else 1.0 / fps
        ost: Any = None
        for fr in inp.decode(ist):
            t = (fr.pts or 0) * tb
            if t < start_s - 0.5 / fps:
                continue
            if t >= end_s - 0.5 / fps:
                break
            if ost is None:
                ost = out.add_stream("libx264", rate=round(fps))
                ost.width, ost.height, ost.pix_fmt = (
                    fr.width - fr.width % 2,
                    fr.height - fr.height % 2,
                    "yuv420p",
                )
                ost.options = {"crf": "18", "preset": "veryfast"}
            img = fr.to_ndarray(format="rgb24")[: ost.height, : ost.width]
            nf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img, np.uint8), format="rgb24")
            nf.pts = n
            n += 1
            for p in ost.encode(nf):
                out.mux(p)
        if ost is not None:
            for p in ost.encode():
                out.mux(p)
    return n


def import_lerobot(
    ds: Dataset,
    directory: str | Path,
    *,
    process: str | None = None,
    site: str = "lerobot",
    settings: Settings | None = None,
    deidentify: bool = True,
    frame_interval_s: float = 1.0,
    progress: ProgressFn = null_progress,
) -> list[ImportResult]:
    """Import every episode of the LeRobot v3.0 dataset in ``directory`` as a session.

    Args:
        ds: Target dataset.
        directory: The LeRobot dataset root (with ``meta/info.json``).
        process: Process name of the sessions [default: the episode's ``jangin/process``, else the
            dataset's ``robot_type``].
        site: Site of the sessions (with the episode key, it makes the session id).
        settings: Site settings.
        deidentify: Blur faces in the stored video and frames (as every import does).
        frame_interval_s: Seconds between sampled frames.
        progress: Progress callback (one step per episode).

    Returns:
        One result per episode (already imported ones ``skipped``).

    Raises:
        CaptureError: Not a LeRobot v3.0 dataset, or a file it names is missing.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(directory)
    settings = settings or get_settings()
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise CaptureError(
            f"{info_path}: not found", hint="give the root of a LeRobot dataset (meta/info.json)"
        )
    info = json.loads(info_path.read_text())
    version = str(info.get("codebase_version"))
    if not version.startswith("v3"):
        raise CaptureError(
            f"{info_path}: codebase_version {version}: only LeRobot v3.x datasets are read",
            hint="convert it with LeRobot's convert_dataset_v21_to_v30",
        )
    fps = float(info["fps"])
    feats = info["features"]
    groups = {k: _names(feats[k], k.split(".")[-1]) for k in ("observation.state", "action") if k in feats}
    videos = [k for k, f in feats.items() if f.get("dtype") == "video"]
    tasks = _tasks(root)
    ep_files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not ep_files:
        raise CaptureError(f"{root / 'meta/episodes'}: no episode files")
    episodes = pa.concat_tables([pq.read_table(p) for p in ep_files], promote_options="default").to_pylist()
    dataset_name = root.resolve().name
    results: list[ImportResult] = []
    for i, ep in enumerate(sorted(episodes, key=lambda e: e["episode_index"])):
        progress("import lerobot", i, len(episodes))
        idx = int(ep["episode_index"])
        key = ep.get("jangin/session_id") or f"{dataset_name}-ep{idx:06d}"
        sid = session_id_for(site, key)
        res = ImportResult(session_id=sid, session_key=key)
        results.append(res)
        if _existing_session(ds, sid):
            res.skipped = True
            continue
        data_path = root / info["data_path"].format(
            chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"]
        )
        if not data_path.is_file():
            raise CaptureError(f"{data_path}: not found (episode {idx})")
        data = pq.read_table(data_path, filters=[("episode_index", "=", idx)]).sort_by("frame_index")
        started = ep.get("jangin/started_at")
        start = datetime.fromisoformat(started) if started else _T0 + timedelta(hours=idx)
        start_us = int(start.timestamp() * 1e6)
        ts = data.column("timestamp").to_numpy().astype(np.float64)
        t_us = start_us + np.rint(ts * 1e6).astype(np.int64)
        tables = []
        for key_, names in groups.items():
            col = data.column(key_)
            flat = (
                (
                    pc.list_flatten(col)
                    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type)
                    else col
                )
                .to_numpy(zero_copy_only=False)
                .astype(np.float64)
            )  # shape (1,): a scalar column
            m = flat.reshape(len(ts), len(names))
            table, _ = wide_to_long(
                sid,
                key_,
                t_us - start_us,
                {n: m[:, j] for j, n in enumerate(names)},
                None,
                offset_us=start_us,
            )
            tables.append(table)
            res.samples += table.num_rows
        task_text = [tasks.get(int(t), "") for t in data.column("task_index").to_pylist()]
        step_names = pa.array([t.split(": ", 1)[-1] if t else "" for t in task_text], pa.string())
        events = phase_steps(sid, t_us, step_names, column="task", author="lerobot") if len(ts) else []
        proc = process or ep.get("jangin/process") or info.get("robot_type")
        params = json.loads(ep.get("jangin/parameters") or "{}")
        answers = {
            j["question"]: j["answer"]
            for j in json.loads(ep.get("jangin/judgments") or "[]")
            if j.get("source") != "event" and j.get("question")
        }
        labels = session_labels(sid, answers, author="lerobot")
        frames: list[dict[str, Any]] = []
        media: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="jangin-lerobot-") as tmp:
            blur = None
            if videos and deidentify:
                from jangin.capture._video import FaceBlurrer

                blur = FaceBlurrer()
            for vk in videos:
                vpath = root / info["video_path"].format(
                    video_key=vk,
                    chunk_index=ep[f"videos/{vk}/chunk_index"],
                    file_index=ep[f"videos/{vk}/file_index"],
                )
                if not vpath.is_file():
                    raise CaptureError(f"{vpath}: not found (episode {idx}, {vk})")
                cam = vk.removeprefix("observation.images.")
                seg = Path(tmp) / f"{cam}.mp4"
                got = _segment(
                    vpath,
                    seg,
                    float(ep[f"videos/{vk}/from_timestamp"]),
                    float(ep[f"videos/{vk}/to_timestamp"]),
                    fps,
                )
                if got == 0:
                    continue
                fr, med, faces = camera_rows(
                    sid,
                    cam,
                    seg,
                    video_start=start,
                    offset_s=0.0,
                    events=[],
                    frame_interval_s=frame_interval_s,
                    blur=blur,
                    source_uri=str(vpath.relative_to(root)),
                    station=ep.get("jangin/station"),
                )
                store_video(ds, seg, med, blur=blur)
                frames += fr
                media.append(med)
                res.faces_blurred += faces
            txn = (f"import-lerobot/{sid}", 1)
            if tables:
                ds.append("sensor_samples", pa.concat_tables(tables), source=str(data_path), txn=txn)
            if events:
                ds.append("events", events, source=str(data_path), txn=txn)
            if labels:
                ds.append("labels", labels, source=str(root), txn=txn)
            if frames:
                ds.append("frames", frames, source=str(root), txn=txn)
            if media:
                ds.append("media", media, txn=txn)
        res.events, res.labels, res.frames = len(events), len(labels), len(frames)
        end = start + timedelta(seconds=float(ts[-1]) if len(ts) else 0.0)
        row = session_row(
            sid,
            session_key=key,
            technician=None,
            skill_level=ep.get("jangin/skill_level") or "unknown",
            site=site,
            line=None,
            station=ep.get("jangin/station"),
            process=proc,
            task=None,
            started_at=start,
            ended_at=end,
            devices=[DeviceOffset(k, "lerobot", 0.0) for k in groups]
            + [DeviceOffset(v.removeprefix("observation.images."), "camera", 0.0) for v in videos],
            offsets=None,
            status="processed",
            source="lerobot",
            parameters=params,
            process_definition=proc if proc and _registered(ds, proc) else None,
            meta={"lerobot": {"dataset": str(root), "episode_index": idx, "fps": fps}},
        )
        ds.append("sessions", [row], txn=(f"import-lerobot/{sid}", 1))
    progress("import lerobot", len(episodes), len(episodes))
    return results


def _registered(ds: Dataset, name: str) -> bool:
    from jangin.core.process_definition import get_process

    return get_process(ds, name) is not None


def register(app: Any) -> None:
    """``jangin capture import-lerobot`` (entry point ``capture-lerobot`` of group ``jangin.cli``)."""
    from jangin.capture._lerobot_cli import import_lerobot_cmd
    from jangin.core.cli import command_group

    command_group(app, "capture").command("import-lerobot")(import_lerobot_cmd)
