"""Skill profiles from expert sessions: steps, DTW-aligned channel envelopes, step durations and the
experts' adjustments, published to the model registry as ``task = "skill_profile"``.

The format (and what scoring reads) is :mod:`jangin.core.skill`; scoring and live coaching are in
``jangin.inference``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jangin.core import Dataset, ModelManifest, ModelRegistry, ModelVersion, TrainingError
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.skill import (
    SD_SUFFIX,
    AdjustmentRule,
    Band,
    SessionSignals,
    SkillProfile,
    Step,
    StepProfile,
    bin_means,
    normalise,
    read_session,
    rolling_sd,
    smooth,
    steps_from_events,
    steps_from_signals,
)

#: the steadiness bands use a smaller level floor: their typical level is the noise, not the signal
SD_FLOOR = 1.0

__all__ = ["SkillProfileConfig", "build_skill_profile", "dtw_path", "profile_from_sessions"]

log = logging.getLogger(__name__)


class SkillProfileConfig(BaseModel):
    """How to build a skill profile.

    Args:
        name: Registry name of the profile.
        process: Process whose sessions to use (``sessions.process``); required unless ``sessions``.
        skill_level: Skill level of the reference sessions.
        where: Extra SQL condition on ``current_sessions`` (e.g. ``station = 'st-01'``).
        sessions: Explicit session ids (overrides process / skill level / where).
        bin_hz: Rate signals are compared at (bin means).
        smooth_s: Moving average over the bins before comparing (keeps sustained behaviour).
        n_points: Points per step of normalised time.
        k_sigma: Band half-width in combined standard deviations.
        level_floor: Minimum standard deviation as a fraction of the channel's typical level.
        dtw_window: Sakoe-Chiba window of the DTW alignment, as a fraction of ``n_points``.
        steady_tol: How much more a channel may wobble than the experts (its 1 s rolling standard
            deviation above theirs) before it is unsteady, as a fraction of the half-width of the
            channel's level band in that step: a wobble matters in proportion to how tightly the
            experts hold the channel's level. (0.2 was chosen on the sample data; see the tests.)
        context_channels: Channels recorded but not scored (the conditions experts react to);
            default: the trigger channels of the mined adjustments.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "skill-profile"
    process: str | None = None
    skill_level: str = "expert"
    where: str | None = None
    sessions: tuple[str, ...] = ()
    bin_hz: float = Field(20.0, gt=0)
    smooth_s: float = Field(0.25, ge=0)
    n_points: int = Field(100, ge=10)
    k_sigma: float = Field(3.0, gt=0)
    level_floor: float = Field(0.03, ge=0)
    dtw_window: float = Field(0.1, ge=0, le=1)
    steady_tol: float = Field(0.2, gt=0)
    context_channels: tuple[str, ...] | None = None


# -- DTW -----------------------------------------------------------------------------------------------


def dtw_path(a: np.ndarray, b: np.ndarray, window: int | None = None) -> list[tuple[int, int]]:
    """Dynamic time warping path between ``a`` (n, d) and ``b`` (m, d), Euclidean cost, optional
    Sakoe-Chiba ``window``; NaNs cost nothing. Returns ``[(i, j), …]`` from (0, 0) to (n-1, m-1)."""
    a = np.atleast_2d(a.T).T if a.ndim == 1 else a
    b = np.atleast_2d(b.T).T if b.ndim == 1 else b
    n, m = len(a), len(b)
    w = max(window if window is not None else max(n, m), abs(n - m))
    diff = a[:, None, :] - b[None, :, :]
    cost = np.sqrt(np.nansum(diff * diff, axis=2))
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        j0, j1 = max(1, i - w), min(m, i + w)
        for j in range(j0, j1 + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    i, j = n, m
    path = [(n - 1, m - 1)]
    while (i, j) != (1, 1):
        k = int(np.argmin((acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])))
        i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
        path.append((i - 1, j - 1))
    return path[::-1]


