"""Scoring a session against a skill profile: where each channel leaves the experts' band, for how long
and by how much, the adjustments the experts would have made, an overall score, and which
deviations preceded NG judgments.

Reads profiles through :mod:`jangin.core.skill` (no training code, no torch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import ModelLoadError, ModelRegistry, NotFoundError
from jangin.core.skill import (
    SD_SUFFIX,
    SessionSignals,
    SkillProfile,
    Step,
    bin_means,
    condition_label,
    smooth,
    steps_from_events,
    steps_from_signals,
    unsteadiness,
)
from jangin.inference._skill_judge import Judge, rule_crossing, severity_of

__all__ = [
    "Deviation",
    "MissedAdjustment",
    "SkillScore",
    "find_profile",
    "load_profile",
    "relate_outcomes",
    "score_session",
    "session_steps",
]


@dataclass
class Deviation:
    """A stretch where a channel left the experts' band (or an adjustment that was not made)."""

    step: str
    channel: str
    start_us: int
    end_us: int
    direction: str  # "above" | "below" | "missed" | "unsteady" | "longer" | "shorter"
    value: float  # mean value over the stretch
    expected: float  # mean of the experts' median over the stretch
    excess: float  # mean distance outside the band, in the channel's unit
    ratio: float  # sustained distance outside the band, in band half-widths (1 = at the edge)
    severity: str  # minor | major | critical
    kind: str = "band"  # band | unsteady | duration | missed_adjustment
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
    registry: ModelRegistry,
    process: str | None,
    ref: str | None = None,
    parameters: Mapping[str, str] | None = None,
) -> tuple[str, SkillProfile]:
    """The profile ``ref`` (``name[:version]``), else the newest active skill profile of ``process``
    whose condition (recipe / parameter bin) the session's ``parameters`` meet.

    Raises:
        NotFoundError: No such profile, or none for the session's recipe (the message names the
            session's recipe and the recipes there are profiles for).
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
    params = dict(parameters or {})
    fitting = [mv for mv in cands if _meets(mv.manifest.outputs.get("condition") or {}, params, mv)]
    if not fitting:
        have = sorted(
            {json.dumps(mv.manifest.outputs.get("condition") or {}, sort_keys=True) for mv in cands}
        )
        keys = sorted({k for mv in cands for k in (mv.manifest.outputs.get("condition") or {})})
        mine = {k: params.get(k) for k in keys}
        raise NotFoundError(
            f"no skill profile of process {process!r} for this session's recipe {mine}",
            hint=f"profiles exist for {', '.join(have)}; build one for this recipe (`jangin skill build --condition-on …`)",
        )
    active = [mv for mv in fitting if registry.active(mv.name) == mv.version]
    mv = max(active or fitting, key=lambda m: m.manifest.created_at)
    mv = registry.get(mv.name, mv.version)
    return f"{mv.name}:{mv.version}", load_profile(mv)


def _meets(condition: Mapping[str, str], params: Mapping[str, str], mv: Any) -> bool:
    """Whether the session parameters fall in the profile's condition (same value or same bin)."""
    if not condition:
        return True
    specs = {s.partition(":")[0]: s for s in (mv.manifest.train_config or {}).get("condition_on", [])}
    for k, v in condition.items():
        _, label = condition_label(specs.get(k, k), dict(params))
        if label != v:
            return False
    return True


def rule_unreliable(profile: SkillProfile, channel: str) -> bool:
    """Whether the profile's rule on ``channel`` is one its own experts would miss (then minor)."""
    return any(r.channel == channel and r.source.startswith("unreliable") for r in profile.adjustments)


def _median_level(t: np.ndarray, v: np.ndarray, t0: float, t1: float) -> float:
    m = (t >= t0) & (t < t1)
    return float(np.nanmedian(v[m])) if m.any() else float("nan")


