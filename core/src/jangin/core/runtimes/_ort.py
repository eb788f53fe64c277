"""The ONNX Runtime runtime: CPU, CUDA and TensorRT execution providers (the ones this build has)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from jangin.core._errors import ModelLoadError
from jangin.core._onnx import import_onnxruntime

__all__ = ["PREFERRED_PROVIDERS", "OrtRuntime", "ort_devices", "ort_errors", "ort_session"]

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
#: Runtime device name → the providers it asks for, best first.
_DEVICE_PROVIDERS = {
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider"),
    "cuda": ("CUDAExecutionProvider",),
    "cpu": (),
}


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


def ort_devices() -> list[str]:
    """The devices this onnxruntime build can run on: ``tensorrt``, ``cuda``, always ``cpu`` last."""
    try:
        available = set(import_onnxruntime().get_available_providers())
    except ImportError:
        return []
    out = [d for d, provs in _DEVICE_PROVIDERS.items() if provs and provs[0] in available]
    return [*out, "cpu"]


def ort_session(
    model: str | Path | bytes,
    providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    *,
    warmup_shape: Sequence[int] | None = None,
    threads: int = 0,
    warmup: bool = True,
) -> Any:
    """Create an ``onnxruntime.InferenceSession`` on the best of ``providers`` this build has.

    Args:
        model: Path of an ``.onnx`` file, or its bytes (so a file that was checksummed is what runs).
        providers: Providers (names, or ``(name, options)``) in order of preference; default
            TensorRT, CUDA, OpenVINO, CPU, keeping those this build has. CPU is always the fallback.
        warmup_shape: Input shape for one warm-up run; default the first input's shape when static.
        threads: Intra-op threads for the CPU provider; 0 lets ONNX Runtime use every core.
        warmup: Run once on zeros (the first run allocates and, on GPUs, compiles).

    Raises:
        ValueError: A provider that would send data off the box (Azure).
        ModelLoadError: The file is missing or not a model ONNX Runtime can run.
    """
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    wanted = list(providers) if providers is not None else list(PREFERRED_PROVIDERS)
    names = [p[0] if isinstance(p, tuple) else p for p in wanted]
    remote = sorted(set(names) & _REMOTE_PROVIDERS)
    if remote:
        raise ValueError(f"provider(s) {remote} send data off the box; Jangin runs on-premises only")
    chosen = [p for p, n in zip(wanted, names, strict=True) if n in available]
    missing = [n for n in names if n not in available]
    if providers is not None and missing:
        log.warning("onnxruntime has no %s; available: %s", ", ".join(missing), ", ".join(available))
    if "CPUExecutionProvider" not in [p[0] if isinstance(p, tuple) else p for p in chosen]:
        chosen.append("CPUExecutionProvider")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if os.environ.get("JANGIN_ORT_SPIN", "") != "1":
        # ORT's pool threads spin between runs by default: beside a server's event loop, cameras and log
        # writers that burns the cores they need (measured: 1.4-2x throughput at 1 and 8 HTTP clients on
        # 2 busy cores without spinning). JANGIN_ORT_SPIN=1 restores it for a box that only runs models.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
    if warmup:
        for inp in session.get_inputs():
            shape = list(warmup_shape) if warmup_shape is not None else inp.shape
            if not all(isinstance(d, int) and d > 0 for d in shape):
                return session
        feeds = {
            i.name: np.zeros(list(warmup_shape) if warmup_shape is not None else i.shape, _np_type(i.type))
            for i in session.get_inputs()
        }
        try:
            session.run(None, feeds)
        except ort_errors() as exc:
            raise ModelLoadError(f"warm-up run of {where} failed: {exc}") from exc
    log.info("loaded %s on %s", where, ", ".join(session.get_providers()))
    return session


def _np_type(ort_type: str) -> Any:
    return {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(uint8)": np.uint8,
        "tensor(int8)": np.int8,
        "tensor(bool)": np.bool_,
    }.get(ort_type, np.float32)


class OrtRuntime:
    """A model on ONNX Runtime. ``run`` is thread-safe (ONNX Runtime sessions are).

    On ``tensorrt``, the engine (FP16 for ``precision="fp16"``) is cached in ``cache_dir``, default
    ``trt_cache/`` beside a model given as a path (a model given as bytes without ``cache_dir`` is
    rebuilt at every load).

    Attributes:
        session: The ``onnxruntime.InferenceSession`` (for code that needs ONNX Runtime itself).
    """

    name = "onnxruntime"

    def __init__(
        self,
        model: Path | bytes,
        *,
        device: str | None = None,
        precision: str = "fp32",
        threads: int = 0,
        warmup: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        devices = ort_devices()
        if not devices:
            raise ModelLoadError(
                "onnxruntime is not installed", hint="pip install onnxruntime (jangin-inference has it)"
            )
        device = (device or devices[0]).lower()
        if device not in _DEVICE_PROVIDERS:
            raise ModelLoadError(
                f"onnxruntime has no device {device!r}", hint=f"use one of {', '.join(_DEVICE_PROVIDERS)}"
            )
        if device not in devices:
            raise ModelLoadError(
                f"this onnxruntime build cannot run on {device!r} (it has {', '.join(devices)})",
                hint="install onnxruntime-gpu with CUDA/TensorRT on a GPU box, or use device 'cpu'",
            )
        providers: list[str | tuple[str, dict[str, Any]]] = []
        if device == "tensorrt":
            opts: dict[str, Any] = {"trt_fp16_enable": precision == "fp16"}
            if precision == "int8":
                opts["trt_int8_enable"] = True
            cache = cache_dir or (model.parent / "trt_cache" if isinstance(model, Path) else None)
            if cache is not None:
                # Building an engine takes minutes: keep it beside the model.
                cache.mkdir(parents=True, exist_ok=True)
                opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache))
            providers.append(("TensorrtExecutionProvider", opts))
        if device in ("tensorrt", "cuda"):
            providers.append("CUDAExecutionProvider")
        providers.append("CPUExecutionProvider")
        self.session = ort_session(model, providers, threads=threads, warmup=warmup)
        self.device = device
        self.precision = precision
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes: list[list[int | str]] = [
            [d if isinstance(d, int) else str(d) for d in i.shape] for i in self.session.get_inputs()
        ]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.providers = list(self.session.get_providers())
        self._errors = ort_errors()

    def run(self, inputs: dict[str, npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        """Run the model; outputs in :attr:`output_names` order.

        Raises:
            InferenceError: ONNX Runtime refused the input.
        """
        from jangin.core._errors import InferenceError

        try:
            return list(self.session.run(None, inputs))
        except self._errors as exc:
            raise InferenceError(f"ONNX Runtime ({self.device}) failed: {exc}") from exc

    def __repr__(self) -> str:
        return f"OrtRuntime({self.device}, {self.precision}, {self.providers[0]})"
