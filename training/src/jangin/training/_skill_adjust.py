"""The experts' adjustments: mined from their ``adjustment`` events, explained by a trigger in the
signals (the channel and level whose crossing precedes them by the most consistent delay), limited to
the steps they were made in, and checked on the experts themselves (a rule they would miss is marked
unreliable: missing it is never a major finding)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from jangin.core.skill import AdjustmentRule, SessionSignals, bin_means, smooth, steps_from_events
from jangin.core.skill_stats import prediction_bound, t_quantile

__all__ = ["check_rules", "compensation", "mine_adjustments"]

log = logging.getLogger(__name__)

_PCT = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*%\s*$")


def _level(sig: SessionSignals, ch: str, t0: float, t1: float, hz: float) -> float:
    t, v = sig.channels.get(ch, (np.zeros(0, np.int64), np.zeros(0)))
    m = (t >= t0) & (t < t1)
    return float(np.nanmedian(v[m])) if m.any() else float("nan")


def _sample_noise(sig: SessionSignals, ch: str, t0: float, t1: float) -> float:
    """The channel's sample-to-sample noise between ``t0`` and ``t1`` (µs): MAD of the first
    differences / √2 (a ramp's slope is taken out by the median)."""
    t, v = sig.channels.get(ch, (np.zeros(0, np.int64), np.zeros(0)))
    d = np.diff(v[(t >= t0) & (t < t1)])
    d = d[np.isfinite(d)]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2)) if len(d) > 3 else 0.0


#: a trigger channel must move by this many of its sample-noise σ between 5 s before an adjustment
#: and the moment of it (the two medians differ by about 0.8 σ from noise alone): a level a channel
#: only crosses by its noise (a clamp voltage at its set value) times nothing
TRIGGER_MIN_RISE = 4.0


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
    sigs: Sequence[SessionSignals], channels: Sequence[str], bin_hz: float, rate: float = 0.05
) -> tuple[list[AdjustmentRule], dict[str, list[tuple[float, dict[str, float]]]]]:
    """Adjustments from the experts' ``adjustment`` events, measured and explained by the signals.

    For each adjusted channel: the relative change across the event (median of 1 s before vs. 0.6–1.6 s
    after), the channels that move with it, and the trigger: the other channel and level whose crossing
    precedes the events by the most consistent delay (e.g. plate temperature passing 180 °C). The
    change is due by the upper prediction bound of the experts' delays at the false-alarm ``rate``
    (a few experts' latest delay is not the next one's), plus the time the change takes.

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
        trig = _find_trigger(occ, [c for c in channels if c != ch and c not in also], bin_hz, rate)
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
                steps=sorted({_step_at(sig, ts) for sig, ts in occ} - {""}),
                lapses=_lapses(occ, ch, bin_hz),
            )
        )
    return rules, applied


def _lapses(occ: Sequence[tuple[SessionSignals, float]], ch: str, hz: float) -> list[str]:
    """The later steps (keys) in which the experts' level of ``ch`` keeps its relation to the level
    before their change rather than after it: a set point back at the recipe's value when the step
    changes. Per step after the change, across the experts (at least 3), the spread of the log level
    relative to the level before the change is compared with that relative to the level after it;
    the change lapses where the first is under half the second (a tie keeps it: a change the same
    for every expert cannot tell, and keeping it is what scoring did before)."""
    rel: dict[str, list[tuple[float, float]]] = {}
    for sig, ts in occ:
        before = _level(sig, ch, ts - 1.0e6, ts - 0.05e6, hz)
        after = _level(sig, ch, ts + 0.6e6, ts + 1.6e6, hz)
        for st in steps_from_events(sig.events):
            if st.start_us <= ts:
                continue
            lv = _level(sig, ch, st.start_us, st.end_us, hz)
            if min(before, after, lv) > 0:
                rel.setdefault(st.name, []).append((np.log(lv / before), np.log(lv / after)))
    out = []
    for name, pairs in rel.items():
        a = np.asarray(pairs)
        if len(a) >= 3 and float(np.std(a[:, 0])) < 0.5 * float(np.std(a[:, 1])):
            out.append(name)
    return sorted(out)


def _first_crossing_in(sig: SessionSignals, rule: AdjustmentRule, hz: float) -> float | None:
    """When the session's trigger of ``rule`` first crossed inside the rule's steps (µs)."""
    t, v = sig.channels.get(rule.trigger_channel, (np.zeros(0, np.int64), np.zeros(0)))
    spans = [(s.start_us - 2e6, s.end_us) for s in steps_from_events(sig.events) if s.name in rule.steps]
    for a, b in spans or [(float(t[0]), float(t[-1]) + 1)] if len(t) else []:
        m = (t >= a) & (t < b)
        if m.sum() < 3:
            continue
        bb = smooth(bin_means(t[m], v[m], int(t[m][0]), int(t[m][-1]) + 1, hz), max(1, int(0.25 * hz)))
        above = (bb - rule.trigger_value) * rule.direction > 0
        idx = np.flatnonzero(~above[:-1] & above[1:])
        if len(idx):
            return float(t[m][0] + (idx[0] + 1) * 1e6 / hz)
    return None


def check_rules(
    rules: list[AdjustmentRule], sigs: Sequence[SessionSignals], hz: float, rate: float = 0.05
) -> None:
    """Mark a rule as unreliable (missing it is then a minor finding, never a major one) when its
    trigger does not say when the experts adjust: an expert would be flagged for missing it, or the
    crossing's timing hangs on the exact trigger level (moving the level by the experts' spread of
    the trigger channel, as a prediction half-width at ``rate``, moves an expert's crossing by more
    than the slack the rule's deadline leaves: a slow drift standing in for the real cue)."""
    for r in rules:
        misses, fragile = 0, 0
        slack = _trigger_slack(r, sigs, rate)
        tol = max(r.delay_max_s - r.delay_s, 0.5) * 1e6
        for s in sigs:
            tc = _first_crossing_in(s, r, hz)
            if tc is None or r.channel not in s.channels:
                continue
            if not r.made(*s.channels[r.channel], tc)[0]:
                misses += 1
            for d in (-slack, slack):
                moved = _first_crossing_in(s, replace(r, trigger_value=r.trigger_value + d), hz)
                if moved is None or abs(moved - tc) > tol:
                    fragile += 1
                    break
        if misses or fragile:
            why = f"{misses} of {len(sigs)} experts would miss it" if misses else ""
            why += ("; " if why else "") + (f"its timing hangs on the level for {fragile}" if fragile else "")
            r.source = f"unreliable: {why}"
            log.info("adjustment rule on %s: %s", r.channel, r.source)


