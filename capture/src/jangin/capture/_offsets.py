"""Clock offsets from a shared sync event: a step in a sensor channel or a brightness jump in video.

A device's offset is what to ADD to its timestamps to get reference time. When a recording app marks
a sync event (e.g. ``process_start``) on the reference clock and the same instant is visible in a
device's data (a power channel steps up, the video turns bright), the offset is the event time minus the
time the device saw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jangin.core import CaptureError

__all__ = ["OffsetEstimate", "step_time", "video_step_time"]


@dataclass(frozen=True)
class OffsetEstimate:
    """An estimated clock offset and how it was found."""

    device: str
    offset_s: float
    method: str  # "sync_event:<channel>" or "sync_event:video_brightness"
    detail: str = ""


def _threshold(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [5.0, 95.0])
    return float(lo), float(hi)


def step_time(
    t: np.ndarray,
    values: np.ndarray,
    *,
    min_rel_step: float = 0.2,
    onset: float = 0.1,
    max_rise: float = 0.1,
    name: str = "signal",
) -> float:
    """Time of the first sharp upward step of ``values``: where the signal first crosses ``onset``
    of the way from its low level (5th percentile) to its high level (95th percentile), linearly
    interpolated between the two samples around the crossing.

    Args:
        t: Sample times in seconds, increasing.
        values: Samples.
        min_rel_step: The high level must exceed the low level by this fraction of the high level's
            magnitude, else the signal has no step to find.
        onset: Fraction of the step that marks its start (10 %: above the noise, before any ramp).
        max_rise: The signal must go from ``onset`` to 90 % of the step within this many seconds;
            a slow ramp (a speed that builds up, a temperature) is no sync event.
        name: For error messages.

    Raises:
        CaptureError: No clear, sharp step.
    """
    ok = np.isfinite(values)
    t, values = np.asarray(t, np.float64)[ok], np.asarray(values, np.float64)[ok]
    if len(values) < 3:
        raise CaptureError(f"{name}: too few samples to find a sync step")
    lo, hi = _threshold(values)
    if hi - lo <= min_rel_step * max(abs(hi), 1e-9):
        raise CaptureError(f"{name}: no clear step (low {lo:.3g}, high {hi:.3g})")
    level = lo + onset * (hi - lo)
    i = int(np.flatnonzero(values > level)[0])
    if i == 0:
        raise CaptureError(f"{name}: already above the step level at the first sample")
    top = np.flatnonzero(values[i:] > lo + 0.9 * (hi - lo))
    if not len(top) or t[i + int(top[0])] - t[i] > max_rise:
        raise CaptureError(
            f"{name}: the first rise at t={t[i]:.3f} is not a sharp step (slower than {max_rise} s to 90 %)",
            hint="give this device's clock_offset_s, or set sync_channel to a channel that steps at the sync event",
        )
    v0, v1 = values[i - 1], values[i]
    frac = (level - v0) / (v1 - v0) if v1 != v0 else 1.0
    return float(t[i - 1] + frac * (t[i] - t[i - 1]))


def video_brightness(path: Path, *, max_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean grey level of every frame (decoded at 1/8 size) and its presentation time in seconds (the
    container's PTS, so variable-frame-rate video is timed right)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CaptureError(f"{path}: not a readable video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    means: list[float] = []
    times: list[float] = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            if not np.isfinite(t) or (times and t <= times[-1]):  # no PTS from this backend
                t = times[-1] + 1.0 / (fps or 25.0) if times else 0.0
            times.append(t)
            small = cv2.resize(
                frame,
                (max(1, frame.shape[1] // 8), max(1, frame.shape[0] // 8)),
                interpolation=cv2.INTER_AREA,
            )
            means.append(float(small.mean()))
            if max_seconds is not None and t > max_seconds:
                break
    finally:
        cap.release()
    if not means or fps <= 0:
        raise CaptureError(f"{path}: no decodable frames")
    return np.asarray(means), np.asarray(times)


def video_step_time(path: Path, *, min_jump: float = 10.0) -> float:
    """Video time (seconds from frame 0) at which the brightness jumps up (e.g. the process lights up).

    The first frame above the midpoint between dark and bright levels was exposed after the event; the
    event happened somewhere in the frame period before it, so the estimate is half a period earlier
    (error within ±0.5 frame).

    Raises:
        CaptureError: The video has no clear brightness jump.
    """
    means, times = video_brightness(path)
    lo, hi = _threshold(means)
    if hi - lo < min_jump:
        raise CaptureError(
            f"{path}: no brightness jump of {min_jump} grey levels (dark {lo:.1f}, bright {hi:.1f})"
        )
    k = int(np.flatnonzero(means > 0.5 * (lo + hi))[0])
    if k == 0:
        raise CaptureError(f"{path}: bright from the first frame; the sync event is not in the video")
    return float(times[k] - 0.5 * (times[k] - times[k - 1]))
