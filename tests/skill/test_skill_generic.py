"""Skill profiles for any process, on small synthetic sessions built here: repeated phases as numbered
occurrences with their own bands, channel selection (constant, declared duplicate, near-duplicate,
globs), honest step confidence, per-recipe profiles, the calibration stored in the profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core.skill import SessionSignals

T0 = 1_772_438_400_000_000
HZ = 10.0

# phases: (name, seconds, level of "power"); the second "etch" runs at a different level
PHASES = [("stabilise", 5.0, 100.0), ("etch", 8.0, 400.0), ("purge", 4.0, 50.0), ("etch", 6.0, 300.0)]


def _session(
    seed: int, *, shift: tuple[str, int, float] | None = None, level: str = "expert", recipe: str = "A"
) -> SessionSignals:
    """One run at 10 Hz: power (operator), flow (operator), a constant, a declared duplicate of power,
    a near-duplicate of flow, and step markers (with occurrences) for the phases."""
    rng = np.random.default_rng(seed)
    t, power, flow, events = [], [], [], []
    now = 0.0
    seen: dict[str, int] = {}
    for name, dur, lvl in PHASES:
        seen[name] = seen.get(name, 0) + 1
        d = dur * (1 + rng.normal(0, 0.02))
        n = int(d * HZ)
        tt = now + np.arange(n) / HZ
        p = lvl * (1 + rng.normal(0, 0.01)) + rng.normal(0, 2.0, n)
        f = 20.0 + 0.5 * np.sin(tt * 0.7 + seed) + rng.normal(0, 0.2, n)
        if shift is not None and shift[0] == name and shift[1] == seen[name]:
            p = p * (1 + shift[2])
        events += [
            {"ts": T0 + int(now * 1e6), "kind": "step_start", "name": name, "occurrence": seen[name]},
            {
                "ts": T0 + int((now + n / HZ) * 1e6),
                "kind": "step_end",
                "name": name,
                "occurrence": seen[name],
            },
        ]
        t.append(tt)
        power.append(p)
        flow.append(f)
        now += n / HZ
    ts = T0 + np.rint(np.concatenate(t) * 1e6).astype(np.int64)
    pw, fl = np.concatenate(power), np.concatenate(flow)
    chans = {
        "power_W": (ts, pw),
        "power_cmd_W": (ts, np.round(pw, -1)),
        "flow_sccm": (ts, fl),
        "flow_copy_sccm": (ts, fl * 1.0001 + 0.01),
        "const_V": (ts, np.full(len(ts), 5.0)),
    }
    return SessionSignals(f"run-{seed}", chans, events, "etch_test", level, {}, {"recipe": recipe})


def _definition() -> Any:
    from jangin.core.process_definition import ProcessDefinition

    return ProcessDefinition.from_yaml(
        """
name: etch_test
channels:
  - {name: power_W, display_name: RF power, unit: W, role: operator, higher: more RF power, lower: less RF power}
  - {name: power_cmd_W, unit: W, role: machine, duplicate_of: power_W}
  - {name: flow_sccm, display_name: gas flow, unit: sccm, role: operator}
  - {name: flow_copy_sccm, unit: sccm, role: operator}
  - {name: const_V, unit: V, role: machine}