def _trigger_slack(r: AdjustmentRule, sigs: Sequence[SessionSignals], rate: float) -> float:
    """Prediction half-width (t, n - 1 degrees of freedom, × √(1 + 1/n)) of the experts' trigger
    channel level at their adjustments of the rule's channel."""
    at = []
    for s in sigs:
        for e in s.events:
            if e.get("kind") == "adjustment" and e.get("name") == r.channel:
                at.append(_level(s, r.trigger_channel, float(e["ts"]) - 0.25e6, float(e["ts"]), 0.0))
    at = [x for x in at if np.isfinite(x)]
    if len(at) < 3:
        return 0.0
    return float(np.std(at, ddof=1) * t_quantile(1 - rate / 2, len(at) - 1) * np.sqrt(1 + 1 / len(at)))


def _step_at(sig: SessionSignals, ts: float) -> str:
    """The step (key) a moment of a session falls in ('' outside every step)."""
    return next((s.name for s in steps_from_events(sig.events) if s.start_us <= ts < s.end_us), "")


def _nice(x: float) -> float:
    """Round a level to two significant digits (180.3 → 180)."""
    if x == 0:
        return 0.0
    mag = 10 ** (np.floor(np.log10(abs(x))) - 1)
    return float(np.round(x / mag) * mag)


def _find_trigger(
    occ: Sequence[tuple[SessionSignals, float]], candidates: Sequence[str], hz: float, rate: float = 0.05
) -> tuple[str, float, int, list[float], list[float]] | None:
    best: tuple[float, tuple[str, float, int, list[float], list[float]]] | None = None
    for c in candidates:
        at = np.array([_level(s, c, ts - 0.25e6, ts, hz) for s, ts in occ])
        pre = np.array([_level(s, c, ts - 5e6, ts - 4e6, hz) for s, ts in occ])
        if not (np.all(np.isfinite(at)) and np.all(np.isfinite(pre))):
            continue
        direction = 1 if np.median(at - pre) > 0 else -1
        noise = np.array([_sample_noise(s, c, ts - 5e6, ts) for s, ts in occ])
        if np.min(np.abs(at - pre) - TRIGGER_MIN_RISE * noise) <= 1e-6:
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
                # the change is complete ~0.6–0.8 s after the marker
                done = [d + 0.8 for d in delays] + [prediction_bound(delays, rate) + 0.8]
                best = (spread, (c, level, direction, delays, done))
    return None if best is None else best[1]


def compensation(
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
