#!/usr/bin/env python3
"""Deterministic sample-data generator for the second sample process: a plasma-etch chamber.

Simulates one wafer per run in a capacitively coupled fluorocarbon etch chamber at 10 Hz: RF
generator and match network, gas flows (set point and actual), pressure control through a throttle
valve, electrostatic chuck and helium backside cooling, chiller and chamber temperatures, and
optical emission lines with an endpoint signal. A text ``recipe_step`` column names the recipe step
(``main_etch`` occurs twice, split by a ``purge``). Runs are made by expert and novice process
engineers: the experts nudge the RF power when the reflected power rises and trim the pressure at
endpoint; the novices react late, overshoot or call the endpoint late. See README.md (section
"Plasma etch") for the physical model and the files.

Only numpy and the standard library are used.

    python sample_data/generate_etch.py            # (re)generate sample_data/etch/
    python sample_data/generate_etch.py --check    # regenerate into a temp dir and compare bytes

From Python (the held-out skill benchmark), load the file by path and call ``generate_run``::

    channels, steps, params = gen.generate_run(101, "expert", "oxide_via", [
        {"channel": "rf_forward_W", "step": "main_etch", "kind": "offset_rel", "amount": 0.12}])
"""

import argparse
import csv
import datetime as _dt
import gzip
import io
import json
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

GENERATOR_ID = "jangin-sample-etch"
GENERATOR_VERSION = 1
RATE_HZ = 10
DT = 1.0 / RATE_HZ
SEED = 20260611
BASE_TIME = _dt.datetime(2025, 6, 2, 7, 30, 0, tzinfo=_dt.UTC)

# -- recipes -----------------------------------------------------------------------------------------
# Set points of the main etch. ``etch_rate_nm_s`` is the oxide (or nitride) etch rate at the recipe's
# RF power, pressure and flows; ``main1_s`` the fixed length of the first main etch; ``over_etch_pct``
# the over etch the tool adds after endpoint, as % of the total main-etch time.
RECIPES: dict[str, dict[str, Any]] = {
    "oxide_via": {
        "film": "SiO2",
        "film_thickness_nm": 650.0,
        "rf_power_setpoint_W": 800.0,
        "pressure_setpoint_mTorr": 45.0,
        "cf4_flow_sccm": 40.0,
        "chf3_flow_sccm": 25.0,
        "o2_flow_sccm": 0.0,
        "ar_flow_sccm": 100.0,
        "electrode_temp_setpoint_C": 20.0,
        "etch_rate_nm_s": 11.0,
        "main1_s": 30.0,
        "over_etch_pct": 20.0,
    },
    "nitride_spacer": {
        "film": "Si3N4",
        "film_thickness_nm": 300.0,
        "rf_power_setpoint_W": 500.0,
        "pressure_setpoint_mTorr": 30.0,
        "cf4_flow_sccm": 60.0,
        "chf3_flow_sccm": 0.0,
        "o2_flow_sccm": 8.0,
        "ar_flow_sccm": 50.0,
        "electrode_temp_setpoint_C": 15.0,
        "etch_rate_nm_s": 6.0,
        "main1_s": 25.0,
        "over_etch_pct": 30.0,
    },
}
PARAM_KEYS = [
    "rf_power_setpoint_W",
    "pressure_setpoint_mTorr",
    "cf4_flow_sccm",
    "chf3_flow_sccm",
    "o2_flow_sccm",
    "ar_flow_sccm",
    "electrode_temp_setpoint_C",
    "film_thickness_nm",
    "over_etch_pct",
]

STEP_NAMES = ["stabilize", "strike", "main_etch", "purge", "main_etch", "over_etch", "pump_out"]
GASES = ("cf4", "chf3", "o2", "ar")

# channel -> (unit, decimals). Order = CSV column order (recipe_step comes last).
CHANNELS: dict[str, tuple[str, int]] = {
    "rf_forward_setpoint_W": ("W", 1),
    "rf_forward_W": ("W", 1),
    "rf_reflected_W": ("W", 1),
    "bias_voltage_V": ("V", 1),
    "rf_vpp_V": ("V", 1),
    "match_load_pct": ("%", 2),
    "match_tune_pct": ("%", 2),
    "pressure_setpoint_mTorr": ("mTorr", 2),
    "chamber_pressure_mTorr": ("mTorr", 2),
    "throttle_valve_pct": ("%", 2),
    "foreline_pressure_mTorr": ("mTorr", 1),
    "cf4_flow_setpoint_sccm": ("sccm", 2),
    "cf4_flow_sccm": ("sccm", 2),
    "chf3_flow_setpoint_sccm": ("sccm", 2),
    "chf3_flow_sccm": ("sccm", 2),
    "o2_flow_setpoint_sccm": ("sccm", 2),
    "o2_flow_sccm": ("sccm", 2),
    "ar_flow_setpoint_sccm": ("sccm", 2),
    "ar_flow_sccm": ("sccm", 2),
    "electrode_temp_setpoint_C": ("degC", 2),
    "electrode_temp_C": ("degC", 2),
    "chiller_supply_temp_C": ("degC", 2),
    "chiller_return_temp_C": ("degC", 2),
    "wall_temp_C": ("degC", 2),
    "lid_temp_C": ("degC", 2),
    "he_backside_pressure_Torr": ("Torr", 3),
    "he_backside_flow_sccm": ("sccm", 3),
    "esc_voltage_V": ("V", 1),
    "oes_co_483nm": ("counts", 0),
    "oes_f_704nm": ("counts", 0),
    "oes_ar_750nm": ("counts", 0),
    "endpoint_signal": ("", 3),
    "turbo_speed_pct": ("%", 2),
}
# A deviation planted on an actual value is planted on its set point: the chamber follows it.
SETPOINT_OF = {
    "rf_forward_W": "rf_forward_setpoint_W",
    "chamber_pressure_mTorr": "pressure_setpoint_mTorr",
    "electrode_temp_C": "electrode_temp_setpoint_C",
    **{f"{g}_flow_sccm": f"{g}_flow_setpoint_sccm" for g in GASES},
}
SETPOINTS = sorted(set(SETPOINT_OF.values()))

