"""Camera frames of a recorded session: written to an MP4 next to the session's staged data while it
runs, and staged as the camera's upload (the same resumable-upload files the ingest API writes) when
the session ends, so processing samples frames and blurs faces exactly as for an uploaded video.

Frame 0 of the file is the first frame inside the session, declared at the session start (offset 0:
within a frame period of it); later frames are at the writer's constant frame rate (the median
period of the frames seen), so a camera that drops frames drifts by what it dropped.
A crash loses the MP4 being written (an MP4 is unreadable without its index): the session keeps its
sensor data and events.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from jangin.capture._staging import Staging

__all__ = ["VideoTrack"]

log = logging.getLogger(__name__)


class VideoTrack:
    """One camera's frames of one session."""

    def __init__(self, staging: Staging, sid: str, camera: str) -> None:
        self.staging, self.sid, self.camera = staging, sid, camera
        self.path: Path = staging.dir(sid) / "video" / f"{camera}.recording.mp4"
        self.fps = 0.0
        self.frames = 0
        self._first: list[tuple[Any, float]] = []  # the first frames, until their period is known
        self._writer: Any = None

    def write(self, image: Any, ref_t: float) -> None:
        self.frames += 1
        if self._writer is None:
            self._first.append((image, ref_t))
            if len(self._first) < 6:
                return
            self._open()
        self._writer.write(image)

    def _open(self) -> None:
        import cv2
        import numpy as np

        times = np.asarray([t for _, t in self._first])
        period = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
        self.fps = 1.0 / period if 1e-3 < period < 10 else 25.0
        h, w = self._first[0][0].shape[:2]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        for image, _ in self._first:
            self._writer.write(image)
        self._first = []

    def stage(self) -> bool:
        """Close the file and stage it as the camera's completed upload; False when it has no frame."""
        if self._writer is None and self._first:
            self._open()
        if self._writer is None:
            return False
        self._writer.release()
        self._writer = None
        size = self.path.stat().st_size
        h = hashlib.sha256()
        offset = 0
        with open(self.path, "rb") as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
                offset = self.staging.write_chunk(self.sid, self.camera, offset, chunk, None)
        self.staging.complete_video(self.sid, self.camera, size, h.hexdigest())
        self.path.unlink(missing_ok=True)
        return True
