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

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from jangin.core.skill import SessionSignals, Step, end_trace, step_end_lag
from jangin.core.skill_stats import t_quantile

__all__ = ["end_calibration", "mine_step_ends", "mine_step_shares"]

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
    spread: float | None = None,
    slack_of: dict[str, float] | None = None,
) -> tuple[float, str, float, int, list[float]] | None:
    """(lag σ, channel, level, direction, lags) of the cue whose lag varies least, if one explains
    the durations (``None`` for a fixed-length step or when none does). ``traces_of``: the end traces
    already computed (keyed by the pair's session object and channel; filled as it goes).
    ``spread`` and ``slack_of`` (per channel, how far a new session's trace may sit: see
    :func:`_level_slack`): default from ``pairs``; the leave-one-out search passes the whole set's.
    Whether a step's length varies and how far a run's trace may sit are properties of the step
    decided on all the experts; estimated from the n - 1 left (two of three experts whose durations
    happen to agree, a t quantile with one degree of freedom) they would drop every cue of a profile
    from three experts, and the step would be judged by its duration alone."""
    cache: dict[tuple[int, str], np.ndarray] = {} if traces_of is None else traces_of
    durs = np.array([st.duration_s for _, st in pairs])
    if spread is None:
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
        slack = slack_of[c] if slack_of is not None and c in slack_of else _level_slack(traces, pairs, hz)
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
        spread = float(np.std(durs, ddof=1))
        slack_of = {
            c: _level_slack([traces_of[(id(s), c)] for s, _ in pairs], pairs, hz)
            for c in channels
            if all((id(s), c) in traces_of for s, _ in pairs)
        }
        dur_err = max(abs(durs[i] - float(np.median(np.delete(durs, i)))) for i in range(len(durs)))
        loo_z, lag_err = [], []
        for i, (s, st) in enumerate(pairs):
            rest = [p for j, p in enumerate(pairs) if j != i]
            cue = _best_cue(rest, channels, hz, floor_s, traces_of, spread, slack_of)
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


def _share_bases(order: Sequence[str], k: int) -> list[tuple[str, ...]]:
    """The earlier-step groups a step's length may be a share of: each earlier step, all earlier
    occurrences of one step name (a main etch run twice), and all the steps before it."""
    before = list(order[:k])
    out: list[tuple[str, ...]] = [(o,) for o in before]
    for base in dict.fromkeys(o.split("#")[0] for o in before):
        group = tuple(o for o in before if o.split("#")[0] == base)
        if len(group) > 1:
            out.append(group)
    if len(before) > 1:
        out.append(tuple(before))
    return list(dict.fromkeys(out))


def _best_share(
    rows: Sequence[dict[str, float]], name: str, bases: Sequence[tuple[str, ...]], spread: float
) -> tuple[float, tuple[str, ...], list[float]] | None:
    """(σ of the log share, base, log shares) of the base whose share of ``name``'s duration varies
    least, if it explains the log durations' ``spread`` (varies at most half as much)."""
    y = np.log([r[name] for r in rows])
    best: tuple[float, tuple[str, ...], list[float]] | None = None
    for base in bases:
        x = np.log([sum(r[o] for o in base) for r in rows])
        lr = y - x
        sd = float(np.std(lr, ddof=1))
        if sd <= _EXPLAINS * spread and (best is None or sd < best[0]):
            best = (sd, base, [round(float(v), 5) for v in lr])
    return best


def mine_step_shares(
    durations: Sequence[dict[str, float]],
    order: Sequence[str],
    floor_s: float,
    major_ratio: float,
    margin: float,
    skip: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """Per variable-length step whose length the experts set as a share of earlier steps' time (an
    over etch the tool runs for 20 % of the main-etch time): ``{step: {"base": [steps],
    "log_share_median", "sigma", "half_sigma", "shares", "loo_z"}}``.

    ``durations``: per expert session, step → seconds. Chosen like an end cue: the base whose log
    share varies least and at most half as much as the step's log duration, kept only when it holds
    leave-one-out (each expert's share judged with the base and median chosen without it; the
    largest error under half the duration's own leave-one-out error). σ is floored at the marking
    precision (``floor_s`` of the step's median length); the half-width (in σ) keeps every
    leave-one-out expert below major, times ``margin`` (at least 2 σ). Steps in ``skip`` (those the
    experts end on a cue in the signals: the direct evidence) get none: among the many bases a few
    experts' durations fit one by chance (a second main etch at 2.5 times the stabilize step)."""
    out: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(order):
        if k == 0 or name in skip:
            continue
        rows = [d for d in durations if name in d and all(o in d for o in order[:k])]
        if len(rows) < 3:
            continue
        secs = np.array([r[name] for r in rows])
        if float(np.std(secs, ddof=1)) < floor_s:  # varies less than a step is marked: nothing to explain
            continue
        y = np.log(secs)
        spread = float(np.std(y, ddof=1))
        bases = _share_bases(order, k)
        best = _best_share(rows, name, bases, spread)
        if best is None:
            continue
        floor = floor_s / float(np.median(secs))
        dur_err = max(abs(y[i] - float(np.median(np.delete(y, i)))) for i in range(len(y)))
        loo_z, errs = [], []
        for i in range(len(rows)):
            rest = [r for j, r in enumerate(rows) if j != i]
            got = _best_share(rest, name, bases, spread)
            if got is None:
                break
            sd_i, base_i, lr_i = got
            lr = float(np.log(rows[i][name] / sum(rows[i][o] for o in base_i)))
            err = abs(lr - float(np.median(lr_i)))
            errs.append(err)
            loo_z.append(round(err / max(sd_i, floor), 3))
        if len(errs) < len(rows) or max(errs) >= _EXPLAINS * dur_err:
            continue  # the share does not hold for an expert it was not chosen on
        sd, base, shares = best
        worst = max(loo_z, default=0.0)
        out[name] = {
            "base": list(base),
            "log_share_median": round(float(np.median(shares)), 5),
            "sigma": round(max(sd, floor), 5),
            "half_sigma": round(max(2.0, worst / major_ratio) * margin, 3),
            "shares": [round(float(np.exp(v)), 4) for v in shares],
            "loo_z": loo_z,
        }
    return out
