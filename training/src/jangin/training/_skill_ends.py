"""When the experts end a step: the cue a variable-length step's end follows.

Some steps have no fixed length: a main etch runs until the optical endpoint, a fill runs until the
level is reached. The experts' durations of such a step then vary with the work piece, and judging
the duration alone either flags experts or lets a late call pass (an endpoint called 10 s late sits
inside a spread of ±3 s of film thickness). What the experts keep constant is the *lag* between the
cue and the step's end. For each step whose durations vary by more than the marking precision, this
module looks for a channel and level whose crossing the experts all end the step shortly after, with
a lag that varies much less than the durations do; scoring then judges the session's lag after the
same cue (a session that never reached the cue before ending the step ended early).

The lag's half-width is calibrated leave-one-out like every other threshold of the profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jangin.core.skill import SessionSignals, Step, end_trace, step_end_lag
from jangin.core.skill_stats import t_quantile

__all__ = ["end_calibration", "mine_step_ends"]

#: levels tried per channel (quantiles of the experts' values in the step; the outer ones reach into
#: a steep change at the step's end, where a crossing's timing is least sensitive to the level)
_QUANTILES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
#: the two-sided tail of the level shift a new session may show (see :func:`_level_slack`)
_SHIFT_RATE = 0.05
#: a cue must explain the durations: its lag varies at most this share of the durations' spread
_EXPLAINS = 0.5


def _level_slack(
    traces: Sequence[np.ndarray], pairs: Sequence[tuple[SessionSignals, Step]], hz: float
) -> float:
    """How far a new session's trace may sit from the experts' at the same moment: the prediction
    half-width (t with n - 1 degrees of freedom, × √(1 + 1/n)) of the experts' in-step medians, plus
    the smoothed trace's bin-to-bin noise. A cue whose crossing moves by more than the lag tolerance
    when its level moves by this much says nothing reliable about when a new session ended."""
    meds, noise = [], []
    for b, (_, st) in zip(traces, pairs, strict=True):
        x = b[: int(st.duration_s * hz)]
        x = x[np.isfinite(x)]
        if len(x) > 3:
            meds.append(float(np.median(x)))
            noise.append(float(np.std(np.diff(x))) / np.sqrt(2))
    n = len(meds)
    if n < 2:
        return float("inf")
    spread = float(np.std(meds, ddof=1)) * t_quantile(1 - _SHIFT_RATE / 2, n - 1) * np.sqrt(1 + 1 / n)
    return spread + 3 * float(np.median(noise))


def _best_cue(
    pairs: Sequence[tuple[SessionSignals, Step]],
    channels: Sequence[str],
    hz: float,
    floor_s: float,
    traces_of: dict[tuple[int, str], np.ndarray] | None = None,
) -> tuple[float, str, float, int, list[float]] | None:
    """(lag σ, channel, level, direction, lags) of the cue whose lag varies least, if one explains
    the durations (``None`` for a fixed-length step or when none does). ``traces_of``: the end traces
    already computed (keyed by the pair's session object and channel; filled as it goes)."""
    cache: dict[tuple[int, str], np.ndarray] = {} if traces_of is None else traces_of
    durs = np.array([st.duration_s for _, st in pairs])
    spread = float(np.std(durs, ddof=1))
    if spread < 2 * floor_s:  # a fixed-length step: nothing to explain
        return None
    best: tuple[float, str, float, int, list[float]] | None = None
    tol = _EXPLAINS * spread  # the lag error a cue may make and still explain the durations
    for c in channels:
        if not all(c in s.channels and len(s.channels[c][0]) for s, _ in pairs):
            continue
        traces = []
        for s, st in pairs:
            if (id(s), c) not in cache:
                cache[(id(s), c)] = end_trace(s, c, st, hz)
            traces.append(cache[(id(s), c)])
        inside = np.concatenate(
            [b[: int(st.duration_s * hz)] for b, (_, st) in zip(traces, pairs, strict=True)]
        )
        inside = inside[np.isfinite(inside)]
        if len(inside) < 10 or np.ptp(inside) == 0:
            continue
        slack = _level_slack(traces, pairs, hz)
        for q in _QUANTILES:
            level = float(np.quantile(inside, q))
            for direction in (1, -1):
                lags = [
                    step_end_lag(b, st, level, direction, hz)
                    for b, (_, st) in zip(traces, pairs, strict=True)
                ]
                arr = np.asarray(lags)
                if arr.min() < 0.5 / hz or arr.max() > 0.5 * float(np.median(durs)):
                    continue  # a cue all experts see inside the step, before they end it
                sd = float(np.std(arr, ddof=1))
                if sd > tol or (best is not None and sd >= best[0]):
                    continue
                if not _robust(traces, pairs, level, direction, arr, slack, tol, hz):
                    continue  # the timing hangs on the exact level (a plateau's edge, a slow drift)
                best = (sd, c, level, direction, [round(x, 3) for x in lags])
    return best


def _robust(
    traces: Sequence[np.ndarray],
    pairs: Sequence[tuple[SessionSignals, Step]],
    level: float,
    direction: int,
    lags: np.ndarray,
    slack: float,
    tol: float,
    hz: float,
) -> bool:
    """Whether every expert's lag stays within ``tol`` seconds when the level moves by ``± slack``
    (the cue's timing is consistent for a session whose trace sits a little higher or lower)."""
    if not np.isfinite(slack):
        return False
    for shift in (-slack, slack):
        moved = [
            step_end_lag(b, st, level + shift, direction, hz)
            for b, (_, st) in zip(traces, pairs, strict=True)
        ]
        if float(np.max(np.abs(np.asarray(moved) - lags))) > tol:
            return False
    return True


def mine_step_ends(
    sigs: Sequence[SessionSignals],
    steps: dict[str, list[Step]],
    order: Sequence[str],
    channels: Sequence[str],
    hz: float,
    floor_s: float,
) -> dict[str, dict[str, Any]]:
    """Per variable-length step, the cue the experts end it after:
    ``{step: {"channel", "level", "direction", "lags_s", "loo_z"}}`` (only steps where one is found).

    Each expert's lag is judged with the cue mined from the *other* experts (``loo_z``, in σ of their
    lags): the cue is chosen among many channels and levels, so judging an expert by a cue chosen
    with it would flatter the spread. A cue is kept only when it holds out of sample: every
    left-out expert's cue is found, and its largest lag error (seconds) is under half the largest
    leave-one-out error of the duration itself (else the duration alone judges the step).
    """
    out: dict[str, dict[str, Any]] = {}
    for name in order:
        per = [(s, next((x for x in steps[s.session_id] if x.name == name), None)) for s in sigs]
        pairs = [(s, st) for s, st in per if st is not None]
        if len(pairs) < 3:
            continue
        traces_of: dict[tuple[int, str], np.ndarray] = {}  # one step: a session's trace per channel
        best = _best_cue(pairs, channels, hz, floor_s, traces_of)
        if best is None:
            continue
        _, c, level, direction, lags = best
        durs = np.array([st.duration_s for _, st in pairs])
        dur_err = max(abs(durs[i] - float(np.median(np.delete(durs, i)))) for i in range(len(durs)))
        loo_z, lag_err = [], []
        for i, (s, st) in enumerate(pairs):
            cue = _best_cue([p for j, p in enumerate(pairs) if j != i], channels, hz, floor_s, traces_of)
            if cue is None:
                break
            sd_i, c_i, level_i, dir_i, lags_i = cue
            lag = step_end_lag(end_trace(s, c_i, st, hz), st, level_i, dir_i, hz)
            err = abs(lag - float(np.median(lags_i)))
            lag_err.append(err)
            loo_z.append(round(err / max(sd_i, floor_s), 3))
        if len(lag_err) < len(pairs) or max(lag_err) >= _EXPLAINS * dur_err:
            continue  # the cue does not hold for an expert it was not chosen on
        out[name] = {
            "channel": c,
            "level": round(level, 6),
            "direction": direction,
            "lags_s": lags,
            "loo_z": loo_z,
        }
    return out


def end_calibration(
    ends: dict[str, dict[str, Any]], floor_s: float, major_ratio: float, margin: float
) -> float:
    """Per step, the lag half-width (in σ of the experts' lags) that keeps every leave-one-out expert
    below major, times ``margin`` (at least 2 σ), stored as the step's ``half_sigma``; returns the
    largest (for the manifest)."""
    halves = []
    for e in ends.values():
        lags = np.asarray(e["lags_s"], float)
        e["lag_median_s"] = round(float(np.median(lags)), 3)
        e["lag_sigma_s"] = round(max(float(np.std(lags, ddof=1)), floor_s), 3)
        worst = max((float(z) for z in e.get("loo_z") or []), default=0.0)
        e["half_sigma"] = round(max(2.0, worst / major_ratio) * margin, 3)
        halves.append(e["half_sigma"])
    return max(halves, default=round(2.0 * margin, 3))
