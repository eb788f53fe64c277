"""Synthetic detection data and a once-per-process trained model, shared by training and inference tests.

Images are dark noise with bright filled squares: red ones are class ``red``, green ones ``green``.
Loaded by path from tests/conftest.py, so the model is trained once per process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("green", "red")
COLORS = {"red": (40, 40, 230), "green": (40, 220, 40)}  # BGR
WIDTH, HEIGHT = 96, 80


def draw(rng: np.random.Generator, n_objects: int = 2) -> tuple[np.ndarray, list[tuple[str, list[float]]]]:
    """One BGR image and its boxes ``[(class, [x1, y1, x2, y2] normalised)]``."""
    img = rng.integers(0, 40, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    boxes: list[tuple[str, list[float]]] = []
    taken: list[tuple[int, int, int, int]] = []
    while len(boxes) < n_objects:
        s = int(rng.integers(18, 30))
        x, y = int(rng.integers(0, WIDTH - s)), int(rng.integers(0, HEIGHT - s))
        if any(x < bx + bs and bx < x + s and y < by + bs and by < y + s for bx, by, bs, _ in taken):
            continue
        name = CLASSES[len(boxes) % 2] if n_objects > 1 else CLASSES[int(rng.integers(0, 2))]
        img[y : y + s, x : x + s] = COLORS[name]
        taken.append((x, y, s, 0))
        boxes.append((name, [x / WIDTH, y / HEIGHT, (x + s) / WIDTH, (y + s) / HEIGHT]))
    return img, boxes


def encode(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def make_detection_dataset(
    root: Path, *, n_sessions: int = 4, frames_per_session: int = 6, seed: int = 0
) -> Any:
    """A dataset with ``n_sessions`` sessions of box-labelled frames (two squares each)."""
    from jangin.core import Dataset

    ds = Dataset.create(root)
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    frames, labels = [], []
    for s in range(n_sessions):
        sid = f"sess-{s:02d}"
        for k in range(frames_per_session):
            fid = f"{sid}-f{k:03d}"
            img, boxes = draw(rng)
            ts = t0 + timedelta(minutes=10 * s, seconds=k)
            frames.append(
                {
                    "frame_id": fid,
                    "session_id": sid,
                    "camera": "cam0",
                    "ts": ts,
                    "width": WIDTH,
                    "height": HEIGHT,
                    "deidentified": True,
                    "station": f"st-{s % 2:02d}",
                    "image": encode(img),
                }
            )
            for j, (name, bbox) in enumerate(boxes):
                labels.append(
                    {
                        "label_id": f"{fid}-l{j}",
                        "target": "frame",
                        "frame_id": fid,
                        "session_id": sid,
                        "kind": "box",
                        "name": name,
                        "bbox_xyxy_norm": bbox,
                        "source": "labeller",
                        "created_at": ts,
                    }
                )
    ds.append("frames", frames)
    ds.append("labels", labels)
    return ds


_TRAINED: dict[str, Any] = {}


def trained_detector(tmp_path_factory: Any, network_attempts: list[Any]) -> dict[str, Any]:
    """Build a set and train a detector once per process (imgsz 64, 2 epochs); return the pieces.

    ``network_attempts`` is the list of the active network guard: its content right after training
    is kept as ``network_attempts`` in the result.
    """
    if "mv" in _TRAINED:
        return _TRAINED
    import time

    from jangin.core import ModelRegistry
    from jangin.training import build_detection_set, train_detector

    base = tmp_path_factory.mktemp("trained")
    ds = make_detection_dataset(base / "ds")
    data = build_detection_set(ds, cache_dir=base / "cache")
    registry = ModelRegistry(ds.models_dir)
    events: list[tuple[str, int, int | None]] = []
    t = time.perf_counter()
    mv = train_detector(
        data,
        registry=registry,
        name="squares",
        epochs=2,
        imgsz=64,
        batch=8,
        work_dir=base / "work",
        progress=lambda task, done, total: events.append((task, done, total)),
        allow_random_init=True,
    )
    _TRAINED.update(
        ds=ds,
        data=data,
        registry=registry,
        mv=mv,
        snapshot_at_training=ds.snapshot().to_dict(),  # other tests log inspections into ds later
        events=events,
        seconds=time.perf_counter() - t,
        work_dir=base / "work",
        network_attempts=list(network_attempts),
    )
    return _TRAINED
