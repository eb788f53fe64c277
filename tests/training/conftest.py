"""Fixtures of the training tests: synthetic datasets and one trained detector per process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


def _synthetic() -> Any:
    # Loaded by path under one module name, so the inference tests share the same trained model.
    name = "jangin_tests_synthetic"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("synthetic.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


synthetic = _synthetic()


@pytest.fixture(scope="session", autouse=True)
def _caches_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Matplotlib's font cache (MPLCONFIGDIR) and anything under XDG_CACHE_HOME (e.g. ONNX Runtime's
    telemetry queue, were it on) go to tmp, where the tests can look at them."""
    import os

    os.environ.setdefault("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mpl")))
    os.environ.setdefault("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    os.environ.setdefault("JANGIN_TEST_ORT_PRELOADED", str(int("onnxruntime" in sys.modules)))


@pytest.fixture
def synth() -> Any:
    """The synthetic-data helpers (``make_detection_dataset``, ``draw``, ``encode``, ``CLASSES``)."""
    return synthetic


@pytest.fixture
def trained(network_guard: list, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A detector trained once per process (imgsz 64, 2 epochs), with the network blocked while it trains."""
    return synthetic.trained_detector(tmp_path_factory, network_guard)


def _load(name: str, file: str) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def adata() -> Any:
    """Synthetic anomaly and process data (``make_anomaly_dataset``, ``make_process_dataset``)."""
    return _load("jangin_tests_anomaly_data", "anomaly_data.py")
