"""Coaching reports: self-contained HTML with the plots, plain-language advice and frames."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.mark.slow
def test_coaching_report_of_a_novice(skill_ds, welding_definition, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jangin.core.skill import read_session
    from jangin.inference._skill import score_session
    from jangin.inference._skill_report import write_report
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    ds, ids = skill_ds
    prof = profile_from_sessions(
        [read_session(ds, ids[k]) for k in ("weld-01", "weld-03", "weld-05")],
        SkillProfileConfig(process="mig_butt_weld"),
        definition=welding_definition,
    )
    sig = read_session(ds, ids["weld-02"])
    sc = score_session(prof, sig, profile_name="sk:v1")
    path, _ = write_report(
        ds, ids["weld-02"], tmp_path / "r.html", profile=("sk:v1", prof), score=sc, sig=sig
    )
    page = path.read_text()
    assert page.startswith("<!doctype html>")
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""(src|href)=['"](https?:|//)""", page)
    assert "<link" not in page and "@import" not in page
    plots = re.findall(r"data:image/png;base64,", page)
    assert len(plots) == len(prof.scored_channels)
    assert "data:image/jpeg;base64," in page  # the frame nearest a major deviation
    assert f"{sc.score:.0f}<small>of 100</small>" in page and "sk:v1" in page
    # plain language: the planted travel-speed deviation of weld-02 (segment_3, undercut)
    # (words from the process definition: display name, ratio quantity → %, "faster")
    assert re.search(
        r"In step \d \(segment 3\) (you travelled faster than the experts by \d+ %|travel speed: \d+ % faster than the experts)",
        page,
    ), page[:3000]
    assert "missed" in page and "plate temperature rose above" in page
    # the deviations that preceded defects read in the definition's words, not raw keys
    section = page.split("Deviations and defects", 1)[1].split("</section>", 1)[0]
    assert re.search(r"Step \d \(segment 3\): travel speed above the experts&#x27;", section), section
    assert "preceded 1 of 1 undercut" in section and "travel_speed_mm_s" not in section


def test_advice_in_the_process_words() -> None:
    """Interval quantities as absolute differences, ratio ones as %, the definition's direction
    words; no advice on a channel the operator does not control; neutral words without a definition."""
    import numpy as np

    from jangin.core.skill import SkillProfile, Step, StepProfile
    from jangin.inference._skill import Deviation, SkillScore
    from jangin.inference._skill_report import (
        coaching_sentences,
        difference_words,
        machine_notes,
        outcome_words,
    )

    chans = {
        "ang": {
            "unit": "deg",
            "display_name": "tool angle",
            "quantity": "interval",
            "higher": "steeper",
            "lower": "flatter",
            "advice": True,
            "role": "scored",
            "weight": 1.0,
        },
        "pwr": {
            "unit": "W",
            "display_name": "RF power",
            "quantity": "ratio",
            "higher": "more RF power",
            "lower": "less RF power",
            "advice": True,
            "role": "scored",
            "weight": 1.0,
        },
        "valve": {
            "unit": "%",
            "display_name": "throttle valve",
            "quantity": "ratio",
            "advice": False,
            "role": "scored",
            "weight": 0.25,
        },
        "plain": {"unit": "A", "role": "scored"},
    }
    prof = SkillProfile("p", chans, [StepProfile("s1", 0, [10.0, 11.0])], {})
    assert difference_words(prof, "ang", 27.0, 15.0) == "12.0 deg steeper"
    assert difference_words(prof, "ang", 5.0, 15.0) == "10.0 deg flatter"
    assert difference_words(prof, "pwr", 448.0, 400.0) == "12 % more RF power"
    assert difference_words(prof, "plain", 90.0, 100.0) == "10 % lower"
    devs = [
        Deviation("s1", c, 0, 3_000_000, "above", v, e, 1.0, 2.0, "major")
        for c, v, e in (("ang", 27.0, 15.0), ("valve", 60.0, 40.0), ("pwr", 448.0, 400.0))
    ]
    sc = SkillScore("x", "p:v1", 70.0, [Step("s1", 0, 10_000_000)], devs, [], [])
    text = " ".join(coaching_sentences(sc, prof))
    assert "tool angle: 12.0 deg steeper than the experts" in text and "%" not in text.split("RF power")[0]
    assert "RF power: 12 % more RF power than the experts" in text
    chans["pwr"]["higher"] = "set more RF power"  # a verb phrase is said of the person
    assert "you set more RF power than the experts by 12 %" in " ".join(coaching_sentences(sc, prof))
    assert "throttle valve" not in text  # machine state: no advice
    assert machine_notes(sc, prof) and "throttle valve" in machine_notes(sc, prof)[0]
    assert np.isfinite(sc.score)
    row = {
        "step": "s1",
        "channel": "ang",
        "direction": "below",
        "defect": "crack",
        "preceded": 2,
        "defects": 3,
    }
    assert (
        outcome_words(prof, row)
        == "Step 1 (s1): tool angle below the experts' band preceded 2 of 3 crack defect(s)"
    )
    row.update(channel="", direction="shorter", step="etch#2")
    assert (
        outcome_words(prof, row)
        == "Etch, 2nd time: the step shorter than the experts' preceded 2 of 3 crack defect(s)"
    )
