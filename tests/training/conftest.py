"""Fixtures of the training tests (the synthetic data and trained detector are in tests/conftest.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def _caches_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Matplotlib's font cache (MPLCONFIGDIR) and anything under XDG_CACHE_HOME (e.g. ONNX Runtime's
    telemetry queue, were it on) go to tmp, where the tests can look at them."""
    import os

    os.environ.setdefault("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mpl")))
    os.environ.setdefault("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


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
