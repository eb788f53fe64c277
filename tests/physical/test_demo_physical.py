"""The demo step: an export of the expert sessions and one .rrd, linked from the report; skippable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def test_demo_step_writes_and_links_both(press: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jangin.demo._physical import demo_physical

    said: list[str] = []
    res = demo_physical(press, tmp_path, where="skill_level = 'expert'", fps=5, say=said.append)
    assert res["episodes"] == 2 and (tmp_path / "lerobot/meta/info.json").is_file()
    pytest.importorskip("rerun")
    assert res["rrd"] and Path(res["rrd"]).stat().st_size > 0
    hrefs = [h for _, h in res["section"]["links"]]
    assert hrefs == ["../lerobot/README.md", "../session.rrd"]
    assert len(said) == 2
    monkeypatch.setenv("JANGIN_DEMO_SKIP", "etch,physical")
    assert demo_physical(press, tmp_path / "again") == {}
    assert not (tmp_path / "again").exists()
