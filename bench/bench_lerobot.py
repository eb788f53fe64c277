"""LeRobot export at scale: N generated sessions (multi-rate channels + a video each) exported in one
run with a progress bar; episodes/s, frames/s and the export's peak RSS, against a raw PyAV re-encode
of the same videos (decode + H.264 encode into one file, same settings) in the same run.

    python bench/bench_lerobot.py --sessions 100 --seconds 6 --size 160x120

Memory is bounded when the peak RSS of exporting N sessions is about that of exporting N/5: the export
streams one episode at a time. Each export runs in a child process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

RATES = {"set_a": 50.0, "set_b": 20.0, "temp": 10.0, "vib": 200.0}
DEFINITION = """
name: bench_press
channels:
  - {name: set_a, role: operator}
  - {name: set_b, role: operator}
  - {name: temp, role: machine}
  - {name: vib, role: machine}
"""


def _video(path: Path, n: int, fps: int, w: int, h: int, seed: int) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(n):
            fr = av.VideoFrame.from_ndarray(np.roll(base, i * 2, axis=1), format="rgb24")
            fr.pts = i
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def generate(root: Path, sessions: int, seconds: float, fps: int, w: int, h: int) -> Any:
    import pyarrow as pa

    from jangin.core import Dataset
    from jangin.core.process_definition import ProcessDefinition, register_process
    from jangin.core.schema import TS

    ds = Dataset.create(root)
    register_process(ds, ProcessDefinition.from_yaml(DEFINITION))
    t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    rows, media, parts = [], [], []
    for k in range(sessions):
        sid = f"b{k:04d}"
        start = t0 + timedelta(minutes=k)
        s_us = int(start.timestamp() * 1e6)
        for ch, rate in RATES.items():
            t = np.arange(0, seconds, 1 / rate)
            m = len(t)
            parts.append(
                pa.table(
                    {
                        "session_id": pa.array([sid] * m),
                        "device": pa.array(["plc"] * m),
                        "channel": pa.array([ch] * m),
                        "ts": pa.array((s_us + np.rint(t * 1e6)).astype(np.int64)).cast(TS),
                        "value": pa.array(np.sin(t + k)),
                        "unit": pa.array(["u"] * m),
                    }
                )
            )
        n = int(seconds * fps)
        uri = f"media/{sid}/cam.mp4"
        _video(root / uri, n, fps, w, h, k)
        media.append(
            {
                "session_id": sid,
                "camera": "cam",
                "uri": uri,
                "fps": float(fps),
                "frames": n,
                "duration_s": n / fps,
                "width": w,
                "height": h,
                "started_at": start,
                "deidentified": True,
                "sha256": "-",
            }
        )
        rows.append(
            {
                "session_id": sid,
                "skill_level": "expert",
                "process": "bench_press",
                "started_at": start,
                "status": "finished",
                "updated_at": datetime.now(UTC),
                "process_definition": "bench_press",
            }
        )
        if len(parts) > 200:
            ds.append("sensor_samples", pa.concat_tables(parts))
            parts = []
    if parts:
        ds.append("sensor_samples", pa.concat_tables(parts))
    ds.append("media", media)
    ds.append("sessions", rows)
    return ds


def _export_child(root: str, out: str, limit: int | None, q: Any) -> None:
    from jangin.core import Dataset
    from jangin.core.cli import progress_bar
    from jangin.training._lerobot import export_lerobot

    ds = Dataset.open(root)
    ids = None
    if limit is not None:
        ids = ds.query(f"SELECT session_id FROM current_sessions ORDER BY session_id LIMIT {limit}").column(0)
        ids = ids.to_pylist()
    t = time.perf_counter()
    with progress_bar(sys.stderr.isatty()) as bar:
        res = export_lerobot(ds, out, session_ids=ids, progress=bar)
    q.put(
        {
            "seconds": time.perf_counter() - t,
            "episodes": res.episodes,
            "frames": res.frames,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def _reencode_child(root: str, out: str, fps: int, q: Any) -> None:
    """The baseline: decode every session's video and encode it into one H.264 file (same settings)."""
    import av

    t = time.perf_counter()
    frames = 0
    with av.open(out, "w") as o:
        s = None
        for f in sorted(Path(root, "media").glob("*/cam.mp4")):
            with av.open(str(f)) as c:
                for fr in c.decode(video=0):
                    if s is None:
                        s = o.add_stream("libx264", rate=fps)
                        s.width, s.height, s.pix_fmt = fr.width, fr.height, "yuv420p"
                        s.options = {"crf": "20", "g": str(max(1, fps // 2)), "preset": "ultrafast"}
                    img = av.VideoFrame.from_ndarray(fr.to_ndarray(format="rgb24"), format="rgb24")
                    img.pts = frames
                    frames += 1
                    for p in s.encode(img):
                        o.mux(p)
        if s is not None:
            for p in s.encode():
                o.mux(p)
    q.put(
        {
            "seconds": time.perf_counter() - t,
            "frames": frames,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each session")
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="bench-lerobot-") as tmp:
        t = time.perf_counter()
        generate(Path(tmp) / "ds", a.sessions, a.seconds, a.fps, w, h)
        gen_s = time.perf_counter() - t
        small = _child(
            _export_child, str(Path(tmp) / "ds"), str(Path(tmp) / "small"), max(1, a.sessions // 5)
        )
        full = _child(_export_child, str(Path(tmp) / "ds"), str(Path(tmp) / "full"), None)
        base = _child(_reencode_child, str(Path(tmp) / "ds"), str(Path(tmp) / "raw.mp4"), a.fps)
    fig = {
        "sessions": a.sessions,
        "seconds_per_session": a.seconds,
        "video": f"{w}x{h}@{a.fps}",
        "generate_s": round(gen_s, 1),
        "export_s": round(full["seconds"], 2),
        "episodes_per_s": round(full["episodes"] / full["seconds"], 2),
        "frames_per_s": round(full["frames"] / full["seconds"], 1),
        "raw_reencode_s": round(base["seconds"], 2),
        "raw_reencode_frames_per_s": round(base["frames"] / base["seconds"], 1),
        "export_vs_raw_reencode": round(full["seconds"] / base["seconds"], 2),
        "max_rss_mb": round(full["max_rss_mb"], 1),
        f"max_rss_mb_{max(1, a.sessions // 5)}_sessions": round(small["max_rss_mb"], 1),
    }
    print(json.dumps(fig, indent=2))
    if a.json:
        a.json.write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    main()
