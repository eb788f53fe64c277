"""Shared fixtures. Tests synthesise their data; none reaches the network."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("gpu" in item.keywords for item in items) and not _has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


class OutboundConnection(AssertionError):
    """Raised by the network guard when code tries to reach a non-loopback address."""


def _is_loopback(address: object) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX paths
        return True
    if not (isinstance(address, tuple) and address):
        return False
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object]]]:
    """Block every outbound connection and DNS lookup that is not loopback; yield the attempts.

    Tests assert the list is empty: an attempt both fails (so the code under test notices) and is
    recorded (so a swallowed failure is still caught).
    """
    attempts: list[tuple[str, object]] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            attempts.append(("connect", address))
            raise OutboundConnection(f"outbound connection to {address!r} blocked by the test")
        real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            attempts.append(("connect_ex", address))
            return 111
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is not None and not _is_loopback((host,)):
            attempts.append(("getaddrinfo", host))
            raise socket.gaierror(socket.EAI_NONAME, f"DNS lookup of {host!r} blocked by the test")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


@pytest.fixture
def dataset(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh, empty dataset."""
    from jangin.core import Dataset

    return Dataset.create(tmp_path / "ds")


#: The pseudonym key every test runs with (there is no built-in default key: see Settings.site_secret).
TEST_SITE_KEY = "jangin-test-site-key-0123456789abcdef"


@pytest.fixture(scope="session", autouse=True)
def _site_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A site key and a JANGIN_HOME for the whole session (subprocesses inherit both); tests that need
    no key (or another one) change the variables with monkeypatch."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JANGIN_SITE_KEY", TEST_SITE_KEY)
        mp.setenv("JANGIN_HOME", str(tmp_path_factory.mktemp("jangin-session-home")))
        yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's ~/.jangin and settings."""
    home = tmp_path_factory.mktemp("jangin-home")
    monkeypatch.setenv("JANGIN_HOME", str(home))
    monkeypatch.delenv("JANGIN_DATASET", raising=False)
    os.environ.setdefault("YOLO_OFFLINE", "1")


# -- the synthetic detection data and one trained detector, shared by the training and inference tests --


def _synthetic():  # type: ignore[no-untyped-def]
    # Loaded by path under one module name, so every test folder shares the same trained model.
    import importlib.util
    import sys

    name = "jangin_tests_synthetic"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parent / "training" / "synthetic.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def synth():  # type: ignore[no-untyped-def]
    """The synthetic-data helpers (``make_detection_dataset``, ``draw``, ``encode``, ``CLASSES``)."""
    return _synthetic()


@pytest.fixture
def trained(network_guard: list, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A detector trained once per process (imgsz 64, 2 epochs), with the network blocked while it trains."""
    return _synthetic().trained_detector(tmp_path_factory, network_guard)
