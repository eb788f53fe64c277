"""Factory fixtures: tiny recorded sessions written to disk the way a recording app would."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

T0 = 1_772_438_400.0  # 2026-03-02T08:00:00Z, the reference clock's session start


def _write_video(path: Path, seconds: float, fps: int, arc_at: float) -> None:
    import cv2

    w, h = 160, 96
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    rng = np.random.default_rng(0)
    for i in range(int(seconds * fps)):
        t = i / fps
        img = np.full((h, w, 3), 40 if t < arc_at else 150, np.uint8)
        x = 10 + int(t * 20)
        cv2.line(img, (0, h // 2), (w, h // 2), (90, 90, 90), 2)
        cv2.circle(img, (x % w, h // 2), 8, (255, 255, 255) if t >= arc_at else (80, 80, 80), -1)
        img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
        vw.write(img)
    vw.release()


@pytest.fixture
def make_session(tmp_path: Path) -> Callable[..., Path]:
    """``make_session(key, seconds=3, offsets=...)`` writes a session folder and returns it.

    Power source: ``arc_current_A`` at 1 kHz = 100 A + 10 A per second of reference time (so the
    value at any reference time is known), on a clock ``offsets['power_source']`` s behind. Thermocouple:
    ``plate_temp_C`` at 10 Hz. Video 10 fps, arc visible from 1 s.
    """

    def make(
        key: str = "s1",
        seconds: float = 3.0,
        offsets: dict[str, float] | None = None,
        technician: str = "Park Ji-hoon",
        csv_rows: list[str] | None = None,
    ) -> Path:
        offsets = offsets or {"power_source": 0.25, "thermocouple": -1.5, "torch_cam": 0.1}
        d = tmp_path / "sessions" / key
        (d / "sensors").mkdir(parents=True)
        # power source: 1 kHz; its clock reads (reference time - offset)
        n = int(seconds * 1000)
        ref = T0 + np.arange(n) / 1000.0
        dev = ref - offsets["power_source"]
        lines = ["timestamp,arc_current_A,arc_voltage_V"] + [
            f"{t:.3f},{100 + 10 * (r - T0):.4f},{20.0:.2f}" for t, r in zip(dev, ref, strict=True)
        ]
        if csv_rows is not None:
            lines = csv_rows
        with gzip.open(d / "sensors" / "power_source.csv.gz", "wt") as f:
            f.write("\n".join(lines) + "\n")
        m = int(seconds * 10)
        ref10 = T0 + np.arange(m) / 10.0
        (d / "sensors" / "thermo.csv").write_text(
            "timestamp,plate_temp_C\n"
            + "".join(f"{t - offsets['thermocouple']:.3f},{20 + 5 * (t - T0):.2f}\n" for t in ref10)
        )
        _write_video(d / "video.mp4", seconds, 10, arc_at=1.0)
        (d / "events.csv").write_text(
            "timestamp,kind,name,value,author,segment_start,segment_end\n"
            f"{T0 + 1.0:.3f},sync,arc_start,,app,,\n"
            f"{T0 + 0.5:.3f},step_start,weld,,app,,\n"
            f"{T0 + 2.0:.3f},adjustment,arc_current_A,-8%,{technician},,\n"
            f"{T0 + seconds:.3f},judgment,segment_1,NG:porosity,inspector-1,{T0 + 0.5:.3f},{T0 + seconds:.3f}\n"
        )
        manifest = {
            "session_key": key,
            "technician": technician,
            "skill_level": "expert",
            "site": "plant-a",
            "line": "L1",
            "station": "st-01",
            "process": "mig_butt_weld",
            "task": "seam",
            "started_at": "2026-03-02T08:00:00Z",
            "cameras": [{"name": "torch_cam", "file": "video.mp4", "clock_offset_s": offsets["torch_cam"]}],
            "devices": [
                {
                    "name": "power_source",
                    "kind": "welding_power_source",
                    "file": "sensors/power_source.csv.gz",
                    "clock_offset_s": offsets["power_source"],
                    "channels": [
                        {"column": "arc_current_A", "unit": "A", "rate_hz": 1000},
                        {"column": "arc_voltage_V", "unit": "V", "rate_hz": 1000},
                    ],
                },
                {
                    "name": "thermocouple",
                    "kind": "thermocouple",
                    "file": "sensors/thermo.csv",
                    "clock_offset_s": offsets["thermocouple"],
                    "channels": [
                        {"column": "plate_temp_C", "channel": "plate_temp", "unit": "degC", "rate_hz": 10}
                    ],
                },
            ],
        }
        (d / "session.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return d

    return make