steps: {source: phase_column, column: recipe_step}
"""
    )


@pytest.fixture(scope="module")
def built() -> tuple[Any, list[SessionSignals]]:
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    experts = [_session(i) for i in range(5)]
    return profile_from_sessions(experts, SkillProfileConfig(name="t"), definition=_definition()), experts


def test_repeated_phase_gets_its_own_band(built) -> None:  # type: ignore[no-untyped-def]
    from jangin.inference._skill import score_session

    prof, _ = built
    assert prof.step_names == ["stabilise", "etch", "purge", "etch#2"]
    first, second = prof.bands[("etch", "power_W")], prof.bands[("etch#2", "power_W")]
    assert np.median(first.median) == pytest.approx(400, rel=0.03)
    assert np.median(second.median) == pytest.approx(300, rel=0.03)
    # a second etch run at the first etch's level is a major deviation of etch#2 only
    sc = score_session(prof, _session(50, shift=("etch", 2, 0.33)))
    majors = {(d.step, d.channel, d.direction) for d in sc.deviations if d.severity != "minor"}
    assert majors == {("etch#2", "power_W", "above")}, sc.deviations
    clean = score_session(prof, _session(51))
    assert not [d for d in clean.deviations if d.severity != "minor"], clean.deviations
    assert clean.score - sc.score >= 20, (clean.score, sc.score)


def test_channel_selection(built) -> None:  # type: ignore[no-untyped-def]
    prof, _ = built
    dropped = prof.params["dropped_channels"]
    assert prof.scored_channels == ["flow_sccm", "power_W"] or sorted(prof.scored_channels) == [
        "flow_sccm",
        "power_W",
    ]
    assert dropped["const_V"] == "constant"
    assert dropped["power_cmd_W"].startswith("duplicate of power_W")
    assert dropped["flow_copy_sccm"].startswith("near-duplicate of flow_sccm")
    assert (
        prof.channels["power_W"]["display_name"] == "RF power" and prof.channels["power_W"]["weight"] == 1.0
    )


def test_channel_globs_and_unknown_glob() -> None:
    from jangin.core import TrainingError
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    experts = [_session(i) for i in range(3)]
    prof = profile_from_sessions(experts, SkillProfileConfig(channels=("power*",)), definition=_definition())
    assert sorted(prof.scored_channels) == ["power_W", "power_cmd_W"]  # the user's pick wins
    with pytest.raises(TrainingError, match="'nope_\\*' matches no channel"):
        profile_from_sessions(experts, SkillProfileConfig(channels=("nope_*",)), definition=_definition())


def test_calibration_is_stored_and_loo_quiet(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jangin.core.skill import SkillProfile
    from jangin.inference._skill import score_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    prof, experts = built
    cal = prof.params["calibration"]
    assert cal["method"] == "leave-one-out" and cal["loo_sessions"] == 5
    assert set(cal["half_sigma"]) == set(prof.scored_channels) and all(
        h >= 1 for h in cal["half_sigma"].values()
    )
    prof.save(tmp_path / "p")
    back = SkillProfile.load(tmp_path / "p")
    assert back.params["calibration"]["half_sigma"] == cal["half_sigma"]
    for i, x in enumerate(experts):
        others = profile_from_sessions(
            [e for j, e in enumerate(experts) if j != i], SkillProfileConfig(), definition=_definition()
        )
        sc = score_session(others, x)
        assert not [d for d in sc.deviations if d.severity != "minor"], (i, sc.deviations)
        assert sc.score >= 90, sc.score


def test_no_template_means_one_step_and_a_template_that_cannot_fit_is_not_confident(built) -> None:  # type: ignore[no-untyped-def]
    from jangin.core.skill import steps_from_signals

    prof, _ = built
    s = _session(60)
    bare = SessionSignals(s.session_id, s.channels, [], s.process)
    # no template in the definition: the whole session is one step, never a guess
    assert [(x.name, x.method) for x in steps_from_signals(bare, template=prof.steps)] == [
        ("session", "none")
    ]
    # a template the signals cannot fit (activity on a constant channel): confidence 0
    flat = steps_from_signals(
        bare, template=prof.steps, spec={"kind": "activity_motion", "activity": ["const_V"]}
    )
    assert max(x.confidence for x in flat) < 0.3, flat
    # a template on the power channel finds an on/off split, but durations nothing like the experts'
    odd = steps_from_signals(
        bare, template=prof.steps, spec={"kind": "activity_motion", "activity": ["power_W"], "motion": []}
    )
    assert min(x.confidence for x in odd) < 0.5, odd


def test_profiles_per_recipe(tmp_path: Path) -> None:
    from jangin.core import ModelManifest, ModelRegistry, NotFoundError
    from jangin.inference._skill import find_profile
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    reg = ModelRegistry(tmp_path)
    for recipe, shift in (("A", 0.0), ("B", 0.2)):
        experts = [_session(i, shift=("etch", 1, shift), recipe=recipe) for i in range(3)]
        prof = profile_from_sessions(experts, SkillProfileConfig(), definition=_definition())
        prof.condition = {"recipe": recipe}
        with reg.publish(
            ModelManifest(
                name=f"p-{recipe}",
                task="skill_profile",
                outputs={"process": "etch_test", "condition": {"recipe": recipe}},
                train_config={"condition_on": ["recipe"]},
            )
        ) as d:
            prof.save(d)
    name, prof = find_profile(reg, "etch_test", parameters={"recipe": "B"})
    assert name.startswith("p-B:") and prof.condition == {"recipe": "B"}
    with pytest.raises(NotFoundError, match=r"recipe \{'recipe': 'C'\}"):
        find_profile(reg, "etch_test", parameters={"recipe": "C"})
    with pytest.raises(NotFoundError, match="recipe"):
        find_profile(reg, "etch_test", parameters={})


def test_condition_label_bins() -> None:
    from jangin.core.skill import condition_label

    assert condition_label("recipe", {"recipe": "A"}) == ("recipe", "A")
    assert condition_label("rf_W:50", {"rf_W": "437.5"}) == ("rf_W", "400-450")
    assert condition_label("rf_W:50", {}) == ("rf_W", None)