def check_adjustments(
    profile: SkillProfile,
    sig: SessionSignals,
    steps: Sequence[Step],
    crossings: Mapping[int, int] | None = None,
) -> list[MissedAdjustment]:
    """For each of the profile's adjustments whose trigger this session reached: was it made (by the
    time it was due, see :meth:`Judge.made`; ``crossings``: :meth:`Judge.crossings`, computed when
    not given)?"""
    judge = Judge.of(profile)
    if crossings is None:
        crossings = judge.crossings(sig, steps)
    out = []
    for i, rule in enumerate(profile.adjustments):
        if rule.trigger_channel not in sig.channels or rule.channel not in sig.channels:
            continue
        tc = rule_crossing(rule, sig, steps, profile.bin_hz)
        if tc is None:
            continue
        t, v = sig.channels[rule.channel]
        by = tc + rule.delay_max_s * 1e6
        if by + 0.5e6 > t[-1]:
            continue  # the session ended before the change was due
        made, change = judge.made(i, t, v, tc, crossings)
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


def _runs(mask: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def session_steps(profile: SkillProfile, sig: SessionSignals) -> list[Step]:
    """The session's steps as ``profile`` was built: markers, else the definition's signal template."""
    spec = profile.params.get("steps_spec") or {}
    tmpl = spec.get("template") if spec.get("source") != "none" else None
    return steps_from_events(sig.events) or steps_from_signals(
        sig, template=profile.steps, bin_hz=profile.bin_hz, spec=tmpl
    )


def score_session(
    profile: SkillProfile,
    sig: SessionSignals,
    *,
    profile_name: str = "",
    min_duration_s: float = 0.3,
    steps: Sequence[Step] | None = None,
) -> SkillScore:
    """Score one session against ``profile``.

    Each step is found as the profile was built (markers, else the definition's signal template),
    its channels binned, smoothed, corrected for the adjustments the experts would have made by then,
    and compared with the band over the step's normalised time, in units of the experts' spread.

    * A channel is *major* in a step when it stays ≥ ``major_ratio`` band half-widths (calibrated
      leave-one-out at build time) outside the experts' median envelope for ≥ ``major_share`` of the
      step; other stretches outside the band of at least ``min_duration_s`` are *minor*.
    * *Unsteady*: the wobble around the session's own running median exceeds the experts' (an
      adjustment or a step edge is not wobble).
    * Durations: a step's log duration against the experts', with its calibrated half-width.
    * The score is the weighted share of step-time in band: at each moment the worst channel counts,
      weighted by its role (operator 1, machine 0.25, as the process definition says), each step by
      the experts' median duration.
    """
    hz = profile.bin_hz
    judge = Judge.of(profile)
    major_ratio, major_share = judge.major_ratio, judge.major_share
    steps = list(steps) if steps is not None else session_steps(profile, sig)
    nsm = max(1, int(round(float(profile.params.get("smooth_s", 0.25)) * hz)))
    crossings, sizes = judge.due(sig, steps)
    deviations: list[Deviation] = []
    curves: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    timing = []
    step_quality: dict[str, float] = {}
    w_max = max((profile.weight(c) for c in profile.scored_channels), default=1.0) or 1.0
    grid = (np.arange(profile.n_points) + 0.5) / profile.n_points
    for st in steps:
        sp = profile.step(st.name)
        if sp is None or not sp.durations_s:
            continue
        dratio, ddir = judge.duration_ratio(st.name, st.duration_s, sp)
        lo_d, hi_d = min(sp.durations_s), max(sp.durations_s)
        what = f"{st.name} took {_took(st.duration_s, lo_d, hi_d)}"
        cue_note = ""
        end = judge.end_ratio(sig, st)
        if end is not None:  # a variable-length step: judged by when it ended after the experts' cue
            cue_note = _cue_words(profile, judge, st.name, end[2])
            if end[0] > dratio:
                dratio, ddir = end[0], end[1]
                what = f"{st.name} took {_took(st.duration_s, lo_d, hi_d)}: {cue_note}"
        share = judge.share_ratio(st.name, {x.name: x.duration_s for x in steps})
        if share is not None:  # a share of earlier steps' time (an over etch of the main-etch time)
            note = _share_words(judge, st.name, share[2])
            cue_note = f"{cue_note}; {note}" if cue_note else note
            if share[0] > dratio:
                dratio, ddir = share[0], share[1]
                what = f"{st.name} took {_took(st.duration_s, lo_d, hi_d)}: {note}"
        timing.append(
            {
                "step": st.name,
                "duration_s": round(st.duration_s, 3),
                "expert_min_s": lo_d,
                "expert_max_s": hi_d,
                "ratio": round(dratio, 2),
                "ok": bool(dratio <= 1.0),
                "method": st.method,
                "confidence": st.confidence,
                "end_cue": cue_note,
            }
        )
        if dratio > 1.0:
            sev = severity_of(dratio, major_ratio)
            deviations.append(
                Deviation(
                    st.name,
                    "",
                    st.start_us,
                    st.end_us,
                    ddir,
                    st.duration_s,
                    sp.duration_median_s,
                    abs(st.duration_s - sp.duration_median_s),
                    round(dratio, 2),
                    sev,
                    "duration",
                    what,
                )
            )
        n_bins = max(1, int(np.ceil(st.duration_s * hz)))
        worst = np.zeros(n_bins)
        for ch in profile.scored_channels:
            band = profile.bands.get((st.name, ch))
            if band is None or ch not in sig.channels:
                continue
            t, v = sig.channels[ch]
            b = bin_means(t, v, st.start_us, st.end_us, hz)
            if len(b) == 0:
                continue
            f = judge.factor(
                ch, st.start_us + (np.arange(len(b)) + 0.5) * 1e6 / hz, crossings, st.name, sizes
            )
            x = smooth(b, nsm)
            u = (np.arange(len(b)) + 0.5) / len(b)
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
            r = judge.ratio(st.name, ch, u, x, f)
            min_bins = max(2, int(round(min(min_duration_s, 0.5 * st.duration_s) * hz)))
            devs, out = _level_deviations(
                st, ch, x, med, lo, hi, r, min_bins, hz, profile, major_ratio, major_share
            )
            deviations += devs
            sd_band = profile.bands.get((st.name, ch + SD_SUFFIX))
            if sd_band is not None:
                us = unsteadiness(x, hz)
                lim = float(np.nanmax(sd_band.hi)) * float(np.nanmean(np.abs(f)))
                ud, uout = _unsteady_deviations(
                    st, ch, us, lim, float(np.nanmax(sd_band.median)), hz, profile, major_ratio, major_share
                )
                deviations += ud
                out = np.maximum(out, uout)
            w = profile.weight(ch) / w_max
            m = min(len(out), n_bins)
            worst[:m] = np.maximum(worst[:m], w * out[:m])
        q = 1.0 - float(np.mean(worst))
        q *= 1.0 - float(np.clip((dratio - 1.0) / (major_ratio - 1.0), 0.0, 1.0))
        step_quality[st.name] = q
    adjustments = check_adjustments(profile, sig, steps, crossings)
    for a in adjustments:
        if a.made:
            continue
        t, v = sig.channels[a.channel]
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
                major_ratio,
                "minor" if rule_unreliable(profile, a.channel) else "major",
                "missed_adjustment",
                f"missed adjustment: the experts change {a.rule}; this session changed {a.channel} by "
                f"{a.observed_change * 100:+.1f} %",
            )
        )
    deviations = _merge_across_steps(deviations, major_ratio)
    _adjustment_consequences(deviations, profile, crossings)
    _duration_consequences(deviations, steps, profile)
    deviations.sort(key=lambda d: d.start_us)
    total = sum(s.duration_median_s for s in profile.steps if s.durations_s) or 1.0
    score = (
        100.0
        * sum(s.duration_median_s * step_quality.get(s.name, 0.0) for s in profile.steps if s.durations_s)
        / total
    )
    return SkillScore(sig.session_id, profile_name, score, steps, deviations, adjustments, timing, curves)