# The committed runs: (run key, technician, skill, behaviour, recipe, station, extra planted deviations)
RUNS: list[tuple[str, str, str, str, str, str, list[dict[str, Any]]]] = [
    ("etch-01", "Hana Yoon", "expert", "expert", "oxide_via", "pm1", []),
    ("etch-02", "Tom Becker", "novice", "late_endpoint", "oxide_via", "pm1", []),
    ("etch-03", "Daniel Ortiz", "expert", "expert", "oxide_via", "pm2", []),
    ("etch-04", "Priya Nair", "novice", "no_rf_nudge", "oxide_via", "pm2", []),
    ("etch-05", "Mei Lin", "expert", "expert", "oxide_via", "pm1", []),
    ("etch-06", "Hana Yoon", "expert", "expert", "nitride_spacer", "pm2", []),
    (
        "etch-07",
        "Jonas Weber",
        "novice",
        "overshoot",
        "nitride_spacer",
        "pm2",
        [{"channel": "o2_flow_sccm", "step": "main_etch", "kind": "offset_rel", "amount": -0.25}],
    ),
    ("etch-08", "Daniel Ortiz", "expert", "expert", "nitride_spacer", "pm1", []),
    ("etch-09", "Aiko Sato", "novice", "early_endpoint", "nitride_spacer", "pm1", []),
    ("etch-10", "Mei Lin", "expert", "expert", "nitride_spacer", "pm2", []),
]
NOVICE_BEHAVIOURS = ("late_endpoint", "no_rf_nudge", "overshoot", "early_endpoint")


# -- small signal helpers ----------------------------------------------------------------------------
def _lag(x: np.ndarray, tau: float, y0: float | None = None) -> np.ndarray:
    """First-order lag (time constant ``tau`` seconds) of ``x`` sampled at RATE_HZ."""
    a = 1.0 - math.exp(-DT / tau) if tau > 0 else 1.0
    y = np.empty_like(x, dtype=np.float64)
    acc = float(x[0] if y0 is None else y0)
    for i, v in enumerate(x.tolist()):
        acc += a * (v - acc)
        y[i] = acc
    return y


def _ou(rng: np.random.Generator, n: int, tau: float, sigma: float) -> np.ndarray:
    """Coloured noise (Ornstein-Uhlenbeck) with stationary std ``sigma``."""
    a = math.exp(-DT / tau)
    e = rng.normal(0.0, sigma * math.sqrt(1 - a * a), n)
    y = np.empty(n)
    acc = rng.normal(0.0, sigma)
    for i in range(n):
        acc = a * acc + e[i]
        y[i] = acc
    return y


