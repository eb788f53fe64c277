"""When an expert's adjustment is due in a session, and what it does to a channel's expected level.

A skill profile's :class:`~jangin.core.skill.AdjustmentRule` says the experts change a channel (an RF
set point up by ~7 %) a usual delay after a trigger crosses a level. Scoring (``jangin.inference``)
moves the experts' band by that change from the moment it is due; a session that made the change
itself, inside the prediction interval of the experts' change, has it taken out at its own time and
size. The leave-one-out calibration of the band's half-width (``jangin.training``) must see each
expert exactly as scoring will, or the half-width covers a difference scoring never leaves (an expert's
own +12 % nudge judged against the usual +7 % at the usual delay widened one channel's band 2.2-fold
and hid a planted ±12 % shift). So both stages use these functions.

Only numpy (and :mod:`jangin.core.skill`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from jangin.core.skill import AdjustmentRule, SessionSignals, Step, bin_means, smooth
from jangin.core.skill_stats import range_prediction_half

__all__ = [
    "adjustment_factor",
    "first_crossing",
    "largest_change",
    "own_change_at",
    "rule_crossing",
    "rules_due",
]


def first_crossing(
    t: npt.NDArray[Any], v: npt.NDArray[Any], level: float, direction: int, hz: float, *, last: bool = False
) -> int | None:
    """First (``last``: last) time (µs) the 0.25 s-smoothed channel crosses ``level`` in ``direction``."""
    if len(t) < 2:
        return None
    t0 = int(t[0])
    b = smooth(bin_means(t, v, t0, int(t[-1]) + 1, hz), max(1, int(0.25 * hz)))
    above = (b - level) * direction > 0
    idx = np.flatnonzero(~above[:-1] & above[1:])
    return None if len(idx) == 0 else int(t0 + (idx[-1 if last else 0] + 1) * 1e6 / hz)


def rule_crossing(
    rule: AdjustmentRule,
    sig: SessionSignals,
    steps: Sequence[Step],
    hz: float,
    before_us: float | None = None,
) -> int | None:
    """When this session's trigger of ``rule`` crossed: the first crossing inside the steps the experts
    made the adjustment in (from 2 s before each such step starts), anywhere for a rule without steps;
    with ``before_us``, the last crossing before then (the one a change made then answered, as the
    rule's delay was mined)."""
    if rule.trigger_channel not in sig.channels:
        return None
    t, v = sig.channels[rule.trigger_channel]
    spans: list[tuple[float, float]] = [
        (st.start_us - 2e6, float(st.end_us)) for st in steps if st.name in rule.steps
    ]
    if not rule.steps:
        spans = [(float(t[0]), float(t[-1]) + 1)] if len(t) else []
    found = None
    for a, b in spans:
        if before_us is not None:
            if a >= before_us:
                break
            b = min(b, float(before_us))
        m = (t >= a) & (t < b)
        if m.sum() <= 2:
            continue
        tc = first_crossing(t[m], v[m], rule.trigger_value, rule.direction, hz, last=before_us is not None)
        if tc is not None and before_us is None:
            return tc
        found = tc if tc is not None else found
    return found


def largest_change(
    rule: AdjustmentRule, sig: SessionSignals, steps: Sequence[Step], hz: float
) -> tuple[float, int] | None:
    """The largest change of ``rule``'s channel in its direction inside its steps (median of 1 s before
    vs 0.6-1.6 s after, as the rule was mined): (size in the rule's direction, µs), or None."""
    if rule.channel not in sig.channels or not rule.change_rel:
        return None
    t, v = sig.channels[rule.channel]
    c = rule.change_rel
    best: tuple[float, int] | None = None
    for st in steps:
        if rule.steps and st.name not in rule.steps:
            continue
        b = bin_means(t, v, st.start_us, st.end_us, hz)
        k0, k1, k2 = int(hz), int(0.6 * hz), int(1.6 * hz)
        n = len(b) - k2 - k0  # candidate moments k = k0 … len(b) - k2 - 1
        if n <= 0 or k2 <= k1 or k0 < 1:
            continue
        with warnings.catch_warnings():  # a window of gaps only: no change there
            warnings.simplefilter("ignore", RuntimeWarning)
            before = np.nanmedian(sliding_window_view(b, k0)[:n], axis=1)
            after = np.nanmedian(sliding_window_view(b, k2 - k1)[k0 + k1 : k0 + k1 + n], axis=1)
            ch = np.where(np.abs(before) > 1e-9, after / np.where(before == 0, 1.0, before) - 1, 0.0)
        ch = np.where(np.isfinite(ch), ch * float(np.sign(c)), -np.inf)
        j = int(np.argmax(ch))  # the first of equals, as a scan keeping only a larger one
        if np.isfinite(ch[j]) and (best is None or ch[j] > best[0]):
            best = (float(ch[j]), int(st.start_us + (k0 + j) * 1e6 / hz))
    return best


def own_change_at(
    rule: AdjustmentRule, best: tuple[float, int] | None, rate: float, *, any_size: bool = False
) -> int | None:
    """When (µs) the session made ``rule``'s change of its own accord, given its :func:`largest_change`
    ``best``: if that change lies in the prediction interval (false-alarm ``rate``) of the experts'
    change from their range; ``any_size``: any change at least half the experts' usual one."""
    c = rule.change_rel
    half = range_prediction_half(rule.change_rel_min, rule.change_rel_max, rule.support, rate)
    if best is None or best[0] < 0.5 * abs(c):
        return None
    if not any_size and not (max(0.5 * abs(c), abs(c) - half) <= best[0] <= abs(c) + half):
        return None
    return best[1]


def rules_due(
    rules: Sequence[AdjustmentRule], sig: SessionSignals, steps: Sequence[Step], hz: float, rate: float
) -> tuple[dict[int, int], dict[int, float]]:
    """(crossings, sizes) of a session: rule index → when (µs) its change was due less the usual
    delay (the trigger's crossing, or the session's own change inside the experts' range wherever it
    is made, or one of any size at least half theirs where the trigger never crossed), and rule index →
    the relative change the session made of its own accord inside the experts' range (taken out at
    that size by :func:`adjustment_factor`)."""
    out: dict[int, int] = {}
    sizes: dict[int, float] = {}
    for i, r in enumerate(rules):
        tc = rule_crossing(r, sig, steps, hz)
        if tc is not None:
            out[i] = tc
        largest = largest_change(r, sig, steps, hz)  # scanned once, judged one or two ways
        own = own_change_at(r, largest, rate)
        if own is not None and largest is not None:
            sizes[i] = float(largest[0]) * float(np.sign(r.change_rel))
        if own is None:  # a change of another size: at its own time where the trigger never crossed,
            # or where it came by the deadline of the last crossing before it (its size is judged as a
            # level); the change is measured from the second before ``any_size`` to 1.6 s after it
            any_size = own_change_at(r, largest, rate, any_size=True)
            if any_size is not None and tc is not None:
                last = rule_crossing(r, sig, steps, hz, before_us=any_size + 1.6e6)
                if last is None or any_size > last + r.delay_max_s * 1e6:
                    any_size = None
            own = any_size
        if own is not None:
            out[i] = int(own - r.delay_s * 1e6)
    return out, sizes


def adjustment_factor(
    rules: Sequence[AdjustmentRule],
    channel: str,
    t_us: npt.NDArray[Any],
    crossings: Mapping[int, int],
    step: str = "",
    sizes: Mapping[int, float] | None = None,
) -> npt.NDArray[Any]:
    """The factor the experts' adjustments would have applied to ``channel`` by the times ``t_us``
    (due ``delay_s`` after ``crossings``, rule index → µs, over 0.5 s) in ``step`` (none where the
    change lapses); a change in ``sizes`` at the session's own size (the channels that move with it in
    proportion), not the experts' usual one."""
    t = np.atleast_1d(np.asarray(t_us, float))
    f: npt.NDArray[Any] = np.ones(len(t))
    for i, r in enumerate(rules):
        change = r.change_rel if r.channel == channel else r.also.get(channel)
        if change is None or i not in crossings or step in r.lapses:
            continue
        if sizes and i in sizes and r.change_rel:
            change = change * sizes[i] / r.change_rel
        start = crossings[i] + r.delay_s * 1e6
        f = f * (1 + change * np.clip((t - start) / 0.5e6, 0, 1))
    return f
