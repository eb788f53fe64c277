#!/usr/bin/env python3
"""Deterministic sample-data generator for Jangin.

Simulates MAG ("MIG") welding of one straight square-butt seam by three expert and two
novice technicians (sensor streams on five device clocks, a top-down torch camera video,
event markers, OK/NG judgments) and a set of still weld-inspection photographs with
defect boxes.  See README.md next to this file for the physical model and file formats.

Only numpy, opencv-python-headless (cv2), pyyaml and the standard library are used.

    python sample_data/generate.py                 # (re)generate into sample_data/
    python sample_data/generate.py --check         # regenerate into a temp dir and compare
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gzip
import io
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

GENERATOR_ID = "jangin-sample-data"
GENERATOR_VERSION = 1

# --------------------------------------------------------------------------------------
# Scenario constants
# --------------------------------------------------------------------------------------
FS = 1000  # reference simulation rate (Hz); every device clock offset is a whole ms
SEAM_LENGTH_MM = 120.0
N_SEGMENTS = 4
WIRE_DIAMETER_MM = 0.8
TEMP_THRESHOLD_C = 180.0
ADJUST_FRACTION = -0.08  # expert lowers wire feed (synergic: current) by 8 %
EXPERT_TRAVEL_BAND = (4.5, 5.5)  # mm/s, documented expert band
VIDEO_W, VIDEO_H, VIDEO_FPS = 640, 360, 15
PX_PER_MM = 4.0
VIDEO_NOISE = 0.8  # camera noise (grey levels, std)
TEX_AMP, TEX_AMP2, BG_BLUR, DEP_BLUR = 3.0, 0.0, 1.0, 0.8
FRAME_BLUR, AMBIENT, FILL, HALO = 0.0, 0.26, 0.25, 1.0
POST_EXPOSURE = 0.75  # scene gain once auto exposure is back on after the arc
FLICKER = 0.06
HALO_R = 120.0
BASE_TIME = _dt.datetime(2025, 3, 11, 9, 0, 0, tzinfo=_dt.UTC)

TECHNICIANS = [
    {"key": "weld-01", "name": "Kim Min-jun", "skill": "expert", "style": "expert", "station": "st-01"},
    {
        "key": "weld-02",
        "name": "Park Seo-yeon",
        "skill": "novice",
        "style": "novice_fast_travel",
        "station": "st-01",
    },
    {"key": "weld-03", "name": "Lee Jae-hyun", "skill": "expert", "style": "expert", "station": "st-02"},
    {
        "key": "weld-04",
        "name": "Choi Ji-woo",
        "skill": "novice",
        "style": "novice_unstable_arc",
        "station": "st-02",
    },
    {"key": "weld-05", "name": "Jung Sung-ho", "skill": "expert", "style": "expert", "station": "st-01"},
]

# name, kind, file, nominal clock offset (s), jitter (s), channels (column, unit, rate_hz)
DEVICES = [
    (
        "power_source",
        "welding_power_source",
        "sensors/power_source.csv.gz",
        0.35,
        0.15,
        [("arc_current_A", "A", 1000), ("arc_voltage_V", "V", 1000)],
    ),
    (
        "wire_feeder",
        "wire_feeder",
        "sensors/wire_feeder.csv.gz",
        -1.20,
        0.25,
        [("wire_feed_m_min", "m/min", 50)],
    ),
    (
        "travel",
        "linear_axis_encoder",
        "sensors/travel.csv.gz",
        2.05,
        0.25,
        [("travel_speed_mm_s", "mm/s", 50)],
    ),
    ("torch_imu", "imu", "sensors/torch_imu.csv.gz", -0.62, 0.15, [("torch_angle_deg", "deg", 100)]),
    (
        "thermocouple",
        "thermocouple_logger",
        "sensors/thermocouple.csv.gz",
        1.48,
        0.25,
        [("plate_temp_C", "degC", 10)],
    ),
]
CAMERA = ("torch_cam", "video.mp4", 0.40, 0.15)

STYLE = {
    # travel: nominal speed (mm/s), slow wander sigma; wfs (m/min); torch angle mean, drift, tremor;
    # ctwd wander sigma (mm); lateral wander (mm); short-circuit rate (1/s); adjusts when hot;
    # crater-fill duration (s)
    "expert": dict(
        v=5.0,
        v_sig=0.10,
        wfs=8.0,
        ang=15.0,
        ang_sig=0.8,
        trem=0.30,
        ctwd_sig=0.35,
        lat_sig=0.12,
        shorts=28.0,
        adjusts=True,
        crater=1.0,
        sparks=1.2,
    ),
    "novice_fast_travel": dict(
        v=5.3,
        v_sig=0.30,
        wfs=8.1,
        ang=17.0,
        ang_sig=2.0,
        trem=0.70,
        ctwd_sig=0.6,
        lat_sig=0.35,
        shorts=34.0,
        adjusts=False,
        crater=0.6,
        sparks=2.0,
    ),
    "novice_unstable_arc": dict(
        v=4.8,
        v_sig=0.30,
        wfs=8.0,
        ang=16.0,
        ang_sig=2.2,
        trem=0.80,
        ctwd_sig=0.5,
        lat_sig=0.4,
        shorts=36.0,
        adjusts=True,
        crater=0.7,
        sparks=2.2,
    ),
}

INSPECTION_CLASSES = ["porosity", "undercut", "spatter", "crack"]
INSPECTION_STATIONS = ["st-01", "st-02", "st-03"]
IMG = 256


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------
def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _ts(ms: int) -> str:
    """Unix epoch milliseconds (int) -> 'seconds.mmm' string, exact."""
    ms = int(ms)
    return f"{ms // 1000}.{ms % 1000:03d}"


def _sec(ms: int) -> float:
    return round(int(ms) / 1000.0, 3)


def _iso(ms: int) -> str:
    d = _dt.datetime.fromtimestamp(ms // 1000, tz=_dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _ou(rng: np.random.Generator, n: int, dt: float, tau: float, sigma: float) -> np.ndarray:
    """Ornstein-Uhlenbeck process (stationary std = sigma), n samples at step dt."""
    a = math.exp(-dt / tau)
    b = sigma * math.sqrt(1.0 - a * a)
    w = rng.standard_normal(n)
    out = np.empty(n)
    x = sigma * w[0]
    for i in range(n):
        x = a * x + b * w[i]
        out[i] = x
    return out


def _slow(rng: np.random.Generator, n: int, tau: float, sigma: float, rate: int = FS) -> np.ndarray:
    """OU process computed at 50 Hz and interpolated to `rate` (cheap, smooth)."""
    m = n * 50 // rate + 2
    coarse = _ou(rng, m, 1.0 / 50.0, tau, sigma)
    return np.interp(np.arange(n) / rate, np.arange(m) / 50.0, coarse)


def _first_order(x: np.ndarray, dt: float, tau: float, y0: float) -> np.ndarray:
    a = math.exp(-dt / tau)
    y = np.empty_like(x)
    v = y0
    for i in range(len(x)):
        v = a * v + (1.0 - a) * x[i]
        y[i] = v
    return y


def _ramp(t: np.ndarray, t0: float, dur: float) -> np.ndarray:
    """0 before t0, 1 after t0+dur, linear in between."""
    return np.clip((t - t0) / dur, 0.0, 1.0)


def _fmt_col(values: np.ndarray, decimals: int) -> list[str]:
    v = np.round(values.astype(np.float64), decimals) + 0.0
    f = f"{{:.{decimals}f}}"
    return [f.format(x) for x in v.tolist()]


def _write_gz(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(text.encode("utf-8"))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


# --------------------------------------------------------------------------------------
# Welding session: physics on the reference clock (1 kHz grid)
# --------------------------------------------------------------------------------------
class Sim:
    """All signals of one session on the reference clock, sampled at FS; index k is k ms after started_at."""


def simulate_session(seed: int, idx: int, duration_scale: float) -> Sim:
    tech = TECHNICIANS[idx]
    st = STYLE[tech["style"]]
    rng = _rng(seed, 1, idx)
    s = Sim()
    s.tech, s.style, s.idx = tech, st, idx
    scale = float(duration_scale)
    L = SEAM_LENGTH_MM * scale
    s.seam_mm = L

    # --- session start, clock offsets -------------------------------------------------
    start_ms = int(BASE_TIME.timestamp() * 1000) + idx * 17 * 60_000 + int(rng.integers(0, 240_000))
    s.start_ms = start_ms
    s.offsets_ms = {}
    for name, _kind, _file, nominal, jit, _ch in DEVICES:
        s.offsets_ms[name] = int(round((nominal + rng.uniform(-jit, jit)) * 1000))
    cam_name, _cam_file, cam_nom, cam_jit = CAMERA
    s.offsets_ms[cam_name] = int(round((cam_nom + rng.uniform(-cam_jit, cam_jit)) * 1000))

    # --- timeline (seconds after started_at) -------------------------------------------
    s.t_prep = 0.30 + rng.uniform(0.0, 0.3)
    s.t_trigger = s.t_prep + (2.4 + rng.uniform(0.0, 1.0)) * max(scale, 0.5)
    s.t_strike = s.t_trigger + 0.30  # wire run-in at open-circuit voltage, then arc
    s.t_strike = round(s.t_strike, 3)
    s.t_travel = round(s.t_strike + rng.uniform(0.45, 0.7), 3)

    # travel: hand-guided carriage on a linear axis, integrated at 1 kHz
    dt = 1.0 / FS
    seg_len = L / N_SEGMENTS
    max_n = int((s.t_travel + L / 2.5 + 20) * FS)
    v_wander = _slow(rng, max_n, 1.2, st["v_sig"])
    v_bias = rng.normal(0.0, 0.08)
    fast_seg = 2  # segment_3 for the fast-travel novice
    k0 = int(round(s.t_travel * FS))
    x = np.zeros(max_n)
    v = np.zeros(max_n)
    xi, vi = 0.0, 0.0
    a_v = math.exp(-dt / 0.35)
    k = k0
    while xi < L and k < max_n - 1:
        seg = min(int(xi / seg_len), N_SEGMENTS - 1)
        target = st["v"] + v_bias + v_wander[k]
        if tech["style"] == "novice_fast_travel" and seg == fast_seg:
            target = 8.6 + v_wander[k] * 1.5
        vi = a_v * vi + (1.0 - a_v) * target
        xi += vi * dt
        x[k + 1] = xi
        v[k + 1] = vi
        k += 1
    k_L = k
    s.t_L = round(k_L / FS, 3)
    x[k_L:] = L
    v[k_L:] = 0.0
    s.t_arc_off = round(s.t_L + st["crater"] * (0.9 + rng.uniform(0, 0.25)), 3)
    s.t_end = round(s.t_arc_off + 4.0 * max(scale, 0.6) + rng.uniform(0, 0.5), 3)

    n = int(round((s.t_end + 0.5) * FS))
    t = np.arange(n) / FS
    s.n, s.t = n, t
    s.x = x[:n] if len(x) >= n else np.concatenate([x, np.full(n - len(x), L)])
    s.v = v[:n] if len(v) >= n else np.concatenate([v, np.zeros(n - len(v))])
    s.x[:k0] = 0.0

    # segment boundary times (first time x >= boundary)
    bounds = [s.t_travel]
    for j in range(1, N_SEGMENTS):
        kk = int(np.searchsorted(s.x[k0 : k_L + 1], j * seg_len)) + k0
        bounds.append(round(kk / FS, 3))
    bounds.append(s.t_L)
    s.seg_bounds = bounds

    arc = ((t >= s.t_strike) & (t < s.t_arc_off)).astype(float)
    s.arc = arc

    # --- contact-tip-to-work distance (arc length proxy), torch angle, lateral position -----
    ctwd = 15.0 + _slow(rng, n, 0.6, st["ctwd_sig"])
    ang = st["ang"] + rng.normal(0, 0.5) + _slow(rng, n, 1.5, st["ang_sig"])
    trem = np.zeros(n)
    env = 0.6 + np.abs(_slow(rng, n, 0.8, 0.5))
    for _ in range(3):
        f = rng.uniform(7.0, 12.0)
        trem += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    ang += st["trem"] * trem / 1.7 * env
    lat = _slow(rng, n, 2.0, st["lat_sig"])
    if tech["style"] == "novice_unstable_arc":
        a0, a1 = bounds[1], bounds[2]  # segment_2
        w = np.clip(np.minimum((t - a0) / 1.0, (a1 - t) / 1.0), 0.0, 1.0)
        drift = 4.0 * np.clip((t - a0) / max(a1 - a0, 1e-3) * 1.6, 0, 1) * w
        osc = 3.2 * np.sin(2 * np.pi * 1.3 * t + 0.7) * w + w * _slow(rng, n, 0.15, 0.8)
        ctwd = ctwd + drift + osc
        ang = ang + 6.5 * np.sin(2 * np.pi * 1.1 * t + 1.9) * w
        s.unstable_w = w
    else:
        s.unstable_w = np.zeros(n)
    # before the strike the torch is being positioned, after the arc it is lifted away
    pre = t < s.t_strike - 0.6
    ang[pre] += 4.0 * np.sin(2 * np.pi * 0.4 * t[pre])
    lift = _ramp(t, s.t_arc_off + 0.6, 1.2)
    ang = ang + 30.0 * lift
    s.ctwd, s.angle, s.lat = ctwd, ang, lat

    # --- wire feed (m/min) and the synergic current/voltage --------------------------------
    wfs_nom = st["wfs"] * (1 + rng.normal(0, 0.01))
    wfs_wobble = 1.0 + _slow(rng, n, 0.5, 0.004)

    def wire_feed(t_adj: float | None) -> np.ndarray:
        w = np.zeros(n)
        runin = (t >= s.t_trigger) & (t < s.t_strike)
        w[runin] = 2.5
        on = arc > 0
        level = np.full(n, wfs_nom)
        if t_adj is not None:
            level = level * (1.0 + ADJUST_FRACTION * _ramp(t, t_adj, 0.35))
        level = level * (1.0 - 0.38 * _ramp(t, s.t_L, 0.25))  # crater fill
        rise = _ramp(t, s.t_strike, 0.05)
        w[on] = (2.5 + (level - 2.5) * rise)[on] * wfs_wobble[on]
        return w

    def electrical(wfs: np.ndarray):
        i_set = 20.5 * wfs
        hot = 1.0 + 0.35 * np.exp(-np.clip(t - s.t_strike, 0, None) / 0.04)
        i_mean = arc * (i_set * hot - 4.0 * (ctwd - 15.0))
        v_mean = arc * (14.0 + 0.042 * i_set + 0.9 * (ctwd - 15.0))
        return i_set, i_mean, v_mean

    def thermal(i_mean: np.ndarray, v_mean: np.ndarray, t_amb: float):
        # lumped first-order plate model (capacity and loss scale with the plate size)
        c_th = 1.77 * L  # J/K (effective, region around the seam; scales with the seam length)
        tau_loss = 110.0
        eta = 0.80
        step = 10  # integrate at 100 Hz
        p = eta * (i_mean * v_mean)[::step]
        temp = np.empty(len(p))
        T = t_amb
        h = step / FS
        for i in range(len(p)):
            T += h * (p[i] / c_th - (T - t_amb) / tau_loss)
            temp[i] = T
        meas = _first_order(temp, h, 1.2, t_amb)  # thermocouple response time
        tt = np.arange(len(p)) * h
        return np.interp(t, tt, temp), np.interp(t, tt, meas)

    s.t_amb = 21.0 + rng.uniform(0, 4)
    wfs0 = wire_feed(None)
    _, i0, v0 = electrical(wfs0)
    _, meas0 = thermal(i0, v0, s.t_amb)
    s.t_cross = None
    s.t_adj = None
    cross = np.nonzero((meas0 >= TEMP_THRESHOLD_C) & (t >= s.t_strike))[0]
    if len(cross):
        s.t_cross = round(cross[0] / FS, 3)
    reacts = rng.uniform(0.6, 1.3)
    if st["adjusts"] and s.t_cross is not None and s.t_cross + reacts + 0.8 < s.t_L:
        s.t_adj = round(s.t_cross + reacts, 3)
    s.wfs = wire_feed(s.t_adj)
    s.i_set, s.i_mean, s.v_mean = electrical(s.wfs)
    s.temp_true, s.temp_meas = thermal(s.i_mean, s.v_mean, s.t_amb)
    s.i_set = s.i_set * arc
    return s


def _device_grid(s: Sim, name: str, rate: int, rng: np.random.Generator):
    """Device sample times: (device-clock epoch ms, index into the reference grid)."""
    off = s.offsets_ms[name]
    period = 1000 // rate
    ref0 = s.start_ms + int(rng.integers(0, 200))  # device logging starts a little late...
    ref1 = s.start_ms + int(round(s.t_end * 1000)) - int(rng.integers(0, 200))
    d0 = -(-(ref0 - off) // period) * period  # first multiple of the period on the device clock
    d1 = (ref1 - off) // period * period
    dev_ms = np.arange(d0, d1 + 1, period, dtype=np.int64)
    ref_idx = dev_ms + off - s.start_ms  # whole ms after started_at == index on the grid
    return dev_ms, ref_idx


def sensor_tables(s: Sim, seed: int) -> dict[str, tuple[list[str], np.ndarray, list]]:
    """Per device: (header, device-clock ms, [(values, decimals), ...])."""
    out = {}
    st = s.style
    # power source ----------------------------------------------------------------
    rng = _rng(seed, 11, s.idx)
    dev, ri = _device_grid(s, "power_source", 1000, rng)
    t = ri / FS
    arc = s.arc[ri]
    i = s.i_mean[ri].copy()
    vv = s.v_mean[ri].copy()
    m = len(ri)
    i += arc * (
        3.0 * np.sin(2 * np.pi * 100.0 * t + 0.3) + _ou(rng, m, 1e-3, 0.03, 1.6) + rng.normal(0, 1.2, m)
    )
    vv += arc * (0.5 * np.sin(2 * np.pi * 100.0 * t + 1.1) + rng.normal(0, 0.30, m))
    # short circuits (short-arc transfer): voltage collapses, current climbs, re-ignition spike
    unstable = s.unstable_w[ri]
    rate = st["shorts"] * (1.0 + 1.2 * unstable) * arc
    starts = np.nonzero(rng.random(m) < rate / 1000.0)[0]
    last = -10
    for k in starts.tolist():
        if k <= last + 6:
            continue
        d = int(rng.integers(2, 6))
        if k + d + 1 >= m or arc[k + d] == 0:
            continue
        vv[k : k + d] = rng.uniform(1.5, 5.0, d)
        i[k : k + d] += 14.0 * np.arange(1, d + 1) + rng.normal(0, 2, d)
        vv[k + d] += rng.uniform(3, 7)
        last = k + d
    # strike: ignition spike
    ks = int(np.searchsorted(t, s.t_strike))
    if 0 < ks < m - 6:
        vv[ks : ks + 4] = 32.0 + rng.normal(0, 1.0, 4)
    # open-circuit voltage between trigger and strike, sensor offsets when idle
    ocv = (t >= s.t_trigger) & (t < s.t_strike)
    vv[ocv] = 58.0 + rng.normal(0, 0.25, int(ocv.sum()))
    idle = (arc == 0) & ~ocv
    vv[idle] = rng.normal(0, 0.02, int(idle.sum()))
    i[arc == 0] = 0.25 + rng.normal(0, 0.2, int((arc == 0).sum()))
    out["power_source"] = (["timestamp", "arc_current_A", "arc_voltage_V"], dev, [(i, 1), (vv, 2)])

    # wire feeder --------------------------------------------------------------------
    rng = _rng(seed, 12, s.idx)
    dev, ri = _device_grid(s, "wire_feeder", 50, rng)
    w = s.wfs[ri] * (1 + rng.normal(0, 0.004, len(ri)))
    out["wire_feeder"] = (["timestamp", "wire_feed_m_min"], dev, [(w, 2)])

    # travel encoder ----------------------------------------------------------------------
    rng = _rng(seed, 13, s.idx)
    dev, ri = _device_grid(s, "travel", 50, rng)
    moving = s.v[ri] > 0
    pos = s.x[ri] + moving * rng.normal(0, 0.002, len(ri))
    counts = np.floor(pos * 1000.0)  # 1 um scale
    speed = np.zeros(len(ri))
    speed[1:] = np.diff(counts) * 0.001 / 0.02
    out["travel"] = (["timestamp", "travel_speed_mm_s"], dev, [(speed, 2)])

    # torch IMU -------------------------------------------------------------------------
    rng = _rng(seed, 14, s.idx)
    dev, ri = _device_grid(s, "torch_imu", 100, rng)
    ang = s.angle[ri] + rng.normal(0, 0.08, len(ri))
    out["torch_imu"] = (["timestamp", "torch_angle_deg"], dev, [(ang, 2)])

    # thermocouple -----------------------------------------------------------------------
    rng = _rng(seed, 15, s.idx)
    dev, ri = _device_grid(s, "thermocouple", 10, rng)
    temp = s.temp_meas[ri] + rng.normal(0, 0.15, len(ri))
    out["thermocouple"] = (["timestamp", "plate_temp_C"], dev, [(temp, 1)])
    return out


def session_signals(seed: int, idx: int = 0, duration_scale: float = 1.0) -> dict:
    """One session's signals in memory (no files, no video), for held-out skill evaluation.

    ``idx`` picks the technician style (0, 2, 4 expert; 1 fast-travel novice; 3 unstable-arc novice).
    Returns ``{"channels": {name: (t_s, values)}, "units", "events", "steps", "skill_level",
    "process"}``: times in seconds on the reference clock (0 = session start, device clock offsets
    already removed), events as ``{"t_s", "kind", "name", "value"}``, steps as ``(name, start, end)``.
    """
    s = simulate_session(seed, idx, duration_scale)
    tables = sensor_tables(s, seed)
    units = {c: u for _n, _k, _f, _o, _j, chans in DEVICES for c, u, _r in chans}
    channels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (header, dev_ms, cols) in tables.items():
        t_s = (dev_ms + s.offsets_ms[name] - s.start_ms) / 1000.0
        for col, (values, _dec) in zip(header[1:], cols, strict=True):
            channels[col] = (t_s, np.asarray(values, float))
    rows, steps = build_events(s, seed)
    events = []
    for r in rows:
        if r["kind"] in ("step_start", "step_end", "adjustment"):
            events.append(
                {
                    "t_s": round(float(r["timestamp"]) - s.start_ms / 1000.0, 3),
                    "kind": r["kind"],
                    "name": r["name"],
                    "value": r["value"],
                }
            )
    return {
        "channels": channels,
        "units": units,
        "events": events,
        "steps": [
            (st["name"], st["start"] - s.start_ms / 1000.0, st["end"] - s.start_ms / 1000.0) for st in steps
        ],
        "skill_level": s.tech["skill"],
        "process": "mig_butt_weld",
    }


def write_sensor_csv(path: Path, header: list[str], dev_ms: np.ndarray, cols: list) -> None:
    ts = [_ts(m) for m in dev_ms.tolist()]
    formatted = [_fmt_col(v, d) for v, d in cols]
    lines = [",".join(header)]
    lines.extend(",".join(row) for row in zip(ts, *formatted, strict=True))
    _write_gz(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------
# Events, metadata, ground truth
# --------------------------------------------------------------------------------------
def _segment_defects(s: Sim) -> dict[str, str]:
    d = {f"segment_{j + 1}": "OK" for j in range(N_SEGMENTS)}
    if s.tech["style"] == "novice_fast_travel":
        d["segment_3"] = "NG:undercut"
    elif s.tech["style"] == "novice_unstable_arc":
        d["segment_2"] = "NG:porosity"
    return d


def build_events(s: Sim, seed: int) -> tuple[list[dict], list[dict]]:
    rng = _rng(seed, 21, s.idx)
    ms = lambda sec: s.start_ms + int(round(sec * 1000))  # noqa: E731
    ev: list[tuple[int, int, dict]] = []
    order = 0

    def add(sec, kind, name, value="", author="technician", seg=None):
        nonlocal order
        row = {
            "timestamp": _ts(ms(sec)),
            "kind": kind,
            "name": name,
            "value": value,
            "author": author,
            "segment_start": "",
            "segment_end": "",
        }
        if seg is not None:
            row["segment_start"] = _ts(ms(seg[0]))
            row["segment_end"] = _ts(ms(seg[1]))
        ev.append((ms(sec), order, row))
        order += 1

    steps = [("prepare", s.t_prep, s.t_strike), ("strike", s.t_strike, s.t_travel)]
    for j in range(N_SEGMENTS):
        steps.append((f"segment_{j + 1}", s.seg_bounds[j], s.seg_bounds[j + 1]))
    steps.append(("crater_fill", s.t_L, s.t_arc_off))
    add(s.t_prep, "step_start", "prepare")
    add(
        s.t_prep + 0.6,
        "note",
        "setup",
        f"plate 4 mm S235 square butt, gap 1.0 mm, tacked both ends, plate {s.t_amb:.0f} C",
    )
    add(s.t_strike, "step_end", "prepare")
    add(s.t_strike, "sync", "arc_start", "", "recording-app")
    for name, a, b in steps[1:]:
        add(a, "step_start", name)
        add(b, "step_end", name)
    if s.t_adj is not None:
        add(s.t_adj, "adjustment", "arc_current_A", f"{int(round(ADJUST_FRACTION * 100)):+d}%")
    verdicts = _segment_defects(s)
    tj = s.t_arc_off + 1.0
    for j in range(N_SEGMENTS):
        name = f"segment_{j + 1}"
        tj += float(rng.uniform(0.35, 0.7))
        add(tj, "judgment", name, verdicts[name], "inspector-1", seg=(s.seg_bounds[j], s.seg_bounds[j + 1]))
        if verdicts[name] != "OK":
            what = {
                "NG:undercut": "undercut along both toes, bead narrow",
                "NG:porosity": "surface pores, cluster in mid segment",
            }[verdicts[name]]
            add(tj + 0.05, "note", name, what, "inspector-1")
    ev.sort(key=lambda e: (e[0], e[1]))
    rows = [e[2] for e in ev]
    return rows, [{"name": n, "start": _sec(ms(a)), "end": _sec(ms(b))} for n, a, b in steps]


def session_yaml(s: Sim) -> dict:
    devices = []
    for name, kind, file, _nom, _jit, chans in DEVICES:
        devices.append(
            {
                "name": name,
                "kind": kind,
                "file": file,
                "clock_offset_s": s.offsets_ms[name] / 1000.0,
                "channels": [{"column": c, "channel": c, "unit": u, "rate_hz": r} for c, u, r in chans],
            }
        )
    cam_name, cam_file, _n, _j = CAMERA
    return {
        "session_key": s.tech["key"],
        "technician": s.tech["name"],
        "skill_level": s.tech["skill"],
        "site": "changwon-plant-2",
        "line": "line-b",
        "station": s.tech["station"],
        "process": "mig_butt_weld",
        "task": f"single-pass square butt weld, 4 mm S235 plate, {s.seam_mm:g} mm seam, flat (PA)",
        "started_at": _iso(s.start_ms),
        "ended_at": _iso(s.start_ms + int(round(s.t_end * 1000))),
        "parameters": {
            "seam_length_mm": round(s.seam_mm, 3),
            "segments": N_SEGMENTS,
            "plate_thickness_mm": 4.0,
            "wire": f"ER70S-6 {WIRE_DIAMETER_MM} mm",
            "shielding_gas": "Ar 82% / CO2 18%, 14 l/min",
        },
        "cameras": [{"name": cam_name, "file": cam_file, "clock_offset_s": s.offsets_ms[cam_name] / 1000.0}],
        "devices": devices,
    }


def _window_mean(a: np.ndarray, t0: float, t1: float) -> float:
    return float(np.mean(a[int(t0 * FS) : int(t1 * FS)]))


def build_truth(s: Sim, steps: list[dict], video_info: dict) -> dict:
    ms = lambda sec: s.start_ms + int(round(sec * 1000))  # noqa: E731
    ep = lambda sec: _sec(ms(sec))  # noqa: E731
    L = s.seam_mm
    seg_len = L / N_SEGMENTS
    segs = []
    verdicts = _segment_defects(s)
    defects: dict[str, list] = {}
    for j in range(N_SEGMENTS):
        name = f"segment_{j + 1}"
        segs.append(
            {
                "name": name,
                "x_start_mm": round(j * seg_len, 3),
                "x_end_mm": round((j + 1) * seg_len, 3),
                "start": ep(s.seg_bounds[j]),
                "end": ep(s.seg_bounds[j + 1]),
                "judgment": verdicts[name],
            }
        )
        defects[name] = []
    deviations = []
    b = s.seg_bounds
    if s.tech["style"] == "novice_fast_travel":
        mean_v = _window_mean(s.v, b[2], b[3])
        deviations.append(
            {
                "step": "segment_3",
                "channel": "travel_speed_mm_s",
                "start": ep(b[2]),
                "end": ep(b[3]),
                "kind": "travel_speed_high",
                "magnitude": round(mean_v / STYLE["expert"]["v"] - 1.0, 3),
                "mean_value": round(mean_v, 3),
                "expert_band": list(EXPERT_TRAVEL_BAND),
            }
        )
        defects["segment_3"].append(
            {"kind": "undercut", "x_start_mm": round(2 * seg_len, 3), "x_end_mm": round(3 * seg_len, 3)}
        )
        if s.t_cross is not None and s.t_cross + 2.5 < s.t_L:
            t0 = s.t_cross + 2.0
            seg = _segment_of(s, t0)
            deviations.append(
                {
                    "step": seg,
                    "channel": "arc_current_A",
                    "start": ep(t0),
                    "end": ep(s.t_L),
                    "kind": "missing_current_reduction",
                    "magnitude": abs(ADJUST_FRACTION),
                    "mean_value": round(_window_mean(s.i_mean, t0, s.t_L), 1),
                }
            )
    if s.tech["style"] == "novice_unstable_arc":
        a0, a1 = b[1], b[2]
        v_ = s.v_mean[int(a0 * FS) : int(a1 * FS)]
        i_ = s.i_mean
        i_before = _window_mean(i_, b[0] + 0.5, a0)
        i_min = float(np.min(np.convolve(i_[int(a0 * FS) : int(a1 * FS)], np.ones(200) / 200, "valid")))
        deviations += [
            {
                "step": "segment_2",
                "channel": "arc_voltage_V",
                "start": ep(a0),
                "end": ep(a1),
                "kind": "arc_length_unstable",
                "magnitude": round(float(np.std(v_)), 3),
                "unit": "V (std of mean arc voltage)",
            },
            {
                "step": "segment_2",
                "channel": "arc_current_A",
                "start": ep(a0),
                "end": ep(a1),
                "kind": "current_drift",
                "magnitude": round(i_min / i_before - 1.0, 3),
                "unit": "relative (lowest 0.2 s mean vs. segment_1)",
            },
            {
                "step": "segment_2",
                "channel": "torch_angle_deg",
                "start": ep(a0),
                "end": ep(a1),
                "kind": "torch_angle_wobble",
                "magnitude": 6.5,
                "unit": "deg amplitude at 1.1 Hz",
            },
        ]
        defects["segment_2"].append(
            {
                "kind": "porosity",
                "x_start_mm": round(seg_len, 3),
                "x_end_mm": round(2 * seg_len, 3),
                "pores": video_info.get("pores", 0),
            }
        )
    adjustments = []
    if s.t_adj is not None:
        adjustments.append(
            {
                "name": "arc_current_A",
                "value": f"{int(round(ADJUST_FRACTION * 100)):+d}%",
                "ts": ep(s.t_adj),
                "threshold_crossing_ts": ep(s.t_cross),
                "threshold_C": TEMP_THRESHOLD_C,
                "current_before_A": round(_window_mean(s.i_mean, s.t_adj - 1.5, s.t_adj), 1),
                "current_after_A": round(_window_mean(s.i_mean, s.t_adj + 0.5, s.t_adj + 1.5), 1),
            }
        )
    offsets = {k: v / 1000.0 for k, v in s.offsets_ms.items()}
    sync_ref = ms(s.t_strike)
    return {
        "session_key": s.tech["key"],
        "skill_level": s.tech["skill"],
        "profile": s.tech["style"],
        "started_at": ep(0.0),
        "ended_at": ep(s.t_end),
        "clock_offsets_s": offsets,
        "sync": {
            "event": "arc_start",
            "reference_ts": _sec(sync_ref),
            "device_ts": {k: _sec(sync_ref - v) for k, v in s.offsets_ms.items() if k != CAMERA[0]},
            "video_first_frame_ts": _sec(s.start_ms + s.offsets_ms[CAMERA[0]]),
            "video_first_arc_frame": video_info.get("first_arc_frame"),
        },
        "arc": {"trigger": ep(s.t_trigger), "on": ep(s.t_strike), "off": ep(s.t_arc_off)},
        "steps": steps,
        "seam": {"length_mm": round(L, 3), "segments": segs},
        "temperature": {
            "ambient_C": round(s.t_amb, 2),
            "threshold_C": TEMP_THRESHOLD_C,
            "threshold_crossing_ts": ep(s.t_cross) if s.t_cross is not None else None,
            "max_C": round(float(np.max(s.temp_meas)), 1),
        },
        "adjustments": adjustments,
        "deviations": deviations,
        "defects": defects,
        "expert_bands": {
            "travel_speed_mm_s": list(EXPERT_TRAVEL_BAND),
            "arc_current_A": [150.0, 175.0],
            "arc_voltage_V": [19.0, 23.0],
            "torch_angle_deg": [10.0, 20.0],
        },
    }


def _segment_of(s: Sim, tsec: float) -> str:
    for j in range(N_SEGMENTS):
        if s.seg_bounds[j] <= tsec < s.seg_bounds[j + 1]:
            return f"segment_{j + 1}"
    return "crater_fill" if tsec >= s.t_L else "strike"


# --------------------------------------------------------------------------------------
# Video: top-down torch camera
# --------------------------------------------------------------------------------------
def _lowfreq(rng: np.random.Generator, h: int, w: int, cells: int, amp: float) -> np.ndarray:
    g = rng.standard_normal((cells, max(2, cells * w // h))).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC) * amp


def _scene_background(rng, L, x0, ys):
    H, W = VIDEO_H, VIDEO_W
    img = np.empty((H, W, 3), np.float32)
    img[:] = (52, 50, 48)
    img += _lowfreq(rng, H, W, 6, 5.0)[..., None]
    for xx in range(10, W, 64):  # welding-table slots
        cv2.rectangle(img, (xx, 0), (xx + 10, H), (26, 25, 24), -1)
    px = lambda mm: int(round(x0 + mm * PX_PER_MM))  # noqa: E731
    half = int(34 * PX_PER_MM)
    xa, xb = px(-12), px(L + 12)
    tex = _lowfreq(rng, H, W, 9, TEX_AMP) + _lowfreq(rng, H, W, 40, TEX_AMP2)
    plate = np.zeros((H, W), np.float32)
    plate[ys - half : ys + half, xa:xb] = 1.0
    steel = np.empty((H, W, 3), np.float32)
    steel[:] = (118, 116, 110)  # bluish-grey mill scale (BGR)
    steel += tex[..., None]
    # ground strip along the seam (mill scale removed, brushed)
    yy = np.arange(H, dtype=np.float32)[:, None]
    ground = np.clip(1.0 - (np.abs(yy - ys) - 8 * PX_PER_MM) / 6.0, 0, 1)
    brush = (
        cv2.resize(rng.standard_normal((H, 16)).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
        * 5.0
    )
    steel += (ground * (30.0 + brush))[..., None] * np.array([1.0, 1.0, 1.02], np.float32)
    img = img * (1 - plate[..., None]) + steel * plate[..., None]
    # plate edges + seam gap
    cv2.rectangle(img, (xa, ys - half), (xb, ys + half), (70, 70, 68), 1)
    cv2.line(img, (xa, ys), (xb, ys), (22, 22, 24), 3)
    # clamps
    for cx in (px(0.2 * L), px(0.8 * L)):
        for cy in (ys - half + 4, ys + half - 4):
            cv2.rectangle(img, (cx - 26, cy - 14), (cx + 26, cy + 14), (40, 44, 60), -1)
            cv2.rectangle(img, (cx - 26, cy - 14), (cx + 26, cy + 14), (80, 84, 100), 2)
    # tack welds at both ends
    for mm in (-7.0, L + 7.0):
        cv2.ellipse(
            img,
            (px(mm), ys),
            (int(3.5 * PX_PER_MM), int(2.6 * PX_PER_MM)),
            0,
            0,
            360,
            (132, 134, 138),
            -1,
            cv2.LINE_AA,
        )
    return cv2.GaussianBlur(img, (0, 0), BG_BLUR) if BG_BLUR > 0 else img


def _glow_patch(R: int) -> np.ndarray:
    yy, xx = np.mgrid[-R : R + 1, -R : R + 1].astype(np.float32)
    r = np.sqrt(xx * xx + yy * yy)
    g = np.zeros((2 * R + 1, 2 * R + 1, 3), np.float32)
    g += 900.0 * np.exp(-((r / 6.0) ** 2))[..., None]
    g += np.exp(-r / 13.0)[..., None] * np.array([260, 240, 225], np.float32)
    g += np.exp(-r / 45.0)[..., None] * np.array([45, 80, 120], np.float32)
    # weld pool trailing behind the arc (towards -x)
    pool = np.exp(-((((xx + 10) / 16.0) ** 2 + (yy / 11.0) ** 2) ** 2))
    g += pool[..., None] * np.array([90, 210, 300], np.float32)
    g *= (np.clip(1.0 - (r / R) ** 2, 0, 1) ** 2)[..., None]  # fade out to the patch border
    return g


def render_video(s: Sim, path: Path, seed: int) -> dict:
    rng = _rng(seed, 31, s.idx)
    H, W = VIDEO_H, VIDEO_W
    L = s.seam_mm
    x0 = W / 2.0 - L * PX_PER_MM / 2.0
    ys = 186
    bg = _scene_background(rng, L, x0, ys)

    # ---- per-column deposit time and bead geometry -----------------------------------
    cols = np.arange(W, dtype=np.float64)
    xmm = (cols - x0) / PX_PER_MM
    k0, kL = int(s.t_travel * FS), int(s.t_L * FS)
    xs = np.maximum.accumulate(s.x[k0 : kL + 1]) + np.arange(kL + 1 - k0) * 1e-9
    ts = np.arange(k0, kL + 1) / FS
    t_dep = np.interp(xmm, xs, ts)
    t_dep[xmm < 0] = s.t_strike + 0.25
    t_dep[xmm > L] = s.t_L + 0.3
    kd = np.clip((t_dep * FS).astype(int), 0, s.n - 1)
    v_dep = np.maximum(s.v[kd], 2.0)
    wfs_dep = np.maximum(s.wfs[kd], 1.0)
    area = wfs_dep * 1000.0 / 60.0 * math.pi * (WIRE_DIAMETER_MM / 2) ** 2 / v_dep  # mm^2
    hi = 0.8 * s.i_mean[kd] * s.v_mean[kd] / v_dep  # J/mm
    hi_rel = np.clip(hi / 530.0, 0.3, 3.0)
    w_mm = np.clip(1.1 * np.sqrt(4.5 * area) * hi_rel**0.2, 4.0, 11.0)
    half = w_mm * PX_PER_MM / 2.0
    c_start, c_end = x0, x0 + L * PX_PER_MM
    cap = np.ones(W)
    hs, he = half[int(c_start) + 1], half[int(c_end) - 1]
    pre = cols < c_start
    cap[pre] = np.sqrt(np.clip(1 - ((c_start - cols[pre]) / hs) ** 2, 0, 1))
    post = cols > c_end
    cap[post] = np.sqrt(np.clip(1 - ((cols[post] - c_end) / (he * 1.1)) ** 2, 0, 1))
    half = half * cap
    undercut = np.clip((s.v[kd] - 6.5) / 1.5, 0, 1) * (cols > c_start) * (cols < c_end)
    center = ys + s.lat[kd] * PX_PER_MM

    B0, B1 = ys - 50, ys + 50
    rows = np.arange(B0, B1, dtype=np.float64)[:, None]
    dy = rows - center[None, :]
    hh = np.maximum(half, 1e-3)[None, :]
    nd = dy / hh
    alpha = np.clip((hh - np.abs(dy)) / 1.0 + 0.5, 0, 1) * (half[None, :] > 0.5)
    h = np.sqrt(np.clip(1 - nd * nd, 0, 1))
    gy = 0.45 * nd / np.maximum(h, 0.3)
    lam = (0.92 - 0.4 * gy) / np.sqrt(1 + gy * gy)
    ripple = np.cos(2 * np.pi * 4.0 * t_dep[None, :] + 3.0 * nd * nd)
    spec = 0.3 * np.exp(-(((nd + 0.3) / 0.25) ** 2))
    shade = np.clip(lam * (1 + 0.10 * ripple * h), 0.3, 1.3)
    dep = np.empty((*dy.shape, 3), np.float32)
    dep[:] = (152, 150, 146)
    dep *= shade[..., None].astype(np.float32)
    dep += (spec * 140.0)[..., None].astype(np.float32)
    # undercut grooves along both toes
    groove = undercut[None, :] * np.exp(-(((np.abs(dy) - hh - 1.2) / 1.1) ** 2))
    dep *= (1 - 0.8 * groove)[..., None].astype(np.float32)
    dep[groove > alpha] = (30, 30, 32)
    alpha = np.maximum(alpha, np.clip(groove * 1.3, 0, 1))
    dep_a = alpha.astype(np.float32)
    # porosity: pores on the bead where gas coverage was lost
    n_pores = 0
    if s.tech["style"] == "novice_unstable_arc":
        wcol = s.unstable_w[kd] * np.clip((s.ctwd[kd] - 16.0) / 3.0, 0, 1) + 0.15 * s.unstable_w[kd]
        wcol = wcol * (cols > c_start) * (cols < c_end)
        if wcol.sum() > 0:
            n_pores = int(rng.integers(11, 17))
            pc = rng.choice(W, size=n_pores, p=wcol / wcol.sum())
            for c in pc.tolist():
                r = float(rng.uniform(1.3, 2.6))
                cy = center[c] + rng.uniform(-0.55, 0.55) * half[c] - B0
                cv2.circle(dep, (int(c), int(round(cy))), int(round(r)), (28, 28, 30), -1, cv2.LINE_AA)
                cv2.circle(
                    dep, (int(c) + 1, int(round(cy)) + 1), max(1, int(r) - 1), (55, 55, 58), -1, cv2.LINE_AA
                )
    # spatter beside the bead
    n_sp = int(rng.integers(8, 14)) if s.tech["skill"] == "expert" else int(rng.integers(25, 40))
    for _ in range(n_sp):
        c = int(rng.uniform(c_start, c_end))
        side = 1 if rng.random() < 0.5 else -1
        cy = center[c] + side * (half[c] + rng.uniform(3, 22)) - B0
        cv2.circle(dep, (c, int(cy)), 1, (120, 120, 124), -1, cv2.LINE_AA)
        cv2.circle(dep_a, (c, int(cy)), 1, 1.0, -1, cv2.LINE_AA)
    # heat tint (temper colours) outside the bead
    haz_w = 24.0 * np.sqrt(hi_rel)[None, :]
    dn = np.clip((np.abs(dy) - hh) / haz_w, -1, 3)
    stops = [-0.1, 0.0, 0.3, 0.6, 0.9, 1.3]
    cb = [(105, 160, 190), (105, 160, 190), (80, 105, 150), (140, 95, 120), (150, 125, 110), (140, 138, 134)]
    tint = np.stack([np.interp(dn, stops, [c[ch] for c in cb]) for ch in range(3)], -1).astype(np.float32)
    tint_a = np.interp(dn, stops, [0.5, 0.5, 0.42, 0.32, 0.18, 0.0]).astype(np.float32)
    tint_a *= (cols[None, :] > c_start - 12) * (cols[None, :] < c_end + 12)
    hot_col = np.array([20, 95, 255], np.float32)
    if DEP_BLUR > 0:
        dep = cv2.GaussianBlur(dep, (0, 0), DEP_BLUR)
        tint = cv2.GaussianBlur(tint, (0, 0), DEP_BLUR)

    # final look of the band once everything has cooled: base -> heat tint -> deposit
    base_band = bg[B0:B1].copy()
    band_tinted = base_band + tint_a[..., None] * (tint - base_band)
    band_final = band_tinted + dep_a[..., None] * (dep - band_tinted)
    hot_w = (dep_a * (0.6 + 0.4 * h.astype(np.float32)))[..., None] * hot_col

    # ---- lighting maps --------------------------------------------------------------
    yy, xx = np.mgrid[-H:H, -W:W].astype(np.float32)
    halo = 1.0 / (1.0 + (xx * xx + yy * yy) / HALO_R**2)
    R = 120
    glow = _glow_patch(R)
    # camera noise as two saturating uint8 planes (added / subtracted)
    noise = []
    for _ in range(5):
        nz = rng.normal(0, VIDEO_NOISE, (H, W)).round()
        noise.append(
            (
                cv2.merge([np.clip(nz, 0, 255).astype(np.uint8)] * 3),
                cv2.merge([np.clip(-nz, 0, 255).astype(np.uint8)] * 3),
            )
        )

    cam_off = s.offsets_ms[CAMERA[0]] / 1000.0
    n_frames = int((s.t_end - cam_off) * VIDEO_FPS)
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (W, H))
    if not vw.isOpened():
        raise RuntimeError("cv2.VideoWriter could not open an mp4v writer")
    first_arc = None
    sparks_rate = s.style["sparks"]
    refl = bg.copy()  # reflectance image; only the band rows change between frames
    lit_buf = np.empty_like(refl)
    was_done = np.zeros(W, bool)
    for f in range(n_frames):
        t = cam_off + f / VIDEO_FPS
        k = min(int(round(t * FS)), s.n - 1)
        arc_on = bool(s.arc[k] > 0)
        if arc_on and first_arc is None:
            first_arc = f
        cur = s.i_mean[k] / 165.0 if arc_on else 0.0
        cur_set = s.i_set[k] / 165.0 if arc_on else 0.0  # smooth level for the arc light on the scene
        xa = x0 + s.x[k] * PX_PER_MM
        ya = ys + s.lat[k] * PX_PER_MM
        age = (t - t_dep).astype(np.float32)
        # columns: final (age >= 1.5 s), transitional (0 <= age < 1.5 s), untouched (age < 0)
        band = refl[B0:B1]
        done = age >= 1.5
        fresh = done & ~was_done
        if fresh.any():
            band[:, fresh] = band_final[:, fresh]
            was_done |= fresh
        part = (age > -0.1) & ~done
        if part.any():
            vis = np.clip(age[part] / 0.1, 0, 1)[None, :, None]
            tv = np.clip(age[part] / 1.5, 0, 1)[None, :, None]
            bb = base_band[:, part]
            bb = bb + tint_a[:, part, None] * tv * (tint[:, part] - bb)
            band[:, part] = bb + dep_a[:, part, None] * vis * (dep[:, part] - bb)
        # illumination: dim ambient (exposure locked for the arc), arc light when burning; after the
        # arc is off, auto exposure brightens the view of the finished bead
        amb = AMBIENT + (POST_EXPOSURE - AMBIENT) * min(1.0, max(0.0, (t - s.t_arc_off - 0.3) / 1.2))
        if arc_on:
            ix, iy = int(round(xa)), int(round(ya))
            light = halo[H - iy : 2 * H - iy, W - ix : 2 * W - ix] * np.float32(HALO * cur_set)
            light += np.float32(AMBIENT + FILL * cur_set)
            np.multiply(refl, light[..., None], out=lit_buf)
        else:
            np.multiply(refl, np.float32(amb), out=lit_buf)
        frame = lit_buf
        # incandescent fresh bead (and crater after the arc is off)
        glowing = (age >= 0) & (age < 6.0)
        if glowing.any():
            hot = np.exp(-age[glowing] / 0.9)[None, :, None]
            frame[B0:B1, glowing] += hot_w[:, glowing] * hot
        # torch (nozzle + gooseneck), lifted away after the arc
        lift = 250.0 * min(1.0, max(0.0, (t - s.t_arc_off - 0.6) / 1.0))
        lit = 0.35 * amb / AMBIENT + 0.9 * cur
        ang = s.angle[k]
        nx, ny = int(xa - 12 - 0.5 * ang), int(ya - 10 - lift)
        cv2.line(frame, (nx, ny), (nx - 150, ny - 220), (30 * lit, 30 * lit, 33 * lit), 18, cv2.LINE_AA)
        cv2.line(
            frame, (nx - 4, ny - 6), (nx - 154, ny - 226), (70 * lit, 70 * lit, 75 * lit), 3, cv2.LINE_AA
        )
        cv2.ellipse(frame, (nx, ny), (19, 15), 20, 0, 360, (38 * lit, 38 * lit, 42 * lit), -1, cv2.LINE_AA)
        cv2.ellipse(frame, (nx, ny), (19, 15), 20, -60, 90, (110 * lit, 110 * lit, 118 * lit), 2, cv2.LINE_AA)
        if arc_on:
            flick = np.float32(cur * (1.0 + FLICKER * float(rng.standard_normal())))
            ix, iy = int(round(xa)), int(round(ya))
            y0, y1 = max(0, iy - R), min(H, iy + R + 1)
            x0c, x1c = max(0, ix - R), min(W, ix + R + 1)
            frame[y0:y1, x0c:x1c] += flick * glow[y0 - iy + R : y1 - iy + R, x0c - ix + R : x1c - ix + R]
            for _ in range(int(rng.poisson(sparks_rate * (1 + 1.5 * s.unstable_w[k])))):
                a = rng.uniform(0, 2 * np.pi)
                r0, ln = rng.uniform(6, 30), rng.uniform(8, 30)
                p0 = (int(xa + r0 * math.cos(a)), int(ya + r0 * math.sin(a)))
                p1 = (int(xa + (r0 + ln) * math.cos(a)), int(ya + (r0 + ln) * math.sin(a)))
                cv2.line(frame, p0, p1, (200, 245, 300), 1, cv2.LINE_AA)
        out = cv2.convertScaleAbs(frame)  # saturating float -> uint8 (all values are >= 0)
        if FRAME_BLUR > 0:
            out = cv2.GaussianBlur(out, (0, 0), FRAME_BLUR)
        npos, nneg = noise[int(rng.integers(0, len(noise)))]
        out = cv2.subtract(cv2.add(out, npos), nneg)
        vw.write(out)
    vw.release()
    return {"frames": n_frames, "first_arc_frame": first_arc, "pores": n_pores}


# --------------------------------------------------------------------------------------
# Still inspection images
# --------------------------------------------------------------------------------------
def _bead_scene(rng: np.random.Generator):
    """Background metal + one weld bead. Returns float image and bead geometry helpers."""
    n = IMG
    # base metal (BGR), grey-brown with mottling and grinding streaks
    base = np.array([96, 104, 112], np.float32) * rng.uniform(0.9, 1.1) + rng.normal(0, 3, 3).astype(
        np.float32
    )
    img = np.empty((n, n, 3), np.float32)
    img[:] = base
    img += _lowfreq(rng, n, n, 5, 8.0)[..., None]
    streak_ang = rng.uniform(0, 180)
    st = rng.standard_normal((n // 2, n // 2)).astype(np.float32)
    st = cv2.resize(st, (n, n), interpolation=cv2.INTER_LINEAR)
    k = cv2.getGaussianKernel(31, 8.0) @ cv2.getGaussianKernel(1, 1).T
    st = cv2.filter2D(st, -1, k.T.astype(np.float32))
    M = cv2.getRotationMatrix2D((n / 2, n / 2), streak_ang, 1.0)
    st = cv2.warpAffine(st, M, (n, n), borderMode=cv2.BORDER_REFLECT)
    img += (st * 9.0)[..., None]

    # bead geometry: centre line through the image, angle, width, slight curvature
    theta = rng.uniform(-35, 35) + (90.0 if rng.random() < 0.3 else 0.0)
    th = math.radians(theta)
    d = np.array([math.cos(th), math.sin(th)])
    nrm = np.array([-math.sin(th), math.cos(th)])
    c0 = np.array([n / 2, n / 2]) + nrm * rng.uniform(-30, 30)
    w0 = rng.uniform(44, 78)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    px, py = xx - c0[0], yy - c0[1]
    u = px * d[0] + py * d[1]
    bend_a, bend_f, bend_p = rng.uniform(0, 4), rng.uniform(0.005, 0.02), rng.uniform(0, 6.3)
    wv_a, wv_f, wv_p = rng.uniform(0.02, 0.08), rng.uniform(0.01, 0.03), rng.uniform(0, 6.3)
    off = lambda uu: bend_a * np.sin(bend_f * uu + bend_p)  # noqa: E731
    width = lambda uu: w0 * (1 + wv_a * np.sin(wv_f * uu + wv_p))  # noqa: E731
    v = px * nrm[0] + py * nrm[1] - off(u)
    w = width(u)
    hw = w / 2
    nd = v / hw
    # heat tint beside the bead
    dist = (np.abs(v) - hw) / (w0 * rng.uniform(0.35, 0.6))
    tint_strength = rng.uniform(0.2, 0.6)
    stops = [0.0, 0.3, 0.65, 1.0, 1.4]
    cols = [(95, 160, 190), (70, 100, 150), (140, 85, 110), (135, 115, 100), tuple(base.tolist())]
    tint = np.stack([np.interp(dist, stops, [c[ch] for c in cols]) for ch in range(3)], -1)
    ta = np.interp(dist, stops, [0.55, 0.5, 0.4, 0.2, 0.0]) * tint_strength
    img = img * (1 - ta[..., None]) + tint * ta[..., None]
    # bead body: elliptical cross-section, lit from the upper left, chevron ripples
    alpha = np.clip((hw - np.abs(v)) / 1.2 + 0.5, 0, 1)
    h = np.sqrt(np.clip(1 - nd * nd, 0, 1))
    gy = 0.8 * nd / np.maximum(h, 0.25)
    lam = (0.9 - 0.45 * gy) / np.sqrt(1 + gy * gy)
    pitch = rng.uniform(6.0, 10.0)
    chev = rng.uniform(1.5, 3.5)
    ripple = np.cos(2 * np.pi * (u + chev * nd * nd * pitch) / pitch)
    spec = np.exp(-(((nd + 0.35) / 0.22) ** 2)) * rng.uniform(40, 80)
    bead_col = np.array([150, 152, 156], np.float32) + rng.normal(0, 5, 3).astype(np.float32)
    bead = bead_col * (lam * (1 + 0.13 * ripple * h))[..., None] + spec[..., None]
    # toe shadow
    toe = np.exp(-(((np.abs(nd) - 1.0) / 0.05) ** 2)) * 0.15
    bead *= (1 - toe)[..., None]
    img = img * (1 - alpha[..., None]) + bead * alpha[..., None]
    geo = {"c0": c0, "d": d, "n": nrm, "off": off, "width": width, "w0": w0, "u": u, "v": v}
    return img.astype(np.float32), geo


def _to_xy(geo, uu, vv):
    p = geo["c0"] + geo["d"] * uu + geo["n"] * (vv + geo["off"](uu))
    return float(p[0]), float(p[1])


def _bbox_from_mask(mask: np.ndarray, thr: float = 0.25, min_size: int = 16):
    ys, xs = np.nonzero(mask > thr)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    if x1 - x0 < min_size:
        c = (x0 + x1) / 2
        x0, x1 = int(round(c - min_size / 2)), int(round(c + min_size / 2))
    if y1 - y0 < min_size:
        c = (y0 + y1) / 2
        y0, y1 = int(round(c - min_size / 2)), int(round(c + min_size / 2))
    if x0 < 0:
        x0, x1 = 0, x1 - x0
    if y0 < 0:
        y0, y1 = 0, y1 - y0
    if x1 > IMG:
        x0, x1 = x0 - (x1 - IMG), IMG
    if y1 > IMG:
        y0, y1 = y0 - (y1 - IMG), IMG
    return [x0, y0, x1, y1]


def _draw_defect(rng, img, geo, cls):
    """Draw one defect into img (in place). Returns (mask, darkness-layer) for the bbox."""
    n = IMG
    mask = np.zeros((n, n), np.float32)
    w0 = geo["w0"]
    ss = 4  # supersampling factor for cv2 drawing (shift bits = 2)
    S = lambda p: (int(round(p[0] * ss)), int(round(p[1] * ss)))  # noqa: E731
    light = np.array([-0.6, -0.8])  # light from the upper left
    if cls == "porosity":
        uc = rng.uniform(-90, 90)
        vc = rng.uniform(-0.25, 0.25) * w0
        k = int(rng.integers(1, 7))
        pores = []
        spread = rng.uniform(6, 16)
        for i in range(k):
            r = rng.uniform(5.0, 8.5) if k == 1 else rng.uniform(2.8, 6.0)
            du, dv = (0.0, 0.0) if i == 0 else (rng.normal(0, spread), rng.normal(0, spread * 0.5))
            vv = np.clip(vc + dv, -0.38 * w0, 0.38 * w0)
            pores.append((_to_xy(geo, uc + du, vv), r))
        for (cx, cy), r in pores:
            cv2.circle(mask, S((cx, cy)), int(r * ss), 1.0, -1, cv2.LINE_AA, 2)
            # bright rim on the side facing away from the light, dark cavity
            cv2.circle(
                img,
                S((cx - light[0] * 0.8, cy - light[1] * 0.8)),
                int((r + 1.0) * ss),
                (205, 205, 210),
                -1,
                cv2.LINE_AA,
                2,
            )
            cv2.circle(img, S((cx, cy)), int(r * ss), (34, 34, 38), -1, cv2.LINE_AA, 2)
            cv2.circle(
                img,
                S((cx + light[0] * r * 0.3, cy + light[1] * r * 0.3)),
                int(r * 0.55 * ss),
                (18, 18, 20),
                -1,
                cv2.LINE_AA,
                2,
            )
    elif cls == "undercut":
        side = 1 if rng.random() < 0.5 else -1
        ln = rng.uniform(50, 120)
        u0 = rng.uniform(-110, 110 - ln)
        g = rng.uniform(4.0, 7.0)
        uu = np.linspace(u0, u0 + ln, 40)
        pts_in, pts_out = [], []
        for q in uu:
            wq = float(geo["width"](q)) / 2
            wob = 1.2 * math.sin(q * 0.15)
            taper = min(1.0, (q - u0) / 12.0, (u0 + ln - q) / 12.0)
            gq = max(1.0, g * taper)
            pts_in.append(_to_xy(geo, q, side * (wq - 1.5 + wob)))
            pts_out.append(_to_xy(geo, q, side * (wq - 1.5 + gq + wob)))
        poly = np.array([S(p) for p in pts_in + pts_out[::-1]], np.int32)
        cv2.fillPoly(mask, [poly], 1.0, cv2.LINE_AA, 2)
        soft = cv2.GaussianBlur(mask, (0, 0), 0.8)
        groove = np.array([30, 30, 34], np.float32)
        img[:] = img * (1 - soft[..., None]) + groove * soft[..., None]
        # thin bright lip on the plate side of the groove
        lip = [
            _to_xy(geo, q, side * (float(geo["width"](q)) / 2 - 1.5 + g + 1.2 + 1.2 * math.sin(q * 0.15)))
            for q in uu[3:-3]
        ]
        cv2.polylines(
            img, [np.array([S(p) for p in lip], np.int32)], False, (170, 170, 175), 1, cv2.LINE_AA, 2
        )
    elif cls == "spatter":
        side = 1 if rng.random() < 0.5 else -1
        uc = rng.uniform(-90, 90)
        vc = side * (w0 / 2 + rng.uniform(14, 34))
        k = int(rng.integers(3, 10))
        for _ in range(k):
            uu, vv = uc + rng.normal(0, 11), vc + side * abs(rng.normal(0, 7))
            cx, cy = _to_xy(geo, uu, vv)
            r = rng.uniform(1.8, 4.5)
            cv2.circle(mask, S((cx, cy)), int(r * ss), 1.0, -1, cv2.LINE_AA, 2)
            cv2.circle(img, S((cx + 1.2, cy + 1.2)), int((r + 0.8) * ss), (40, 42, 46), -1, cv2.LINE_AA, 2)
            cv2.circle(img, S((cx, cy)), int(r * ss), (120, 124, 130), -1, cv2.LINE_AA, 2)
            cv2.circle(
                img,
                S((cx - r * 0.35, cy - r * 0.35)),
                max(1, int(r * 0.35 * ss)),
                (235, 235, 240),
                -1,
                cv2.LINE_AA,
                2,
            )
    elif cls == "crack":
        longitudinal = rng.random() < 0.5
        ln = rng.uniform(30, 80)
        if longitudinal:
            u0 = rng.uniform(-100, 100 - ln)
            v0 = rng.uniform(-0.15, 0.15) * w0
            pts = []
            vv = v0
            for q in np.linspace(u0, u0 + ln, 12):
                vv += rng.normal(0, 1.6)
                pts.append(_to_xy(geo, q, vv))
        else:
            uc = rng.uniform(-90, 90)
            lnv = min(ln, 0.9 * w0)
            pts = []
            uu = uc
            for q in np.linspace(-lnv / 2, lnv / 2, 10):
                uu += rng.normal(0, 1.6)
                pts.append(_to_xy(geo, uu, q))
        thick = int(rng.integers(1, 3))
        arr = np.array([S(p) for p in pts], np.int32)
        cv2.polylines(mask, [arr], False, 1.0, thick + 1, cv2.LINE_AA, 2)
        cv2.polylines(img, [arr + np.array([3, 3], np.int32)], False, (175, 175, 180), 1, cv2.LINE_AA, 2)
        cv2.polylines(img, [arr], False, (22, 22, 26), thick + 1, cv2.LINE_AA, 2)
        # small branches
        for _ in range(int(rng.integers(0, 3))):
            j = int(rng.integers(1, len(pts) - 1))
            a = rng.uniform(0, 2 * np.pi)
            lb = rng.uniform(4, 9)
            p1 = (pts[j][0] + lb * math.cos(a), pts[j][1] + lb * math.sin(a))
            cv2.line(img, S(pts[j]), S(p1), (30, 30, 34), 1, cv2.LINE_AA, 2)
            cv2.line(mask, S(pts[j]), S(p1), 1.0, 1, cv2.LINE_AA, 2)
    return mask


def _finish_image(rng, img, station):
    n = IMG
    # lighting gradient + vignette + station colour cast
    gx, gy = rng.uniform(-0.25, 0.25, 2)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
    light = 1.0 + gx * xx + gy * yy - 0.35 * (xx * xx + yy * yy)
    gain = rng.uniform(0.88, 1.12)
    cast = {"st-01": (1.0, 1.0, 1.0), "st-02": (1.06, 1.0, 0.95), "st-03": (0.93, 0.99, 1.07)}[station]
    img = img * (light * gain)[..., None] * np.array(cast, np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.normal(0, 1.5, (n, n, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _overlap(a, b, pad=3):
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def render_inspection_image(seed: int, stream: int, i: int, with_defects: bool):
    rng = _rng(seed, stream, i)
    station = INSPECTION_STATIONS[int(rng.integers(0, len(INSPECTION_STATIONS)))]
    img, geo = _bead_scene(rng)
    boxes = []
    if with_defects:
        k = int(rng.choice([1, 2, 2, 3, 3, 4]))
        first = INSPECTION_CLASSES[i % len(INSPECTION_CLASSES)]  # keeps the classes balanced
        wanted = [first] + [INSPECTION_CLASSES[int(rng.integers(0, 4))] for _ in range(k - 1)]
        for cls in wanted:
            for _attempt in range(12):
                trial = img.copy()
                mask = _draw_defect(rng, trial, geo, cls)
                box = _bbox_from_mask(mask)
                if box is None:
                    continue
                bw, bh = box[2] - box[0], box[3] - box[1]
                if box[0] < 2 or box[1] < 2 or box[2] > IMG - 2 or box[3] > IMG - 2:
                    continue
                if bw > 140 or bh > 140:
                    continue
                if any(_overlap(box, b[1:]) for b in boxes):
                    continue
                img = trial
                boxes.append([cls, *box])
                break
    out = _finish_image(rng, img, station)
    return out, station, boxes


# --------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------
def _clean(out_dir: Path) -> None:
    man = out_dir / "manifest.json"
    if man.exists():
        try:
            ok = json.loads(man.read_text()).get("generator") == GENERATOR_ID
        except (ValueError, OSError):
            ok = False
        if ok:
            for sub in ("sessions", "inspection"):
                if (out_dir / sub).is_dir():
                    shutil.rmtree(out_dir / sub)


def generate(
    out_dir: Path,
    seed: int = 7,
    sessions: int | None = None,
    duration_scale: float = 1.0,
    n_inspection: int | None = None,
    n_good: int | None = None,
) -> dict:
    """Generate the sample data set into out_dir. Returns a small summary."""
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clean(out_dir)
    n_sessions = len(TECHNICIANS) if sessions is None else int(sessions)
    if not 0 <= n_sessions <= len(TECHNICIANS):
        raise ValueError(f"sessions must be between 0 and {len(TECHNICIANS)}")
    n_insp = 160 if n_inspection is None else int(n_inspection)
    n_ok = 80 if n_good is None else int(n_good)
    written: list[Path] = []

    for idx in range(n_sessions):
        s = simulate_session(seed, idx, duration_scale)
        sdir = out_dir / "sessions" / s.tech["key"]
        tables = sensor_tables(s, seed)
        for name, _kind, file, _n, _j, _c in DEVICES:
            header, dev, cols = tables[name]
            write_sensor_csv(sdir / file, header, dev, cols)
            written.append(sdir / file)
        info = render_video(s, sdir / CAMERA[1], seed)
        written.append(sdir / CAMERA[1])
        rows, steps = build_events(s, seed)
        buf = io.StringIO()
        wr = csv.DictWriter(
            buf,
            fieldnames=["timestamp", "kind", "name", "value", "author", "segment_start", "segment_end"],
            lineterminator="\n",
        )
        wr.writeheader()
        wr.writerows(rows)
        _write_text(sdir / "events.csv", buf.getvalue())
        _write_text(
            sdir / "session.yaml",
            yaml.safe_dump(session_yaml(s), sort_keys=False, allow_unicode=True, width=100),
        )
        truth = build_truth(s, steps, info)
        _write_text(sdir / "truth.json", json.dumps(truth, indent=2, allow_nan=False) + "\n")
        written += [sdir / "events.csv", sdir / "session.yaml", sdir / "truth.json"]

    idir = out_dir / "inspection"
    img_rows, box_rows = [], []
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 85]
    for i in range(n_insp):
        img, station, boxes = render_inspection_image(seed, 41, i, True)
        rel = f"images/img_{i + 1:04d}.jpg"
        (idir / "images").mkdir(parents=True, exist_ok=True)
        _ok, enc = cv2.imencode(".jpg", img, params)
        (idir / rel).write_bytes(enc.tobytes())
        written.append(idir / rel)
        img_rows.append([rel, station, IMG, IMG])
        box_rows += [[rel, *b] for b in boxes]
    for i in range(n_ok):
        img, station, _ = render_inspection_image(seed, 42, i, False)
        rel = f"good/good_{i + 1:04d}.jpg"
        (idir / "good").mkdir(parents=True, exist_ok=True)
        _ok, enc = cv2.imencode(".jpg", img, params)
        (idir / rel).write_bytes(enc.tobytes())
        written.append(idir / rel)
        img_rows.append([rel, station, IMG, IMG])
    if n_insp or n_ok:
        _write_text(
            idir / "images.csv",
            "image,station,width,height\n" + "".join(",".join(map(str, r)) + "\n" for r in img_rows),
        )
        _write_text(
            idir / "boxes.csv",
            "image,class,xmin,ymin,xmax,ymax\n" + "".join(",".join(map(str, r)) + "\n" for r in box_rows),
        )
        written += [idir / "images.csv", idir / "boxes.csv"]

    rel_files = sorted(p.relative_to(out_dir).as_posix() for p in written)
    manifest = {
        "generator": GENERATOR_ID,
        "version": GENERATOR_VERSION,
        "params": {
            "seed": seed,
            "sessions": n_sessions,
            "duration_scale": duration_scale,
            "n_inspection": n_insp,
            "n_good": n_ok,
        },
        "files": rel_files,
    }
    _write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    sizes = {f: (out_dir / f).stat().st_size for f in [*rel_files, "manifest.json"]}
    return {
        "out_dir": str(out_dir),
        "files": sizes,
        "n_files": len(sizes),
        "total_bytes": int(sum(sizes.values())),
        "seconds": round(time.perf_counter() - t_start, 2),
    }


# --------------------------------------------------------------------------------------
# --check: regenerate and compare
# --------------------------------------------------------------------------------------
def _read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr)
    cap.release()
    return frames


def compare_files(a: Path, b: Path) -> str | None:
    """None when equivalent, else a reason."""
    if not b.exists():
        return "missing"
    suf = a.name.lower()
    if suf.endswith((".jpg", ".jpeg")):
        ia, ib = cv2.imread(str(a)), cv2.imread(str(b))
        if ia is None or ib is None or ia.shape != ib.shape:
            return "unreadable or different shape"
        d = float(np.mean(np.abs(ia.astype(np.int16) - ib.astype(np.int16))))
        return None if d < 1.0 else f"pixel mean abs diff {d:.2f}"
    if suf.endswith(".mp4"):
        fa, fb = _read_video(a), _read_video(b)
        if len(fa) != len(fb) or not fa:
            return f"frame count {len(fa)} != {len(fb)}"
        worst = max(
            float(np.mean(np.abs(x.astype(np.int16) - y.astype(np.int16))))
            for x, y in zip(fa, fb, strict=True)
        )
        return None if worst < 1.0 else f"decoded frame mean abs diff up to {worst:.2f}"
    da, db = a.read_bytes(), b.read_bytes()
    if da == db:
        return None
    if suf.endswith(".gz"):
        if gzip.decompress(da) == gzip.decompress(db):
            # same content, different deflate stream (another zlib build) -- report, accept
            print(f"note: {b.name}: gzip bytes differ but the decompressed CSV is identical")
            return None
        return "decompressed content differs"
    return "bytes differ"


def check(committed: Path) -> int:
    committed = Path(committed)
    man_path = committed / "manifest.json"
    if not man_path.exists():
        print(f"no manifest.json in {committed}")
        return 2
    manifest = json.loads(man_path.read_text())
    p = manifest["params"]
    with tempfile.TemporaryDirectory(prefix="jangin-sample-check-") as tmp:
        summary = generate(
            Path(tmp),
            seed=p["seed"],
            sessions=p["sessions"],
            duration_scale=p["duration_scale"],
            n_inspection=p["n_inspection"],
            n_good=p["n_good"],
        )
        problems = []
        fresh = sorted(summary["files"])
        for rel in fresh:
            why = compare_files(Path(tmp) / rel, committed / rel)
            if why:
                problems.append(f"{rel}: {why}")
        for sub in ("sessions", "inspection"):
            if (committed / sub).is_dir():
                for f in sorted((committed / sub).rglob("*")):
                    rel = f.relative_to(committed).as_posix()
                    if f.is_file() and rel not in summary["files"]:
                        problems.append(f"{rel}: not produced by the generator (stale)")
    if problems:
        print(f"sample data check FAILED ({len(problems)} problem(s)):")
        for line in problems[:50]:
            print("  " + line)
        return 1
    print(f"sample data check OK: {len(fresh)} files match")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sessions", type=int, default=None)
    ap.add_argument("--duration-scale", type=float, default=1.0)
    ap.add_argument("--n-inspection", type=int, default=None)
    ap.add_argument("--n-good", type=int, default=None)
    ap.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir (params from manifest.json) and compare",
    )
    a = ap.parse_args(argv)
    if a.check:
        return check(a.out)
    summary = generate(
        a.out,
        seed=a.seed,
        sessions=a.sessions,
        duration_scale=a.duration_scale,
        n_inspection=a.n_inspection,
        n_good=a.n_good,
    )
    print(
        f"wrote {summary['n_files']} files, {summary['total_bytes'] / 1e6:.2f} MB "
        f"in {summary['seconds']:.1f} s to {summary['out_dir']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
