"""Export sessions as a LeRobot v3.0 dataset (``jangin export lerobot``): no ``lerobot`` package needed.

Layout written (what LeRobot 0.4.x ``LeRobotDataset(repo_id, root=DIR)`` reads, codebase ``v3.0``)::

    meta/info.json                                   features, fps, path templates, chunking, totals
    meta/stats.json                                  min/max/mean/std/count + q01..q99 per feature
    meta/tasks.parquet                               task text (pandas index "task") -> task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode (where its rows and video are)
    data/chunk-000/file-000.parquet                  one row per frame, many episodes per file
    videos/observation.images.<camera>/chunk-000/file-000.mp4   H.264 yuv420p, many episodes per file
    jangin/native/chunk-000/file-000.parquet         every channel at its native rate (not resampled)
    README.md                                        dataset card with provenance

One session is one episode. Frames are on a regular grid at ``fps`` (default: the video's rate); the
multi-rate channels are put on it with :func:`jangin.core.timeseries.read_aligned` (``asof`` or
``linear``). ``observation.state`` holds the channels whose role in the process definition is
``machine``, ``action`` those with role ``operator``. ``task`` is the process and the step active at
that frame. Episodes are streamed one at a time (memory is bounded by one session).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from jangin.core import ConfigError, NotFoundError
from jangin.core.progress import ProgressFn, null_progress
from jangin.training._lerobot_meta import Stats as _Stats
from jangin.training._lerobot_meta import card as _card
from jangin.training._lerobot_meta import tasks_table as _tasks_table

if TYPE_CHECKING:
    import pyarrow as pa

    from jangin.core import Dataset
    from jangin.core.process_definition import ProcessDefinition

__all__ = ["CODEBASE_VERSION", "LeRobotExport", "export_lerobot"]

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
CHUNK = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK + ".parquet"
NATIVE_PATH = "jangin/native/" + CHUNK + ".parquet"
CHUNKS_SIZE = 1000
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200


@dataclass
class LeRobotExport:
    """What an export wrote."""

    root: Path
    episodes: int = 0
    frames: int = 0
    fps: int = 0
    state: list[str] = field(default_factory=list)
    action: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)


def _sessions(con: Any, where: str | None, session_ids: Sequence[str] | None) -> pa.Table:
    cond = f"WHERE {where}" if where else ""
    if session_ids:
        ids = ", ".join("'" + s.replace("'", "''") + "'" for s in session_ids)
        cond = f"{cond} {'AND' if cond else 'WHERE'} session_id IN ({ids})"
    return _sql(
        con,
        "SELECT session_id, process, process_definition, skill_level, task, started_at, ended_at, parameters, "
        f"station FROM current_sessions {cond} ORDER BY started_at, session_id",
    )


def _sql(con: Any, sql: str) -> pa.Table:
    import duckdb

    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {exc}", hint="--where is SQL over current_sessions") from exc


def _roles(
    defn: ProcessDefinition | None, present: list[str], action: Sequence[str] | None, res: LeRobotExport
) -> tuple[list[str], list[str]]:
    if action:
        missing = [c for c in action if c not in present]
        if missing:
            raise ConfigError(
                f"--action: no channel {', '.join(missing)} in the selected sessions",
                hint=f"channels: {', '.join(present)}",
            )
        act = list(action)
        if defn is None:
            res.warnings.append(
                "no process definition: action = the --action channels, observation.state = every other channel"
            )
        return [c for c in present if c not in act], act
    if defn is None:
        res.warnings.append(
            "no process definition registered for these sessions: every channel goes to observation.state and "
            "there is no action feature (register the definition, or give --action CH,...)"
        )
        return list(present), []
    state = [c.name for c in defn.channels if c.role == "machine" and c.name in present]
    act = [c.name for c in defn.channels if c.role == "operator" and c.name in present]
    unknown = [c for c in present if defn.channel(c) is None]
    if unknown:
        res.warnings.append(
            f"channels not in definition {defn.name}: {', '.join(unknown)} (native table only)"
        )
    return state, act


def _steps(con: Any, id_list: str) -> dict[str, list[tuple[int, int, str]]]:
    """Per session: (start_us, end_us, name) of each step occurrence."""
    rows = _sql(
        con,
        "SELECT session_id, epoch_us(ts) AS t, kind, name, occurrence FROM events "
        f"WHERE session_id IN ({id_list}) AND kind IN ('step_start', 'step_end') ORDER BY session_id, t",
    ).to_pylist()
    open_: dict[tuple[str, str, Any], int] = {}
    out: dict[str, list[tuple[int, int, str]]] = {}
    for r in rows:
        key = (r["session_id"], str(r["name"]), r["occurrence"])
        if r["kind"] == "step_start":
            open_[key] = r["t"]
        elif key in open_:
            out.setdefault(r["session_id"], []).append((open_.pop(key), r["t"], str(r["name"])))
    return {k: sorted(v) for k, v in out.items()}


def _channels(samples: Any, sid: str) -> dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
    """Each channel of a session as (times_us, values), sorted by time, from the table's Arrow dataset
    opened once (partition pruning on session_id; no per-row Python objects)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pds

    t = samples.to_table(columns=["channel", "ts", "value"], filter=pds.field("session_id") == sid)
    enc = pc.dictionary_encode(t.column("channel")).combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False)
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    vals = t.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    out: dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {}
    for i, name in enumerate(enc.dictionary.to_pylist()):
        m = codes == i
        order = np.argsort(ts[m], kind="stable")
        out[str(name)] = (ts[m][order], vals[m][order])
    return dict(sorted(out.items()))