def _span(lo: float, hi: float) -> str:
    """``"28.0–29.5 s"``, or ``"1.5 s"`` when the two agree to the digit shown."""
    return f"{lo:.1f} s" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}–{hi:.1f} s"


def _took(duration_s: float, lo: float, hi: float) -> str:
    """``"24.3 s, 3.7 s less than the shortest of the experts' (28.0–29.5 s)"``; inside their range
    ``"30.1 s (the experts 28.0–29.5 s)"``."""
    if duration_s < lo - 0.05:
        return f"{duration_s:.1f} s, {lo - duration_s:.1f} s less than the shortest of the experts' ({_span(lo, hi)})"
    if duration_s > hi + 0.05:
        return f"{duration_s:.1f} s, {duration_s - hi:.1f} s more than the longest of the experts' ({_span(lo, hi)})"
    return f"{duration_s:.1f} s (the experts {_span(lo, hi)})"


def _share_words(judge: Judge, step: str, share: float) -> str:
    """``"12 % of the time of main_etch and main_etch#2 before it; the experts 20 %"``."""
    e = (judge.durations.get("shares") or {}).get(step) or {}
    base = " and ".join(str(b) for b in e.get("base", []))
    shares = [float(x) * 100 for x in e.get("shares", [])] or [0.0]
    lo, hi = min(shares), max(shares)
    theirs = f"{lo:.0f} %" if f"{lo:.0f}" == f"{hi:.0f}" else f"{lo:.0f}–{hi:.0f} %"
    return f"{share * 100:.0f} % of the time of {base} before it; the experts {theirs}"


