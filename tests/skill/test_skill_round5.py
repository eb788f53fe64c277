"""Round 5 of issue 11: a trigger is a level the channel moves through, not one it crosses by its noise
(an RF nudge then links to the match position that causes it, and so to a condition another finding
changed); a change made in the rule's step before the profile's trigger crossed (the trigger is a
proxy of the experts' cue that a changed condition moves) is made, not missed.

Small synthetic runs at 20 Hz: ``temp_C`` falls through the run; about 0.5-2.5 s after it passes 100
the operator raises ``power_W`` by 10 %. ``clamp_V`` sits at 1500 V with 0.5 V noise and a 1.2 V
wiggle just before each change (consistent, but smaller than the channel's noise could make).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jangin.core.skill import SessionSignals, Step

T0 = 1_772_438_400_000_000
HZ = 20.0


def _run(seed: int, k: int) -> SessionSignals:
    rng = np.random.default_rng([seed, k])
    t = np.arange(0, 30, 1 / HZ)
    rate = rng.uniform(5.5, 7.0)
    temp = 160.0 - rate * np.minimum(t, 25.0) + rng.normal(0, 0.2, len(t))
    t_adj = round((60.0 / rate + rng.uniform(0.5, 2.5)) * HZ) / HZ
    power = 100.0 * (1 + 0.1 * (t >= t_adj)) + rng.normal(0, 0.2, len(t))
    clamp = 1500.0 + 0.6 * np.tanh((t - t_adj + 0.3) / 0.3) + rng.normal(0, 0.5, len(t))
    ts = T0 + np.rint(t * 1e6).astype(np.int64)
    events = [
        {"ts": T0, "kind": "step_start", "name": "run"},
        {"ts": T0 + 30_000_000, "kind": "step_end", "name": "run"},
        {"ts": T0 + int(round(t_adj * 1e6)), "kind": "adjustment", "name": "power_W", "value": "+10%"},
    ]
    chans = {"power_W": (ts, power), "temp_C": (ts, temp), "clamp_V": (ts, clamp)}
    return SessionSignals(f"r{k}", chans, sorted(events, key=lambda e: e["ts"]), "p", "expert")


def test_a_level_crossed_by_noise_is_not_a_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clamp voltage's wiggle precedes every change by the same 0.3 s, but it is under 4 σ of the
    channel's noise: the trigger is the temperature the experts react to. Without the noise test
    (the round-4 rule: any consistent crossing) the clamp voltage is chosen, as an etch profile chose
    a chuck voltage that crosses 1500 V by its noise and lost the link from an RF nudge to its cause."""
    from jangin.training import _skill_adjust

    sigs = [_run(2, k) for k in range(5)]
    chans = ["clamp_V", "power_W", "temp_C"]
    rules, _ = _skill_adjust.mine_adjustments(sigs, chans, HZ)
    assert [r.trigger_channel for r in rules] == ["temp_C"], rules
    assert rules[0].direction == -1 and 85 <= rules[0].trigger_value <= 110, rules[0]
    monkeypatch.setattr(_skill_adjust, "TRIGGER_MIN_RISE", 0.0)  # the check has teeth
    before, _ = _skill_adjust.mine_adjustments(sigs, chans, HZ)
    assert [r.trigger_channel for r in before] == ["clamp_V"], before


def _session(change_at: float | None, gain: float = 0.1) -> SessionSignals:
    """Temperature falls through 100 at 10 s; the power changes by ``gain`` at ``change_at`` (s)."""
    t = (T0 + np.arange(0, 20, 0.05) * 1e6).astype(np.int64)
    s = (t - T0) / 1e6
    temp = 160.0 - 6.0 * s
    power = np.full(len(t), 100.0) if change_at is None else np.where(s >= change_at, 100 * (1 + gain), 100.0)
    events = [
        {"ts": T0, "kind": "step_start", "name": "run"},
        {"ts": T0 + 20_000_000, "kind": "step_end", "name": "run"},
    ]
    return SessionSignals("s", {"power": (t, power), "temp": (t, temp)}, events, "p", "expert", {}, {})


@pytest.mark.parametrize(
    ("change_at", "gain", "made"),
    [
        (8.3, 0.10, True),  # 1.7 s before the trigger crossed: made (round 4: missed)
        (10.6, 0.10, True),  # after the crossing, by the time it was due
        (None, 0.10, False),  # never
        (13.5, 0.10, False),  # after it was due (10 + 1.7 s): late, missed
        (8.3, 0.30, False),  # early and three times the experts' change: not theirs, judged as before
    ],
)
def test_a_change_made_before_its_trigger_crossed(
    change_at: float | None, gain: float, made: bool, nudge_profile: Any
) -> None:
    """The report (``check_adjustments``) and live coaching (``Judge.made``) agree with the level
    judge: an in-range change in the rule's step by the time it was due is the adjustment."""
    from jangin.inference._skill import check_adjustments
    from jangin.inference._skill_judge import Judge

    prof = nudge_profile
    sig = _session(change_at, gain)
    steps = [Step("run", T0, T0 + 20_000_000, "events", 1.0)]
    adj = check_adjustments(prof, sig, steps)
    assert len(adj) == 1 and abs(adj[0].trigger_at_us - (T0 + 10e6)) <= 0.2e6, adj
    assert adj[0].made is made, adj
    if made:
        assert adj[0].observed_change == pytest.approx(gain, abs=0.01)
    judge = Judge.of(prof)
    t, v = sig.channels["power"]
    assert judge.made(0, t, v, adj[0].trigger_at_us, judge.crossings(sig, steps))[0] is made


@pytest.mark.slow
def test_etch_v4_pressure_up_links_the_rf_reaction_and_the_early_trim(harness: Any) -> None:
    """Held-out v4 (development data since round 4), seed 5004, the main-etch pressure +20 %: the
    engineer's larger RF nudge follows from the pressure (a minor finding naming it), and the pressure
    trim made 1.7 s before the match position crossed its level is made; the pressure is major."""
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    h = harness
    adapter = h.etch_adapter()
    if adapter is None:
        pytest.skip("the etch generator is not in this checkout")
    plan = h.load_plan()
    seed = 5004
    assert seed in plan["seeds"]["heldout_v4"]
    devs = [d for d in plan["deviations"] if d["process"] == "etch"]
    j, dev = next((j, d) for j, d in enumerate(devs) if d["id"] == "e-pressure-up")
    experts = [h.to_signals(adapter.generate(seed * 100 + k, "expert", None)[0], f"x{k}") for k in range(5)]
    prof = profile_from_sessions(experts, SkillProfileConfig(name="q"), definition=adapter.definition)
    raw, chans = adapter.generate(seed * 100 + 50 + j, "expert", dev)
    sc = score_session(prof, h.to_signals(raw, dev["id"]))
    rank = {"minor": 0, "major": 1, "critical": 2}
    assert any(h._matches(d, dev, chans) and rank[d.severity] >= 1 for d in sc.deviations)
    advised = [
        d
        for d in sc.deviations
        if rank[d.severity] >= 1
        and not h._matches(d, dev, chans)
        and (d.kind == "duration" or prof.channels.get(d.channel, {}).get("advice", True))
    ]
    assert not advised, [(d.step, d.channel, d.kind, d.message) for d in advised]
    assert all(a.made for a in sc.adjustments), sc.adjustments