def _warp_to(reference_len: int, path: list[tuple[int, int]], values: np.ndarray) -> np.ndarray:
    """``values`` (indexed by the path's second index) averaged onto the reference's indices."""
    sums = np.zeros(reference_len)
    counts = np.zeros(reference_len)
    for i, j in path:
        if np.isfinite(values[j]):
            sums[i] += values[j]
            counts[i] += 1
    out = np.full(reference_len, np.nan)
    out[counts > 0] = sums[counts > 0] / counts[counts > 0]
    return out


# -- building ------------------------------------------------------------------------------------------


def session_steps(
    sig: SessionSignals, template: Sequence[StepProfile] | None = None, bin_hz: float = 20.0
) -> list[Step]:
    """A session's steps: from its step markers, else from its signals (named after ``template``)."""
    steps = steps_from_events(sig.events)
    return steps if steps else steps_from_signals(sig, template=template, bin_hz=bin_hz)


_PCT = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*%\s*$")


def _level(sig: SessionSignals, ch: str, t0: float, t1: float, hz: float) -> float:
    t, v = sig.channels.get(ch, (np.zeros(0, np.int64), np.zeros(0)))
    m = (t >= t0) & (t < t1)
    return float(np.nanmedian(v[m])) if m.any() else float("nan")


def _crossing(
    sig: SessionSignals, ch: str, level: float, direction: int, before_us: float, hz: float
) -> float | None:
    """Last time (µs) before ``before_us`` the smoothed channel crossed ``level`` in ``direction``."""
    t, v = sig.channels.get(ch, (np.zeros(0, np.int64), np.zeros(0)))
    if len(t) < 2:
        return None
    t0 = int(t[0])
    b = smooth(bin_means(t, v, t0, int(before_us), hz), max(1, int(0.25 * hz)))
    above = (b - level) * direction > 0
    idx = np.flatnonzero(~above[:-1] & above[1:])
    if len(idx) == 0:
        return None
    return t0 + (idx[-1] + 1) * 1e6 / hz


def mine_adjustments(
    sigs: Sequence[SessionSignals], channels: Sequence[str], bin_hz: float
) -> tuple[list[AdjustmentRule], dict[str, list[tuple[float, dict[str, float]]]]]:
    """Adjustments from the experts' ``adjustment`` events, measured and explained by the signals.

    For each adjusted channel: the relative change across the event (median of 1 s before vs. 0.6–1.6 s
    after), the channels that move with it, and the trigger: the other channel and level whose crossing
    precedes the events by the most consistent delay (e.g. plate temperature passing 180 °C).

    Returns:
        The rules, and per session the adjustment times (µs) with each moved channel's relative change
        (to take the adjustment out of the envelopes).
    """
    by_channel: dict[str, list[tuple[SessionSignals, float]]] = {}
    for sig in sigs:
        for e in sig.events:
            if e.get("kind") == "adjustment" and e.get("name") in channels:
                by_channel.setdefault(str(e["name"]), []).append((sig, float(e["ts"])))
    rules: list[AdjustmentRule] = []
    applied: dict[str, list[tuple[float, dict[str, float]]]] = {s.session_id: [] for s in sigs}
    for ch, occ in by_channel.items():
        changes: dict[str, list[float]] = {c: [] for c in channels}
        for sig, ts in occ:
            for c in channels:
                before = _level(sig, c, ts - 1.0e6, ts - 0.05e6, bin_hz)
                after = _level(sig, c, ts + 0.6e6, ts + 1.6e6, bin_hz)
                changes[c].append(after / before - 1 if abs(before) > 1e-9 else 0.0)
        main = float(np.median(changes[ch]))
        if abs(main) < 0.01:
            log.info("adjustment events on %s change it by %.1f %% only: not a rule", ch, main * 100)
            continue
        also = {
            c: float(np.median(v))
            for c, v in changes.items()
            if c != ch and np.sign(np.median(v)) == np.sign(main) and abs(np.median(v)) >= 0.5 * abs(main)
        }
        for sig, ts in occ:
            moved = {
                c: float(changes[c][k])
                for k, (s2, t2) in enumerate(occ)
                if s2 is sig and t2 == ts
                for c in [ch, *also]
            }
            applied[sig.session_id].append((ts, moved))
        trig = _find_trigger(occ, [c for c in channels if c != ch and c not in also], bin_hz)
        sessions = {s.session_id for s, _ in occ}
        if trig is None:
            log.info("no trigger found for adjustments of %s", ch)
            continue
        tch, level, direction, delays, done = trig
        rules.append(
            AdjustmentRule(
                channel=ch,
                change_rel=round(main, 4),
                trigger_channel=tch,
                trigger_value=level,
                direction=direction,
                delay_s=round(float(np.median(delays)), 3),
                delay_max_s=round(float(np.max(done)), 3),
                support=len(sessions),
                of=len(sigs),
                change_rel_min=round(float(np.min(changes[ch])), 4),
                change_rel_max=round(float(np.max(changes[ch])), 4),
                also={c: round(v, 4) for c, v in also.items()},
            )
        )
    return rules, applied