def _judgments(con: Any, id_list: str) -> dict[str, list[dict[str, Any]]]:
    """Per session: its session-level answers (labels) and judgment events."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _sql(
        con,
        "SELECT session_id, question, name AS answer, source FROM current_labels "
        f"WHERE session_id IN ({id_list}) AND target = 'session' "
        "UNION ALL SELECT session_id, coalesce(name, 'judgment'), value, 'event' FROM events "
        f"WHERE session_id IN ({id_list}) AND kind = 'judgment'",
    ).to_pylist():
        out.setdefault(r.pop("session_id"), []).append(r)
    return out


class _VideoSink:
    """One camera's MP4 files: episodes appended frame by frame, rolled over at ``max_mb``."""

    def __init__(self, root: Path, key: str, fps: int, width: int, height: int, crf: int) -> None:
        self.root, self.key, self.fps, self.w, self.h, self.crf = root, key, fps, width, height, crf
        self.chunk, self.file, self.count = 0, 0, 0
        self.container: Any = None
        self.stream: Any = None
        self.stats = _Stats(3)
        self.sampled = 0

    @property
    def path(self) -> Path:
        return self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=self.chunk, file_index=self.file)

    def _open(self) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.path), "w")
        s = self.container.add_stream("libx264", rate=self.fps)
        s.width, s.height, s.pix_fmt = self.w, self.h, "yuv420p"
        s.options = {"crf": str(self.crf), "g": str(max(1, self.fps // 2)), "preset": "ultrafast"}
        self.stream = s
        self.count = 0

    def start_episode(self) -> tuple[int, int, float]:
        if self.container is not None and self.path.stat().st_size > VIDEO_FILE_MB * 1e6:
            self.close()
            self.file += 1
            if self.file >= CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
        if self.container is None:
            self._open()
        return self.chunk, self.file, self.count / self.fps

    def write(self, rgb: npt.NDArray[Any]) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.count
        self.count += 1
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)
        if self.count % 10 == 1:  # image stats on every 10th frame, per channel, 0..1
            self.sampled += 1
            small = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)].reshape(-1, 3) / 255.0
            self.stats.update(small)

    def close(self) -> None:
        if self.container is not None:
            for pkt in self.stream.encode():
                self.container.mux(pkt)
            self.container.close()
            self.container = None


