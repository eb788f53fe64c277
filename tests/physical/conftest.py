"""A small synthetic dataset for the physical-AI tests: two sessions of a registered process with
multi-rate channels (operator and machine roles), steps, a session label and a de-identified video
whose frame brightness encodes the frame number (so decoded frames can be checked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DEFINITION = """
name: demo_press
display_name: Demo press
channels:
  - {name: force_set_N, unit: N, role: operator}
  - {name: feed_mm_s, unit: mm/s, role: operator}
  - {name: temp_C, unit: degC, role: machine, quantity: interval}
  - {name: vib_g, unit: g, role: machine}
  - {name: ambient_C, unit: degC, role: context}
"""

RATES = {"force_set_N": 50.0, "feed_mm_s": 20.0, "temp_C": 10.0, "vib_g": 100.0, "ambient_C": 1.0}
FPS = 10
DURATION_S = 3.0
W, H = 64, 48


def signal(channel: str, t_s: np.ndarray, k: int) -> np.ndarray:
    """The value of ``channel`` at ``t_s`` seconds into session ``k`` (smooth: linear resampling is exact
    up to its curvature)."""
    base = {"force_set_N": 100.0, "feed_mm_s": 5.0, "temp_C": 20.0, "vib_g": 0.1, "ambient_C": 22.0}[channel]
    return base + (k + 1) * t_s + 0.5 * np.sin(t_s)


def brightness(i: int) -> int:
    """Mean grey level of video frame ``i`` (steps of 6: survives lossy coding)."""
    return 20 + 6 * i


def write_video(path: Path, n: int, codec: str = "libx264") -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"crf": "10"} if codec == "libx264" else {"qscale": "2"}
        for i in range(n):
            # a checkerboard (sharp: frame sampling keeps it) whose mean is brightness(i)
            yy, xx = np.mgrid[0:H, 0:W]
            checker = np.where(((yy // 8) + (xx // 8)) % 2 == 0, 10, -10)
            img = np.repeat((brightness(i) + checker)[..., None], 3, axis=2).astype(np.uint8)
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts = i
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def build(
    root: Path, *, sessions: int = 2, video: bool = True, deidentified: bool = True, register: bool = True
) -> Any:
    """Create the synthetic dataset under ``root``; returns it."""
    import pyarrow as pa

    from jangin.core import Dataset
    from jangin.core.process_definition import ProcessDefinition, register_process
    from jangin.core.schema import TS

    ds = Dataset.create(root)
    if register:
        register_process(ds, ProcessDefinition.from_yaml(DEFINITION))
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    samples: list[Any] = []
    ev: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for k in range(sessions):
        sid = f"s{k}"
        start = t0 + timedelta(hours=k)
        s_us = int(start.timestamp() * 1e6)
        parts = []
        for ch, rate in RATES.items():
            t = np.arange(0, DURATION_S + 1e-9, 1 / rate)
            parts.append(
                pa.table(
                    {
                        "session_id": pa.array([sid] * len(t)),
                        "device": pa.array(["plc"] * len(t)),
                        "channel": pa.array([ch] * len(t)),
                        "ts": pa.array((s_us + np.rint(t * 1e6)).astype(np.int64)).cast(TS),
                        "value": pa.array(signal(ch, t, k)),
                        "unit": pa.array(["u"] * len(t)),
                    }
                )
            )
        samples += parts
        for j, (name, a, b) in enumerate((("heat", 0.0, 1.5), ("hold", 1.5, 3.0))):
            for kind, t in (("step_start", a), ("step_end", b)):
                ev.append(
                    {
                        "event_id": f"{sid}-{j}-{kind}",
                        "session_id": sid,
                        "ts": start + timedelta(seconds=t),
                        "kind": kind,
                        "name": name,
                        "occurrence": 1,
                    }
                )
        ev.append(
            {
                "event_id": f"{sid}-judg",
                "session_id": sid,
                "ts": start + timedelta(seconds=2),
                "kind": "judgment",
                "name": "bead",
                "value": "OK",
            }
        )
        labels.append(
            {
                "label_id": f"{sid}-l",
                "target": "session",
                "session_id": sid,
                "kind": "class",
                "name": "good",
                "source": "expert",
                "created_at": start,
                "question": "outcome",
            }
        )
        if video:
            n = int(DURATION_S * FPS)
            uri = f"media/{sid}/top.mp4"
            write_video(root / uri, n)
            media.append(
                {
                    "session_id": sid,
                    "camera": "top",
                    "uri": uri,
                    "codec": "h264",
                    "fps": float(FPS),
                    "frames": n,
                    "duration_s": DURATION_S,
                    "width": W,
                    "height": H,
                    "clock_offset_ns": 0,
                    "started_at": start,
                    "deidentified": deidentified,
                    "sha256": "-",
                }
            )
        rows.append(
            {
                "session_id": sid,
                "technician": f"tech{k}",
                "skill_level": "expert",
                "site": "lab",
                "station": "st-1",
                "process": "demo_press",
                "started_at": start,
                "ended_at": start + timedelta(seconds=DURATION_S),
                "status": "finished",
                "source": "generated",
                "updated_at": datetime.now(UTC),
                "parameters": {"force_target_N": "120", "recipe": "A"},
                "process_definition": "demo_press",
            }
        )
    ds.append("sensor_samples", pa.concat_tables(samples))
    ds.append("events", ev)
    ds.append("labels", labels)
    if media:
        ds.append("media", media)
    ds.append("sessions", rows)
    return ds


@pytest.fixture
def press(tmp_path: Path) -> Any:
    """Two synthetic sessions with video (see the module docstring)."""
    return build(tmp_path / "ds")