def _level_words(x: float) -> str:
    """``0.16``, ``4.2``, ``1086``: a cue's level with the digits a person reads, not the mined ones."""
    return f"{x:.2f}" if x < 1 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _cue_words(profile: SkillProfile, judge: Judge, step: str, lag_s: float) -> str:
    """``"it ended 10.6 s after endpoint signal fell by 0.16 …; the experts end it 0.5–1.0 s after"``;
    a step ended before the cue: ``"it ended 2.5 s before endpoint signal fell by 0.13 …, which the
    experts wait for: they end it 0.3–0.7 s after it"``."""
    e = judge.end_cue(step) or {}
    ch = str(e.get("channel", ""))
    meta = profile.channels.get(ch, {})
    unit = str(meta.get("unit") or "")
    cue = (
        f"{meta.get('display_name') or ch} {'rose' if e.get('direction', 1) > 0 else 'fell'} by "
        f"{_level_words(abs(float(e.get('level', 0.0))))} {unit}".rstrip()
        + " from where it was when the step began"
    )
    lags = [float(x) for x in e.get("lags_s", [])] or [0.0]
    if lag_s < 0:
        return (
            f"it ended {-lag_s:.1f} s before {cue}, which the experts wait for: they end it "
            f"{_span(min(lags), max(lags))} after it"
        )
    return f"it ended {lag_s:.1f} s after {cue}; the experts end it {_span(min(lags), max(lags))} after"


def _level_deviations(
    st: Step,
    ch: str,
    x: np.ndarray,
    med: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    r: np.ndarray,
    min_bins: int,
    hz: float,
    profile: SkillProfile,
    major_ratio: float,
    major_share: float,
) -> tuple[list[Deviation], np.ndarray]:
    """Deviations of one channel in one step from its signed ratio ``r`` (half-widths outside the
    envelope), and per bin how far out it is for the score (0 in band, 1 at ``major_ratio``)."""
    unit = profile.channels.get(ch, {}).get("unit", "")
    out = np.clip((np.abs(r) - 1.0) / (major_ratio - 1.0), 0.0, 1.0) * (np.abs(r) > 1.0)
    found = []
    n = len(r)
    for sign, word in ((1, "above"), (-1, "below")):
        rs = np.clip(sign * r, 0, None)
        if not (rs > 1.0).any():
            continue
        sustained = float(np.quantile(rs, 1.0 - major_share))
        if sustained >= major_ratio:
            sel = rs >= 1.0
            idx = np.flatnonzero(sel)
            spans = [(int(idx[0]), int(idx[-1]) + 1)]
            ratio, sev = sustained, severity_of(sustained, major_ratio)
        else:
            spans = [(a, z) for a, z in _runs(rs > 1.0, max_gap=2) if z - a >= min_bins]
            ratio, sev = 0.0, "minor"
        for a, z in spans:
            xs, ms = x[a:z], med[a:z]
            edge = hi[a:z] if sign > 0 else lo[a:z]
            d = Deviation(
                st.name,
                ch,
                int(st.start_us + a * 1e6 / hz),
                int(st.start_us + z * 1e6 / hz),
                word,
                float(np.nanmean(xs)),
                float(np.nanmean(ms)),
                float(np.nanmean(np.clip(sign * (xs - edge), 0, None))),
                round(ratio or float(np.quantile(rs[a:z], 0.5)), 2),
                sev,
                "band",
            )
            d.message = (
                f"{ch} {word} the experts' band in {st.name} for {d.duration_s:.1f} s: "
                f"{d.value:.1f} {unit} vs {d.expected:.1f} {unit} ({d.ratio:.1f} band half-widths)"
            )
            found.append(d)
    both = float(np.quantile(np.abs(r), 1.0 - major_share)) if n else 0.0
    if both >= major_ratio and not any(d.severity != "minor" for d in found):
        # out of the band on both sides by turns for the step's share: a swing, not a shift (the
        # calibration measured the experts' |distance| the same way)
        half = np.nanmean(np.maximum(hi - med, med - lo))
        d = Deviation(
            st.name,
            ch,
            st.start_us,
            int(st.start_us + n * 1e6 / hz),
            "unsteady",
            float(np.sqrt(np.nanmean((x - med) ** 2))),
            float(half),
            float(np.nanmean(np.clip(np.abs(r) - 1.0, 0, None))),
            round(both, 2),
            severity_of(both, major_ratio),
            "unsteady",
        )
        d.message = (
            f"{ch} swings out of the experts' band on both sides in {st.name}: ±{d.value:.2f} {unit} around "
            f"their median (band ±{half:.2f} {unit})"
        )
        found.append(d)
    return found, out[:n]