def _frames(path: Path, times_s: npt.NDArray[Any], width: int, height: int) -> Any:
    """RGB frames of a video at the given times (seconds from its start): the last frame at or before
    each time (the first frame before the video starts, the last after it ends)."""
    import av

    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        tb = float(st.time_base) if st.time_base else 0.0
        start = (st.start_time or 0) * tb
        i = 0
        prev: npt.NDArray[Any] | None = None
        for fr in c.decode(st):
            t = (fr.pts * tb - start) if fr.pts is not None else 0.0
            img = None
            while i < len(times_s) and times_s[i] < t - 1e-6:
                if prev is None:
                    img = (
                        img if img is not None else fr.to_ndarray(width=width, height=height, format="rgb24")
                    )
                    yield img
                else:
                    yield prev
                i += 1
            if i >= len(times_s):
                return
            prev = fr.to_ndarray(width=width, height=height, format="rgb24")
        while i < len(times_s):
            yield prev if prev is not None else np.zeros((height, width, 3), np.uint8)
            i += 1


def _even(x: int) -> int:
    return max(2, x - x % 2)


def export_lerobot(
    ds: Dataset,
    out: str | Path,
    *,
    where: str | None = None,
    session_ids: Sequence[str] | None = None,
    fps: int | None = None,
    resample: Literal["asof", "linear"] = "linear",
    action: Sequence[str] | None = None,
    repo_id: str = "jangin/export",
    licence: str = "other",
    allow_identifiable: bool = False,
    crf: int = 20,
    overwrite: bool = False,
    progress: ProgressFn = null_progress,
) -> LeRobotExport:
    """Write the sessions matching ``where`` (SQL over ``current_sessions``) as a LeRobot v3.0 dataset.

    Args:
        ds: Source dataset (read at one snapshot, recorded in the card).
        out: Output folder (must be empty or absent unless ``overwrite``).
        where: SQL condition on ``current_sessions``, e.g. ``skill_level = 'expert'``.
        session_ids: Only these sessions (with ``where``: both must hold).
        fps: Frames per second of the episodes; default the first session's video rate (rounded),
            without video the median native rate of the exported channels.
        resample: ``linear`` interpolation or ``asof`` (last sample at or before each frame).
        action: Channels forming ``action`` when the sessions have no process definition (or to override).
        repo_id: Name written in the card.
        licence: Licence of the exported data (card front matter).
        allow_identifiable: Export videos that were stored without de-identification (refused otherwise).
        crf: H.264 quality (lower: better, bigger).
        overwrite: Replace an existing export in ``out``.
        progress: Progress callback (one step per episode).

    Raises:
        NotFoundError: No session matches.
        ConfigError: Mixed processes, an unknown --action channel, non-de-identified video, a
            non-empty output folder.
    """
    import shutil

    root = Path(out)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{root}: output folder is not empty", hint="give an empty folder or --overwrite"
            )
        shutil.rmtree(root)
    snap = ds.snapshot()
    con = ds.connect(snap)
    try:
        return _export(
            ds,
            con,
            snap,
            root,
            where,
            session_ids,
            fps,
            resample,
            action,
            repo_id,
            licence,
            allow_identifiable,
            crf,
            progress,
        )
    finally:
        con.close()


