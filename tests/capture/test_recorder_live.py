"""The station recorder against a real OPC UA server on loopback (the simulated machine of
``tests/capture/live/plant_sim.py``): sessions per machine cycle with steps from the recipe-step tag,
and a server outage recorded as a gap with no samples inside it."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip("asyncua")
sys.path.insert(0, str(Path(__file__).parent / "live"))
import plant_sim

from jangin.capture._recorder import Recorder
from jangin.capture._recorder_sink import DatasetSink
from jangin.capture._station import load_station
from jangin.core import Dataset
from jangin.core.settings import get_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def machine() -> Iterator[plant_sim.OpcUaSim]:
    for name in ("asyncua", "pymodbus"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sim = plant_sim.OpcUaSim(fast=1, slow=0).start()
    yield sim
    sim.close()


def _station(tmp_path: Path, url: str, **kw: Any) -> Any:
    cfg = {
        "station": "cell-7",
        "site": "plant",
        "dataset": str(tmp_path / "ds"),
        "sources": {
            "plc": {
                "type": "opcua",
                "url": url,
                "watchdog_s": 0.5,
                "reconnect_max_s": 0.5,
                "publishing_interval_ms": 50,
                "channels": [
                    {"name": "temp", "node": "ns=2;s=Machine.Temp", "unit": "degC"},
                    {"name": "fast0", "node": "ns=2;s=Machine.Fast.0", "sampling_interval_ms": 10},
                    {"name": "cycle_active", "node": "ns=2;s=Machine.cycle_active"},
                    {"name": "recipe_step", "node": "ns=2;s=Machine.recipe_step"},
                ],
            }
        },
        **kw,
    }
    return load_station(text=yaml.safe_dump(cfg))


def _record(st: Any, duration: float, during: Any = None) -> tuple[Any, Dataset]:
    sink = DatasetSink(st.dataset, get_settings(dataset=st.dataset), st.station, retry_s=0.5)
    rec = Recorder(st, sink, say=lambda m: None)
    if during is not None:
        threading.Thread(target=during, daemon=True).start()
    res = rec.run(duration)
    sink.close()
    return res, Dataset.open(st.dataset)


def test_one_session_per_machine_cycle_with_steps_from_opc_ua(tmp_path: Path, machine: Any) -> None:
    st = _station(
        tmp_path,
        machine.url,
        session={
            "trigger": "cycle_active == 1",
            "step_tag": "recipe_step",
            "step_names": {1: "load", 2: "press", 3: "eject"},
        },
    )
    _, ds = _record(st, 5.5)
    rows = ds.query(
        "SELECT session_id, status, started_at, ended_at FROM current_sessions ORDER BY started_at"
    ).to_pylist()
    assert len(rows) >= 2 and all(r["status"] == "processed" for r in rows)
    whole = 0
    for r in rows:
        sid = r["session_id"]
        active = (
            ds.query(
                f"SELECT value FROM sensor_samples WHERE session_id = '{sid}' AND channel = 'cycle_active'"
            )
            .column("value")
            .to_pylist()
        )
        assert active and set(active) == {1.0}  # only samples inside the cycle
        n = (
            ds.query(
                f"SELECT count(*) n FROM sensor_samples WHERE session_id = '{sid}' AND channel = 'fast0'"
            )
            .column("n")[0]
            .as_py()
        )
        if (r["ended_at"] - r["started_at"]).total_seconds() > 0.8:  # a whole cycle (1 s), not a cut one
            whole += 1
            assert n > 20  # Fast.0 changes at 100 Hz
        steps = (
            ds.query(
                f"SELECT name FROM events WHERE session_id = '{sid}' AND kind = 'step_start' ORDER BY ts"
            )
            .column("name")
            .to_pylist()
        )
        assert steps and set(steps) <= {"load", "press", "eject"}
    assert whole >= 1


def test_an_opc_ua_server_outage_is_a_gap_without_samples(tmp_path: Path, machine: Any) -> None:
    import time

    def outage() -> None:
        time.sleep(1.5)
        machine.stop()
        time.sleep(1.5)
        machine.restart()

    res, ds = _record(_station(tmp_path, machine.url), 6.0, during=outage)
    assert len(res.sessions) == 1 and res.gaps >= 1
    sid = res.sessions[0]
    gaps = ds.query(
        f"SELECT value, epoch_us(segment_start) a, epoch_us(segment_end) b FROM events WHERE session_id = '{sid}' AND name = 'gap'"
    ).to_pylist()
    assert gaps and '"source": "plc"' in gaps[0]["value"]
    a, b = gaps[0]["a"], gaps[0]["b"]
    assert b - a > 1_000_000  # the server was away 1.5 s
    us = (
        ds.query(f"SELECT epoch_us(ts) us FROM sensor_samples WHERE session_id = '{sid}'")
        .column("us")
        .to_numpy()
    )
    assert len(us) and not ((us > a) & (us < b)).any()  # nothing interpolated inside the gap
    assert (us < a).any() and (us > b).any()  # recorded before and after
    assert np.isfinite(us).all()
