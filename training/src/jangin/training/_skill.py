"""Skill profiles from expert sessions: steps, DTW-aligned channel envelopes, step durations and the
experts' adjustments, published to the model registry as ``task = "skill_profile"``.

The format (and what scoring reads) is :mod:`jangin.core.skill`; scoring and live coaching are in
``jangin.inference``.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jangin.core import Dataset, ModelManifest, ModelRegistry, ModelVersion, TrainingError
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.skill import (
    ENV_SUFFIX,
    SD_SUFFIX,
    Band,
    SessionSignals,
    SkillProfile,
    Step,
    StepProfile,
    bin_means,
    condition_label,
    normalise,
    outside,
    read_session,
    smooth,
    steps_from_events,
    steps_from_signals,
    unsteadiness,
)
from jangin.core.skill_rules import adjustment_factor, rules_due
from jangin.core.skill_stats import small_sample_margin
from jangin.training._skill_adjust import check_rules, compensation, mine_adjustments
from jangin.training._skill_ends import end_calibration, mine_step_ends, mine_step_shares
from jangin.training._skill_select import select_channels

__all__ = [
    "SkillProfileConfig",
    "build_skill_profile",
    "build_skill_profiles",
    "dtw_path",
    "profile_from_sessions",
]

log = logging.getLogger(__name__)

#: the least spread of a step's duration in seconds (how exactly a step start/end is marked)
DURATION_FLOOR_S = 0.2


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
        k_sigma: Band half-width (in combined standard deviations) used only when there are too
            few experts (< 3) to calibrate it leave-one-out.
        level_floor: Minimum standard deviation as a fraction of the channel's typical level.
        dtw_window: Sakoe-Chiba window of the DTW alignment, as a fraction of ``n_points``.
        false_major_rate: The false-major rate per session the thresholds are calibrated for on the
            leave-one-out experts (with n experts the calibration can only resolve 1/n: below that
            the largest leave-one-out deviation sets the threshold).
        inband_share: Share of the leave-one-out experts' step-time the band must hold.
        major_ratio: A deviation is major when it stays ≥ this many band half-widths outside the
            experts' median for ≥ ``major_share`` of a step.
        major_share: See ``major_ratio``.
        margin: Safety factor on the leave-one-out maxima (the thresholds must hold for experts the
            profile has not seen); default: from the number of experts behind the leave-one-out
            calibration, t(1 - false_major_rate, n - 1) / z(1 - false_major_rate) for n
            experts (1.30 for 5, 1.43 for 4, 1.05 for 20; see
            :func:`jangin.core.skill_stats.small_sample_margin`).
        channels: Channel globs to score (default: automatic, see :mod:`jangin.training._skill_select`).
        condition_on: Build one profile per recipe: session parameter names (``recipe``), or
            ``name:width`` to bin a numeric parameter (``rf_power_setpoint_W:50``).
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
    false_major_rate: float = Field(0.05, gt=0, lt=1)
    inband_share: float = Field(0.95, gt=0.5, lt=1)
    major_ratio: float = Field(1.5, gt=1)
    major_share: float = Field(0.3, gt=0, le=1)
    margin: float | None = Field(None, ge=1)
    channels: tuple[str, ...] = ()
    condition_on: tuple[str, ...] = ()
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
    sig: SessionSignals,
    template: Sequence[StepProfile] | None = None,
    bin_hz: float = 20.0,
    spec: dict[str, Any] | None = None,
) -> list[Step]:
    """A session's steps: from its step markers, else from the signal template ``spec`` (if any)."""
    steps = steps_from_events(sig.events)
    return steps if steps else steps_from_signals(sig, template=template, bin_hz=bin_hz, spec=spec)


def _steps_spec(definition: Any) -> dict[str, Any]:
    """The definition's step spec as a dict (``{}`` without a definition)."""
    if definition is None:
        return {}
    st = definition.steps
    return st.model_dump(mode="json") if hasattr(st, "model_dump") else dict(st)