def _export(
    ds: Dataset,
    con: Any,
    snap: Any,
    root: Path,
    where: str | None,
    session_ids: Sequence[str] | None,
    fps: int | None,
    resample: Literal["asof", "linear"],
    action: Sequence[str] | None,
    repo_id: str,
    licence: str,
    allow_identifiable: bool,
    crf: int,
    progress: ProgressFn,
) -> LeRobotExport:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jangin.core.process_definition import get_process
    from jangin.core.timeseries import _align

    sessions = _sessions(con, where, session_ids)
    if sessions.num_rows == 0:
        raise NotFoundError(
            f"no session matches {where or 'the selection'}", hint="`jangin capture sessions ls`"
        )
    processes = sorted({str(p) for p in sessions.column("process").to_pylist()})
    if len(processes) > 1:
        raise ConfigError(
            f"the selection mixes processes {', '.join(processes)}: one LeRobot dataset has one feature set",
            hint="add e.g. process = '" + processes[0] + "' to --where",
        )
    process = processes[0]
    defn = get_process(ds, (sessions.column("process_definition").to_pylist()[0] or process), snapshot=snap)
    sids = sessions.column("session_id").to_pylist()
    id_list = ", ".join("'" + s.replace("'", "''") + "'" for s in sids)
    chan = _sql(
        con,
        "SELECT channel, any_value(unit) AS unit, count(*) AS n, min(ts) AS t0, max(ts) AS t1 "
        f"FROM sensor_samples WHERE session_id IN ({id_list}) GROUP BY channel ORDER BY channel",
    ).to_pylist()
    present = [r["channel"] for r in chan]
    units = {r["channel"]: r["unit"] for r in chan}
    res = LeRobotExport(root=root, sessions=list(sids))
    state, act = _roles(defn, present, action, res)
    res.state, res.action = state, act
    media = _sql(
        con,
        "SELECT session_id, camera, uri, fps, width, height, started_at, deidentified, duration_s FROM media "
        f"WHERE session_id IN ({id_list}) ORDER BY camera",
    ).to_pylist()
    judgments = _judgments(con, id_list)
    samples = ds.dataset("sensor_samples", version=snap.get("sensor_samples", -1))
    all_steps = _steps(con, id_list)
    cams = sorted({m["camera"] for m in media})
    for m in media:
        if not m["deidentified"]:
            msg = f"session {m['session_id']} camera {m['camera']}: the stored video is NOT de-identified"
            if not allow_identifiable:
                raise ConfigError(msg, hint="de-identify it on import, or pass --allow-identifiable (logged)")
            res.warnings.append(msg + " (exported anyway: --allow-identifiable)")
            log.warning("%s", msg)
    if fps is None:
        vid = [m["fps"] for m in media if m["fps"]]
        if vid:
            fps = round(vid[0])
        else:
            rates = [
                (r["n"] - 1) / max((r["t1"] - r["t0"]).total_seconds(), 1e-9) / len(sids)
                for r in chan
                if r["channel"] in state + act and r["n"] > 1
            ]
            fps = round(float(np.median(rates))) if rates else 10
    fps = max(1, int(fps))
    res.fps, res.cameras = fps, cams
    size = {c: next((m["width"], m["height"]) for m in media if m["camera"] == c) for c in cams}
    size = {c: (_even(int(w or 64)), _even(int(h or 48))) for c, (w, h) in size.items()}
    sinks = {c: _VideoSink(root, f"observation.images.{c}", fps, *size[c], crf) for c in cams}

    task_index: dict[str, int] = {}
    st_state, st_action = _Stats(len(state)), _Stats(len(act))
    st_scalar = {k: _Stats(1) for k in ("timestamp", "frame_index", "episode_index", "index", "task_index")}
    data_writer: Any = None
    data_writer_bytes = [0]
    native_writer: Any = None
    data_file = [0, 0]
    episodes: list[dict[str, Any]] = []
    global_index = 0
    label = (defn.display_name if defn and defn.display_name else process) or "session"
    (root / "meta").mkdir(parents=True, exist_ok=True)

    for ep, row in enumerate(sessions.to_pylist()):
        sid = row["session_id"]
        progress("export lerobot", ep, len(sids))
        smedia = {m["camera"]: m for m in media if m["session_id"] == sid}
        first_cam = smedia[cams[0]] if cams and cams[0] in smedia else None
        native = _channels(samples, sid)
        firsts = [v[0][0] for v in native.values() if len(v[0])]
        lasts = [v[0][-1] for v in native.values() if len(v[0])]
        if first_cam is not None and first_cam["started_at"] is not None:
            t0 = int(first_cam["started_at"].timestamp() * 1e6)
            n = int(np.floor(float(first_cam["duration_s"] or 0) * fps + 1e-6))
        else:
            t0 = int(min(firsts)) if firsts else int(row["started_at"].timestamp() * 1e6)
            t1 = int(max(lasts)) if lasts else t0
            n = int(np.floor((t1 - t0) * fps / 1e6 + 1e-6)) + 1
        n = max(n, 1)
        grid = (t0 + np.rint(np.arange(n) * 1e6 / fps)).astype(np.int64)
        empty = (np.zeros(0, np.int64), np.zeros(0))
        # the capture alignment (jangin.core.timeseries), on the channels already read
        aligned = {c: _align(*native.get(c, empty), grid, resample, None) for c in state + act}
        steps = all_steps.get(sid, [])
        names = np.full(n, "", object)
        for b, e, name in steps:
            names[(grid >= b) & (grid < e)] = name
        tasks_here: list[str] = []
        tidx = np.zeros(n, np.int64)
        for i, nm in enumerate(names):
            text = f"{label}: {nm}" if nm else label
            if text not in task_index:
                task_index[text] = len(task_index)
            if text not in tasks_here:
                tasks_here.append(text)
            tidx[i] = task_index[text]
        cols: dict[str, Any] = {}
        for key, chans in (("observation.state", state), ("action", act)):
            if not chans:
                continue
            m = np.stack([aligned[c] for c in chans], 1).astype(np.float32)
            (st_state if key == "observation.state" else st_action).update(m)
            # LeRobot reads a feature of shape (1,) as a scalar column, longer ones as fixed-size lists
            flat = pa.array(m.reshape(-1), pa.float32())
            cols[key] = flat if len(chans) == 1 else pa.FixedSizeListArray.from_arrays(flat, len(chans))
        ts = (np.arange(n) / fps).astype(np.float32)
        cols["timestamp"] = pa.array(ts, pa.float32())
        cols["frame_index"] = pa.array(np.arange(n), pa.int64())
        cols["episode_index"] = pa.array(np.full(n, ep), pa.int64())
        cols["index"] = pa.array(np.arange(global_index, global_index + n), pa.int64())
        cols["task_index"] = pa.array(tidx, pa.int64())
        for k in st_scalar:
            st_scalar[k].update(cols[k].to_numpy().astype(np.float64))
        table = pa.table(cols)
        if data_writer is not None and data_writer_bytes[0] > DATA_FILE_MB * 1e6:
            data_writer.close()
            data_writer = None
            data_file[1] += 1
            if data_file[1] >= CHUNKS_SIZE:
                data_file[:] = [data_file[0] + 1, 0]
        if data_writer is None:
            p = root / DATA_PATH.format(chunk_index=data_file[0], file_index=data_file[1])
            p.parent.mkdir(parents=True, exist_ok=True)
            data_writer = pq.ParquetWriter(p, table.schema)
            data_writer_bytes[0] = 0
        data_writer.write_table(table)
        data_writer_bytes[0] += table.nbytes
        # native-rate channels beside the dataset (no resampling)
        parts = [
            pa.table(
                {
                    "episode_index": pa.array(np.full(len(t), ep), pa.int64()),
                    "channel": pa.array([c] * len(t), pa.string()),
                    "timestamp": pa.array((t - t0) / 1e6, pa.float64()),
                    "value": pa.array(v, pa.float64()),
                    "unit": pa.array([units.get(c)] * len(t), pa.string()),
                }
            )
            for c, (t, v) in native.items()
        ]
        if parts:
            nat = pa.concat_tables(parts)
            if native_writer is None:
                p = root / NATIVE_PATH.format(chunk_index=0, file_index=0)
                p.parent.mkdir(parents=True, exist_ok=True)
                native_writer = pq.ParquetWriter(p, nat.schema)
            native_writer.write_table(nat)
        del native
        epi: dict[str, Any] = {
            "episode_index": ep,
            "tasks": tasks_here,
            "length": n,
            "data/chunk_index": data_file[0],
            "data/file_index": data_file[1],
            "dataset_from_index": global_index,
            "dataset_to_index": global_index + n,
        }
        for cam in cams:
            sink = sinks[cam]
            c_idx, f_idx, from_ts = sink.start_episode()
            m = smedia.get(cam)
            if m is None:
                res.warnings.append(f"session {sid} has no camera {cam}: black frames")
                frames: Any = (np.zeros((sink.h, sink.w, 3), np.uint8) for _ in range(n))
            else:
                v0 = m["started_at"] or row["started_at"]  # a video without a start: the session's
                off = (grid - int(v0.timestamp() * 1e6)) / 1e6
                frames = _frames(ds.root / m["uri"], off, sink.w, sink.h)
            for img in frames:
                sink.write(img)
            key = f"videos/observation.images.{cam}"
            epi[f"{key}/chunk_index"] = c_idx
            epi[f"{key}/file_index"] = f_idx
            epi[f"{key}/from_timestamp"] = float(from_ts)
            epi[f"{key}/to_timestamp"] = float(from_ts + n / fps)
        epi["meta/episodes/chunk_index"] = 0
        epi["meta/episodes/file_index"] = 0
        params = row["parameters"]
        epi["jangin/session_id"] = sid
        epi["jangin/process"] = process
        epi["jangin/skill_level"] = row["skill_level"]
        epi["jangin/station"] = row["station"]
        epi["jangin/started_at"] = row["started_at"].isoformat() if row["started_at"] else None
        epi["jangin/parameters"] = json.dumps(dict(params) if params else {})
        epi["jangin/judgments"] = json.dumps(judgments.get(sid, []))
        epi["jangin/steps"] = json.dumps([[(b - t0) / 1e6, (e - t0) / 1e6, nm] for b, e, nm in steps])
        episodes.append(epi)
        global_index += n
    progress("export lerobot", len(sids), len(sids))
    if data_writer is not None:
        data_writer.close()
    if native_writer is not None:
        native_writer.close()
    for sink in sinks.values():
        sink.close()

    ep_path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    ep_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episodes), ep_path)
    tasks = sorted(task_index, key=task_index.__getitem__)
    pq.write_table(_tasks_table(tasks), root / "meta" / "tasks.parquet")

    features: dict[str, Any] = {}
    if state:
        features["observation.state"] = {"dtype": "float32", "shape": [len(state)], "names": state}
    if act:
        features["action"] = {"dtype": "float32", "shape": [len(act)], "names": act}
    for cam in cams:
        s = sinks[cam]
        features[f"observation.images.{cam}"] = {
            "dtype": "video",
            "shape": [s.h, s.w, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": s.h,
                "video.width": s.w,
                "video.codec": "h264",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        }
    for k in ("timestamp",):
        features[k] = {"dtype": "float32", "shape": [1], "names": None}
    for k in ("frame_index", "episode_index", "index", "task_index"):
        features[k] = {"dtype": "int64", "shape": [1], "names": None}
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": process,
        "total_episodes": len(episodes),
        "total_frames": global_index,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": VIDEO_FILE_MB,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cams else None,
        "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    stats: dict[str, Any] = {k: v.result() for k, v in st_scalar.items()}
    if state:
        stats["observation.state"] = st_state.result()
    if act:
        stats["action"] = st_action.result()
    for cam in cams:
        img = sinks[cam].stats.result((3, 1, 1))
        img["count"] = [sinks[cam].sampled]  # frames sampled (LeRobot counts images, not pixels)
        stats[f"observation.images.{cam}"] = img
    (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    res.episodes, res.frames, res.tasks = len(episodes), global_index, tasks
    deid = (
        "no video"
        if not media
        else (
            "every video de-identified (faces blurred at capture)"
            if all(m["deidentified"] for m in media)
            else "SOME VIDEO IS NOT DE-IDENTIFIED (exported with --allow-identifiable)"
        )
    )
    _card(
        root,
        res,
        info,
        repo_id=repo_id,
        licence=licence,
        where=where,
        snapshot=snap.to_dict(),
        resample=resample,
        deid=deid,
        units=units,
        defn_name=defn.name if defn else None,
    )
    return res
