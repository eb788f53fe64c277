"""Live coaching while a station is recorded over OPC UA: a simulated machine (an asyncua server on
loopback replaying a novice etch run) is recorded by the station recorder into a real server, and the
coaching alerts stream back over Server-Sent Events (the demo's live step, end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jangin.core import Dataset
from jangin.core.settings import get_settings

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
pytestmark = pytest.mark.slow


def test_coaching_alerts_stream_during_an_opc_ua_recording(tmp_path: Path) -> None:
    pytest.importorskip("asyncua")
    from jangin.core.process_definition import get_process
    from jangin.demo._etch import demo_etch, register_sample_processes
    from jangin.demo._live import demo_live

    ds = Dataset.create(tmp_path / "ds")
    register_sample_processes(ds, SAMPLE)
    settings = get_settings(dataset=ds.root)
    etch = demo_etch(ds, SAMPLE, tmp_path / "etch", settings=settings)
    profile = etch["skill"]["oxide_via"]["profile"]
    lines: list[str] = []
    live = demo_live(ds.root, SAMPLE, settings, tmp_path / "live", profile=profile, say=lines.append)

    assert live["source"].startswith("opcua"), live
    assert live["state"] == "processed", live
    assert live["samples"] > 1000 and live["events"] >= 2, live  # steps from the recipe-step tag
    assert live["n_alerts"] >= 1, (live, lines)
    definition = get_process(ds, "plasma_etch")
    assert definition is not None
    for alert in live["alerts"]:
        if alert.get("type") == "deviation":
            spec = definition.channel(alert["channel"])
            assert spec is not None and spec.role == "operator", alert  # never advice on machine channels
            assert alert["direction"] in alert["message"] and "than the experts" in alert["message"]
    # the recorded session landed in the dataset like an uploaded one
    got = ds.query(f"SELECT count(*) FROM sensor_samples WHERE session_id = '{live['session_id']}'")
    assert got.column(0)[0].as_py() == live["samples"]