def template_spec(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The signal template of a step spec: for ``source: template``, and as the fallback for sessions
    without markers (never for ``source: none``)."""
    return spec.get("template") if spec.get("source") != "none" else None


def _step_order(steps: dict[str, list[Step]]) -> list[str]:
    names_per = [[st.name for st in v] for v in steps.values() if v]
    if not names_per:
        return []
    counts: dict[str, list[int]] = {}
    for names in names_per:
        for i, nm in enumerate(names):
            counts.setdefault(nm, []).append(i)
    return sorted(
        (n for n, v in counts.items() if len(v) * 2 >= len(names_per)),
        key=lambda n: float(np.median(counts[n])),
    )


#: degrees of freedom the channel's spread over its steps counts for when a step's spread is shrunk
#: toward it: as much as the step's own from four experts
PRIOR_DF = 3


def _spread(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Median, spread per point and the step's pooled spread of the experts' aligned curves ``arr``."""
    med = np.median(arr, axis=0) if not np.isnan(arr).any() else np.nanmedian(arr, axis=0)
    point = np.nanstd(arr, axis=0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1])
    point = np.nan_to_num(point)
    return med, point, float(np.sqrt(np.nanmean(point**2)))


def _level(med: np.ndarray, relative: bool) -> float:
    """What a channel's spread in a step is relative to: its median level for a ratio quantity."""
    return float(np.nanmedian(np.abs(med))) if relative else 1.0


def _prior_spread(cells: dict[str, tuple[np.ndarray, bool]]) -> float | None:
    """A channel's between-expert spread over its steps (the median of the steps' pooled spreads,
    each relative to the step's level for a ratio quantity): the prior a step's own spread, from a
    handful of experts, is shrunk toward (see :func:`_band_stats`). None with fewer than two steps."""
    rel = []
    for arr, relative in cells.values():
        if len(arr) < 2:
            continue
        med, _, pooled = _spread(arr)
        lev = _level(med, relative)
        if lev > 0 and np.isfinite(pooled):
            rel.append(pooled / lev)
    return float(np.median(rel)) if len(rel) >= 2 else None


