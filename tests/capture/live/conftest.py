"""Fixtures of the live-source tests: real servers on loopback (``plant_sim``), started per module where
they are slow to start (the asyncua server builds its address space in seconds)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import plant_sim


@pytest.fixture(autouse=True)
def _quiet_servers() -> None:
    """asyncua and pymodbus log every reconnect attempt and packet at INFO/DEBUG: keep the failures readable."""
    for name in ("asyncua", "pymodbus"):
        logging.getLogger(name).setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def opcua_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[plant_sim.OpcUaSim]:
    """The simulated machine (see :class:`plant_sim.OpcUaSim`) on a free loopback port; it lets only
    ``operator`` / ``s3cret`` log in, with no security or Basic256Sha256 (its certificate in ``certs``)."""
    certs = tmp_path_factory.mktemp("opcua-certs")
    sim = plant_sim.OpcUaSim(fast=2, slow=2, user=("operator", "s3cret"), certs=certs).start()
    yield sim
    sim.close()


@pytest.fixture
def modbus_server() -> Iterator[plant_sim.ModbusSim]:
    sim = plant_sim.ModbusSim().start()
    yield sim
    sim.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[plant_sim.Mosquitto]:
    try:
        broker = plant_sim.Mosquitto(tmp_path).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield broker
    broker.stop()


@pytest.fixture
def sim() -> Any:
    """The helpers module (``words``, ``run_until``, ``Mosquitto``...)."""
    return plant_sim
