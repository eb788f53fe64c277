"""Fixtures of the inference tests (the synthetic data and trained detector are in tests/conftest.py)."""

from __future__ import annotations

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


# -- the inspection server (real HTTP) ------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).parent))
import live as _live  # noqa: E402
import onnx_models as _onnx_models  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A dataset with the tiny ONNX detector (``colors``, ACTIVE) and anomaly model (``bright``), and a
    live server on it (flush every 0.2 s, OK images sampled 1 in 2). Yields the :class:`live.Live`."""
    from jangin.core import Dataset, ModelRegistry
    from jangin.inference._service import InferenceConfig

    base = tmp_path_factory.mktemp("served")
    ds = Dataset.create(base / "ds")
    reg = ModelRegistry(ds.models_dir)
    mv = _onnx_models.publish_detector(reg, tmp=base)
    reg.promote(mv.name, mv.version)
    _onnx_models.publish_anomaly(reg, tmp=base)
    rules = base / "rules.yaml"
    rules.write_text(
        "default:\n  ng_classes: [red]\n  min_conf: 0.5\n  doubtful: [0.3, 0.5]\n  anomaly_doubtful: [0.45, 0.55]\n"
        "stations:\n  st-strict: {min_conf: 0.2, doubtful: null}\n"
    )
    cfg = InferenceConfig(rules=rules, flush_s=0.2, ok_sample_every=2, max_pixels=4_000_000)
    srv = _live.start(ds.root, cfg)
    srv.ds = ds  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.fixture
def onnx_models() -> Any:
    """The tiny-ONNX-model helpers (``publish_detector``, ``publish_anomaly``, ``solid``)."""
    return _onnx_models


@pytest.fixture
def live() -> Any:
    """The live-server helpers (``start``, ``KEYS``)."""
    return _live
