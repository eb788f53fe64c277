"""Synthetic data for the anomaly and process-model tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 64


def bead(rng: np.random.Generator, defect: bool) -> np.ndarray:
    """A grey textured plate with a bright horizontal bead; a defect is a dark blob on the bead."""
    import cv2

    img = (110 + rng.normal(0, 12) + rng.normal(0, 6, (SIZE, SIZE, 3))).astype(np.float32)
    y = int(rng.integers(24, 40))
    img[y - 8 : y + 8] += 60
    if defect:
        x = int(rng.integers(10, SIZE - 10))
        cv2.circle(img, (x, y), int(rng.integers(4, 7)), (20, 20, 20), -1)
    return np.clip(cv2.GaussianBlur(img, (3, 3), 0), 0, 255).astype(np.uint8)


def encode(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def make_anomaly_dataset(root: Path, *, n_good: int = 30, n_bad: int = 12, seed: int = 0) -> Any:
    """Good stills (``good/…``, no label) and defective ones (one box label each), in 3 stations."""
    from jangin.core import Dataset

    ds = Dataset.create(root)
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    frames, labels = [], []
    for i in range(n_good + n_bad):
        bad = i >= n_good
        fid = f"{'bad' if bad else 'good'}-{i:03d}"
        frames.append(
            {
                "frame_id": fid,
                "session_id": f"sess-{i % 4}",
                "camera": "cam0",
                "ts": t0 + timedelta(seconds=i),
                "width": SIZE,
                "height": SIZE,
                "deidentified": True,
                "station": f"st-{i % 3:02d}",
                "source_uri": f"{'images' if bad else 'good'}/{fid}.jpg",
                "image": encode(bead(rng, bad)),
            }
        )
        if bad:
            labels.append(
                {
                    "label_id": f"{fid}-l0",
                    "target": "frame",
                    "frame_id": fid,
                    "session_id": f"sess-{i % 4}",
                    "kind": "box",
                    "name": "pore",
                    "bbox_xyxy_norm": [0.1, 0.3, 0.3, 0.6],
                    "source": "labeller",
                    "created_at": t0,
                }
            )
    ds.append("frames", frames)
    ds.append("labels", labels)
    return ds


def make_process_dataset(root: Path, *, n_sessions: int = 6, segments: int = 4, seed: int = 0) -> Any:
    """Sessions of three channels at 200 / 50 / 10 Hz; some segments NG, each with a deviation in one
    channel (the current drops, the voltage gets noisy, or the speed rises); span labels OK / NG."""
    from jangin.core import Dataset

    ds = Dataset.create(root)
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    samples, labels = [], []
    kinds = ["current_low", "voltage_noisy", "speed_high"]
    for s in range(n_sessions):
        sid = f"sess-{s:02d}"
        start = t0 + timedelta(hours=s)
        bad_seg = {int(rng.integers(0, segments)): kinds[s % 3]} if s % 3 != 2 or s < 3 else {}
        if s % 2:
            bad_seg[(min(bad_seg) + 2) % segments if bad_seg else 1] = kinds[(s + 1) % 3]
        for seg in range(segments):
            a, b = start + timedelta(seconds=2 * seg), start + timedelta(seconds=2 * seg + 2)
            kind = bad_seg.get(seg)
            for ch, rate, mu, sd in (
                ("current", 200, 160.0, 3.0),
                ("voltage", 200, 21.0, 0.3),
                ("speed", 50, 5.0, 0.1),
            ):
                n = 2 * rate
                v = mu + rng.normal(0, sd, n) + rng.normal(0, sd * 0.5)
                if kind == "current_low" and ch == "current":
                    v -= 25
                if kind == "voltage_noisy" and ch == "voltage":
                    v += rng.normal(0, 2.0, n)
                if kind == "speed_high" and ch == "speed":
                    v += 2.5
                for k in range(n):
                    samples.append(
                        {
                            "session_id": sid,
                            "device": "dev",
                            "channel": ch,
                            "ts": a + timedelta(microseconds=int(k * 1e6 / rate)),
                            "value": float(v[k]),
                        }
                    )
            labels.append(
                {
                    "label_id": f"{sid}-seg{seg}",
                    "target": "span",
                    "session_id": sid,
                    "ts_start": a,
                    "ts_end": b,
                    "kind": "class",
                    "name": "NG-" + kind if kind else "OK",
                    "source": "expert",
                    "created_at": b,
                }
            )
    ds.append("sensor_samples", samples)
    ds.append("labels", labels)
    return ds
