"""Synthetic datasets for the labeling tests: still frames with known sizes, a sensor session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

T0 = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)  # a session start with microseconds in it
STILLS = "ses-stills"
WELD = "ses-weld"
WIDTH, HEIGHT = 320, 200  # not square: a swapped width/height shows


def jpeg(i: int, w: int = WIDTH, h: int = HEIGHT) -> bytes:
    import cv2

    img = np.full((h, w, 3), 60 + 10 * (i % 10), np.uint8)
    cv2.circle(img, (w // 3, h // 2), 20 + i % 7, (200, 200, 255), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def make_dataset(root: Path, *, n_frames: int = 4, seconds: float = 6.0, image: bytes | None = None) -> Any:
    """A dataset with ``n_frames`` stills (session ``ses-stills``) and a welding session ``ses-weld``
    with ``arc_current_A`` at 1 kHz (value = 100 + 10 * seconds since start) and ``plate_temp_C`` at 10 Hz."""
    from jangin.core import Dataset

    ds = Dataset.create(root)
    now = datetime.now(UTC)
    ds.append(
        "sessions",
        [
            {
                "session_id": STILLS,
                "status": "finished",
                "started_at": T0,
                "ended_at": T0,
                "updated_at": now,
                "meta_json": '{"session_key": "stills"}',
                "station": "st-01",
            },
            {
                "session_id": WELD,
                "status": "finished",
                "started_at": T0,
                "ended_at": T0 + timedelta(seconds=seconds),
                "updated_at": now,
                "meta_json": '{"session_key": "weld-x"}',
                "station": "st-02",
            },
        ],
    )
    frames = []
    for i in range(n_frames):
        frames.append(
            {
                "frame_id": f"frm-{i:06d}",
                "session_id": STILLS,
                "camera": "still",
                "ts": T0 + timedelta(seconds=i),
                "width": WIDTH,
                "height": HEIGHT,
                "deidentified": True,
                "source_uri": f"images/img_{i:04d}.jpg",
                "station": "st-01",
                "image": image if image is not None else jpeg(i),
            }
        )
    for k in range(0, n_frames, 5000):
        ds.append("frames", frames[k : k + 5000])
    n = int(seconds * 1000)
    t = np.arange(n)
    ts = [T0 + timedelta(milliseconds=int(j)) for j in t]
    ds.append(
        "sensor_samples",
        {
            "session_id": [WELD] * n,
            "device": ["power_source"] * n,
            "channel": ["arc_current_A"] * n,
            "ts": ts,
            "value": (100 + 10 * t / 1000.0).tolist(),
            "unit": ["A"] * n,
        },
    )
    m = int(seconds * 10)
    ds.append(
        "sensor_samples",
        {
            "session_id": [WELD] * m,
            "device": ["thermo"] * m,
            "channel": ["plate_temp_C"] * m,
            "ts": [T0 + timedelta(milliseconds=100 * j) for j in range(m)],
            "value": [25.0 + j for j in range(m)],
            "unit": ["degC"] * m,
        },
    )
    return ds


def model_box(
    frame_id: str, name: str, box: list[float], score: float, author: str = "det:3"
) -> dict[str, Any]:
    from jangin.core._ids import stable_id

    return {
        "label_id": stable_id("lbl", "model", author, frame_id, name, *box),
        "target": "frame",
        "frame_id": frame_id,
        "session_id": STILLS,
        "kind": "box",
        "name": name,
        "bbox_xyxy_norm": box,
        "score": score,
        "source": "model",
        "author": author,
        "created_at": datetime.now(UTC),
    }
