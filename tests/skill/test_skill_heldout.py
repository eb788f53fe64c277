"""The issue-11 targets on a reduced held-out set: sessions generated from held-out seeds (never used
for tuning), deviations planted from the frozen list ``sample_data/heldout/deviations.yaml``.

The full evaluation (all seeds, both processes, tuning vs held-out side by side) is
``python bench/bench_skill_heldout.py``."""

from __future__ import annotations

from typing import Any

import pytest


def test_plan_is_frozen_and_seed_sets_disjoint(harness: Any) -> None:
    plan = harness.load_plan()
    tuning, held = set(plan["seeds"]["tuning"]), set(plan["seeds"]["heldout"])
    versions = [f"heldout_v{i}" for i in range(2, 9)]  # frozen one after another, in this order
    assert ("tuning", "heldout", *versions) == harness.SEED_SETS
    assert set(plan["seeds"]) == {*harness.SEED_SETS, "experts_per_profile"}
    later = [set(plan["seeds"][k]) for k in versions]
    assert tuning and held and all(later) and not tuning & held
    seen = tuning | held
    for s in later:  # each held-out set disjoint from everything frozen before it
        assert not seen & s
        seen |= s
    devs = plan["deviations"]
    assert len({d["id"] for d in devs}) == len(devs) >= 10
    assert len({(d["process"], d["channel"]) for d in devs if d["channel"]}) >= 4
    assert {d["process"] for d in devs} == {"welding", "etch"}
    assert any(d["expected"] == "below_major" for d in devs)


def test_welding_heldout_quick(harness: Any) -> None:
    """One held-out seed, a few planted kinds: majors found with step, channel and direction; subtle
    ones below major; a fresh expert without a major; the expert ≥ 20 points above the novices' mean
    (perturbed sessions and the generator's novices, as the benchmark counts them) (a half-weight channel such as one the definition weighs 0.5 costs about half as much)."""
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    h = harness
    plan = h.load_plan()
    seed = plan["seeds"]["heldout"][0]
    adapter = h.welding_adapter()
    want = {"w-travel-slow", "w-angle-down", "w-volt-up", "w-long-step", "w-subtle-curr", "w-subtle-angle"}
    devs = [d for d in plan["deviations"] if d["id"] in want]
    experts = [
        h.to_signals(adapter.generate(seed * 100 + k, "expert", None)[0], f"x{k}")
        for k in range(plan["seeds"]["experts_per_profile"])
    ]
    prof = profile_from_sessions(experts, SkillProfileConfig(name="q"), definition=adapter.definition)
    rank = {"minor": 0, "major": 1, "critical": 2}
    fresh = score_session(prof, h.to_signals(adapter.generate(seed * 100 + 90, "expert", None)[0], "fresh"))
    assert not [d for d in fresh.deviations if rank[d.severity] >= 1], fresh.deviations
    perturbed = []
    for j, dev in enumerate(devs):
        raw, chans = adapter.generate(seed * 100 + 50 + j, "expert", dev)
        sc = score_session(prof, h.to_signals(raw, dev["id"]))
        hit = max((rank[d.severity] for d in sc.deviations if h._matches(d, dev, chans)), default=-1)
        if dev["expected"] == "major":
            assert hit >= 1, (
                dev["id"],
                [(d.step, d.channel, d.direction, d.severity) for d in sc.deviations],
            )
            others = [
                d
                for d in sc.deviations
                if rank[d.severity] >= 1
                and not h._matches(d, dev, chans)
                # a stretched step also stretches the expert's reaction time inside it: the
                # adjustment then comes later than the experts' latest (a true, if planted, finding)
                and not (dev["kind"] == "stretch" and d.kind == "missed_adjustment")
            ]
            assert not others, (dev["id"], others)
            perturbed.append(sc.score)
        else:
            assert hit < 1, (dev["id"], sc.deviations)
        assert not [d for d in sc.deviations if d.kind == "unsteady" and rank[d.severity] >= 1]
    # novices as the benchmark counts them: the perturbed sessions and the generator's own novices
    # (perturbed sessions alone: 19.0 points on this seed since round 3's wider small-sample margin)
    for who in adapter.novices:
        raw, _ = adapter.generate(seed * 100 + 80, who, None)
        perturbed.append(score_session(prof, h.to_signals(raw, who)).score)
    assert fresh.score - sum(perturbed) / len(perturbed) >= 20, (
        fresh.score,
        perturbed,
    )


_V2: dict[str, Any] = {}


def _v2(harness: Any, process: str) -> dict[str, Any]:
    """The first held-out v2 seed of ``process``, evaluated once per test session (it is slow)."""
    if process not in _V2:
        _V2[process] = harness.run(process, "heldout_v2", limit=1)
    res = _V2[process]
    if res is None:
        pytest.skip(f"the {process} generator is not in this checkout")
    print(process, res)
    return res  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.parametrize("process", ["welding", "etch"])
def test_heldout_targets(harness: Any, process: str) -> None:
    """The issue's targets on the first seed of held-out v2 (frozen before the second round of tuning;
    v1 was studied while fixing etch): major recall ≥ 0.9 at precision ≥ 0.9, no false major on fresh
    experts, subtle below major, ≥ 20 points between experts and novices, no unsteady flag at the
    experts' own adjustments."""
    res = _v2(harness, process)
    assert res["major_recall"] >= 0.9 and res["major_precision"] >= 0.9, res
    assert res["fresh_expert_false_majors"] == 0, res
    assert res["subtle_below_major"] == res["subtle_total"], res
    assert res["separation"] >= 20, res
    assert res["unsteady_at_adjustment"] == 0, res


@pytest.mark.slow
@pytest.mark.parametrize("process", ["welding", "etch"])
def test_heldout_no_false_major_on_loo_experts(harness: Any, process: str) -> None:
    """0 false majors on the leave-one-out experts of the first held-out v2 seed (etch: an xfail until
    round 3, when a cue at a plateau's edge and an RF nudge outside the few experts' range made one)."""
    res = _v2(harness, process)
    assert res["loo_false_majors"] == 0, res
