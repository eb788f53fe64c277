"""Scoring a session against a skill profile: where each channel leaves the experts' band, for how long
and by how much, the adjustments the experts would have made, an overall score, and which
deviations preceded NG judgments.

Reads profiles through :mod:`jangin.core.skill` (no training code, no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import ModelLoadError, ModelRegistry, NotFoundError
from jangin.core.skill import (
    SD_SUFFIX,
    AdjustmentRule,
    SessionSignals,
    SkillProfile,
    Step,
    bin_means,
    rolling_sd,
    smooth,
    steps_from_events,
    steps_from_signals,
)

__all__ = [
    "Deviation",
    "MissedAdjustment",
    "SkillScore",
    "find_profile",
    "load_profile",
    "relate_outcomes",
    "score_session",
]

#: severity → points off the 100-point skill score
_PENALTY = {"minor": 2.0, "major": 8.0, "critical": 15.0}


@dataclass
class Deviation:
    """A stretch where a channel left the experts' band (or an adjustment that was not made)."""

    step: str
    channel: str
    start_us: int
    end_us: int
    direction: str  # "above" | "below" | "missed"
    value: float  # mean value over the stretch
    expected: float  # mean of the experts' median over the stretch
    excess: float  # mean distance outside the band, in the channel's unit
    ratio: float  # 90th percentile of |value - median| / band half-width
    severity: str  # minor | major | critical
    kind: str = "band"  # band | missed_adjustment
    message: str = ""

    @property
    def duration_s(self) -> float:
        return (self.end_us - self.start_us) / 1e6


@dataclass
class MissedAdjustment:
    """An adjustment the experts make that this session did not (or did, late or weakly)."""

    rule: str
    channel: str
    trigger_at_us: int
    expected_by_us: int
    expected_change: float
    observed_change: float
    made: bool
    step: str


@dataclass
class SkillScore:
    """The result of :func:`score_session`."""

    session_id: str
    profile: str
    score: float
    steps: list[Step]
    deviations: list[Deviation]
    adjustments: list[MissedAdjustment]
    step_timing: list[dict[str, Any]]
    curves: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def missed(self) -> list[MissedAdjustment]:
        return [a for a in self.adjustments if not a.made]

    def flagged(self, min_severity: str = "major") -> set[tuple[str, str]]:
        """(step, channel) pairs with a deviation of at least ``min_severity``."""
        rank = {"minor": 0, "major": 1, "critical": 2}
        return {(d.step, d.channel) for d in self.deviations if rank[d.severity] >= rank[min_severity]}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no curves)."""
        return {
            "session_id": self.session_id,
            "profile": self.profile,
            "score": round(self.score, 1),
            "steps": [asdict(s) | {"duration_s": round(s.duration_s, 3)} for s in self.steps],
            "deviations": [asdict(d) | {"duration_s": round(d.duration_s, 3)} for d in self.deviations],
            "adjustments": [asdict(a) for a in self.adjustments],
            "missed_adjustments": [a.rule for a in self.missed],
            "step_timing": self.step_timing,
        }


def load_profile(path_or_version: Any) -> SkillProfile:
    """A profile from a registry version (``ModelVersion``) or a directory.

    Raises:
        ModelLoadError: Not a skill profile.
    """
    path = Path(getattr(path_or_version, "path", path_or_version))
    manifest = getattr(path_or_version, "manifest", None)
    if manifest is not None and manifest.task != "skill_profile":
        raise ModelLoadError(
            f"{manifest.name}:{manifest.version} is a {manifest.task} model, not a skill profile"
        )
    return SkillProfile.load(path)


def find_profile(
    registry: ModelRegistry, process: str | None, ref: str | None = None
) -> tuple[str, SkillProfile]:
    """The profile ``ref`` (``name[:version]``), else the newest active skill profile of ``process``.

    Raises:
        NotFoundError: No such profile.
    """
    if ref:
        mv = registry.get(ref)
        return f"{mv.name}:{mv.version}", load_profile(mv)
    cands = [
        mv
        for mv in registry.list()
        if mv.manifest.task == "skill_profile"
        and (process is None or mv.manifest.outputs.get("process") == process)
    ]
    if not cands:
        raise NotFoundError(
            f"no skill profile for process {process!r}", hint="build one: `jangin skill build --process …`"
        )
    active = [mv for mv in cands if registry.active(mv.name) == mv.version]
    mv = max(active or cands, key=lambda m: m.manifest.created_at)
    mv = registry.get(mv.name, mv.version)
    return f"{mv.name}:{mv.version}", load_profile(mv)


def first_crossing(t: np.ndarray, v: np.ndarray, level: float, direction: int, hz: float) -> int | None:
    """First time (µs) the 0.25 s-smoothed channel crosses ``level`` in ``direction``."""
    if len(t) < 2:
        return None
    t0 = int(t[0])
    b = smooth(bin_means(t, v, t0, int(t[-1]) + 1, hz), max(1, int(0.25 * hz)))
    above = (b - level) * direction > 0
    idx = np.flatnonzero(~above[:-1] & above[1:])
    return None if len(idx) == 0 else int(t0 + (idx[0] + 1) * 1e6 / hz)


def _median_level(t: np.ndarray, v: np.ndarray, t0: float, t1: float) -> float:
    m = (t >= t0) & (t < t1)
    return float(np.nanmedian(v[m])) if m.any() else float("nan")


def check_adjustments(
    profile: SkillProfile, sig: SessionSignals, steps: Sequence[Step]
) -> list[MissedAdjustment]:
    """For each of the profile's adjustments whose trigger this session reached: was it made?"""
    out = []
    for rule in profile.adjustments:
        if rule.trigger_channel not in sig.channels or rule.channel not in sig.channels:
            continue
        tc = first_crossing(
            *sig.channels[rule.trigger_channel], rule.trigger_value, rule.direction, profile.bin_hz
        )
        if tc is None:
            continue
        t, v = sig.channels[rule.channel]
        by = tc + rule.delay_max_s * 1e6
        if by + 0.5e6 > t[-1]:
            continue  # the session ended before the change was due
        before = _median_level(t, v, tc - 1.0e6, tc)
        after = _median_level(t, v, by, by + 1.0e6)
        change = after / before - 1 if abs(before) > 1e-9 else 0.0
        made = bool(np.sign(change) == np.sign(rule.change_rel) and abs(change) >= 0.5 * abs(rule.change_rel))
        step = next((s.name for s in steps if s.start_us <= by < s.end_us), steps[-1].name if steps else "")
        out.append(
            MissedAdjustment(
                rule.describe({c: v.get("unit", "") for c, v in profile.channels.items()}),
                rule.channel,
                int(tc),
                int(by),
                rule.change_rel,
                round(change, 4),
                made,
                step,
            )
        )
    return out


