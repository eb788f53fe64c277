"""How far a session is from the experts, and how bad that is: the one place the calibrated thresholds
of a skill profile are read and applied.

Both the after-the-fact scorer (:func:`jangin.inference._skill.score_session`, whose results the
coaching report shows) and live coaching (:class:`jangin.inference._skill_live.LiveCoach`) judge
through a :class:`Judge`, so a deviation reads the same on the line and in the report:

* level: the signed distance of a channel outside the experts' median envelope, in units of their
  spread divided by the channel's calibrated half-width (``1`` = at the band's edge); major when it
  stays ≥ ``major_ratio`` for ≥ ``major_share`` of a step;
* step duration: the log duration's distance from the experts' in the same half-width units, each step
  with its own spread and the half-width calibrated leave-one-out at build time;
* adjustments: a channel the experts adjust is compared with their envelope moved by the change
  they would have made by then; a session that made a change inside the prediction interval of the
  experts' change (from their range, at the calibrated false-major rate) without the trigger the
  profile found has it taken out at its own time (:meth:`Judge.own_change`);
* advice: only on channels the process definition says the operator controls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jangin.core.skill import (
    ENV_SUFFIX,
    AdjustmentRule,
    SessionSignals,
    SkillProfile,
    Step,
    StepProfile,
    end_trace,
    outside,
    step_end_lag,
)
from jangin.core.skill_rules import (
    adjustment_factor,
    first_crossing,
    largest_change,
    own_change_at,
    rule_crossing,
    rules_due,
)

__all__ = ["Judge", "first_crossing", "rule_crossing", "severity_of"]


def severity_of(ratio: float, major_ratio: float = 1.5) -> str:
    """Severity from the sustained distance outside the band (``ratio`` 1 = at the band's edge,
    ``major_ratio`` = that many half-widths beyond the experts' median envelope)."""
    return "critical" if ratio >= 2 * major_ratio else "major" if ratio >= major_ratio else "minor"


@dataclass(frozen=True)
class Judge:
    """The calibrated thresholds of one profile, applied to levels and durations."""

    profile: SkillProfile
    major_ratio: float = 1.5
    major_share: float = 0.3
    halves: Mapping[str, float] = field(default_factory=dict)
    durations: Mapping[str, Any] = field(default_factory=dict)
    rate: float = 0.05

    @classmethod
    def of(cls, profile: SkillProfile) -> Judge:
        """The judge of ``profile`` (its stored leave-one-out calibration)."""
        cal = dict(profile.params.get("calibration") or {})
        return cls(
            profile,
            float(cal.get("major_ratio", 1.5)),
            float(cal.get("major_share", 0.3)),
            {str(k): float(v) for k, v in (cal.get("half_sigma") or {}).items()},
            dict(cal.get("durations") or {}),
            float(cal.get("false_major_rate", 0.05)),
        )

    # -- channels ------------------------------------------------------------------------------------

    def advises(self, channel: str) -> bool:
        """Whether the operator controls ``channel`` (advice and live alerts only on those)."""
        return bool(self.profile.channels.get(channel, {}).get("advice", True))

    def severity(self, ratio: float) -> str:
        return severity_of(ratio, self.major_ratio)

    def factor(
        self,
        channel: str,
        t_us: np.ndarray,
        crossings: Mapping[int, int],
        step: str = "",
        sizes: Mapping[int, float] | None = None,
    ) -> np.ndarray:
        """The factor the experts' adjustments would have applied to ``channel`` by the times ``t_us``
        (their trigger crossed, or the session made the change itself, at ``crossings``: rule index
        → µs, the change then due ``delay_s`` later) in ``step`` (none where the change lapses).
        ``sizes`` (rule index → relative change, see :meth:`due`): a change the session made inside the
        experts' predicted range is taken out at its own size (the channels that move with it in
        proportion), not the experts' usual one: a +13 % nudge the experts' range admits leaves no
        +5 % level behind to add to a real shift."""
        return adjustment_factor(self.profile.adjustments, channel, t_us, crossings, step, sizes)

    def crossings(self, sig: SessionSignals, steps: Sequence[Step]) -> dict[int, int]:
        """When (µs) each adjustment was due to start in this session, rule index → the time its
        trigger crossed, or the session's own change less the usual delay: a change inside the experts'
        range wherever it is made (:meth:`own_change`), one of any size (at least half theirs) where
        the trigger never crossed or made by the deadline of the last crossing before it (a trigger's
        early transient is not what it answered); the experts' usual change is then taken out and the
        rest judged as a level (a change too large or too small still shows). Report, live coaching and
        the profile's calibration all use it (:func:`jangin.core.skill_rules.rules_due`)."""
        return self.due(sig, steps)[0]

    def due(self, sig: SessionSignals, steps: Sequence[Step]) -> tuple[dict[int, int], dict[int, float]]:
        """(:meth:`crossings`, sizes): rule index → the relative change the session made of its own
        accord inside the experts' predicted range (taken out at that size by :meth:`factor`); a
        change of another size is not in it (the experts' usual change is taken out, the rest judged
        as a level)."""
        return rules_due(self.profile.adjustments, sig, steps, self.profile.bin_hz, self.rate)

    def made(
        self, i: int, t: np.ndarray, v: np.ndarray, tc: float, crossings: Mapping[int, int]
    ) -> tuple[bool, float]:
        """(made, relative change) of rule ``i``'s change for a trigger crossed at ``tc`` (µs): as
        :meth:`AdjustmentRule.made` (the level ``delay_max_s`` after the crossing against the second
        before it), or, where the session made a change inside the experts' range of its own in the
        rule's step (``crossings[i]`` is then that change less the usual delay, see :meth:`crossings`)
        by the time the change was due, that change judged at its own time. The trigger is the
        profile's proxy of the experts' cue and a changed condition moves it (a match position the
        pressure shifts crosses later), so a change the judge already took out as the adjustment is not
        reported missed because it came before the proxy; one made after it was due still is (late).
        The report and live coaching both judge so."""
        r = self.profile.adjustments[i]
        made, change = r.made(t, v, tc)
        own = crossings.get(i)
        if made or own is None or own == tc or own + r.delay_s * 1e6 > tc + r.delay_max_s * 1e6:
            return made, change
        made_own, change_own = r.made(t, v, own)
        return (True, change_own) if made_own else (made, change)

    def own_change(
        self, rule: AdjustmentRule, sig: SessionSignals, steps: Sequence[Step], *, any_size: bool = False
    ) -> int | None:
        """When (µs) this session made ``rule``'s change of its own accord: the largest change of the
        channel (median of 1 s before vs 0.6–1.6 s after, as the rule was mined) inside the rule's
        steps, if it lies in the prediction interval of the experts' change. An expert may adjust
        without the trigger the profile found (a proxy of the real cue): the change is then taken out
        at its own time, not judged as a deviation; a change outside the experts' range stays one.
        ``any_size``: any change at least half the experts' usual one (the time a reaction was made,
        whatever its size)."""
        best = largest_change(rule, sig, steps, self.profile.bin_hz)
        return own_change_at(rule, best, self.rate, any_size=any_size)

    def ratio(
        self,
        step: str,
        channel: str,
        u: np.ndarray,
        x: np.ndarray,
        factor: np.ndarray | float = 1.0,
    ) -> np.ndarray:
        """Signed distance of ``x`` (at normalised step times ``u``) outside the experts' envelope, in
        calibrated half-widths (0 inside the band, > 1 past its upper edge, < -1 past its lower one).

        ``factor``: the experts' adjustments due by then (multiplies the experts' curves, see
        :meth:`factor`).
        """
        prof = self.profile
        band = prof.bands.get((step, channel))
        if band is None:
            return np.zeros(len(np.atleast_1d(x)))
        u = np.atleast_1d(np.asarray(u, float))
        x = np.atleast_1d(np.asarray(x, float))
        f = np.broadcast_to(np.asarray(factor, float), x.shape)
        grid = (np.arange(prof.n_points) + 0.5) / prof.n_points
        env = prof.bands.get((step, channel + ENV_SUFFIX))
        med = np.interp(u, grid, band.median) * f
        if env is None:  # a profile without the spread arrays: distance in band half-widths
            lo, hi = np.interp(u, grid, band.lo) * f, np.interp(u, grid, band.hi) * f
            half = np.maximum(np.where(x > med, hi - med, med - lo), 1e-12)
            r = np.where(x > hi, (x - med) / half, np.where(x < lo, -(med - x) / half, 0.0))
        else:
            h = float(self.halves.get(channel, 3.0))
            r = (
                outside(
                    x,
                    np.interp(u, grid, env.lo) * f,
                    np.interp(u, grid, env.hi) * f,
                    np.interp(u, grid, env.median) * np.abs(f),
                )
                / h
            )
        return np.asarray(np.nan_to_num(r))

    def sustained(self, r: np.ndarray) -> float:
        """The distance the channel stays at or beyond for ``major_share`` of the step."""
        return float(np.quantile(r, 1.0 - self.major_share)) if len(r) else 0.0

    # -- durations -----------------------------------------------------------------------------------

    def duration_ratio(self, step: str, duration_s: float, sp: StepProfile) -> tuple[float, str]:
        """How far a step's duration is outside the experts' (in calibrated half-widths; 0 inside)
        and which way (``longer`` / ``shorter``)."""
        c = (self.durations.get("steps") or {}).get(step)
        d = max(duration_s, 1e-3)
        if c is None:  # an old profile: the experts' range with 20 % tolerance
            lo, hi = 0.8 * min(sp.durations_s), 1.25 * max(sp.durations_s)
            ratio = max(lo / d, d / hi, 0.0)
            return (ratio if ratio > 1 else 0.0), "longer" if d > hi else "shorter"
        z = (np.log(d) - c["log_median"]) / c["sigma"]
        half = float(c.get("half_sigma", self.durations.get("half_sigma", 3.0)))
        return float(abs(z) / half), "longer" if z > 0 else "shorter"

    def end_cue(self, step: str) -> dict[str, Any] | None:
        """The cue the experts end ``step`` after (channel, level, direction, lag), if it has one."""
        e = (self.durations.get("ends") or {}).get(step)
        return dict(e) if e else None

    def end_ratio(self, sig: SessionSignals, st: Step) -> tuple[float, str, float] | None:
        """How far the lag from the step's end cue to its end is from the experts' (in calibrated
        half-widths), which way (``longer``: ended late after the cue; ``shorter``: before it) and the
        lag in seconds; None for a step without a cue (or a session without its channel)."""
        e = self.end_cue(st.name)
        if e is None or e["channel"] not in sig.channels or "lag_median_s" not in e:
            return None
        hz = self.profile.bin_hz
        lag = step_end_lag(end_trace(sig, e["channel"], st, hz), st, e["level"], e["direction"], hz)
        z = (lag - float(e["lag_median_s"])) / max(float(e["lag_sigma_s"]), 1e-3)
        half = float(e.get("half_sigma", self.durations.get("end_half_sigma", 3.0)))
        return float(abs(z) / half), "longer" if z > 0 else "shorter", float(lag)

    def share_ratio(self, step: str, durations: Mapping[str, float]) -> tuple[float, str, float] | None:
        """For a step whose length the experts set as a share of earlier steps' time: how far this
        session's share is from theirs (in calibrated half-widths), which way (``longer`` /
        ``shorter``) and the share; None without one (or a session without those steps)."""
        e = (self.durations.get("shares") or {}).get(step)
        if not e or step not in durations or not all(b in durations for b in e["base"]):
            return None
        base = sum(float(durations[b]) for b in e["base"])
        if base <= 0 or durations[step] <= 0:
            return None
        share = float(durations[step]) / base
        z = (np.log(share) - float(e["log_share_median"])) / max(float(e["sigma"]), 1e-3)
        return float(abs(z) / float(e["half_sigma"])), "longer" if z > 0 else "shorter", share

    def duration_limit_s(self, step: str, ratio: float = 1.0) -> float | None:
        """The duration at which a step that runs long reaches ``ratio`` half-widths (None without a
        calibration for the step): live coaching warns when a step passes it."""
        c = (self.durations.get("steps") or {}).get(step)
        if c is None:
            return None
        half = float(c.get("half_sigma", self.durations.get("half_sigma", 3.0)))
        return float(np.exp(c["log_median"] + ratio * half * c["sigma"]))

    def out_share(self, r: np.ndarray) -> np.ndarray:
        """Per bin, how far out the session is for the score (0 in band, 1 at ``major_ratio``)."""
        a = np.abs(r)
        return np.clip((a - 1.0) / (self.major_ratio - 1.0), 0.0, 1.0) * (a > 1.0)
