"""ONNX Runtime sessions: the best execution provider this box has, loaded and warmed up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jangin.core import ModelLoadError
from jangin.core._onnx import import_onnxruntime

__all__ = ["PREFERRED_PROVIDERS", "import_onnxruntime", "load_session", "ort_errors"]

log = logging.getLogger(__name__)

#: Tried in this order; the first ones this onnxruntime build has are used (CPU always last).
PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
#: Providers that send the model or data elsewhere: never used on the line.
_REMOTE_PROVIDERS = frozenset({"AzureExecutionProvider"})


def ort_errors() -> tuple[type[BaseException], ...]:
    """The exception types ONNX Runtime raises (its own classes derive from ``Exception`` directly)."""
    import_onnxruntime()
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    own = tuple(
        v
        for v in vars(state).values()
        if isinstance(v, type) and issubclass(v, Exception) and v.__module__ == state.__name__
    )
    return (*own, RuntimeError, ValueError, OSError)


def load_session(
    model: str | Path | bytes,
    providers: Sequence[str] | None = None,
    *,
    warmup_shape: Sequence[int] | None = None,
    threads: int = 0,
) -> Any:
    """Create an ONNX Runtime session on the best available execution provider.

    Args:
        model: Path of an ``.onnx`` file, or its bytes (so a file that was checksummed is what runs).
        providers: Providers to use, in order of preference; default TensorRT, CUDA, OpenVINO, CPU,
            keeping those this onnxruntime build has. CPU is always added as the fallback.
        warmup_shape: Input shape for one warm-up run (the first run allocates and, on GPUs, compiles);
            default the model's input shape when it is fully static, else no warm-up.
        threads: Intra-op threads for the CPU provider; 0 lets ONNX Runtime use every core.

    Returns:
        An ``onnxruntime.InferenceSession``.

    Raises:
        ValueError: A provider that would send data off the box (Azure).
        ModelLoadError: The file is missing or not a model ONNX Runtime can run.
    """
    import numpy as np

    ort = import_onnxruntime()

    available = ort.get_available_providers()
    wanted = list(providers) if providers is not None else list(PREFERRED_PROVIDERS)
    remote = sorted(set(wanted) & _REMOTE_PROVIDERS)
    if remote:
        raise ValueError(f"provider(s) {remote} send data off the box; Jangin runs on-premises only")
    chosen = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if providers is not None and missing:
        log.warning("onnxruntime has no %s; available: %s", ", ".join(missing), ", ".join(available))
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    where = "<bytes>" if isinstance(model, bytes) else str(model)
    if not isinstance(model, bytes) and not Path(model).is_file():
        raise ModelLoadError(f"model file {where} not found")
    try:
        session = ort.InferenceSession(
            model if isinstance(model, bytes) else str(model), opts, providers=chosen
        )
    except ort_errors() as exc:
        raise ModelLoadError(f"ONNX Runtime cannot load {where}: {exc}") from exc
    inp = session.get_inputs()[0]
    shape = list(warmup_shape) if warmup_shape is not None else inp.shape
    if all(isinstance(d, int) and d > 0 for d in shape):
        try:
            session.run(None, {inp.name: np.zeros(shape, dtype=np.float32)})
        except ort_errors() as exc:
            raise ModelLoadError(f"warm-up run of {where} with input {shape} failed: {exc}") from exc
    log.info("loaded %s on %s", where, ", ".join(session.get_providers()))
    return session
