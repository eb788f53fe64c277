"""Round 7 of issue 11: a step's between-expert spread, from a handful of experts, is shrunk toward
the channel's spread over its other steps (never below its own), so an expert is not told off where
the few experts of the profile happened to agree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def test_a_step_the_experts_agreed_in_by_chance_gets_the_channels_spread() -> None:
    from jangin.training._skill import PRIOR_DF, _band_stats, _prior_spread

    flat = np.ones(50)
    wide = np.vstack([(100 + d) * flat for d in (-6, -2, 2, 6)])  # about 5 % between the experts
    narrow = np.vstack([(200 + d) * flat for d in (-0.5, -0.2, 0.2, 0.5)])  # agreed by chance
    prior = _prior_spread({"a": (wide, True), "b": (wide * 1.1, True), "c": (narrow, True)})
    # relative to each step's level, the median over the steps: the wide steps' 5.2 %
    assert prior is not None and np.isclose(prior, np.std([-6, -2, 2, 6], ddof=1) / 100), prior
    arr = narrow
    _, own = _band_stats(arr, 0.0, 0.0)
    _, shrunk = _band_stats(arr, 0.0, 0.0, prior, relative=True)
    own_pooled = float(np.std(arr[:, 0], ddof=1))
    expect = np.sqrt((3 * own_pooled**2 + PRIOR_DF * (prior * 200) ** 2) / (3 + PRIOR_DF))
    # σ = √(½(point² + pooled²)) · √(1 + 1/n): a flat spread scales through as the pooled one
    assert np.allclose(shrunk, expect * np.sqrt(1 + 1 / 4), rtol=1e-6), (shrunk[0], expect)
    assert shrunk.min() > 3 * own.max()
    # a step the experts really differ in keeps its own spread (never narrowed toward the prior)
    big = wide * 3
    _, kept = _band_stats(big, 0.0, 0.0, prior, relative=True)
    assert np.allclose(kept, _band_stats(big, 0.0, 0.0)[1])
    # an interval quantity: the prior is in the channel's unit, not relative to its level
    _, absolute = _band_stats(arr, 0.0, 0.0, 2.0, relative=False)
    assert np.allclose(absolute, np.sqrt((3 * own_pooled**2 + PRIOR_DF * 4.0) / 6) * np.sqrt(1.25))


def test_welding_expert_left_out_where_the_others_agreed_is_not_major(
    harness: Any, welding_definition: Any
) -> None:
    """Welding held-out v6 seed 7001 (development data since round six): with expert 0 left out, the
    other four held the torch angle in the crater fill so alike that expert 0's own angle read major
    (2.22 half-widths; the bench's leave-one-out false major). The planted torch-angle deviations
    (10-12 degrees) stay major on the same profile."""
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    ad = harness.welding_adapter()
    seed = 7001
    experts = [harness.to_signals(ad.generate(seed * 100 + k, "expert", None)[0], f"x{k}") for k in range(5)]
    cfg = SkillProfileConfig(name="heldout")
    prof = profile_from_sessions(experts[1:], cfg, definition=welding_definition)
    sc = score_session(prof, experts[0])
    majors = [d for d in sc.deviations if d.severity != "minor"]
    assert not majors, majors
    crater = [d for d in sc.deviations if d.step == "crater_fill" and d.channel == "torch_angle_deg"]
    assert all(d.ratio < 1.5 for d in crater), crater
    plan = harness.load_plan()
    devs = [d for d in plan["deviations"] if d["process"] == "welding"]
    for j, dev in enumerate(devs):
        if dev["id"] not in ("w-angle-up", "w-angle-down"):
            continue
        raw, chans = ad.generate(seed * 100 + 50 + j, "expert", dev)
        found = score_session(prof, harness.to_signals(raw, dev["id"])).deviations
        hit = [d for d in found if harness._matches(d, dev, chans) and d.severity != "minor"]
        assert hit, (dev["id"], found)


T0 = 1_772_438_400_000_000


def _transient_then_change(change_at: float, gain: float) -> Any:
    """``temp`` dips through 100 for a moment at 2 s (a transient, as an RF strike's reflected power)
    and falls through it for good at 10 s; ``power`` changes by ``gain`` at ``change_at`` (s)."""
    from jangin.core.skill import SessionSignals

    t = (T0 + np.arange(0, 20, 0.05) * 1e6).astype(np.int64)
    s = (t - T0) / 1e6
    temp = np.where((s > 2.0) & (s < 3.0), 90.0, 160.0 - 6.0 * s)
    power = np.where(s >= change_at, 100 * (1 + gain), 100.0)
    events = [
        {"ts": T0, "kind": "step_start", "name": "run"},
        {"ts": T0 + 20_000_000, "kind": "step_end", "name": "run"},
    ]
    return SessionSignals("s", {"power": (t, power), "temp": (t, temp)}, events, "p", "expert", {}, {})


@pytest.mark.parametrize(
    ("change_at", "on_time"),
    [(10.8, True), (15.0, False)],  # 0.8 s after the crossing it answers; 5 s after: late
)
def test_a_change_of_another_size_is_timed_from_the_crossing_it_answers(
    change_at: float, on_time: bool, nudge_profile: Any
) -> None:
    """A +30 % change (outside the experts' 8-12 %) made 0.8 s after the trigger fell through its level
    for good was timed from the trigger's first crossing, a transient 8 s earlier: the band expected
    the usual +10 % from 2.5 s and the session read 'below' for 8 s (etch v6 seed 7008, the main-etch
    pressure planted +20 %: the engineer's large RF nudge 11 s after the strike's reflected-power spike,
    RF set point 'below', major). Now it is timed from the last crossing before it; a change made
    after the deadline of that crossing is still late."""
    from jangin.core.skill import Step
    from jangin.core.skill_rules import rule_crossing, rules_due
    from jangin.inference._skill import score_session

    prof = nudge_profile
    sig = _transient_then_change(change_at, 0.30)
    steps = [Step("run", T0, T0 + 20_000_000, "events", 1.0)]
    rule = prof.adjustments[0]
    first = rule_crossing(rule, sig, steps, prof.bin_hz)
    assert first is not None and abs(first - (T0 + 2.0e6)) <= 0.2e6
    crossings, sizes = rules_due(prof.adjustments, sig, steps, prof.bin_hz, 0.05)
    assert 0 not in sizes  # three times the experts' change: not taken out at its own size
    due_s = (crossings[0] - T0) / 1e6 + rule.delay_s
    sc = score_session(prof, sig, steps=steps)
    below = [
        d for d in sc.deviations if d.channel == "power" and d.direction == "below" and d.severity != "minor"
    ]
    if on_time:
        assert change_at - 1.6 <= due_s <= change_at + 0.1, due_s  # measured over 1 s before to 1.6 s after
        assert not below, sc.deviations
    else:
        assert abs(due_s - (2.0 + rule.delay_s)) <= 0.2, due_s
        assert below, sc.deviations


@pytest.mark.slow
def test_etch_calibration_sees_each_expert_as_scoring_does(harness: Any) -> None:
    """Held-out v6 seed 7008 (development data since round six): the profile's leave-one-out
    calibration took each expert's RF nudge out at the experts' usual size and delay from the first
    reflected-power crossing, while scoring takes an in-range nudge out at its own time and size: the
    RF set point's half-width came out 3.12 and the planted RF -12 % in the over etch was missed
    (1.02 half-widths). The calibration now uses the scorer's timing (``rules_due``)."""
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    h = harness
    adapter = h.etch_adapter()
    if adapter is None:
        pytest.skip("the etch generator is not in this checkout")
    seed = 7008
    assert seed in h.load_plan()["seeds"]["heldout_v6"]
    experts = [h.to_signals(adapter.generate(seed * 100 + k, "expert", None)[0], f"x{k}") for k in range(5)]
    prof = profile_from_sessions(experts, SkillProfileConfig(name="q"), definition=adapter.definition)
    assert prof.params["calibration"]["half_sigma"]["rf_forward_setpoint_W"] < 1.5
    devs = [d for d in h.load_plan()["deviations"] if d["process"] == "etch"]
    rank = {"minor": 0, "major": 1, "critical": 2}
    for want in ("e-rf-down", "e-rf-up", "e-pressure-up"):
        j, dev = next((j, d) for j, d in enumerate(devs) if d["id"] == want)
        raw, chans = adapter.generate(seed * 100 + 50 + j, "expert", dev)
        sc = score_session(prof, h.to_signals(raw, dev["id"]))
        assert any(h._matches(d, dev, chans) and rank[d.severity] >= 1 for d in sc.deviations), want
        other = [d for d in sc.deviations if rank[d.severity] >= 1 and not h._matches(d, dev, chans)]
        advised = [d for d in other if prof.channels.get(d.channel, {}).get("advice", True)]
        assert not advised, (want, advised)
