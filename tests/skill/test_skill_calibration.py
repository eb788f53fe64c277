"""Round 3 of issue 11: thresholds from a handful of experts (small-sample margins and prediction
bounds), an adjustment made just before its trigger (the trigger is a channel the change moves), an
end cue whose timing hangs on its exact level, and an expert's own change inside the experts' range."""

from __future__ import annotations

import numpy as np
import pytest

from jangin.core.skill import AdjustmentRule, Band, SessionSignals, SkillProfile, Step, StepProfile
from jangin.core.skill_stats import prediction_bound, range_prediction_half, small_sample_margin, t_quantile

T0 = 1_772_438_400_000_000


@pytest.mark.parametrize(
    ("p", "df", "exact"),
    [(0.95, 2, 2.919986), (0.95, 3, 2.353363), (0.95, 4, 2.131847), (0.975, 9, 2.262157)],
)
def test_t_quantile_matches_tables(p: float, df: int, exact: float) -> None:
    assert t_quantile(p, df) == pytest.approx(exact, rel=0.004)


def test_small_sample_margin_shrinks_with_experts() -> None:
    m = [small_sample_margin(n, 0.05) for n in (3, 4, 5, 10, 20, 200)]
    assert m == sorted(m, reverse=True)
    assert m[2] == pytest.approx(1.296, abs=0.01) and m[1] == pytest.approx(1.43, abs=0.01)
    assert m[-1] == pytest.approx(1.0, abs=0.01)


def test_prediction_bounds() -> None:
    x = [1.0, 1.2, 0.9, 1.1]
    b = prediction_bound(x, 0.05)
    assert b > max(x)
    assert b == pytest.approx(np.mean(x) + 2.353363 * np.std(x, ddof=1) * np.sqrt(1.25), rel=0.01)
    assert prediction_bound([2.0, 3.0], 0.05) == 3.0  # too few values for a spread: the largest
    assert range_prediction_half(0.06, 0.10, 4, 0.05) > 0.02  # an expert may change more than the 4 seen
    assert range_prediction_half(0.08, 0.08, 4, 0.05) == 0.0


def _rule() -> AdjustmentRule:
    return AdjustmentRule("power", 0.1, "temp", 100.0, 1, 1.0, 2.0, 4, 4, 0.08, 0.12, steps=["run"])


def test_change_made_as_the_report_and_live_judge() -> None:
    """A change seen by ``delay_max_s`` after the crossing is made; none, or the wrong way, is not."""
    t = T0 + np.arange(0, 20, 0.1) * 1e6
    tc = T0 + 10e6
    made, change = _rule().made(t, np.where(t >= T0 + 10.5e6, 110.0, 100.0), tc)
    assert made and change == pytest.approx(0.1, abs=1e-6)
    assert not _rule().made(t, np.full(len(t), 100.0), tc)[0]
    assert not _rule().made(t, np.where(t >= T0 + 10.5e6, 90.0, 100.0), tc)[0]


def test_end_cue_on_a_plateau_edge_is_not_trusted() -> None:
    """Experts end a step 1 s after a steep drop; a level just under the plateau times the drop for
    them but not for a run whose plateau sits lower: the cue must be the drop, found robustly."""
    from jangin.core.skill import end_trace, step_end_lag
    from jangin.training._skill_ends import _best_cue

    rng = np.random.default_rng(3)
    pairs, plateaus = [], []
    for k in range(5):
        dur = 20.0 + 3 * k
        n = int((dur + 5) * 20)
        tt = np.arange(n) / 20.0
        on = (tt >= 0.15 * dur) & (tt < dur - 1.0)  # the step rises to a plateau, then drops
        x = np.where(on, 0.04 + 0.006 * rng.standard_normal(), 0.0)
        x = np.where(tt >= dur - 1.0, -0.8 * (tt - (dur - 1.0)), x) + 0.002 * rng.standard_normal(n)
        ts = (T0 + tt * 1e6).astype(np.int64)
        sig = SessionSignals(f"x{k}", {"sig": (ts, x)}, [], "p", "expert", {}, {})
        pairs.append((sig, Step("run", T0, int(T0 + dur * 1e6), "events", 1.0)))
        plateaus.append(on)
    cue = _best_cue(pairs, ["sig"], 20.0, 0.2)
    assert cue is not None
    _, _, level, direction, lags = cue
    assert max(lags) < 1.5 and direction == -1
    assert level < 0.02  # on the drop, well below every plateau (not at the plateau's edge)
    # a run whose plateau sits 0.02 lower still ends about 1 s after the cue
    s, st = pairs[0]
    t, v = s.channels["sig"]
    low = SessionSignals("low", {"sig": (t, v - 0.02 * plateaus[0])}, [], "p", "expert", {}, {})
    assert step_end_lag(end_trace(low, "sig", st, 20.0), st, level, direction, 20.0) < 1.5


def test_own_change_inside_the_experts_range_is_taken_out() -> None:
    """An expert nudges the power by +11 % without the profile's trigger: scoring takes the change out
    at its own time (a +30 % change, outside the experts' range, stays a deviation)."""
    from jangin.inference._skill_judge import Judge

    n = 100
    prof = SkillProfile(
        process="p",
        channels={"power": {"role": "scored", "unit": "W"}},
        steps=[StepProfile("run", 0, [20.0, 20.0, 20.0, 20.0])],
        bands={("run", "power"): Band(np.full(n, 100.0), np.full(n, 97.0), np.full(n, 103.0))},
        adjustments=[_rule()],
        sessions=["a", "b", "c", "d"],
        n_points=n,
        bin_hz=20.0,
        params={"calibration": {"false_major_rate": 0.05}},
    )
    judge = Judge.of(prof)
    t = (T0 + np.arange(0, 20, 0.05) * 1e6).astype(np.int64)
    st = [Step("run", T0, T0 + 20_000_000, "events", 1.0)]
    for gain, inside in ((0.11, True), (0.30, False)):
        v = np.where(t >= T0 + 8e6, 100.0 * (1 + gain), 100.0)
        sig = SessionSignals("s", {"power": (t, v)}, [], "p", "expert", {}, {})
        own = judge.own_change(prof.adjustments[0], sig, st)
        assert (own is not None) is inside
        if inside:
            assert abs(own - (T0 + 8e6)) <= 1.1e6