def _nice(x: float) -> float:
    """Round a level to two significant digits (180.3 → 180)."""
    if x == 0:
        return 0.0
    mag = 10 ** (np.floor(np.log10(abs(x))) - 1)
    return float(np.round(x / mag) * mag)


def _find_trigger(
    occ: Sequence[tuple[SessionSignals, float]], candidates: Sequence[str], hz: float
) -> tuple[str, float, int, list[float], list[float]] | None:
    best: tuple[float, tuple[str, float, int, list[float], list[float]]] | None = None
    for c in candidates:
        at = np.array([_level(s, c, ts - 0.25e6, ts, hz) for s, ts in occ])
        pre = np.array([_level(s, c, ts - 5e6, ts - 4e6, hz) for s, ts in occ])
        if not (np.all(np.isfinite(at)) and np.all(np.isfinite(pre))):
            continue
        direction = 1 if np.median(at - pre) > 0 else -1
        if np.min(np.abs(at - pre)) < 1e-6:
            continue
        lo, hi = (pre.max(), at.min()) if direction > 0 else (at.max(), pre.min())
        if lo >= hi:
            continue
        for level in np.linspace(lo, hi, 25)[1:-1]:
            level = _nice(float(level))
            if not lo < level < hi:
                continue
            delays = []
            for s, ts in occ:
                tc = _crossing(s, c, level, direction, ts, hz)
                if tc is None:
                    break
                delays.append((ts - tc) / 1e6)
            if len(delays) != len(occ) or min(delays) < 0 or max(delays) > 5:
                continue
            spread = float(np.std(delays)) + 0.05 * float(np.mean(delays))
            if best is None or spread < best[0]:
                done = [d + 0.8 for d in delays]  # the change is complete ~0.6–0.8 s after the marker
                best = (spread, (c, level, direction, delays, done))
    return None if best is None else best[1]


def _compensation(
    n: int,
    t0_us: int,
    hz: float,
    adjustments: Sequence[tuple[float, dict[str, float]]],
    ch: str,
    ramp_s: float = 0.5,
) -> np.ndarray:
    """Per-bin factor that undoes the session's adjustments of ``ch`` (1 before, 1/(1+change) after)."""
    f = np.ones(n)
    t = t0_us + (np.arange(n) + 0.5) * 1e6 / hz
    for ts, moved in adjustments:
        if ch in moved:
            frac = np.clip((t - ts) / (ramp_s * 1e6), 0, 1)
            f = f / (1 + moved[ch] * frac)
    return f


