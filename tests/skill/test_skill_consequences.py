"""Findings counted once (issue 11): a step whose timing follows from an earlier finding, and the
experts' own reaction to a condition another finding changed, are kept as minor findings naming what
they follow from. Real generated etch runs (a tuning seed), a real profile."""

from __future__ import annotations

from typing import Any

import pytest

RANK = {"minor": 0, "major": 1, "critical": 2}


@pytest.fixture(scope="module")
def etch(harness: Any) -> tuple[Any, Any, Any]:
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    adapter = harness.etch_adapter()
    if adapter is None:
        pytest.skip("the etch generator is not in this checkout")
    seed = harness.load_plan()["seeds"]["tuning"][0]
    experts = [
        harness.to_signals(adapter.generate(seed * 100 + k, "expert", None)[0], f"x{k}") for k in range(5)
    ]
    prof = profile_from_sessions(experts, SkillProfileConfig(name="c"), definition=adapter.definition)
    return harness, adapter, prof


def _score(etch: tuple[Any, Any, Any], dev_id: str) -> Any:
    from jangin.inference._skill import score_session

    h, adapter, prof = etch
    dev = next(d for d in h.load_plan()["deviations"] if d["id"] == dev_id)
    raw, _ = adapter.generate(10_150, "expert", dev)
    return score_session(prof, h.to_signals(raw, dev_id))


def test_longer_main_etch_counts_once(etch: tuple[Any, Any, Any]) -> None:
    sc = _score(etch, "e-long-step")
    dur = {d.step: d for d in sc.deviations if d.kind == "duration"}
    assert RANK[dur["main_etch"].severity] >= 1, dur
    over = dur.get("over_etch")
    assert over is not None and over.direction == "longer", dur  # still reported ...
    assert over.severity == "minor" and "follows from" in over.message, over  # ... once


def test_reaction_to_a_changed_condition_is_not_a_second_finding(etch: tuple[Any, Any, Any]) -> None:
    sc = _score(etch, "e-pressure-up")
    assert any(
        d.channel == "pressure_setpoint_mTorr" and d.direction == "above" and RANK[d.severity] >= 1
        for d in sc.deviations
    ), sc.deviations
    rf = [d for d in sc.deviations if d.channel == "rf_forward_setpoint_W"]
    assert rf, "the larger RF nudge is still reported"
    assert all(d.severity == "minor" for d in rf), rf
    assert any("pressure_setpoint_mTorr" in d.message for d in rf), rf
