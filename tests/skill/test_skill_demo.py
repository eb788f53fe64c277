"""The demo's skill step on the sample sessions: profile, scores, coaching reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_skill(skill_ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jangin.core import ModelRegistry
    from jangin.demo._skill import demo_skill

    ds, ids = skill_ds
    res = demo_skill(ds, tmp_path / "coaching", name="demo-skill")
    assert res["profile"].startswith("demo-skill:v") and res["process"] == "mig_butt_weld"
    assert sorted(res["experts"]) == sorted(ids[k] for k in ("weld-01", "weld-03", "weld-05"))
    assert ModelRegistry(ds.models_dir).active("demo-skill") == res["profile"].split(":")[1]
    by = {r["session_id"]: r for r in res["sessions"]}
    novices = [by[ids[k]] for k in ("weld-02", "weld-04")]
    experts = [by[ids[k]] for k in ("weld-01", "weld-03", "weld-05")]
    assert all(r["loso"] and r["report"] is None and r["deviations_major"] == 0 for r in experts)
    # the novices score below every expert scored leave-one-out
    assert max(r["score"] for r in novices) < min(r["score"] for r in experts), res["sessions"]
    for r in novices:
        page = (tmp_path / "coaching" / r["report"]).read_text()
        shown = re.search(r"(\d+)<small>of 100</small>", page)
        assert page.count("data:image/png;base64,") >= 5 and shown and abs(int(shown[1]) - r["score"]) <= 1
        assert r["deviations_major"] >= 1
    assert any("undercut" in t for t in res["outcomes"])
    # (no timing assertion: build and score times are measured in bench/bench_skill.py)
    assert res["build_s"] >= 0 and res["score_s"] >= 0
