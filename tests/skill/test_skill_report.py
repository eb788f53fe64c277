"""Coaching reports: self-contained HTML with the plots, plain-language advice and frames."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.mark.slow
def test_coaching_report_of_a_novice(skill_ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jangin.core.skill import read_session
    from jangin.inference._skill import score_session
    from jangin.inference._skill_report import write_report
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    ds, ids = skill_ds
    prof = profile_from_sessions(
        [read_session(ds, ids[k]) for k in ("weld-01", "weld-03", "weld-05")],
        SkillProfileConfig(process="mig_butt_weld"),
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
    assert re.search(r"In step \d \(segment_3\) you travelled \d+ % faster than the experts", page)
    assert "missed" in page and "plate temp rose above" in page
    assert "preceded 1 of 1 undercut" in page