def _unsteady_deviations(
    st: Step,
    ch: str,
    us: np.ndarray,
    lim: float,
    typical: float,
    hz: float,
    profile: SkillProfile,
    major_ratio: float,
    major_share: float,
) -> tuple[list[Deviation], np.ndarray]:
    """Wobble above the experts' limit for at least 1 s (major when ≥ ``major_ratio`` × the limit for
    ``major_share`` of the step)."""
    rel = np.nan_to_num(us / max(lim, 1e-12))
    out = np.clip((rel - 1.0) / (major_ratio - 1.0), 0.0, 1.0) * (rel > 1.0)
    unit = profile.channels.get(ch, {}).get("unit", "")
    found = []
    sustained = float(np.quantile(rel, 1.0 - major_share)) if len(rel) else 0.0
    for a, z in _runs(rel > 1.0, max_gap=2):
        if z - a < int(round(hz)):
            continue
        sev = severity_of(sustained, major_ratio) if sustained >= major_ratio else "minor"
        d = Deviation(
            st.name,
            ch,
            int(st.start_us + a * 1e6 / hz),
            int(st.start_us + z * 1e6 / hz),
            "unsteady",
            float(np.nanmax(us[a:z])),
            typical,
            float(np.nanmax(us[a:z]) - lim),
            round(max(sustained, float(np.median(rel[a:z]))), 2),
            sev,
            "unsteady",
        )
        d.message = (
            f"{ch} unsteady in {st.name} for {d.duration_s:.1f} s: it swings by ±{d.value:.2f} {unit} "
            f"around its own course (experts ±{typical:.2f} {unit})"
        )
        found.append(d)
    return found, out


def _adjustment_consequences(
    devs: list[Deviation], profile: SkillProfile, crossings: Mapping[int, int]
) -> None:
    """The experts' reaction to a changed condition is theirs, not a second finding: where this session
    crossed an adjustment's trigger and a channel the experts adjust (or that moves with it) leaves
    the band, in the adjustment's direction, only from the adjustment on (its size differs from the
    experts'), while another operator channel was already found off earlier in the same step (the
    condition the engineer reacted to was not the experts'), the adjustment's finding is kept as a
    minor one naming the finding it follows from; so is a missed adjustment there (the trigger came
    at another time than the experts'; a session that made the change without crossing the trigger
    has its change stand in for the crossing). An adjustment out of proportion to an ordinary
    condition, or one missed under it (no earlier finding), stays major."""
    rank = {"minor": 0, "major": 1, "critical": 2}

    def advice(c: str) -> bool:
        return bool(profile.channels.get(c, {}).get("advice", True))

    for i, r in enumerate(profile.adjustments):
        if i not in crossings:
            continue
        at = crossings[i] + r.delay_s * 1e6
        moved = {r.channel: r.change_rel, **r.also}
        for d in devs:
            change = moved.get(d.channel)
            if rank[d.severity] < 1 or change is None or not change:
                continue
            if d.kind == "missed_adjustment":  # the trigger came at another time, or not as theirs
                if d.channel != r.channel:
                    continue
            elif (
                d.kind != "band"
                or d.direction != ("above" if change > 0 else "below")
                or d.start_us < at - 1e6
            ):
                continue
            cause = next(
                (
                    o
                    for o in sorted(devs, key=lambda o: o.start_us)
                    if o.kind == "band"
                    and rank[o.severity] >= 1
                    and o.step == d.step
                    and o.channel not in moved
                    and advice(o.channel)
                    and o.start_us < at
                ),
                None,
            )
            if cause is None:
                continue
            d.severity = "minor"
            d.message += (
                f" (the experts' adjustment of {r.channel}, made at another condition: "
                f"{cause.channel} was {cause.direction} the experts' band from earlier in this step)"
            )