def _band_stats(
    arr: np.ndarray, within: float, floor: float, prior: float | None = None, relative: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Median and spread (σ per point of normalised time) of the experts' aligned curves ``arr``.

    A step's spread from a handful of experts is itself uncertain (from 4 experts, 3 degrees of
    freedom: below half the true spread one time in seven); when the experts happened to agree
    in a step, the next expert's ordinary difference read major. So the step's pooled spread is
    shrunk toward ``prior`` (the channel's spread over its steps, :func:`_prior_spread`, weighted as
    :data:`PRIOR_DF` degrees of freedom), never below its own: a step the experts really do differ in
    keeps its width (the held-out harness's first sample process, v6 seed 7001, an expert left out:
    one channel in its last step 2.22 half-widths out of the other four's band before, 1.34 after)."""
    med, point, pooled = _spread(arr)
    if prior is not None and len(arr) >= 2:
        df = len(arr) - 1
        prior_abs = prior * _level(med, relative)
        shrunk = float(np.sqrt((df * pooled**2 + PRIOR_DF * prior_abs**2) / (df + PRIOR_DF)))
        if shrunk > pooled:
            point = point * (shrunk / pooled) if pooled > 0 else np.full_like(point, shrunk)
            pooled = shrunk
    between = np.sqrt(0.5 * (smooth(point, 9) ** 2 + pooled**2)) * np.sqrt(1 + 1 / max(len(arr), 1))
    return med, np.sqrt(between**2 + within**2 + floor**2)


def _envelope(med: np.ndarray, sigma: np.ndarray, tw: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tolerance in time (step boundaries never line up exactly): the median's range and the largest
    spread within ``tw`` points."""
    return _rolling(med, tw, np.nanmin), _rolling(med, tw, np.nanmax), _rolling(sigma, tw, np.nanmax)


def profile_from_sessions(
    sigs: Sequence[SessionSignals],
    cfg: SkillProfileConfig,
    *,
    definition: Any = None,
    progress: ProgressFn = null_progress,
) -> SkillProfile:
    """Build a :class:`SkillProfile` from reference sessions already read (see :func:`read_session`).

    Bands are the experts' median ± h σ (σ: their spread per step, channel and normalised time), with
    h calibrated leave-one-out: each expert is compared with the band of the others, and h is the
    smallest value for which (a) the band holds ``inband_share`` of their step-time and (b) no
    leave-one-out expert has a major deviation (``major_ratio`` half-widths for ``major_share`` of a
    step), times ``margin``. The same is done for step durations and for unsteadiness (variation
    around the session's own running median). The thresholds are stored in the profile.

    Raises:
        TrainingError: Fewer than two sessions, or no step common to them.
    """
    if len(sigs) < 2:
        raise TrainingError(f"a skill profile needs at least 2 reference sessions, got {len(sigs)}")
    hz = cfg.bin_hz
    channels = sorted(set.intersection(*(set(s.channels) for s in sigs)))
    if not channels:
        raise TrainingError("the reference sessions share no sensor channel")
    spec = _steps_spec(definition)
    tmpl = template_spec(spec)
    steps: dict[str, list[Step]] = {s.session_id: steps_from_events(s.events) for s in sigs}
    order = _step_order(steps)
    rules, applied = mine_adjustments(sigs, channels, hz, cfg.false_major_rate)
    check_rules(rules, sigs, hz, cfg.false_major_rate)
    motion_share = _motion_shares(sigs, steps, order, hz, tmpl)
    template = [StepProfile(nm, i, [], motion_share.get(nm)) for i, nm in enumerate(order)] if order else None
    for s in sigs:
        if not steps[s.session_id]:
            steps[s.session_id] = steps_from_signals(s, template=template, bin_hz=hz, spec=tmpl)
            log.info(
                "session %s has no step markers: steps from %s", s.session_id, steps[s.session_id][0].method
            )
    if not order:
        order = _step_order(steps)
    context = (
        list(cfg.context_channels)
        if cfg.context_channels is not None
        else sorted({r.trigger_channel for r in rules})
    )
    meta, dropped = select_channels(
        sigs, channels, steps, definition=definition, patterns=cfg.channels, context=context, hz=hz
    )
    scored = [c for c in channels if meta[c]["role"] == "scored"]
    if not scored:
        raise TrainingError(
            "no channel left to score", hint=f"left out: {dropped}; pick channels with --channels"
        )
    nsm = max(1, int(round(cfg.smooth_s * hz)))
    tw = max(1, int(round(0.03 * cfg.n_points)))
    scale = {c: _channel_scale(sigs, c) for c in scored}
    n_exp = len(sigs)
    loo = n_exp >= 3
    # the thresholds are set by the n leave-one-out experts' distances: a spread from n values
    margin = (
        cfg.margin if cfg.margin is not None else round(small_sample_margin(n_exp, cfg.false_major_rate), 3)
    )
    step_profiles: list[StepProfile] = []
    stats: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # (step, ch) -> (med, σ)
    cells: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, float, float, list[int]]] = {}
    pooled_d: dict[str, list[np.ndarray]] = {c: [] for c in scored}
    s_major: dict[str, list[float]] = {c: [] for c in scored}
    unsteady: dict[tuple[str, str], list[float]] = {}
    # each expert as scoring will see it: the change due from its trigger's crossing at the usual
    # delay and size, or its own change at its own time and size when that is inside the experts' range
    due = {s.session_id: rules_due(rules, s, steps[s.session_id], hz, cfg.false_major_rate) for s in sigs}
    lapsed = {r.channel: set(r.lapses) for r in rules}  # an adjustment is undone in these steps
    for k, name in enumerate(order):
        progress("skill profile steps", k, len(order))
        curves: dict[str, list[np.ndarray]] = {c: [] for c in scored}
        # as scoring sees each expert: their adjustments taken out with the rules' usual change at the
        # usual delay (the bands are built from each expert's own change, taken out exactly)
        as_scored: dict[str, list[np.ndarray]] = {c: [] for c in scored}
        noise: dict[str, list[float]] = {c: [] for c in scored}
        durations = []
        who: list[int] = []  # the sessions (index in sigs) the step's rows come from
        for si, s in enumerate(sigs):
            st = next((x for x in steps[s.session_id] if x.name == name), None)
            if st is None:
                continue
            who.append(si)
            durations.append(round(st.duration_s, 3))
            crossed, sizes = due[s.session_id]
            for c in scored:
                t, v = s.channels[c]
                b0 = bin_means(t, v, st.start_us, st.end_us, hz)
                held = [
                    a for a in applied.get(s.session_id, []) if name not in lapsed.get(next(iter(a[1])), ())
                ]
                b = b0 * compensation(len(b0), st.start_us, hz, held, c)
                t_bins = st.start_us + (np.arange(len(b0)) + 0.5) * 1e6 / hz
                ef = adjustment_factor(rules, c, t_bins, crossed, name, sizes)
                as_scored[c].append(normalise(smooth(b0 / ef, nsm), cfg.n_points))
                noise[c].append(_noise(b))
                sb = smooth(b, nsm)
                curves[c].append(normalise(sb, cfg.n_points))
                u = unsteadiness(sb, hz)
                unsteady.setdefault((name, c), []).append(
                    float(np.nanmax(u)) if np.isfinite(u).any() else 0.0
                )
        step_profiles.append(StepProfile(name, k, durations, motion_share.get(name)))
        if len(durations) < 2:
            continue
        aligned = _dtw_align(curves, scored, cfg)
        for c in scored:
            cells[(name, c)] = (
                np.vstack(aligned[c]),
                np.vstack(as_scored[c]),
                float(np.nanmedian(noise[c])) / np.sqrt(nsm),
                cfg.level_floor * scale[c],
                who,
            )
    progress("skill profile steps", len(order), len(order))
    relative = {c: meta[c].get("quantity", "ratio") == "ratio" for c in scored}

    @functools.cache
    def prior(c: str, drop: int | None = None) -> float | None:
        """The channel's spread over its steps, without session ``drop`` (index in ``sigs``)."""
        return _prior_spread(
            {
                nm: (np.delete(arr, ws.index(drop), axis=0) if drop in ws else arr, relative[c])
                for (nm, ch), (arr, _, _, _, ws) in cells.items()
                if ch == c
            }
        )

    for (name, c), (arr, raw, within, floor, who) in cells.items():
        stats[(name, c)] = _band_stats(arr, within, floor, prior(c), relative[c])
        if not loo or len(arr) < 3:
            continue
        for i in range(len(arr)):
            med_i, sig_i = _band_stats(
                np.delete(arr, i, axis=0), within, floor, prior(c, who[i]), relative[c]
            )
            lo_i, hi_i, sr_i = _envelope(med_i, sig_i, tw)
            d = np.abs(outside(raw[i], lo_i, hi_i, sr_i))
            pooled_d[c].append(d)
            s_major[c].append(float(np.nanquantile(d, 1 - cfg.major_share)))
    # -- calibration (leave-one-out) ---------------------------------------------------------------
    half: dict[str, float] = {}
    for c in scored:
        if pooled_d[c]:
            inband = float(np.nanquantile(np.concatenate(pooled_d[c]), cfg.inband_share))
            worst = max(s_major[c]) / cfg.major_ratio
            half[c] = round(max(1.0, inband, worst) * margin, 3)
        else:
            half[c] = cfg.k_sigma
    bands: dict[tuple[str, str], Band] = {}
    for (name, c), (med, sigma) in stats.items():
        lo, hi, sr = _envelope(med, sigma, tw)
        bands[(name, c)] = Band(med, lo - half[c] * sr, hi + half[c] * sr)
        bands[(name, c + ENV_SUFFIX)] = Band(sr, lo, hi)
    # unsteadiness: the experts' largest wobble per step, times a leave-one-out margin
    u_ratio = []
    for vals in unsteady.values():
        for i, v in enumerate(vals):
            others = max((x for j, x in enumerate(vals) if j != i), default=0.0)
            if loo and others > 0:
                u_ratio.append(v / others)
    u_margin = round(max(1.25, max(u_ratio, default=1.0) * margin), 3) if loo else 2.0
    for (name, c), vals in unsteady.items():
        if (name, c) in stats:
            lim = max(vals) * u_margin + 1e-9
            n = cfg.n_points
            bands[(name, c + SD_SUFFIX)] = Band(
                np.full(n, float(np.median(vals))), np.zeros(n), np.full(n, lim)
            )
    durations_cal = _duration_calibration(step_profiles, cfg, loo, margin)
    if loo:  # the cue each variable-length step ends after, and its calibrated lag half-width
        ends = mine_step_ends(sigs, steps, order, channels, hz, DURATION_FLOOR_S)
        durations_cal["ends"] = ends
        durations_cal["end_half_sigma"] = end_calibration(ends, DURATION_FLOOR_S, cfg.major_ratio, margin)
        # a step whose length is a share of earlier steps' time (an over etch of the main-etch time)
        per = [{x.name: x.duration_s for x in steps[s.session_id]} for s in sigs]
        durations_cal["shares"] = mine_step_shares(
            per, order, DURATION_FLOOR_S, cfg.major_ratio, margin, skip=set(ends)
        )
    units = {c: meta[c]["unit"] for c in channels}
    for c in channels:
        meta[c]["scale"] = scale.get(c)
        meta[c]["half_sigma"] = half.get(c)
    return SkillProfile(
        process=sigs[0].process or (definition.name if definition is not None else "unknown"),
        channels=meta,
        steps=step_profiles,
        bands=bands,
        adjustments=rules,
        sessions=[s.session_id for s in sigs],
        n_points=cfg.n_points,
        bin_hz=hz,
        params={
            "smooth_s": cfg.smooth_s,
            "level_floor": cfg.level_floor,
            "dtw_window": cfg.dtw_window,
            "steps_spec": spec,
            "words": dict(getattr(definition, "words", {}) or {}),
            "display_name": getattr(definition, "display_name", None),
            "parameters": {
                p.name: {"display_name": p.display_name or p.name, "unit": p.unit or ""}
                for p in getattr(definition, "parameters", None) or []
            },
            "dropped_channels": dropped,
            "units": units,
            "calibration": {
                "method": "leave-one-out" if loo else f"default k_sigma {cfg.k_sigma} (fewer than 3 experts)",
                "false_major_rate": cfg.false_major_rate,
                "inband_share": cfg.inband_share,
                "major_ratio": cfg.major_ratio,
                "major_share": cfg.major_share,
                "margin": margin,
                "half_sigma": half,
                "unsteady_margin": u_margin,
                "durations": durations_cal,
                "loo_sessions": n_exp if loo else 0,
            },
            "step_methods": {s.session_id: sorted({x.method for x in steps[s.session_id]}) for s in sigs},
        },
    )


def _duration_calibration(
    steps: Sequence[StepProfile], cfg: SkillProfileConfig, loo: bool, margin: float
) -> dict[str, Any]:
    """Per step: median and spread of the log duration, and the half-width (in σ) that holds the
    leave-one-out experts' durations without a major deviation."""
    out: dict[str, Any] = {}
    worst = []
    for sp in steps:
        d = np.log(np.maximum(np.asarray(sp.durations_s, float), 1e-3))
        if len(d) < 2:
            continue
        # floor: 5 % of the step, and 0.2 s (how exactly a person marks a step) of a short one
        floor = max(0.05, DURATION_FLOOR_S / max(float(np.exp(np.median(d))), 1e-3))
        sigma = max(float(np.std(d, ddof=1)), floor)
        out[sp.name] = {"log_median": float(np.median(d)), "sigma": sigma}
        if loo and len(d) >= 3:
            for i in range(len(d)):
                rest = np.delete(d, i)
                worst.append(abs(d[i] - np.median(rest)) / max(float(np.std(rest, ddof=1)), floor))
    half = round(max(2.0, max(worst, default=0.0) / cfg.major_ratio) * margin, 3)
    return {"half_sigma": half, "steps": out}


def _rolling(x: np.ndarray, w: int, fn: Any) -> np.ndarray:
    """``fn`` (nanmin / nanmax) over a centred window of ``2 w + 1`` points, edges padded."""
    pad = np.pad(np.asarray(x, float), w, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * w + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(win, axis=1)


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
    sigs: Sequence[SessionSignals],
    steps: dict[str, list[Step]],
    order: Sequence[str],
    hz: float,
    tmpl: dict[str, Any] | None,
) -> dict[str, float]:
    """Share of the integrated motion channel per step (only with a signal template that names one)."""
    motion = tmpl.get("motion") or tmpl.get("motion_channel") if tmpl else None
    if not order or not motion:
        return {}
    motion = [motion] if isinstance(motion, str) else list(motion)
    shares: dict[str, list[float]] = {}
    for s in sigs:
        if not steps[s.session_id]:
            continue
        mot_ch = next((c for c in motion if c in s.channels), None)
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


def _definition(ds: Dataset, process: str | None, snapshot: Any = None) -> Any:
    """The registered process definition of ``process`` (None if there is none or no such table)."""
    if not process:
        return None
    try:
        from jangin.core.process_definition import get_process

        return get_process(ds, process, snapshot=snapshot)
    except Exception as exc:  # an old dataset without the processes table: neutral wording
        log.info("no process definition for %s: %s", process, exc)
        return None


def _slug(condition: dict[str, str]) -> str:
    text = "-".join(f"{v}" for v in condition.values())
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:40] or "none"


def build_skill_profiles(
    ds: Dataset,
    cfg: SkillProfileConfig,
    *,
    registry: ModelRegistry | None = None,
    progress: ProgressFn = null_progress,
    definition: Any = None,
) -> list[ModelVersion]:
    """Build the profile(s) of ``cfg`` and publish them (``task = "skill_profile"``): one, or with
    ``condition_on`` one per recipe / parameter bin (named ``<name>-<recipe>``), each recording its
    condition. Groups with fewer than 2 reference sessions are skipped (logged, and listed in the
    manifests' ``extra.skipped_conditions``).

    The manifest records the dataset snapshot the sessions were read at, the sessions, the steps and
    how they were found, the adjustments, the channels left out and the calibrated thresholds.

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
    if definition is None:
        definition = _definition(ds, cfg.process or sigs[0].process, snapshot=snap)
    groups: dict[tuple[tuple[str, str], ...], list[SessionSignals]] = {}
    missing: list[str] = []
    for s in sigs:
        labels = [condition_label(c, s.parameters) for c in cfg.condition_on]
        if any(v is None for _, v in labels):
            missing.append(s.session_id)
            continue
        groups.setdefault(tuple((k, str(v)) for k, v in labels), []).append(s)
    if missing:
        log.warning(
            "%d reference session(s) lack a parameter of %s: left out", len(missing), cfg.condition_on
        )
    skipped = {"-".join(v for _, v in key): len(g) for key, g in groups.items() if len(g) < 2}
    groups = {k: g for k, g in groups.items() if len(g) >= 2}
    if not groups:
        raise TrainingError(
            f"no recipe of {cfg.condition_on} has 2 reference sessions ({skipped or 'none with the parameter'})",
            hint="condition on fewer parameters or wider bins (name:width)",
        )
    registry = registry or ModelRegistry(ds.models_dir)
    out = []
    for key, group in groups.items():
        condition = dict(key)
        prof = profile_from_sessions(group, cfg, definition=definition, progress=progress)
        prof.condition = condition
        prof.params["condition_on"] = list(cfg.condition_on)
        name = f"{cfg.name}-{_slug(condition)}" if condition else cfg.name
        gids = [s.session_id for s in group]
        cal = prof.params["calibration"]
        manifest = ModelManifest(
            name=name,
            task="skill_profile",
            framework="jangin-skill",
            architecture_licence="Apache-2.0 (Jangin skill profile)",
            classes=prof.step_names,
            outputs={
                "format": "skill_profile_v1",
                "process": prof.process,
                "channels": prof.channels,
                "condition": condition,
            },
            thresholds={
                "major_ratio": cal["major_ratio"],
                "major_share": cal["major_share"],
                **{f"half_sigma.{c}": float(h) for c, h in cal["half_sigma"].items()},
            },
            metrics={"sessions": len(gids), "steps": len(prof.steps), "adjustments": len(prof.adjustments)},
            dataset=str(ds.root),
            dataset_snapshot=snap.to_dict(),
            train_config=cfg.model_dump(mode="json"),
            extra={
                "sessions": gids,
                "condition": condition,
                "skipped_conditions": skipped,
                "dropped_channels": prof.params["dropped_channels"],
                "adjustments": [
                    a.describe({c: v.get("unit", "") for c, v in prof.channels.items()})
                    for a in prof.adjustments
                ],
            },
        )
        with registry.publish(manifest) as d:
            prof.save(d)
        mv = registry.last_published
        log.info("published skill profile %s:%s from %d sessions", mv.name, mv.version, len(gids))
        out.append(mv)
    return out


def build_skill_profile(
    ds: Dataset,
    cfg: SkillProfileConfig,
    *,
    registry: ModelRegistry | None = None,
    progress: ProgressFn = null_progress,
    definition: Any = None,
) -> ModelVersion:
    """:func:`build_skill_profiles`, returning the first profile published (the only one without
    ``condition_on``)."""
    return build_skill_profiles(ds, cfg, registry=registry, progress=progress, definition=definition)[0]