def profile_from_sessions(
    sigs: Sequence[SessionSignals], cfg: SkillProfileConfig, *, progress: ProgressFn = null_progress
) -> SkillProfile:
    """Build a :class:`SkillProfile` from reference sessions already read (see :func:`read_session`).

    Raises:
        TrainingError: Fewer than two sessions, or no step common to them.
    """
    if len(sigs) < 2:
        raise TrainingError(f"a skill profile needs at least 2 reference sessions, got {len(sigs)}")
    hz = cfg.bin_hz
    channels = sorted(set.intersection(*(set(s.channels) for s in sigs)))
    if not channels:
        raise TrainingError("the reference sessions share no sensor channel")
    # steps: markers where there are any; sessions without are segmented after the others' template
    steps: dict[str, list[Step]] = {s.session_id: steps_from_events(s.events) for s in sigs}
    names_per = [[st.name for st in v] for v in steps.values() if v]
    order: list[str] = []
    if names_per:
        counts: dict[str, list[int]] = {}
        for names in names_per:
            for i, nm in enumerate(names):
                counts.setdefault(nm, []).append(i)
        order = sorted(
            (n for n, v in counts.items() if len(v) * 2 >= len(names_per)),
            key=lambda n: float(np.median(counts[n])),
        )
    rules, applied = mine_adjustments(sigs, channels, hz)
    context = (
        list(cfg.context_channels)
        if cfg.context_channels is not None
        else sorted({r.trigger_channel for r in rules})
    )
    scored = [c for c in channels if c not in context]
    # motion share: which step covers how much of the integrated motion channel (e.g. distance)
    motion_share = _motion_shares(sigs, steps, order, hz)
    template = [StepProfile(nm, i, [], motion_share.get(nm)) for i, nm in enumerate(order)] if order else None
    for s in sigs:
        if not steps[s.session_id]:
            steps[s.session_id] = steps_from_signals(s, template=template, bin_hz=hz)
            log.info("session %s has no step markers: steps from signals", s.session_id)
    if not order:
        order = [st.name for st in steps[sigs[0].session_id]]
    # per step: durations; per step and channel: normalised, adjustment-compensated, smoothed curves
    nsm = max(1, int(round(cfg.smooth_s * hz)))
    step_profiles: list[StepProfile] = []
    bands: dict[tuple[str, str], Band] = {}
    scale = {c: _channel_scale(sigs, c) for c in scored}
    for k, name in enumerate(order):
        progress("skill profile steps", k, len(order))
        curves: dict[str, list[np.ndarray]] = {c: [] for c in scored}
        noise: dict[str, list[float]] = {c: [] for c in scored}
        durations = []
        for s in sigs:
            st = next((x for x in steps[s.session_id] if x.name == name), None)
            if st is None:
                continue
            durations.append(round(st.duration_s, 3))
            for c in scored:
                t, v = s.channels[c]
                b = bin_means(t, v, st.start_us, st.end_us, hz)
                b = b * _compensation(len(b), st.start_us, hz, applied.get(s.session_id, []), c)
                noise[c].append(_noise(b))
                sb = smooth(b, nsm)
                curves[c].append(normalise(sb, cfg.n_points))
                curves.setdefault(c + SD_SUFFIX, []).append(
                    normalise(rolling_sd(sb, int(round(hz))), cfg.n_points)
                )
        step_profiles.append(StepProfile(name, k, durations, motion_share.get(name)))
        if len(durations) < 2:
            continue
        aligned = _dtw_align(curves, [*scored, *(c + SD_SUFFIX for c in scored)], cfg)
        for c in [*scored, *(c + SD_SUFFIX for c in scored)]:
            base = c.removesuffix(SD_SUFFIX)
            arr = np.vstack(aligned[c])
            med = np.nanmedian(arr, axis=0)
            point = np.nanstd(arr, axis=0, ddof=1) if len(arr) > 1 else np.zeros(cfg.n_points)
            pooled = float(np.sqrt(np.nanmean(point**2)))
            # a few experts under-estimate the spread point by point: mix in the step's pooled spread
            between = np.sqrt(0.5 * (smooth(point, 9) ** 2 + pooled**2))
            within = 0.0 if c.endswith(SD_SUFFIX) else float(np.nanmedian(noise[c])) / np.sqrt(nsm)
            floor = cfg.level_floor * scale[base] * (SD_FLOOR if c.endswith(SD_SUFFIX) else 1.0)
            sigma = np.sqrt(between**2 + within**2 + floor**2)
            half = cfg.k_sigma * sigma
            if c.endswith(SD_SUFFIX) and (name, base) in bands:
                # steadiness: tolerance relative to how tightly the experts hold the level (not to
                # the level itself, which made the band of a 160 A channel ±15 A wide)
                level = bands[(name, base)]
                level_half = float(np.nanmedian(0.5 * (level.hi - level.lo)))
                half = np.maximum(cfg.k_sigma * between, cfg.steady_tol * level_half)
            lo = np.minimum(np.nanmin(arr, axis=0), med - half)
            hi = np.maximum(np.nanmax(arr, axis=0), med + half)
            if c.endswith(SD_SUFFIX):
                lo = np.zeros_like(lo)  # only too much wobble is a deviation
            # tolerance in time: step boundaries of different sessions never line up exactly
            tw = max(1, int(round(0.03 * cfg.n_points)))
            bands[(name, c)] = Band(med, _rolling(lo, tw, np.nanmin), _rolling(hi, tw, np.nanmax))
    progress("skill profile steps", len(order), len(order))
    units = {c: next((s.units.get(c, "") for s in sigs if s.units.get(c)), "") for c in channels}
    return SkillProfile(
        process=sigs[0].process or "unknown",
        channels={
            c: {"unit": units[c], "role": "context" if c in context else "scored", "scale": scale.get(c)}
            for c in channels
        },
        steps=step_profiles,
        bands=bands,
        adjustments=rules,
        sessions=[s.session_id for s in sigs],
        n_points=cfg.n_points,
        bin_hz=hz,
        params={
            "smooth_s": cfg.smooth_s,
            "k_sigma": cfg.k_sigma,
            "steady_tol": cfg.steady_tol,
            "level_floor": cfg.level_floor,
            "dtw_window": cfg.dtw_window,
            "step_methods": {s.session_id: sorted({x.method for x in steps[s.session_id]}) for s in sigs},
        },
    )


