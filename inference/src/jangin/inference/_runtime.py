"""ONNX Runtime sessions for the serving code (thin wrappers over :mod:`jangin.core.runtimes`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jangin.core._onnx import import_onnxruntime
from jangin.core.runtimes import Runtime, available_runtimes, open_artifact, open_runtime
from jangin.core.runtimes._ort import PREFERRED_PROVIDERS, ort_errors, ort_session

__all__ = [
    "PREFERRED_PROVIDERS",
    "Runtime",
    "available_runtimes",
    "import_onnxruntime",
    "load_session",
    "open_artifact",
    "open_runtime",
    "ort_errors",
]


def load_session(
    model: str | Path | bytes,
    providers: Sequence[str] | None = None,
    *,
    warmup_shape: Sequence[int] | None = None,
    threads: int = 0,
) -> Any:
    """Create an ONNX Runtime session on the best available execution provider.

    Kept for code written before :func:`jangin.core.runtimes.open_runtime`; new code uses that.

    Args:
        model: Path of an ``.onnx`` file, or its bytes (so a file that was checksummed is what runs).
        providers: Providers to use, in order of preference; default TensorRT, CUDA, OpenVINO, CPU,
            keeping those this onnxruntime build has. CPU is always added as the fallback.
        warmup_shape: Input shape for one warm-up run; default the model's input shape when static.
        threads: Intra-op threads for the CPU provider; 0 lets ONNX Runtime use every core.

    Returns:
        An ``onnxruntime.InferenceSession``.

    Raises:
        ValueError: A provider that would send data off the box (Azure).
        ModelLoadError: The file is missing or not a model ONNX Runtime can run.
    """
    return ort_session(model, providers, warmup_shape=warmup_shape, threads=threads)