def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (vectorised, no scipy)."""
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


# -- the run model -----------------------------------------------------------------------------------
@dataclass
class Behaviour:
    """What the process engineer does during the run (drawn once per run from its rng)."""

    nudge_delay_s: float | None  # after the reflected power passes the alarm level; None: never
    nudge_gain: float  # 1.0: compensates the reflected power exactly
    endpoint_delay_s: float  # after the endpoint signal drops below 0.5 (negative: before)
    endpoint_level: float  # the level of the endpoint signal the engineer waits for
    pressure_trim: float  # relative pressure change at endpoint (expert about -0.10)
    trim_delay_s: float


@dataclass
class Run:
    """One simulated run: channels at 10 Hz, step per sample, what happened."""

    channels: dict[str, np.ndarray]
    steps: list[str]
    params: dict[str, Any]
    intervals: list[dict[str, Any]] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)


def _behaviour(rng: np.random.Generator, skill: str, profile: str) -> Behaviour:
    expert = Behaviour(
        nudge_delay_s=float(rng.uniform(1.5, 3.0)),
        nudge_gain=1.0,
        endpoint_delay_s=float(rng.uniform(0.5, 1.0)),
        endpoint_level=0.5,
        pressure_trim=float(rng.uniform(-0.11, -0.09)),
        trim_delay_s=float(rng.uniform(0.8, 1.5)),
    )
    if skill == "expert" or profile == "expert":
        return expert
    if profile == "late_endpoint":
        expert.endpoint_delay_s = float(rng.uniform(9.0, 12.0))
        expert.nudge_delay_s = float(rng.uniform(6.0, 9.0))
        expert.trim_delay_s = float(rng.uniform(5.0, 7.0))
    elif profile == "no_rf_nudge":
        expert.nudge_delay_s = None
        expert.pressure_trim = 0.0
    elif profile == "overshoot":
        expert.nudge_gain = 3.5
        expert.pressure_trim = float(rng.uniform(-0.36, -0.32))
    elif profile == "early_endpoint":
        expert.endpoint_level = 0.93
        expert.endpoint_delay_s = 0.3
    else:
        raise ValueError(f"unknown novice behaviour {profile!r}; expected one of {NOVICE_BEHAVIOURS}")
    return expert


def _durations(recipe: dict[str, Any], rng: np.random.Generator) -> list[float]:
    """Nominal step lengths in seconds (main_etch #2 and over_etch are set by the endpoint later)."""
    return [
        float(rng.uniform(11.0, 13.0)),  # stabilize
        3.0,  # strike
        float(recipe["main1_s"]),  # main_etch #1
        8.0,  # purge
        120.0,  # main_etch #2: provisional, ends at the engineer's endpoint call
        10.0,  # over_etch: provisional
        6.0,  # pump_out
    ]


#: the held-out list's kind names (sample_data/heldout/deviations.yaml) for the same three kinds
_KIND_ALIASES = {"shift_rel": "offset_rel", "shift_abs": "offset_abs", "stretch": "duration_rel"}


def _match_devs(devs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    seen: set[tuple[Any, ...]] = set()
    for d in devs:
        d = dict(d)
        kind = d["kind"] = _KIND_ALIASES.get(d.get("kind"), d.get("kind"))
        if kind not in ("offset_rel", "offset_abs", "duration_rel"):
            raise ValueError(f"deviation {d}: kind must be offset_rel, offset_abs or duration_rel")
        if d.get("step") not in set(STEP_NAMES):
            raise ValueError(f"deviation {d}: step must be one of {sorted(set(STEP_NAMES))}")
        if kind != "duration_rel" and d.get("channel") not in CHANNELS:
            raise ValueError(f"deviation {d}: unknown channel {d.get('channel')!r}")
        # an actual and its set point name the same act (a channel glob may match both): plant it once
        key = (SETPOINT_OF.get(d.get("channel"), d.get("channel")), d["step"], d.get("occurrence"), kind)
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
    return out


def _hits(d: dict[str, Any], name: str, occ: int) -> bool:
    return d["step"] == name and d.get("occurrence") in (None, occ)


def _simulate(
    recipe_name: str,
    durs: list[float],
    beh: Behaviour,
    wafer: dict[str, float],
    devs: list[dict[str, Any]],
    noise_rng: np.random.Generator | None,
) -> Run:
    """One pass of the chamber model over the step schedule ``durs`` (noise-free without ``noise_rng``)."""
    r = RECIPES[recipe_name]
    names = list(STEP_NAMES)
    counts = [max(1, round(x * RATE_HZ)) for x in durs]
    n = sum(counts)
    step_idx = np.repeat(np.arange(len(names)), counts)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    occ_of = []
    seen: dict[str, int] = {}
    for nm in names:
        seen[nm] = seen.get(nm, 0) + 1
        occ_of.append(seen[nm])
    intervals = [
        {
            "step": nm,
            "occurrence": occ_of[i],
            "start_s": round(float(starts[i]) * DT, 1),
            "end_s": round(float(starts[i] + counts[i]) * DT, 1),
        }
        for i, nm in enumerate(names)
    ]

    def mask(name: str, occ: int | None = None) -> np.ndarray:
        m = np.zeros(n, bool)
        for i, nm in enumerate(names):
            if nm == name and occ in (None, occ_of[i]):
                m[starts[i] : starts[i] + counts[i]] = True
        return m

    # set points per step ----------------------------------------------------------------------------
    sp: dict[str, np.ndarray] = {k: np.zeros(n) for k in SETPOINTS}
    etch = mask("main_etch")
    over = mask("over_etch")
    for g in GASES:
        base = float(r[f"{g}_flow_sccm"])
        a = sp[f"{g}_flow_setpoint_sccm"]
        a[mask("stabilize") | mask("strike") | etch | over] = base
        if g == "ar":
            a[mask("purge")] = 200.0
    p_sp = sp["pressure_setpoint_mTorr"]
    p_sp[:] = float(r["pressure_setpoint_mTorr"])
    p_sp[mask("purge")] = 80.0
    p_sp[mask("pump_out")] = 0.0
    rf_sp = sp["rf_forward_setpoint_W"]
    rf_sp[mask("strike")] = 150.0
    rf_sp[etch | over] = float(r["rf_power_setpoint_W"])
    rf_sp[over] *= 0.8  # the over-etch step runs softer for selectivity
    # the first second of the second main etch re-strikes at low power after the purge
    i2 = starts[4]
    rf_sp[i2 : i2 + 10] = 150.0
    sp["electrode_temp_setpoint_C"][:] = float(r["electrode_temp_setpoint_C"])

    # the engineer's adjustments -------------------------------------------------------------------
    adjustments: list[dict[str, Any]] = []
    m1 = mask("main_etch", 1)
    if beh.nudge_delay_s is not None and wafer.get("nudge_at_s") is not None:
        k = int(round(wafer["nudge_at_s"] * RATE_HZ))
        frac = round(wafer["nudge_frac"] * beh.nudge_gain, 2)
        sel = m1 & (np.arange(n) >= k)
        rf_sp[sel] *= 1.0 + frac
        adjustments.append(
            {
                "channel": "rf_forward_setpoint_W",
                "step": "main_etch",
                "occurrence": 1,
                "t_s": round(k * DT, 1),
                "value": f"{frac:+.0%}",
            }
        )
    if beh.pressure_trim:
        k = starts[5] + int(round(beh.trim_delay_s * RATE_HZ))
        sel = over & (np.arange(n) >= k)
        p_sp[sel] *= 1.0 + beh.pressure_trim
        adjustments.append(
            {
                "channel": "pressure_setpoint_mTorr",
                "step": "over_etch",
                "occurrence": 1,
                "t_s": round(k * DT, 1),
                "value": f"{beh.pressure_trim:+.0%}",
            }
        )

    # planted offsets on set points (pre-physics) --------------------------------------------------
    post: list[tuple[str, np.ndarray, str, float]] = []
    for d in devs:
        if d["kind"] == "duration_rel":
            continue
        sel = np.zeros(n, bool)
        for i, nm in enumerate(names):
            if _hits(d, nm, occ_of[i]):
                sel[starts[i] : starts[i] + counts[i]] = True
        ch = SETPOINT_OF.get(d["channel"], d["channel"])
        if ch in sp:
            if d["kind"] == "offset_rel":
                sp[ch][sel] *= 1.0 + float(d["amount"])
            else:
                sp[ch][sel] += float(d["amount"])
        else:
            post.append((ch, sel, d["kind"], float(d["amount"])))

    # gas flows: mass-flow controllers lag their set points -----------------------------------------
    ch: dict[str, np.ndarray] = {}
    for g in GASES:
        tau = 0.6 if g != "ar" else 0.5
        ch[f"{g}_flow_sccm"] = _lag(sp[f"{g}_flow_setpoint_sccm"] * wafer[f"mfc_{g}"], tau, 0.0)
    q = sum(ch[f"{g}_flow_sccm"] for g in GASES)

    # RF: generator regulates forward power; the plasma is on where forward power is applied --------
    fwd = _lag(rf_sp, 0.15, 0.0)
    plasma = fwd > 30.0
    # pressure: the throttle valve (PID) opens to hold the set point; the plasma heats the gas (+3 %)
    k_cond = 0.0565
    p_target = np.maximum(p_sp - 0.6, 1e-3)  # the PID's integral also covers the base pressure
    need = q * k_cond * (1.0 + 0.03 * plasma) / p_target
    theta_ss = 100.0 * np.clip(need, 1e-6, None) ** (1.0 / 1.5)
    theta_ss = np.where(p_sp <= 0.0, 100.0, np.clip(theta_ss, 3.0, 100.0))
    theta = _lag(theta_ss, 0.8, 100.0)
    cond = (theta / 100.0) ** 1.5
    p_static = q * k_cond * (1.0 + 0.03 * plasma) / np.maximum(cond, 1e-3) + 0.6
    pressure = _lag(p_static, 0.4, 0.6)
    foreline = _lag(30.0 + 1.2 * q, 1.0, 30.0)

    # match network: load/tune follow the plasma impedance optimum (slow servo, load travel limit) -----
    load_opt = 52.0 + 0.5 * (pressure - 40.0) + 0.004 * (fwd - 600.0)
    tune_opt = 40.0 + 0.01 * (fwd - 600.0) + 0.05 * (pressure - 40.0)
    shift = np.zeros(n)
    if wafer.get("disturb_at_s") is not None:
        k = int(round(wafer["disturb_at_s"] * RATE_HZ))
        ramp = np.clip((np.arange(n) - k) / (3.0 * RATE_HZ), 0.0, 1.0)
        shift = wafer["disturb_shift"] * ramp * m1
    load_opt = load_opt + shift
    load = np.empty(n)
    tune = np.empty(n)
    a_m = 1.0 - math.exp(-DT / 1.2)
    lo, tu = 45.0, 38.0  # preset positions while the plasma is off
    limit = wafer["load_limit"]
    for i in range(n):
        if plasma[i]:
            lo = min(limit, lo + a_m * (load_opt[i] - lo))
            tu += a_m * (tune_opt[i] - tu)
        else:
            lo, tu = 45.0, 38.0
        load[i], tune[i] = lo, tu
    gamma2 = np.clip(0.004 * ((load - load_opt) ** 2 + (tune - tune_opt) ** 2), 0.0, 0.9) * plasma
    refl = fwd * (gamma2 + 0.003 * plasma)  # a well-tuned match still reflects about 0.3 %
    deliv = fwd - refl

    # film: the etch rate follows delivered power, pressure and the fluorine supply; endpoint by OES ---
    p_rel = np.maximum(pressure, 1.0) / float(r["pressure_setpoint_mTorr"])
    fluor = ch["cf4_flow_sccm"] + 0.6 * ch["chf3_flow_sccm"]
    fluor0 = float(r["cf4_flow_sccm"]) + 0.6 * float(r["chf3_flow_sccm"])
    o2_boost = 1.0 + 0.4 * (ch["o2_flow_sccm"] - float(r["o2_flow_sccm"])) / 10.0
    rate = (
        float(r["etch_rate_nm_s"])
        * wafer["rate_factor"]
        * np.clip(deliv / float(r["rf_power_setpoint_W"]), 0.0, None) ** 0.8
        * p_rel**-0.2
        * np.clip(fluor / max(fluor0, 1e-6), 0.0, None) ** 0.3
        * np.clip(o2_boost, 0.2, None)
        * (etch | over)
    )
    depth = np.cumsum(rate) * DT
    thick = float(r["film_thickness_nm"]) * wafer["thickness_factor"]
    film = 1.0 - _phi((depth - thick) / (0.025 * thick))  # share of the wafer still covered
    x_ar = ch["ar_flow_sccm"] / np.maximum(q, 1e-6)
    x_f = fluor / np.maximum(q, 1e-6)
    pw = np.clip(deliv / 800.0, 0.0, None) * plasma
    ar750 = 4000.0 * pw * x_ar / 0.6 + 20.0
    f704 = 3000.0 * pw * x_f / 0.4 * (1.0 - 0.35 * film * (etch | over)) + 15.0
    co483 = 2500.0 * rate / float(r["etch_rate_nm_s"]) * film + 180.0 * pw + 10.0

    # temperatures ------------------------------------------------------------------------------------
    e_sp = sp["electrode_temp_setpoint_C"]
    supply = _lag(e_sp + 0.0008 * deliv, 20.0, float(e_sp[0]))
    # the chuck has embedded heaters on a fast loop: the electrode follows its set point in seconds
    electrode = _lag(e_sp + 0.008 * deliv, 3.0, float(e_sp[0]))
    ret = _lag(supply + 0.003 * deliv, 4.0, float(e_sp[0]))
    wall = _lag(60.0 + 0.004 * deliv, 40.0, wafer["wall0"])
    lid = _lag(80.0 + 0.003 * deliv, 30.0, wafer["lid0"])
    # electrostatic chuck: clamped from the strike to the pump out; helium cools the wafer's back
    clamp = (np.arange(n) >= starts[1]) & (np.arange(n) < starts[6])
    esc = _lag(1500.0 * clamp, 0.2, 0.0)
    he_p = _lag(10.0 * clamp, 0.5, 0.0)
    he_f = _lag(
        (2.0 + wafer["he_leak"]) * clamp + 6.0 * np.abs(np.diff(he_p, prepend=0.0)) * RATE_HZ, 0.3, 0.0
    )
    vdc = -14.0 * np.sqrt(np.clip(deliv, 0.0, None)) * p_rel**-0.3 * plasma
    vpp = (2.2 * np.abs(vdc) + 80.0) * plasma
    turbo = 100.0 - 0.004 * q

    # measurement noise -----------------------------------------------------------------------------
    if noise_rng is not None:
        g = noise_rng

        def nz(sigma: float) -> np.ndarray:
            return g.normal(0.0, sigma, n)

        fwd = fwd + nz(0.8) * plasma
        refl = np.clip(refl + np.abs(nz(0.3)) * plasma + _ou(g, n, 1.5, 0.6) * plasma, 0.0, None)
        vdc = vdc + (nz(1.5) + _ou(g, n, 2.0, 2.0)) * plasma
        vpp = vpp + nz(3.0) * plasma
        load = load + nz(0.05)
        tune = tune + nz(0.05)
        pressure = pressure * (1.0 + nz(0.003)) + _ou(g, n, 1.0, 0.08)
        theta = theta + nz(0.1)
        foreline = foreline + nz(0.8)
        for gg in GASES:
            key = f"{gg}_flow_sccm"
            ch[key] = np.clip(ch[key] + nz(0.05) + ch[key] * nz(0.003), 0.0, None)
        electrode = electrode + nz(0.04)
        supply = supply + nz(0.02)
        ret = ret + nz(0.03)
        wall = wall + nz(0.05)
        lid = lid + nz(0.05)
        he_p = np.clip(he_p + nz(0.01) * clamp, 0.0, None)
        he_f = np.clip(he_f + nz(0.02) * clamp, 0.0, None)
        esc = esc + nz(1.0) * clamp
        ar750 = ar750 * (1.0 + nz(0.01)) + nz(4.0)
        f704 = f704 * (1.0 + nz(0.01)) + nz(4.0)
        co483 = co483 * (1.0 + nz(0.012)) + nz(5.0)
        turbo = turbo + nz(0.02)
    # endpoint: CO / Ar ratio, smoothed, normalised to the first 3 s of each main-etch occurrence
    ratio = _lag(co483 / np.maximum(ar750, 1.0), 0.5, 0.0)
    endpoint = np.zeros(n)
    for i, nm in enumerate(names):
        if nm in ("main_etch", "over_etch"):
            a, b = starts[i], starts[i] + counts[i]
            ref_i = i if nm == "main_etch" else 4
            ref = float(np.median(ratio[starts[ref_i] + 15 : starts[ref_i] + 45])) or 1.0
            endpoint[a:b] = ratio[a:b] / ref
    endpoint = np.where(plasma, endpoint, 0.0)

    out: dict[str, np.ndarray] = {
        "rf_forward_setpoint_W": rf_sp,
        "rf_forward_W": np.where(plasma, fwd, 0.0),
        "rf_reflected_W": refl,
        "bias_voltage_V": vdc,
        "rf_vpp_V": vpp,
        "match_load_pct": load,
        "match_tune_pct": tune,
        "pressure_setpoint_mTorr": p_sp,
        "chamber_pressure_mTorr": pressure,
        "throttle_valve_pct": np.clip(theta, 0.0, 100.0),
        "foreline_pressure_mTorr": foreline,
        **{f"{g}_flow_setpoint_sccm": sp[f"{g}_flow_setpoint_sccm"] for g in GASES},
        **{f"{g}_flow_sccm": ch[f"{g}_flow_sccm"] for g in GASES},
        "electrode_temp_setpoint_C": e_sp,
        "electrode_temp_C": electrode,
        "chiller_supply_temp_C": supply,
        "chiller_return_temp_C": ret,
        "wall_temp_C": wall,
        "lid_temp_C": lid,
        "he_backside_pressure_Torr": he_p,
        "he_backside_flow_sccm": he_f,
        "esc_voltage_V": esc,
        "oes_co_483nm": np.clip(co483, 0.0, None),
        "oes_f_704nm": np.clip(f704, 0.0, None),
        "oes_ar_750nm": np.clip(ar750, 0.0, None),
        "endpoint_signal": endpoint,
        "turbo_speed_pct": turbo,
    }
    for name, sel, kind, amount in post:  # planted offsets on channels without a set point
        out[name] = (
            out[name] * np.where(sel, 1.0 + amount, 1.0) if kind == "offset_rel" else out[name] + sel * amount
        )
    out = {k: out[k] for k in CHANNELS}  # CSV column order
    run = Run(channels=out, steps=[names[i] for i in step_idx.tolist()], params={}, intervals=intervals)
    run.adjustments = adjustments
    main_s = (counts[2] + counts[4]) * DT
    run.outcome = {
        "depth_nm": float(depth[-1]),
        "thickness_nm": thick,
        "film_left": float(film[-1]),
        "main_etch_s": main_s,
        "_film": film,
        "_endpoint_smooth": None,
        "_refl": refl,
        "_fwd": fwd,
        "_deliv": deliv,
        "_pressure": pressure,
        "_starts": starts,
        "_counts": counts,
    }
    return run


def _simulate_run(
    seed: int, skill_level: str, recipe: str, deviations: list[dict[str, Any]], profile: str | None
) -> Run:
    """Plan the run (endpoint, adjustments) with noise-free passes, then simulate it with noise."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPES)}")
    if skill_level not in ("expert", "novice"):
        raise ValueError(f"skill_level must be expert or novice, not {skill_level!r}")
    devs = _match_devs(deviations)
    rng = np.random.default_rng([seed, 1])
    if profile is None:
        profile = "expert" if skill_level == "expert" else NOVICE_BEHAVIOURS[seed % len(NOVICE_BEHAVIOURS)]
    beh = _behaviour(rng, skill_level, profile)
    r = RECIPES[recipe]
    durs = _durations(r, rng)
    occ = {nm: 0 for nm in STEP_NAMES}
    for i, nm in enumerate(STEP_NAMES):  # planted duration_rel (the endpoint-driven steps: below)
        occ[nm] += 1
        if i not in (4, 5):
            for d in devs:
                if d["kind"] == "duration_rel" and _hits(d, nm, occ[nm]):
                    durs[i] *= 1.0 + float(d["amount"])
    wafer: dict[str, Any] = {
        "rate_factor": float(rng.normal(1.0, 0.03)),
        "thickness_factor": float(rng.normal(1.0, 0.02)),
        "disturb_at_s": None,
        "disturb_shift": 0.0,
        "load_limit": 0.0,
        "he_leak": float(rng.uniform(0.1, 0.6)),
        "wall0": float(rng.normal(60.0, 0.4)),
        "lid0": float(rng.normal(80.0, 0.4)),
        "nudge_at_s": None,
        "nudge_frac": 0.0,
        **{f"mfc_{g}": float(rng.normal(1.0, 0.004)) for g in GASES},
    }
    disturb_into = float(rng.uniform(8.0, 12.0))
    # the match's load capacitor travels up to about 10 % above the recipe's optimum; the wall
    # condition shifts the optimum past that, so the match cannot tune the reflected power away
    load_nominal = (
        52.0
        + 0.5 * (float(r["pressure_setpoint_mTorr"]) - 40.0)
        + 0.004 * (float(r["rf_power_setpoint_W"]) - 600.0)
    )
    wafer["load_limit"] = load_nominal + float(rng.uniform(9.5, 10.5))
    wafer["disturb_shift"] = float(rng.uniform(13.5, 15.0))
    # pass 1: where the reflected power passes the alarm level (5 % of forward) after the disturbance
    starts0 = np.r_[0.0, np.cumsum(durs)[:-1]]
    wafer["disturb_at_s"] = float(starts0[2] + disturb_into)
    p1 = _simulate(recipe, list(durs), beh, wafer, devs, None)
    refl, fwd = p1.outcome["_refl"], p1.outcome["_fwd"]
    k0 = int(round(wafer["disturb_at_s"] * RATE_HZ))
    alarm = np.flatnonzero((refl[k0:] > 0.05 * np.maximum(fwd[k0:], 1.0)) & (fwd[k0:] > 100))
    if alarm.size and beh.nudge_delay_s is not None:
        k_alarm = k0 + int(alarm[0])
        k_nudge = k_alarm + int(round(beh.nudge_delay_s * RATE_HZ))
        end1 = int(round((starts0[2] + durs[2]) * RATE_HZ))
        if k_nudge < end1 - 5:
            settled = min(end1 - 1, k_alarm + 30)
            g2 = refl[settled] / max(fwd[settled], 1.0)
            wafer["nudge_at_s"] = k_nudge * DT
            wafer["nudge_frac"] = float(g2 / (1.0 - g2))
    # pass 2: the endpoint, from the noise-free endpoint trace (the film share still covered)
    # (with the recipe's first main etch: a planted duration_rel on main_etch means "longer than an
    # expert would etch", so the second occurrence is stretched from the expert's endpoint time)
    durs2 = list(durs)
    durs2[2] = float(r["main1_s"])
    p2 = _simulate(recipe, durs2, beh, wafer, devs, None)
    film = p2.outcome["_film"]
    s2 = int(p2.outcome["_starts"][4])
    level = beh.endpoint_level
    hit = np.flatnonzero(film[s2:] < level)
    k_end = s2 + (int(hit[0]) if hit.size else len(film) - s2 - 1)
    k_call = k_end + int(round(beh.endpoint_delay_s * RATE_HZ))
    d_main2 = max(2.0, (k_call - s2) * DT)
    for d in devs:  # a planted duration_rel on the second main etch: the endpoint is called late/early
        if d["kind"] == "duration_rel" and _hits(d, "main_etch", 2):
            d_main2 *= 1.0 + float(d["amount"])
    durs[4] = round(d_main2, 1)
    durs[5] = round(float(r["over_etch_pct"]) / 100.0 * (durs[2] + durs[4]), 1)
    for d in devs:
        if d["kind"] == "duration_rel" and _hits(d, "over_etch", 1):
            durs[5] *= 1.0 + float(d["amount"])
    # final pass, with measurement noise
    run = _simulate(recipe, list(durs), beh, wafer, devs, np.random.default_rng([seed, 2]))
    o = run.outcome
    thick = o["thickness_nm"]
    over_pct = 100.0 * (o["depth_nm"] - thick) / thick
    # the main etch without the first 2 s of each occurrence (ignition, flows and pressure settling)
    sel = np.zeros(len(run.steps), bool)
    for iv in run.intervals:
        if iv["step"] == "main_etch":
            sel[int(round(iv["start_s"] * RATE_HZ)) + 20 : int(round(iv["end_s"] * RATE_HZ))] = True
    # the delivered-power deviation of the worse main-etch occurrence
    occ_dev = []
    for iv in run.intervals:
        if iv["step"] == "main_etch":
            k0, k1 = int(round(iv["start_s"] * RATE_HZ)) + 20, int(round(iv["end_s"] * RATE_HZ))
            occ_dev.append(float(np.mean(o["_deliv"][k0:k1])) / float(r["rf_power_setpoint_W"]) - 1.0)
    deliv_dev = max(occ_dev, key=abs)
    p_dev = float(np.mean(o["_pressure"][sel]) / float(r["pressure_setpoint_mTorr"]) - 1.0)
    gas_dev = [
        abs(float(np.mean(run.channels[f"{g}_flow_sccm"][sel])) / float(r[f"{g}_flow_sccm"]) - 1.0)
        for g in GASES
        if float(r[f"{g}_flow_sccm"]) > 0
    ]
    # critical-dimension bias: the ion energy (delivered power) sets the anisotropy, pressure and the
    # gas mix the polymer balance (taper); a long over etch attacks the bottom sideways
    oe_lo, oe_hi = 0.8 * float(r["over_etch_pct"]), 1.5 * float(r["over_etch_pct"])
    cd_bias = (
        60.0 * abs(deliv_dev)
        + 30.0 * abs(p_dev)
        + 12.0 * float(np.sum(gas_dev))
        + 0.06 * max(0.0, over_pct - oe_hi)
    )
    cleared = o["film_left"] < 0.01
    if not cleared or over_pct > 3 * float(r["over_etch_pct"]) or cd_bias > 6.0:
        outcome = "scrap"
    elif oe_lo <= over_pct <= oe_hi and cd_bias <= 2.0:
        outcome = "good"
    else:
        outcome = "marginal"
    run.outcome = {
        "label.outcome": outcome,
        "label.etch_depth_ok": "yes" if cleared and over_pct <= oe_hi else "no",
        "etched_depth_nm": round(o["depth_nm"], 1),
        "film_thickness_nm": round(thick, 1),
        "film_left_share": round(o["film_left"], 4),
        "over_etch_pct": round(over_pct, 1),
        "cd_bias_nm": round(cd_bias, 2),
        "delivered_power_dev_main_etch": round(deliv_dev, 4),
        "pressure_dev_main_etch": round(p_dev, 4),
        "endpoint_called_s": round((s2 + round(durs[4] * RATE_HZ)) * DT, 1),
        "film_cleared_s": round(k_end * DT, 1) if level <= 0.5 else None,
        "disturbance": {
            "t_s": round(wafer["disturb_at_s"], 1),
            "match_load_shift_pct": round(wafer["disturb_shift"], 2),
            "load_limit_pct": round(wafer["load_limit"], 2),
        },
    }
    run.params = {
        "recipe": recipe,
        "film": r["film"],
        **{k: r[k] for k in PARAM_KEYS},
    }
    run.outcome["profile"] = profile
    return run


def generate_run(
    seed: int,
    skill_level: str,
    recipe: str = "oxide_via",
    deviations: list[dict[str, Any]] | None = None,
    *,
    profile: str | None = None,
) -> tuple[dict[str, np.ndarray], list[str], dict[str, Any]]:
    """One etch run in memory, for benchmarks: ``(channels at 10 Hz, recipe_step per sample, params)``.

    Args:
        seed: any int; the same arguments give the same run.
        skill_level: ``expert`` or ``novice``.
        recipe: ``oxide_via`` or ``nitride_spacer``.
        deviations: planted deviations, each ``{"channel", "step", "kind", "amount"}`` with kind
            ``offset_rel`` (set point or channel × (1 + amount)), ``offset_abs`` (+ amount, in the
            channel's unit) or ``duration_rel`` (the step is (1 + amount) × as long; no channel);
            optional ``occurrence`` (1-based) restricts it to one occurrence of a repeated step.
            An offset on an actual value with a set point (``rf_forward_W``, ``chamber_pressure_mTorr``,
            ``*_flow_sccm``, ``electrode_temp_C``) is planted on the set point and the chamber follows.
        profile: the novice's behaviour (``late_endpoint``, ``no_rf_nudge``, ``overshoot``,
            ``early_endpoint``); default: by seed. Experts ignore it.

    Returns:
        channel name → float array (all the same length), the ``recipe_step`` of each sample, and the
        run's recipe parameters plus ``outcome`` (the labels and measured results) and
        ``intervals``/``adjustments`` (what happened, in seconds from the start).
    """
    run = _simulate_run(seed, skill_level, recipe, list(deviations or []), profile)
    params = dict(run.params)
    params["outcome"] = run.outcome
    params["intervals"] = run.intervals
    params["adjustments"] = run.adjustments
    return run.channels, run.steps, params


# -- files ---------------------------------------------------------------------------------------------
def _fmt(values: np.ndarray, decimals: int) -> list[str]:
    v = np.round(values.astype(np.float64), decimals) + 0.0
    f = f"{{:.{decimals}f}}"
    return [f.format(x) for x in v.tolist()]


def _gz_bytes(text: str) -> bytes:
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    return raw.getvalue()


def run_csv(channels: dict[str, np.ndarray], steps: list[str]) -> str:
    """The wide CSV text of one run: one column per channel, then ``recipe_step``; no time column."""
    cols = [_fmt(channels[c], CHANNELS[c][1]) for c in CHANNELS]
    lines = [",".join([*CHANNELS, "recipe_step"])]
    lines += [",".join(row) for row in zip(*cols, steps, strict=True)]
    return "\n".join(lines) + "\n"


def generate(out_dir: Path, *, seed: int = SEED) -> dict[str, Any]:
    """Write ``etch-NN.csv.gz`` (one per run), ``runs.csv`` and ``truth.json`` into ``out_dir``.

    Returns:
        ``{"out_dir", "files": {relpath: size}, "total_bytes"}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, int] = {}
    table: list[dict[str, Any]] = []
    truth: dict[str, Any] = {
        "generator": GENERATOR_ID,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "runs": {},
    }
    t0 = BASE_TIME
    for i, (key, tech, skill, profile, recipe, station, extra) in enumerate(RUNS):
        run = _simulate_run(seed * 100 + i, skill, recipe, extra, profile)
        rel = f"{key}.csv.gz"
        data = _gz_bytes(run_csv(run.channels, run.steps))
        (out_dir / rel).write_bytes(data)
        files[rel] = len(data)
        started = t0 + _dt.timedelta(minutes=11 * i)
        table.append(
            {
                "file": rel,
                "technician": tech,
                "skill_level": skill,
                "station": f"etch-{station}",
                "started_at": started.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "rate_hz": RATE_HZ,
                **run.params,
                "label.outcome": run.outcome["label.outcome"],
                "label.etch_depth_ok": run.outcome["label.etch_depth_ok"],
            }
        )
        truth["runs"][key] = {
            "file": rel,
            "skill_level": skill,
            "profile": profile,
            "recipe": recipe,
            "samples": len(run.steps),
            "steps": run.intervals,
            "adjustments": run.adjustments,
            "deviations": _deviations(run, profile, extra),
            "outcome": run.outcome,
        }
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(table)
    (out_dir / "runs.csv").write_text(buf.getvalue(), encoding="utf-8")
    files["runs.csv"] = len(buf.getvalue().encode())
    tj = json.dumps(truth, indent=1, sort_keys=True) + "\n"
    (out_dir / "truth.json").write_text(tj, encoding="utf-8")
    files["truth.json"] = len(tj.encode())
    return {"out_dir": str(out_dir), "files": files, "total_bytes": sum(files.values())}


def _deviations(run: Run, profile: str, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a skill profile should find in this run, in the generator's words and the channel names."""
    iv = {(s["step"], s["occurrence"]): s for s in run.intervals}
    out: list[dict[str, Any]] = []

    def add(
        channel: str | None, step: str, occ: int, kind: str, amount: float, direction: str, why: str
    ) -> None:
        s = iv[(step, occ)]
        out.append(
            {
                "channel": channel,
                "step": step,
                "occurrence": occ,
                "kind": kind,
                "amount": round(amount, 3),
                "direction": direction,
                "start_s": s["start_s"],
                "end_s": s["end_s"],
                "cause": why,
            }
        )

    o = run.outcome
    if profile == "late_endpoint":
        add(
            None,
            "main_etch",
            2,
            "duration_rel",
            0.0,
            "longer",
            "endpoint called 9-12 s after the film cleared",
        )
        add(
            None,
            "over_etch",
            1,
            "duration_rel",
            0.0,
            "longer",
            "the tool's over etch grows with the main etch",
        )
    elif profile == "no_rf_nudge":
        add(
            "rf_forward_setpoint_W",
            "main_etch",
            1,
            "offset_rel",
            0.0,
            "lower",
            "no RF nudge when the reflected power rose",
        )
        add(
            "pressure_setpoint_mTorr",
            "over_etch",
            1,
            "offset_rel",
            0.10,
            "higher",
            "no pressure trim at endpoint",
        )
    elif profile == "overshoot":
        add("rf_forward_setpoint_W", "main_etch", 1, "offset_rel", 0.0, "higher", "RF nudge 3.5x too large")
        add(
            "pressure_setpoint_mTorr",
            "over_etch",
            1,
            "offset_rel",
            -0.24,
            "lower",
            "pressure trimmed -34 % instead of -10 %",
        )
    elif profile == "early_endpoint":
        add(
            None,
            "main_etch",
            2,
            "duration_rel",
            0.0,
            "shorter",
            "endpoint called at the first dip of the OES signal",
        )
    for d in extra:
        step = d["step"]
        occs = (
            [d["occurrence"]]
            if d.get("occurrence")
            else sorted({s["occurrence"] for s in run.intervals if s["step"] == step})
        )
        for occ in occs:
            add(
                d.get("channel"),
                step,
                occ,
                d["kind"],
                float(d["amount"]),
                "higher" if float(d["amount"]) > 0 else "lower",
                "planted: recipe typo",
            )
    # amounts for the behaviour deviations, measured against the recipe's expert run
    for dv in out:
        if dv["kind"] == "duration_rel" and dv["amount"] == 0.0:
            dv["amount"] = None
        if dv["kind"] == "offset_rel" and dv["amount"] == 0.0 and dv["channel"] == "rf_forward_setpoint_W":
            dv["amount"] = None
    del o
    return out


# -- --check -------------------------------------------------------------------------------------------
def check(committed: Path, *, seed: int = SEED) -> int:
    """Regenerate into a temp dir and compare with ``committed``; 0 when identical."""
    committed = Path(committed)
    problems = []
    with tempfile.TemporaryDirectory(prefix="jangin-etch-check-") as tmp:
        summary = generate(Path(tmp), seed=seed)
        for rel in sorted(summary["files"]):
            a, b = Path(tmp) / rel, committed / rel
            if not b.is_file():
                problems.append(f"{rel}: missing")
                continue
            da, db = a.read_bytes(), b.read_bytes()
            if da == db:
                continue
            if rel.endswith(".gz") and gzip.decompress(da) == gzip.decompress(db):
                print(f"note: {rel}: gzip bytes differ but the decompressed CSV is identical")
                continue
            problems.append(f"{rel}: content differs")
        for f in sorted(committed.rglob("*")):
            rel = f.relative_to(committed).as_posix()
            if f.is_file() and rel not in summary["files"]:
                problems.append(f"{rel}: not produced by the generator (stale)")
    if problems:
        print(f"etch sample data check FAILED ({len(problems)} problem(s)):")
        for line in problems[:50]:
            print("  " + line)
        return 1
    print(f"etch sample data check OK: {len(summary['files'])} files match")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "etch")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare")
    a = ap.parse_args(argv)
    if a.check:
        return check(a.out, seed=a.seed)
    s = generate(a.out, seed=a.seed)
    print(f"wrote {len(s['files'])} files, {s['total_bytes'] / 1e6:.2f} MB to {s['out_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