def _expected_factor(
    n: int, t0_us: int, hz: float, rules: Sequence[AdjustmentRule], crossings: dict[int, int], ch: str
) -> np.ndarray:
    """The factor the experts' adjustments would have applied to ``ch`` in this session (per bin)."""
    f = np.ones(n)
    t = t0_us + (np.arange(n) + 0.5) * 1e6 / hz
    for i, r in enumerate(rules):
        change = r.change_rel if r.channel == ch else r.also.get(ch)
        if change is None or i not in crossings:
            continue
        start = crossings[i] + r.delay_s * 1e6
        f = f * (1 + change * np.clip((t - start) / 0.5e6, 0, 1))
    return f


def _runs(mask: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def severity_of(ratio: float) -> str:
    """Severity from how far outside the band a stretch went (``ratio`` 1 = at the band's edge)."""
    return "critical" if ratio >= 4 else "major" if ratio >= 2 else "minor"


def score_session(
    profile: SkillProfile,
    sig: SessionSignals,
    *,
    profile_name: str = "",
    min_duration_s: float = 0.3,
    steps: Sequence[Step] | None = None,
) -> SkillScore:
    """Score one session against ``profile``.

    Each step is found as the profile was built (markers, else signals), its channels binned,
    smoothed, corrected for the adjustments the experts would have made by then (so a novice is not
    flagged for an adjustment whose trigger it had not reached), and compared with the band over the
    step's normalised time. Stretches outside the band of at least ``min_duration_s`` (or half the step)
    are deviations; adjustments not made become ``missed_adjustment`` deviations.
    """
    hz = profile.bin_hz
    if steps is None:
        steps = steps_from_events(sig.events) or steps_from_signals(sig, template=profile.steps, bin_hz=hz)
    steps = list(steps)
    nsm = max(1, int(round(float(profile.params.get("smooth_s", 0.25)) * hz)))
    crossings: dict[int, int] = {}
    for i, r in enumerate(profile.adjustments):
        if r.trigger_channel in sig.channels:
            tc = first_crossing(*sig.channels[r.trigger_channel], r.trigger_value, r.direction, hz)
            if tc is not None:
                crossings[i] = tc
    deviations: list[Deviation] = []
    curves: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    timing = []
    for st in steps:
        sp = profile.step(st.name)
        if sp is None:
            continue
        lo_d, hi_d = min(sp.durations_s), max(sp.durations_s)
        timing.append(
            {
                "step": st.name,
                "duration_s": round(st.duration_s, 3),
                "expert_min_s": lo_d,
                "expert_max_s": hi_d,
                "ok": bool(0.8 * lo_d <= st.duration_s <= 1.25 * hi_d),
                "method": st.method,
                "confidence": st.confidence,
            }
        )
        for ch in profile.scored_channels:
            band = profile.bands.get((st.name, ch))
            if band is None or ch not in sig.channels:
                continue
            t, v = sig.channels[ch]
            b = bin_means(t, v, st.start_us, st.end_us, hz)
            if len(b) == 0:
                continue
            f = _expected_factor(len(b), st.start_us, hz, profile.adjustments, crossings, ch)
            x = smooth(b, nsm)
            u = (np.arange(len(b)) + 0.5) / len(b)
            grid = (np.arange(profile.n_points) + 0.5) / profile.n_points
            med = np.interp(u, grid, band.median) * f
            lo = np.interp(u, grid, band.lo) * f
            hi = np.interp(u, grid, band.hi) * f
            curves[(st.name, ch)] = {
                "t_us": st.start_us + (np.arange(len(b)) + 0.5) * 1e6 / hz,
                "value": x,
                "median": med,
                "lo": lo,
                "hi": hi,
            }
            min_bins = max(2, int(round(min(min_duration_s, 0.5 * st.duration_s) * hz)))
            deviations += _band_deviations(st, ch, x, med, lo, hi, min_bins, hz, profile, "band")
            sd_band = profile.bands.get((st.name, ch + SD_SUFFIX))
            if sd_band is not None:
                xs = rolling_sd(x, int(round(hz)))
                deviations += _band_deviations(
                    st,
                    ch,
                    xs,
                    np.interp(u, grid, sd_band.median),
                    np.zeros(len(xs)),
                    np.interp(u, grid, sd_band.hi),
                    min_bins,
                    hz,
                    profile,
                    "unsteady",
                )

    adjustments = check_adjustments(profile, sig, steps)
    for a in adjustments:
        if a.made:
            continue
        t, v = sig.channels[a.channel]
        unit = profile.channels.get(a.channel, {}).get("unit", "")
        val = _median_level(t, v, a.expected_by_us, a.expected_by_us + 1e6)
        deviations.append(
            Deviation(
                a.step,
                a.channel,
                a.expected_by_us,
                int(min(t[-1], a.expected_by_us + 1e6)),
                "missed",
                val,
                val * (1 + a.expected_change),
                abs(val * a.expected_change),
                2.0,
                "major",
                "missed_adjustment",
                f"missed adjustment: the experts change {a.rule}; this session changed {a.channel} by {a.observed_change * 100:+.1f} % "
                f"(stays at {val:.1f} {unit})",
            )
        )
    deviations = _merge_across_steps(deviations)
    deviations.sort(key=lambda d: d.start_us)
    score = max(
        0.0,
        100.0 - sum(_PENALTY[d.severity] for d in deviations) - 3.0 * sum(1 for x in timing if not x["ok"]),
    )
    return SkillScore(sig.session_id, profile_name, score, steps, deviations, adjustments, timing, curves)


def _band_deviations(
    st: Step,
    ch: str,
    x: np.ndarray,
    med: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    min_bins: int,
    hz: float,
    profile: SkillProfile,
    kind: str,
) -> list[Deviation]:
    out = (x > hi) | (x < lo)
    unit = profile.channels.get(ch, {}).get("unit", "")
    found = []
    steady_bins = int(round(hz))  # the 1 s window of the rolling standard deviation
    for a, z in _runs(out, max_gap=2):
        if z - a < min_bins:
            continue
        xs, ms = x[a:z], med[a:z]
        above = bool(np.nanmean(xs - ms) > 0)
        half = np.where(above, hi[a:z] - ms, ms - lo[a:z])
        ratio = float(np.nanpercentile(np.abs(xs - ms) / np.maximum(half, 1e-9), 90))
        edge = hi[a:z] if above else lo[a:z]
        outside = out[a:z]
        excess = float(np.nanmean(np.abs(xs - edge)[outside])) if outside.any() else 0.0
        d = Deviation(
            st.name,
            ch,
            int(st.start_us + a * 1e6 / hz),
            int(st.start_us + z * 1e6 / hz),
            "unsteady" if kind == "unsteady" else "above" if above else "below",
            float(np.nanmean(xs)),
            float(np.nanmean(ms)),
            excess,
            round(ratio, 2),
            severity_of(ratio),
            kind,
        )
        if kind == "unsteady" and z - a < 2 * steady_bins and d.severity != "minor":
            # a wobble is sustained swinging; a stretch shorter than two rolling-SD windows is what a
            # single level change looks like (the band check reports that one): at most minor
            d.severity = "minor"
        if kind == "unsteady":
            d.message = (
                f"{ch} unsteady in {st.name} for {d.duration_s:.1f} s: it swings by ±{d.value:.1f} {unit} "
                f"(experts ±{d.expected:.1f} {unit})"
            )
        else:
            d.message = (
                f"{ch} {d.direction} the experts' band in {st.name} for {d.duration_s:.1f} s: "
                f"{d.value:.1f} {unit} vs {d.expected:.1f} {unit} (by {excess:.1f} {unit} outside the band)"
            )
        found.append(d)
    return found


def _merge_across_steps(devs: list[Deviation]) -> list[Deviation]:
    """A stretch that runs on over a step boundary is one deviation, reported in the step it began."""
    devs = sorted(devs, key=lambda d: (d.channel, d.direction, d.start_us))
    out: list[Deviation] = []
    for d in devs:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.kind == d.kind == "band"
            and prev.channel == d.channel
            and prev.direction == d.direction
            and prev.step != d.step
            and d.start_us - prev.end_us <= 0.15e6
        ):
            prev.end_us = max(prev.end_us, d.end_us)
            if d.ratio > prev.ratio:  # reported in the step where it was worst
                prev.step, prev.value, prev.expected, prev.excess, prev.message = (
                    d.step,
                    d.value,
                    d.expected,
                    d.excess,
                    d.message,
                )
            prev.ratio = max(prev.ratio, d.ratio)
            prev.severity = severity_of(prev.ratio)
            continue
        out.append(d)
    return out


