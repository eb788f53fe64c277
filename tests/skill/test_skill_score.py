"""Profiles from the sample experts catch the novices' planted deviations; experts scored leave-one-out
raise no major alarm; steps from signals match the markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SESSIONS = REPO / "sample_data" / "sessions"


@pytest.fixture(scope="module")
def sample(skill_ds):  # type: ignore[no-untyped-def]
    from jangin.core.skill import read_session

    ds, ids = skill_ds
    out = {}
    for key, sid in sorted(ids.items()):
        sig = read_session(ds, sid)
        truth = json.loads((SESSIONS / key / "truth.json").read_text())
        out[key] = (sig, sig.skill_level, {(d["step"], d["channel"]) for d in truth["deviations"]})
    return ds, out


@pytest.mark.slow
def test_novices_against_expert_profile(sample) -> None:  # type: ignore[no-untyped-def]
    from jangin.inference._skill import relate_outcomes, score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    _, s = sample
    experts = [v[0] for v in s.values() if v[1] == "expert"]
    prof = profile_from_sessions(experts, SkillProfileConfig(process="mig_butt_weld"))
    assert [a.trigger_channel for a in prof.adjustments] == ["plate_temp_C"]
    assert abs(prof.adjustments[0].trigger_value - 180) <= 10
    assert -0.1 < prof.adjustments[0].change_rel < -0.06
    tp = fp = fn = 0
    scored = []
    for sig, level, truth in s.values():
        if level != "novice":
            continue
        sc = score_session(prof, sig)
        scored.append((sc, sig))
        got = sc.flagged("minor")
        tp, fp, fn = tp + len(got & truth), fp + len(got - truth), fn + len(truth - got)
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print(f"novices: precision {precision:.2f} recall {recall:.2f} (tp {tp}, fp {fp}, fn {fn})")
    # Recall against the planted list, any severity: weld-04's arc instability (swings that leave the
    # band by turns, not a sustained shift for 30 % of the step) is minor by the calibrated rule.
    # Precision is printed, not asserted: these novices' whole style differs from the experts'
    # (generate.py STYLE: travel 5.3 vs 5.0 mm/s, torch 17 vs 15 deg, more wander) and the calibrated
    # bands flag those real differences too; precision on planted-only sessions is in test_skill_heldout.
    assert recall >= 0.9
    texts = [r["text"] for r in relate_outcomes(scored)]
    assert any("travel_speed_mm_s above band in segment_3 preceded 1 of 1 undercut" in t for t in texts), (
        texts
    )
    texts = [r["text"] for r in relate_outcomes(scored, min_severity="minor")]
    assert any("arc_current_A unsteady in segment_2 preceded 1 of 1 porosity" in t for t in texts), texts
    weld02 = next(sc for sc, sig in scored if sig.session_id == s["weld-02"][0].session_id)
    assert [a.channel for a in weld02.missed] == ["arc_current_A"]


@pytest.mark.slow
def test_experts_leave_one_out_raise_no_major_alarm(sample) -> None:  # type: ignore[no-untyped-def]
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    _, s = sample
    experts = [k for k, v in s.items() if v[1] == "expert"]
    alarms = {}
    for k in experts:
        prof = profile_from_sessions([s[o][0] for o in experts if o != k], SkillProfileConfig())
        alarms[k] = sorted(score_session(prof, s[k][0]).flagged("major"))
    print(f"experts leave-one-out major alarms: {alarms}")
    assert sum(len(v) for v in alarms.values()) == 0, alarms


@pytest.mark.slow
def test_steps_from_signals_match_markers(sample, welding_definition) -> None:  # type: ignore[no-untyped-def]
    from jangin.core.skill import SessionSignals, steps_from_events, steps_from_signals
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    _, s = sample
    prof = profile_from_sessions(
        [v[0] for v in s.values() if v[1] == "expert"], SkillProfileConfig(), definition=welding_definition
    )
    spec = welding_definition.steps.template
    worst = 0.0
    for sig, _, _ in s.values():
        marked = {x.name: x for x in steps_from_events(sig.events)}
        bare = SessionSignals(sig.session_id, sig.channels, [], sig.process)  # the markers dropped
        found = steps_from_signals(bare, template=prof.steps, spec=spec)
        assert all(x.method == "signals" and 0 < x.confidence <= 1 for x in found)
        for x in found:
            if x.name in marked and x.name != "prepare":
                err = abs(x.start_us - marked[x.name].start_us) / 1e6
                worst = max(worst, err)
                # measured: up to ~0.55 s (the motion shares learnt from the experts are biased); loose bound
                assert err < 0.75, (sig.session_id, x)
    print(f"steps from signals: worst boundary error {worst:.2f} s")


def test_profile_roundtrip_and_registry(tmp_path: Path) -> None:
    import numpy as np

    from jangin.core import ModelManifest, ModelRegistry
    from jangin.core.skill import Band, SkillProfile, StepProfile
    from jangin.inference._skill import load_profile

    prof = SkillProfile(
        "p",
        {"a": {"unit": "A", "role": "scored"}},
        [StepProfile("s", 0, [1.0, 2.0])],
        {("s", "a"): Band(np.zeros(10), -np.ones(10), np.ones(10))},
        n_points=10,
    )
    reg = ModelRegistry(tmp_path)
    with reg.publish(ModelManifest(name="sk", task="skill_profile", dataset_snapshot={"sessions": 1})) as d:
        prof.save(d)
    back = load_profile(reg.get("sk"))
    assert back.step_names == ["s"] and np.array_equal(back.bands[("s", "a")].hi, np.ones(10))