def _duration_consequences(devs: list[Deviation], steps: Sequence[Step], profile: SkillProfile) -> None:
    """A step-duration finding is counted once: a step that runs longer (shorter) after a step
    that ran longer (shorter), or whose own set points were already found off in it or an earlier
    occurrence of it (its timing follows from them, e.g. an endpoint reached later at another
    pressure), keeps its duration finding as a minor one, naming the finding it follows from."""
    rank = {"minor": 0, "major": 1, "critical": 2}
    dur = {d.step: d for d in devs if d.kind == "duration" and rank[d.severity] >= 1}
    order = [st.name for st in steps]
    level: dict[str, Deviation] = {}  # per step: an operator finding in it or an earlier occurrence
    for d in sorted(devs, key=lambda x: x.start_us):
        if (
            d.kind == "band"
            and rank[d.severity] >= 1
            and profile.channels.get(d.channel, {}).get("advice", True)
        ):
            k = order.index(d.step) if d.step in order else len(order)
            for later in order[k:]:
                if later.split("#")[0] == d.step.split("#")[0]:
                    level.setdefault(later, d)
    for name, d in dur.items():
        k = order.index(name) if name in order else -1
        # any earlier step that ran the same way (a step's length may follow from several before it,
        # e.g. an over etch set as a share of all main-etch time): the first one is the cause
        prev = next(
            (dur[o] for o in order[: max(k, 0)] if o in dur and dur[o].direction == d.direction), None
        )
        if prev is not None:
            cause = f"{prev.step} ran {prev.direction}"
        elif name in level:
            cause = (
                f"{level[name].channel} was {level[name].direction} the experts' band in {level[name].step}"
            )
        else:
            continue
        d.severity = "minor"
        d.message += f" (follows from: {cause})"


def _merge_across_steps(devs: list[Deviation], major_ratio: float = 1.5) -> list[Deviation]:
    """A minor stretch that runs on over a step boundary is one deviation, reported where it began."""
    devs = sorted(devs, key=lambda d: (d.channel, d.direction, d.start_us))
    out: list[Deviation] = []
    for d in devs:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.kind == d.kind == "band"
            and prev.severity == d.severity == "minor"
            and prev.channel == d.channel
            and prev.direction == d.direction
            and prev.step != d.step
            and d.start_us - prev.end_us <= 0.15e6
        ):
            prev.end_us = max(prev.end_us, d.end_us)
            continue
        out.append(d)
    return out


def relate_outcomes(
    scored: Sequence[tuple[SkillScore, SessionSignals]], *, min_severity: str = "major"
) -> list[dict[str, Any]]:
    """Which deviations preceded NG judgments: for each (step, channel, direction) seen in the scored
    sessions, how many NG judgments of that step (per defect) came after it, out of all NG of that defect.

    Returns rows sorted by how often the deviation preceded a defect, e.g.
    ``{"step": "step_3", "channel": "speed_mm_s", "direction": "above", "deviation": "speed_mm_s above
    band in step_3", "defect": "undercut", "preceded": 1, "defects": 1, "sessions_with_deviation": 1,
    "text": "… preceded 1 of 1 undercut defects"}`` (``text`` uses the recording's raw keys; the
    coaching report words a row with the process definition's names: ``outcome_words``).
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
                        "step": step,
                        "channel": ch,
                        "direction": direction,
                        "deviation": what,
                        "defect": defect,
                        "preceded": hit,
                        "defects": len(where),
                        "sessions_with_deviation": len(sessions),
                        "text": f"{what} preceded {hit} of {len(where)} {defect} defect(s)",
                    }
                )
    return sorted(rows, key=lambda r: (-r["preceded"] / r["defects"], r["deviation"]))
