"""``jangin view SESSION [--rrd FILE | --serve]``: a session as a Rerun recording.

Everything on one timeline ``time`` (the session's reference clock):

* ``channels/<device>/<channel>`` — every channel at its native rate (``send_columns``: one call each);
* ``video/<camera>`` — the stored (de-identified) video as an asset with a frame reference per frame;
* ``frames/<camera>`` — the sampled JPEG frames, with ``frames/<camera>/labels`` boxes from the labels;
* ``events`` — steps, adjustments, judgments, notes as text logs; ``labels/spans``, ``labels/session``;
* ``inspections/<camera>`` — verdicts of the models at this station during the session, and their score;
* ``skill/<step>/<channel>/{value,median,lo,hi}`` — the session against the experts' band, and
  ``skill/deviations`` — when a skill profile of the process exists (else a note says why not).

``rerun-sdk`` is optional (``pip install 'jangin-inference[viewer]'``) and imported only here.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from jangin.core import InferenceError, NotFoundError

if TYPE_CHECKING:
    from jangin.core import Dataset

__all__ = ["ViewResult", "rerun_or_hint", "view_session"]

log = logging.getLogger(__name__)

TIMELINE = "time"


class ViewResult(dict[str, int]):
    """Rows logged per entity path; ``notes`` says what was left out and why."""

    notes: list[str]


def rerun_or_hint() -> Any:
    """The ``rerun`` module, or an InferenceError naming the extra to install."""
    try:
        import rerun
    except ImportError as exc:
        raise InferenceError(
            "the Rerun viewer support is not installed (module rerun)",
            hint="pip install 'jangin-inference[viewer]'  (rerun-sdk, MIT/Apache-2.0)",
        ) from exc
    return rerun


def _ns(us: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return (np.asarray(us, np.int64) * 1000).astype("datetime64[ns]")


def _col(rr: Any, us: Any) -> list[Any]:
    return [rr.TimeColumn(TIMELINE, timestamp=_ns(np.atleast_1d(np.asarray(us, np.int64))))]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(name)) or "_"


def view_session(
    ds: Dataset,
    session_id: str,
    *,
    rrd: str | Path | None = None,
    recording: Any = None,
    skill: bool = True,
) -> ViewResult:
    """Log one session to a Rerun recording (``rrd`` file, or the given ``recording`` stream).

    Raises:
        NotFoundError: No such session.
        InferenceError: rerun-sdk is not installed.
    """
    import pyarrow as pa

    from jangin.core.timeseries import read_channels

    rr = rerun_or_hint()
    sess = ds.query(
        f"SELECT * FROM current_sessions WHERE session_id = '{session_id.replace(chr(39), '')}'"
    ).to_pylist()
    if not sess:
        raise NotFoundError(f"no session {session_id!r}", hint="`jangin capture sessions ls` lists them")
    s = sess[0]
    rec = recording or rr.RecordingStream("jangin", recording_id=session_id)
    if rrd is not None:
        Path(rrd).parent.mkdir(parents=True, exist_ok=True)
        rec.save(str(rrd))
    out = ViewResult()
    out.notes = []

    def count(path: str, n: int) -> None:
        out[path] = out.get(path, 0) + int(n)

    # channels, native rate, one send_columns per channel
    filt = [("session_id", "=", session_id)]
    devs = ds.read("sensor_samples", columns=["device", "channel"], filters=filt)
    device_of = dict(zip(devs.column("channel").to_pylist(), devs.column("device").to_pylist(), strict=True))
    for ch, (t, v) in read_channels(ds, session_id).items():
        path = f"channels/{_safe(device_of.get(ch, 'sensors'))}/{_safe(ch)}"
        rec.log(path, rr.SeriesLines(names=ch), static=True)
        rec.send_columns(path, indexes=_col(rr, t), columns=rr.Scalars.columns(scalars=v))
        count(path, len(t))

    # stored video as an asset, one frame reference per frame
    for m in ds.read("media", filters=filt).to_pylist():
        path = f"video/{_safe(m['camera'])}"
        file = ds.root / m["uri"]
        if not file.is_file():
            out.notes.append(f"{path}: {m['uri']} is missing")
            continue
        asset, pts, note = _asset(rr, file)
        if note:
            out.notes.append(f"{path}: {note}")
        rec.log(path, asset, static=True)
        start_us = int(m["started_at"].timestamp() * 1e6) if m["started_at"] else 0
        rec.send_columns(
            path,
            indexes=_col(rr, start_us + pts // 1000),
            columns=rr.VideoFrameReference.columns_nanos(pts),
        )
        count(path, len(pts))

    # sampled frames, and the boxes labelled on them
    frames = ds.read("frames", columns=["frame_id", "camera", "ts", "image", "width", "height"], filters=filt)
    boxes = ds.query(
        "SELECT frame_id, name, bbox_xyxy_norm FROM current_labels "
        f"WHERE session_id = '{session_id}' AND target = 'frame' AND kind = 'box'"
    ).to_pylist()
    by_frame: dict[str, list[dict[str, Any]]] = {}
    for b in boxes:
        by_frame.setdefault(b["frame_id"], []).append(b)
    for f in frames.to_pylist():
        cam = _safe(f["camera"] or "camera")
        t_us = int(f["ts"].timestamp() * 1e6)
        rec.set_time(TIMELINE, timestamp=_ns(np.array([t_us]))[0])
        rec.log(f"frames/{cam}", rr.EncodedImage(contents=f["image"], media_type="image/jpeg"))
        count(f"frames/{cam}", 1)
        bx = by_frame.get(f["frame_id"], [])
        if bx:
            arr = np.array([b["bbox_xyxy_norm"] for b in bx], np.float64) * np.array(
                [f["width"], f["height"]] * 2
            )
            rec.log(
                f"frames/{cam}/labels",
                rr.Boxes2D(array=arr, array_format=rr.Box2DFormat.XYXY, labels=[b["name"] for b in bx]),
            )
            count(f"frames/{cam}/labels", len(bx))

    # events and labels as text logs
    ev = ds.read("events", columns=["ts", "kind", "name", "value", "occurrence"], filters=filt).sort_by("ts")
    if ev.num_rows:
        texts = [
            f"{k}: {n or ''}{f' #{o}' if o and o > 1 else ''}{f' = {v}' if v else ''}"
            for k, n, v, o in zip(
                *(ev.column(c).to_pylist() for c in ("kind", "name", "value", "occurrence")), strict=True
            )
        ]
        levels = [
            "WARN" if k in ("judgment", "adjustment") else "INFO" for k in ev.column("kind").to_pylist()
        ]
        rec.send_columns(
            "events",
            indexes=_col(rr, ev.column("ts").cast(pa.int64()).to_numpy()),
            columns=rr.TextLog.columns(text=texts, level=levels),
        )
        count("events", ev.num_rows)
    labels = ds.query(
        "SELECT target, ts_start, ts_end, channel, name, question, source FROM current_labels "
        f"WHERE session_id = '{session_id}' AND target IN ('span', 'session')"
    ).to_pylist()
    for lab in labels:
        what = f"{lab['question'] or 'label'}: {lab['name']} ({lab['source']})"
        if lab["target"] == "span" and lab["ts_start"] is not None:
            rec.set_time(TIMELINE, timestamp=_ns(np.array([int(lab["ts_start"].timestamp() * 1e6)]))[0])
            end = f" until {lab['ts_end'].isoformat()}" if lab["ts_end"] else ""
            on = f" on {lab['channel']}" if lab["channel"] else ""
            rec.log("labels/spans", rr.TextLog(f"{what}{on}{end}"))
            count("labels/spans", 1)
        else:
            rec.log("labels/session", rr.TextLog(what), static=True)
            count("labels/session", 1)

    # model verdicts at this station during the session
    if s["station"] and s["started_at"]:
        end = s["ended_at"] or frames_end(frames) or s["started_at"]
        insp = ds.query(
            "SELECT ts, camera, model, model_version, verdict, score FROM inspections "
            f"WHERE station = '{s['station']}' AND ts >= TIMESTAMPTZ '{s['started_at'].isoformat()}' "
            f"AND ts <= TIMESTAMPTZ '{end.isoformat()}' ORDER BY ts"
        )
        for cam in sorted({c or "camera" for c in insp.column("camera").to_pylist()}):
            part = [r for r in insp.to_pylist() if (r["camera"] or "camera") == cam]
            path = f"inspections/{_safe(cam)}"
            t_ins = [int(r["ts"].timestamp() * 1e6) for r in part]
            rec.send_columns(
                path,
                indexes=_col(rr, t_ins),
                columns=rr.TextLog.columns(
                    text=[f"{r['verdict']} {r['model']}:{r['model_version']}" for r in part],
                    level=["ERROR" if r["verdict"] == "NG" else "INFO" for r in part],
                ),
            )
            count(path, len(part))
            sc = [(ti, r["score"]) for ti, r in zip(t_ins, part, strict=True) if r["score"] is not None]
            if sc:
                rec.send_columns(
                    f"{path}/score",
                    indexes=_col(rr, [a for a, _ in sc]),
                    columns=rr.Scalars.columns(scalars=np.array([b for _, b in sc], np.float64)),
                )
                count(f"{path}/score", len(sc))
    if skill:
        _skill(ds, session_id, rec, rr, out, count)
    rec.flush()
    if rrd is not None:
        rec.disconnect()
    return out


def _asset(rr: Any, file: Path) -> tuple[Any, npt.NDArray[Any], str]:
    """The video as a Rerun asset and its frame times (ns). Rerun plays H.264/H.265/AV1 only: other
    codecs (the capture's de-identified MPEG-4 Part 2) are transcoded to H.264 in memory first."""
    asset = rr.AssetVideo(path=str(file))
    try:
        return asset, np.asarray(asset.read_frame_timestamps_nanos(), np.int64), ""
    except RuntimeError as exc:
        import io

        import av

        buf = io.BytesIO()
        with av.open(str(file)) as inp, av.open(buf, "w", format="mp4") as out:
            ist = inp.streams.video[0]
            ost = out.add_stream("libx264", rate=ist.average_rate or 25)
            ost.width, ost.height, ost.pix_fmt = (
                ist.width - ist.width % 2,
                ist.height - ist.height % 2,
                "yuv420p",
            )
            ost.options = {"preset": "ultrafast", "crf": "23"}
            ost.time_base = ist.time_base
            for fr in inp.decode(ist):
                img = fr.reformat(width=ost.width, height=ost.height, format="yuv420p")
                img.pts, img.time_base = fr.pts, fr.time_base
                for p in ost.encode(img):
                    out.mux(p)
            for p in ost.encode():
                out.mux(p)
        asset = rr.AssetVideo(contents=buf.getvalue(), media_type="video/mp4")
        pts = np.asarray(asset.read_frame_timestamps_nanos(), np.int64)
        return asset, pts, f"transcoded to H.264 for the viewer ({exc})"


def frames_end(frames: Any) -> Any:
    """The time of the last sampled frame, or None."""
    ts = frames.column("ts").to_pylist() if frames.num_rows else []
    return max(ts) if ts else None


def _skill(ds: Dataset, session_id: str, rec: Any, rr: Any, out: ViewResult, count: Any) -> None:
    """The session against the experts' band, when a skill profile of its process exists."""
    from jangin.core import JanginError, ModelRegistry
    from jangin.core.skill import read_session
    from jangin.inference._skill import find_profile, score_session

    try:
        sig = read_session(ds, session_id)
        name, prof = find_profile(ModelRegistry(ds.models_dir), sig.process, parameters=sig.parameters)
        score = score_session(prof, sig, profile_name=name)
    except JanginError as exc:
        out.notes.append(f"skill: not shown ({exc.message})")
        return
    rec.log("skill", rr.TextLog(f"skill score {score.score:.1f} against {name}"), static=True)
    seen: Counter[str] = Counter()
    for (step, ch), c in score.curves.items():
        base = f"skill/{_safe(step)}/{_safe(ch)}"
        seen[base] += 1
        if seen[base] > 1:
            base = f"{base}_{seen[base]}"
        t = np.asarray(c["t_us"], np.float64).astype(np.int64)
        for part in ("value", "median", "lo", "hi"):
            rec.send_columns(
                f"{base}/{part}",
                indexes=_col(rr, t),
                columns=rr.Scalars.columns(scalars=np.asarray(c[part], np.float64)),
            )
            count(f"{base}/{part}", len(t))
    if score.deviations:
        rec.send_columns(
            "skill/deviations",
            indexes=_col(rr, [d.start_us for d in score.deviations]),
            columns=rr.TextLog.columns(
                text=[
                    d.message or f"{d.step} {d.channel} {d.direction} ({d.severity})"
                    for d in score.deviations
                ],
                level=["ERROR" if d.severity != "minor" else "WARN" for d in score.deviations],
            ),
        )
        count("skill/deviations", len(score.deviations))


def serve(ds: Dataset, session_id: str, *, open_browser: bool = False, web_port: int = 9090) -> str:
    """Log the session to an in-process gRPC server and serve the Rerun web viewer on loopback.

    Returns:
        The viewer URL (the caller keeps the process alive).
    """
    rr = rerun_or_hint()
    rec = rr.RecordingStream("jangin", recording_id=session_id)
    uri = rec.serve_grpc()
    view_session(ds, session_id, recording=rec)
    rr.serve_web_viewer(connect_to=uri, open_browser=open_browser, web_port=web_port)
    return f"http://127.0.0.1:{web_port}/?url={uri}"


def register(app: Any) -> None:
    """``jangin view`` (entry point ``view`` of group ``jangin.cli``)."""
    from jangin.inference._view_cli import view

    app.command("view")(view)