def relate_outcomes(
    scored: Sequence[tuple[SkillScore, SessionSignals]], *, min_severity: str = "major"
) -> list[dict[str, Any]]:
    """Which deviations preceded NG judgments: for each (step, channel, direction) seen in the scored
    sessions, how many NG judgments of that step (per defect) came after it, out of all NG of that defect.

    Returns rows sorted by how often the deviation preceded a defect, e.g.
    ``{"deviation": "travel_speed_mm_s above band in segment_3", "defect": "undercut", "preceded": 1,
    "defects": 1, "sessions_with_deviation": 1, "text": "… preceded 1 of 1 undercut defects"}``.
    """
    rank = {"minor": 0, "major": 1, "critical": 2}
    ng: dict[str, list[tuple[str, str]]] = {}  # defect -> [(session, step)]
    devs: dict[tuple[str, str, str], set[str]] = {}
    for sc, sig in scored:
        for e in sig.events:
            if e.get("kind") == "judgment" and str(e.get("value") or "").upper().startswith("NG"):
                defect = str(e["value"]).split(":", 1)[1] if ":" in str(e["value"]) else "NG"
                ng.setdefault(defect, []).append((sc.session_id, str(e.get("name"))))
        for d in sc.deviations:
            if rank[d.severity] >= rank[min_severity]:
                devs.setdefault((d.step, d.channel, d.direction), set()).add(sc.session_id)
    rows = []
    for (step, ch, direction), sessions in devs.items():
        for defect, where in ng.items():
            hit = sum(1 for s, stp in where if s in sessions and stp == step)
            if hit:
                how = {"missed": "missed adjustment", "unsteady": "unsteady"}.get(
                    direction, direction + " band"
                )
                what = f"{ch} {how} in {step}"
                rows.append(
                    {
                        "deviation": what,
                        "defect": defect,
                        "preceded": hit,
                        "defects": len(where),
                        "sessions_with_deviation": len(sessions),
                        "text": f"{what} preceded {hit} of {len(where)} {defect} defect(s)",
                    }
                )
    return sorted(rows, key=lambda r: (-r["preceded"] / r["defects"], r["deviation"]))