def _rolling(x: np.ndarray, w: int, fn: Any) -> np.ndarray:
    pad = np.pad(x, w, mode="edge")
    return np.array([fn(pad[i : i + 2 * w + 1]) for i in range(len(x))])


def _noise(b: np.ndarray) -> float:
    """Robust bin-to-bin noise (MAD of first differences / √2)."""
    d = np.diff(b[np.isfinite(b)])
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2)) if len(d) > 3 else 0.0


def _channel_scale(sigs: Sequence[SessionSignals], c: str) -> float:
    """The channel's typical level: median |value| over the samples above its own p25 (its working level)."""
    vals = np.concatenate([np.abs(s.channels[c][1]) for s in sigs])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return 1.0
    return float(np.median(vals[vals >= np.quantile(vals, 0.25)])) or 1.0


def _motion_shares(
    sigs: Sequence[SessionSignals], steps: dict[str, list[Step]], order: Sequence[str], hz: float
) -> dict[str, float]:
    """Share of the integrated motion (e.g. distance) per step, for steps with real motion."""
    if not order:
        return {}
    shares: dict[str, list[float]] = {}
    for s in sigs:
        probe = steps_from_signals(s, bin_hz=hz)
        motion = next((x for x in probe if x.name == "motion"), None)
        if motion is None or not steps[s.session_id]:
            continue
        mot_ch = _motion_channel(s, motion, hz)
        if mot_ch is None:
            continue
        t, v = s.channels[mot_ch]
        total = 0.0
        part: dict[str, float] = {}
        for st in steps[s.session_id]:
            m = (t >= st.start_us) & (t < st.end_us)
            part[st.name] = float(np.clip(v[m], 0, None).sum())
            total += part[st.name]
        for nm, x in part.items():
            shares.setdefault(nm, []).append(x / total if total else 0.0)
    out = {nm: float(np.median(v)) for nm, v in shares.items()}
    return {nm: x for nm, x in out.items() if x >= 0.05}


def _motion_channel(s: SessionSignals, motion: Step, hz: float) -> str | None:
    best, ch = 0.0, None
    for c, (t, v) in s.channels.items():
        inside = v[(t >= motion.start_us) & (t < motion.end_us)]
        outside = v[(t < motion.start_us - 0.5e6) | (t > motion.end_us + 0.5e6)]
        if len(inside) < 5 or len(outside) < 5:
            continue
        gap = (np.nanmedian(inside) - np.nanmedian(outside)) / (np.nanstd(inside) + 1e-9)
        if gap > best:
            best, ch = float(gap), c
    return ch


