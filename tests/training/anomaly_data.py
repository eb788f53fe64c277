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


def make_runs_dataset(
    root: Path,
    *,
    n_runs: int = 20,
    offset: float = 0.2,
    signal: float = 0.0,
    recipe_is_label: bool = False,
    question: str | None = "tool_condition",
    extra_question: str | None = None,
    steps: bool = False,
    seed: int = 0,
) -> Any:
    """Machining-like runs labelled as a whole (``target = 'session'``): ``worn`` / ``unworn``, alternating.

    Channels at 10 Hz for 20 s: ``x_pos`` (axis position, run level 100 ± 0.02; worn runs get ``offset``
    added — a set-up offset, not wear), ``spindle_load`` (worn runs ``signal`` run-level SDs higher),
    ``coolant_flow`` and ``feed_act`` (noise). Stations alternate in pairs (not with the label); the
    recipe parameter ``feed_rate_mm_min`` equals the label's bin when ``recipe_is_label``, else it
    alternates in pairs. ``extra_question`` adds an ``outcome`` label per run under another question.
    With ``steps``, each run has step markers ``rough`` (twice) and ``finish``.
    """
    from jangin.core import Dataset

    ds = Dataset.create(root)
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    sessions, samples, labels, events = [], [], [], []
    n = 200
    for r in range(n_runs):
        sid = f"run-{r:02d}"
        worn = r % 2 == 1
        start = t0 + timedelta(hours=r)
        feed = ("800" if worn else "600") if recipe_is_label else ("800" if (r // 2) % 2 else "600")
        sessions.append(
            {
                "session_id": sid,
                "station": f"st-{(r // 2) % 2}",
                "technician": f"tech-{(r // 4) % 3}",
                "process": "machining",
                "started_at": start,
                "status": "processed",
                "updated_at": start,
                "parameters": {"feed_rate_mm_min": feed, "tool": "T12"},
            }
        )
        levels = {
            "x_pos": 100.0 + rng.normal(0, 0.02) + (offset if worn else 0.0),
            "spindle_load": 40.0 + rng.normal(0, 1.0) + (signal if worn else 0.0),
            "coolant_flow": 12.0 + rng.normal(0, 0.3),
            "feed_act": 600.0 + rng.normal(0, 5.0),
        }
        noise = {"x_pos": 0.05, "spindle_load": 2.0, "coolant_flow": 0.2, "feed_act": 3.0}
        for ch, lv in levels.items():
            v = lv + rng.normal(0, noise[ch], n)
            samples.append(
                {
                    "session_id": [sid] * n,
                    "device": ["cnc"] * n,
                    "channel": [ch] * n,
                    "ts": [start + timedelta(milliseconds=100 * k) for k in range(n)],
                    "value": v.tolist(),
                }
            )
        for q, name in ((question, "worn" if worn else "unworn"), (extra_question, "OK" if r % 3 else "NG")):
            if q is None and name in ("OK", "NG"):
                continue
            labels.append(
                {
                    "label_id": f"{sid}-{q or 'label'}",
                    "target": "session",
                    "session_id": sid,
                    "kind": "class",
                    "name": name,
                    "question": q,
                    "source": "expert",
                    "created_at": start + timedelta(minutes=30),
                }
            )
        if steps:
            for k, (step, a, b) in enumerate((("rough", 0, 6), ("finish", 6, 12), ("rough", 12, 19))):
                for kind, s in (("step_start", a), ("step_end", b)):
                    events.append(
                        {
                            "event_id": f"{sid}-e{k}-{kind}",
                            "session_id": sid,
                            "ts": start + timedelta(seconds=s),
                            "kind": kind,
                            "name": step,
                        }
                    )
    ds.append("sessions", sessions)
    ds.append("sensor_samples", {k: [x for c in samples for x in c[k]] for k in samples[0]})
    ds.append("labels", labels)
    if events:
        ds.append("events", events)
    return ds
