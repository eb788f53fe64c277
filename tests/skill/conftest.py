"""The sample sessions imported once for the skill tests (frames every 2 s, for the coaching reports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SESSIONS = Path(__file__).resolve().parents[2] / "sample_data" / "sessions"


@pytest.fixture(scope="session")
def skill_ds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, str]]:
    """(dataset with the five sample sessions, {session key: session id})."""
    from jangin.capture import import_sessions
    from jangin.core import Dataset

    ds = Dataset.create(tmp_path_factory.mktemp("skill") / "ds")
    import_sessions(ds, SESSIONS, frame_interval_s=2.0, deidentify=False, keep_video=False)
    rows = ds.query("SELECT session_id, meta_json FROM current_sessions").to_pylist()
    return ds, {json.loads(r["meta_json"])["session_key"]: r["session_id"] for r in rows}


@pytest.fixture(scope="session")
def welding_definition() -> Any:
    """The welding process definition the held-out harness uses (the sample's YAML when it is there)."""
    return _heldout().welding_adapter().definition


@pytest.fixture(scope="session")
def harness() -> Any:
    """bench/bench_skill_heldout.py (the held-out harness) as a module."""
    return _heldout()


def _heldout() -> Any:
    """bench/bench_skill_heldout.py as a module (the held-out harness the tests share with the bench)."""
    import importlib.util
    import sys

    name = "_jangin_bench_skill_heldout"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_skill_heldout.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def nudge_profile() -> Any:
    """A one-step profile (20 Hz) whose experts raise ``power`` by 8-12 % (usual 10 %) 0.5-1.7 s after
    ``temp`` falls through 100; its band is 100 W +- 3."""
    import numpy as np

    from jangin.core.skill import AdjustmentRule, Band, SkillProfile, StepProfile

    n = 100
    rule = AdjustmentRule("power", 0.1, "temp", 100.0, -1, 0.5, 1.7, 5, 5, 0.08, 0.12, steps=["run"])
    return SkillProfile(
        process="p",
        channels={"power": {"role": "scored", "unit": "W"}, "temp": {"role": "context", "unit": "degC"}},
        steps=[StepProfile("run", 0, [20.0] * 5)],
        bands={("run", "power"): Band(np.full(n, 100.0), np.full(n, 97.0), np.full(n, 103.0))},
        adjustments=[rule],
        sessions=list("abcde"),
        n_points=n,
        bin_hz=20.0,
        params={"calibration": {"false_major_rate": 0.05}},
    )