def _dtw_align(
    curves: dict[str, list[np.ndarray]], channels: Sequence[str], cfg: SkillProfileConfig
) -> dict[str, list[np.ndarray]]:
    """Warp every session's step onto the medoid session's time axis (multichannel DTW, z-scored)."""
    n = len(curves[channels[0]])
    if n < 2:
        return curves
    z = []
    for i in range(n):
        cols = []
        for c in channels:
            allv = np.concatenate(curves[c])
            mu, sd = np.nanmean(allv), np.nanstd(allv) + 1e-9
            cols.append((curves[c][i] - mu) / sd)
        z.append(np.column_stack(cols))
    dist = np.array([[np.sqrt(np.nanmean((z[i] - z[j]) ** 2)) for j in range(n)] for i in range(n)])
    ref = int(np.argmin(dist.sum(axis=1)))
    w = int(round(cfg.dtw_window * cfg.n_points))
    out: dict[str, list[np.ndarray]] = {c: [] for c in channels}
    for i in range(n):
        path = [(k, k) for k in range(cfg.n_points)] if i == ref else dtw_path(z[ref], z[i], window=w)
        for c in channels:
            out[c].append(_warp_to(cfg.n_points, path, curves[c][i]))
    return out


def select_sessions(ds: Dataset, cfg: SkillProfileConfig, snapshot: Any = None) -> list[str]:
    """The reference sessions of ``cfg`` (explicit ids, or process + skill level + where)."""
    if cfg.sessions:
        return list(cfg.sessions)
    if not cfg.process and not cfg.where:
        raise ValueError("give the process (or a where clause, or session ids) of the reference sessions")
    conds = [f"skill_level = '{cfg.skill_level.replace(chr(39), chr(39) * 2)}'"]
    if cfg.process:
        conds.append(f"process = '{cfg.process.replace(chr(39), chr(39) * 2)}'")
    if cfg.where:
        conds.append(f"({cfg.where})")
    rows = ds.query(
        f"SELECT session_id FROM current_sessions WHERE {' AND '.join(conds)} ORDER BY started_at",
        snapshot=snapshot,
    )
    return [str(x) for x in rows.column(0).to_pylist()]


def build_skill_profile(
    ds: Dataset,
    cfg: SkillProfileConfig,
    *,
    registry: ModelRegistry | None = None,
    progress: ProgressFn = null_progress,
) -> ModelVersion:
    """Build a profile from the reference sessions of ``cfg`` and publish it (``task = "skill_profile"``).

    The manifest records the dataset snapshot the sessions were read at, the sessions, the steps and
    how they were found, and the adjustments.

    Raises:
        TrainingError: Too few sessions, or none of the process.
    """
    snap = ds.snapshot()
    ids = select_sessions(ds, cfg, snapshot=snap)
    if len(ids) < 2:
        raise TrainingError(
            f"found {len(ids)} reference session(s) for {cfg.process or cfg.where!r}; need at least 2",
            hint="check the process name and skill level: `jangin query 'SELECT process, skill_level, count(*) FROM current_sessions GROUP BY ALL'`",
        )
    sigs = []
    for i, sid in enumerate(ids):
        progress("read sessions", i, len(ids))
        sigs.append(read_session(ds, sid, snapshot=snap))
    progress("read sessions", len(ids), len(ids))
    prof = profile_from_sessions(sigs, cfg, progress=progress)
    registry = registry or ModelRegistry(ds.models_dir)
    manifest = ModelManifest(
        name=cfg.name,
        task="skill_profile",
        framework="jangin-skill",
        architecture_licence="Apache-2.0 (Jangin skill profile)",
        classes=prof.step_names,
        outputs={"format": "skill_profile_v1", "process": prof.process, "channels": prof.channels},
        thresholds={"k_sigma": cfg.k_sigma},
        metrics={"sessions": len(ids), "steps": len(prof.steps), "adjustments": len(prof.adjustments)},
        dataset=str(ds.root),
        dataset_snapshot=snap.to_dict(),
        train_config=cfg.model_dump(mode="json"),
        extra={
            "sessions": ids,
            "adjustments": [
                a.describe({c: v.get("unit", "") for c, v in prof.channels.items()}) for a in prof.adjustments
            ],
        },
    )
    with registry.publish(manifest) as d:
        prof.save(d)
    mv = registry.last_published
    log.info("published skill profile %s:%s from %d sessions", mv.name, mv.version, len(ids))
    return mv
