"""Round 6 of issue 11: a profile from three experts keeps the cue a variable-length step ends on (an
etch's optical endpoint), so an endpoint called early is found and coached; an adjustment the session
made inside the experts' predicted range is taken out at its own size, not the experts' usual one.

The demo's etch runs (``sample_data/etch``): three nitride-spacer experts (etch-06, -08, -10) end the
second main etch 28.0-29.5 s in, 0.3-0.7 s after the endpoint signal falls; the novice etch-09 calls
the endpoint at the first dip of the signal (24.3 s, its truth: ``early_endpoint``).
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ETCH = Path(__file__).resolve().parents[2] / "sample_data" / "etch"


def _etch_run(harness: Any, name: str, level: str) -> Any:
    """A sample etch run as the held-out harness feeds the scorer (10 Hz, steps from recipe_step)."""
    with gzip.open(ETCH / f"{name}.csv.gz", "rt") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    phases = [r[-1] for r in body]
    t = np.arange(len(body)) / 10.0
    chans = {c: (t, np.array([float(r[i]) for r in body])) for i, c in enumerate(head[:-1])}
    steps, events = harness.phase_steps(phases, t)
    raw = harness.Raw(chans, {}, events, steps, level, "plasma_etch", {})
    return harness.to_signals(raw, name)


@pytest.fixture(scope="module")
def nitride(harness: Any) -> tuple[Any, Any]:
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    definition = harness.etch_adapter().definition
    experts = [_etch_run(harness, n, "expert") for n in ("etch-06", "etch-08", "etch-10")]
    cfg = SkillProfileConfig(name="nitride", bin_hz=10.0)
    return profile_from_sessions(experts, cfg, definition=definition), experts


def test_three_experts_keep_the_end_cue(nitride: tuple[Any, Any]) -> None:
    """Two of the three experts end the second main etch 0.3 s apart: judged on those two alone the
    step looked fixed-length, so the leave-one-out check dropped every cue (before round 6) and the
    step was judged by its duration alone, with a 5 % floor and a 3-expert margin (±18 %)."""
    prof, _ = nitride
    ends = prof.params["calibration"]["durations"]["ends"]
    assert "main_etch#2" in ends, ends
    e = ends["main_etch#2"]
    assert e["channel"] == "endpoint_signal" and e["direction"] == -1, e
    assert max(e["lags_s"]) < 2.0 and len(e["loo_z"]) == 3, e


def test_early_endpoint_is_a_deviation_with_honest_words(harness: Any, nitride: tuple[Any, Any]) -> None:
    from jangin.inference._skill import score_session
    from jangin.inference._skill_report import coaching_sentences

    prof, experts = nitride
    rank = {"minor": 0, "major": 1, "critical": 2}
    sc = score_session(prof, _etch_run(harness, "etch-09", "novice"))
    dur = [d for d in sc.deviations if d.kind == "duration" and d.step == "main_etch#2"]
    assert dur and dur[0].direction == "shorter" and rank[dur[0].severity] >= 1, sc.deviations
    assert "less than the shortest of the experts'" in dur[0].message, dur[0].message
    assert "before endpoint signal" in dur[0].message and "which the experts wait for" in dur[0].message
    text = " ".join(coaching_sentences(sc, prof))
    assert "(main etch, 2nd time) took 24.3 s, 3.7 s less than the shortest" in text, text
    # the score drops meaningfully; the experts (scored against the profile they are in) stay clean
    assert sc.score < 85, sc.score
    for x in experts:
        ex = score_session(prof, x)
        assert not [d for d in ex.deviations if d.kind == "duration" and rank[d.severity] >= 1]
        assert ex.score > 95


def test_late_endpoint_stays_found(harness: Any) -> None:
    """The oxide-via experts (etch-01, -03, -05) and the late-endpoint novice etch-02 (called 9-12 s
    after the film cleared): with the cue kept the late call is a duration finding (longer)."""
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    definition = harness.etch_adapter().definition
    experts = [_etch_run(harness, n, "expert") for n in ("etch-01", "etch-03", "etch-05")]
    prof = profile_from_sessions(
        experts, SkillProfileConfig(name="oxide", bin_hz=10.0), definition=definition
    )
    sc = score_session(prof, _etch_run(harness, "etch-02", "novice"))
    dur = [d for d in sc.deviations if d.kind == "duration" and d.step == "main_etch#2"]
    assert dur and dur[0].direction == "longer" and dur[0].severity in ("major", "critical"), sc.deviations
    assert "s after endpoint signal" in dur[0].message, dur[0].message


# -- an in-range adjustment is taken out at its own size ---------------------------------------------

T0 = 1_772_438_400_000_000


def _nudged(gain: float, shift: float) -> Any:
    """The power ``shift`` above the experts all run; a ``gain`` nudge 1 s after the trigger (10 s)."""
    from jangin.core.skill import SessionSignals

    t = (T0 + np.arange(0, 20, 0.05) * 1e6).astype(np.int64)
    s = (t - T0) / 1e6
    power = 100.0 * (1 + shift) * np.where(s >= 11.0, 1 + gain, 1.0)
    events = [
        {"ts": T0, "kind": "step_start", "name": "run"},
        {"ts": T0 + 20_000_000, "kind": "step_end", "name": "run"},
    ]
    chans = {"power": (t, power), "temp": (t, 160.0 - 6.0 * s)}
    return SessionSignals("s", chans, events, "p", "expert", {}, {})


@pytest.mark.parametrize(
    ("gain", "shift", "major"),
    [
        (
            0.14,
            0.02,
            False,
        ),  # +14 % is inside the experts' predicted range: only the +2 % is left (round 5: major)
        (0.10, 0.02, False),  # the usual nudge and the +2 %
        (0.14, 0.08, True),  # a real +8 % shift still shows after an in-range nudge
        (0.30, 0.02, True),  # three times the experts' change: not theirs; the usual 10 % taken out
    ],
)
def test_an_in_range_nudge_is_taken_out_at_its_own_size(
    gain: float, shift: float, major: bool, nudge_profile: Any
) -> None:
    from jangin.core.skill import Step
    from jangin.inference._skill import score_session
    from jangin.inference._skill_judge import Judge

    prof = nudge_profile
    sig = _nudged(gain, shift)
    steps = [Step("run", T0, T0 + 20_000_000, "events", 1.0)]
    sc = score_session(prof, sig, steps=steps)
    found = [d for d in sc.deviations if d.channel == "power" and d.kind == "band" and d.severity != "minor"]
    assert bool(found) is major, sc.deviations
    _, sizes = Judge.of(prof).due(sig, steps)
    if gain <= 0.15:
        assert sizes.get(0) == pytest.approx(gain, abs=0.005), sizes
    else:
        assert 0 not in sizes


@pytest.mark.slow
def test_etch_v5_subtle_rf_after_a_large_in_range_nudge(harness: Any) -> None:
    """Held-out v5 (development data since round 5), seed 6004: the generated engineer's own RF nudge
    is +13 % (the experts' 6-10 %, predicted range up to about 13 %): a +2 % RF shift in the main etch
    read major (1.73) because the judge took out only the experts' usual +8 %. Now below major; the
    +12 % RF shift of the same seed stays major."""
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    h = harness
    adapter = h.etch_adapter()
    if adapter is None:
        pytest.skip("the etch generator is not in this checkout")
    plan = h.load_plan()
    seed = 6004
    assert seed in plan["seeds"]["heldout_v5"]
    devs = [d for d in plan["deviations"] if d["process"] == "etch"]
    experts = [h.to_signals(adapter.generate(seed * 100 + k, "expert", None)[0], f"x{k}") for k in range(5)]
    prof = profile_from_sessions(experts, SkillProfileConfig(name="q"), definition=adapter.definition)
    rank = {"minor": 0, "major": 1, "critical": 2}
    for want, expect_major in (("e-subtle-rf", False), ("e-rf-up", True)):
        j, dev = next((j, d) for j, d in enumerate(devs) if d["id"] == want)
        raw, chans = adapter.generate(seed * 100 + 50 + j, "expert", dev)
        sc = score_session(prof, h.to_signals(raw, dev["id"]))
        best = max((rank[d.severity] for d in sc.deviations if h._matches(d, dev, chans)), default=-1)
        assert (best >= 1) is expect_major, (
            want,
            [(d.step, d.channel, d.severity, d.ratio) for d in sc.deviations],
        )


# -- a step whose length is a share of earlier steps' time ------------------------------------------


def test_a_share_of_earlier_steps_is_mined_and_judges_a_cut_short_step() -> None:
    """The experts' over etch is 20 % of the two main etches (which vary with the wafer): a 20 % shorter
    over etch after a long main etch sits inside the experts' durations (round 5: not found), but its
    share of the main-etch time is far off theirs; an over etch at the usual share after a long main
    etch is fine. A fixed-length step gets no share."""
    from jangin.inference._skill_judge import Judge
    from jangin.training._skill_ends import mine_step_shares

    rng = np.random.default_rng(7)
    order = ["prep", "main", "purge", "main#2", "over"]
    experts = []
    for _ in range(5):
        m1, m2 = 30.0, float(rng.uniform(26.0, 38.0))
        over = round(0.2 * (m1 + m2), 1)
        experts.append({"prep": 12.0, "main": m1, "purge": 8.0, "main#2": m2, "over": over})
    shares = mine_step_shares(experts, order, 0.2, 1.5, 1.3)
    assert set(shares) == {"over"} and shares["over"]["base"] == ["main", "main#2"], shares
    judge = Judge(None, durations={"shares": shares})  # type: ignore[arg-type]
    long_main = {"prep": 12.0, "main": 30.0, "purge": 8.0, "main#2": 38.0}
    cut = judge.share_ratio("over", {**long_main, "over": round(0.8 * 0.2 * 68.0, 1)})
    assert cut is not None and cut[1] == "shorter" and cut[0] >= 1.5 and abs(cut[2] - 0.16) < 0.005, cut
    usual = judge.share_ratio("over", {**long_main, "over": round(0.2 * 68.0, 1)})
    assert usual is not None and usual[0] < 1.0, usual
    assert judge.share_ratio("prep", {"prep": 12.0}) is None


def test_step_words_read_as_a_person_says_them() -> None:
    from jangin.inference._skill_report import step_words

    assert step_words("main_etch#2") == "main etch, 2nd time"
    assert step_words("segment_3") == "segment 3" and step_words("over_etch") == "over etch"
    assert step_words("pass#11") == "pass, 11th time" and step_words("pass#23") == "pass, 23rd time"
