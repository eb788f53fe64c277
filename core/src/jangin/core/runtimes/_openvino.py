"""The OpenVINO runtime: CPU, and GPU / NPU when ``Core().available_devices`` lists them.

Reads an ONNX model directly (OpenVINO's ONNX frontend) or an IR (``model.xml`` + ``model.bin``, as
written by :func:`save_ir`). Inference requests are pooled: :meth:`OpenVinoRuntime.run` may be called
from many threads at once.
"""

from __future__ import annotations

import logging
import queue
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from jangin.core._errors import InferenceError, ModelLoadError

__all__ = ["OpenVinoRuntime", "import_openvino", "openvino_devices", "save_ir"]

log = logging.getLogger(__name__)

MISSING_HINT = "pip install 'jangin-inference[openvino]' (or: pip install openvino)"


def import_openvino() -> Any:
    """Import ``openvino`` with its usage telemetry unreachable, and return the module.

    Only OpenVINO's model converter (``openvino.tools.ovc``) sends telemetry, through the
    ``openvino_telemetry`` package, and only when no consent file says otherwise. Jangin never calls the
    converter, and makes ``openvino_telemetry`` unimportable in this process so that nothing else can
    (the converter then falls back to its own stub).

    Raises:
        ModelLoadError: ``openvino`` is not installed; the hint names the extra.
    """
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    try:
        import openvino
    except ImportError as exc:
        raise ModelLoadError("the OpenVINO runtime needs the openvino package", hint=MISSING_HINT) from exc
    return openvino


def openvino_devices() -> list[str]:
    """OpenVINO devices on this box (``CPU``, ``GPU``, ``NPU`` …); empty when openvino is missing."""
    try:
        ov = import_openvino()
    except ModelLoadError:
        return []
    try:
        return list(ov.Core().available_devices)
    except RuntimeError as exc:  # a broken plugin must not break serving on ONNX Runtime
        log.warning("OpenVINO cannot list its devices: %s", exc)
        return []


def read_model(core: Any, model: Path | bytes, weights: bytes | None = None) -> Any:
    """An ``ov.Model`` from an ONNX file or its bytes, or an IR (``.xml`` path, or XML bytes + weights)."""
    ov = import_openvino()
    if weights is None:
        from jangin.core.runtimes import ONNX_ML_REASON, uses_onnx_ml

        blob = model if isinstance(model, bytes) else (model.read_bytes() if model.is_file() else b"")
        if blob[:5] != b"<?xml" and uses_onnx_ml(blob):
            raise ModelLoadError(
                f"OpenVINO cannot open {_where(model)}: {ONNX_ML_REASON}", hint="serve it on onnxruntime"
            )
    try:
        if isinstance(model, bytes):
            if weights is not None:
                return core.read_model(model=model, weights=ov.Tensor(np.frombuffer(weights, np.uint8)))
            # ONNX bytes: the frontend reads a file; a private temporary file keeps the bytes we hashed.
            import tempfile

            with tempfile.TemporaryDirectory(prefix="jangin-ov-") as d:
                p = Path(d) / "model.onnx"
                p.write_bytes(model)
                return core.read_model(str(p))
        if not model.is_file():
            raise ModelLoadError(f"model file {model} not found")
        return core.read_model(str(model))
    except RuntimeError as exc:
        raise ModelLoadError(f"OpenVINO cannot read {_where(model)}: {exc}") from exc


def save_ir(onnx_model: Path, out_xml: Path, *, fp16: bool) -> list[Path]:
    """Convert an ONNX file to OpenVINO IR (``out_xml`` + ``.bin``), weights in fp16 when ``fp16``.

    Uses the ONNX frontend and ``save_model``, never the telemetry-bearing converter.

    Returns:
        The files written (``.xml``, ``.bin``).
    """
    ov = import_openvino()
    model = read_model(ov.Core(), onnx_model)
    ov.save_model(model, str(out_xml), compress_to_fp16=fp16)
    return [out_xml, out_xml.with_suffix(".bin")]


class OpenVinoRuntime:
    """A model compiled by OpenVINO; thread-safe through a pool of inference requests.

    Args:
        model: ONNX file or bytes, or an IR ``.xml`` path (its ``.bin`` beside it).
        device: ``CPU`` (default), ``GPU``, ``NPU``, ``AUTO`` … as OpenVINO names them.
        precision: ``fp32`` runs in f32 (no bf16 down-casting on CPUs that could); ``fp16`` lets the
            device run f16 where it can; ``int8`` runs a quantised (QDQ ONNX or NNCF IR) model.
        threads: CPU inference threads; 0 lets OpenVINO decide.
        warmup: Run once on zeros when the input shape is static.
        hint: ``THROUGHPUT`` (default: several streams, for batches and many clients) or ``LATENCY``.
        weights: The IR's ``.bin`` bytes when ``model`` is the IR's XML bytes.
        cache_dir: OpenVINO's compiled-model cache (``CACHE_DIR``): a model compiled before loads from
            it in a fraction of the time (an INT8 YOLO11n: 7.8 s to compile, 2 s from the cache, on 2
            cores). Not used when the directory cannot be made.
    """

    name = "openvino"

    def __init__(
        self,
        model: Path | bytes,
        *,
        device: str | None = None,
        precision: str = "fp32",
        threads: int = 0,
        warmup: bool = True,
        hint: str = "THROUGHPUT",
        weights: bytes | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        ov = import_openvino()
        core = ov.Core()
        if cache_dir is not None:
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                core.set_property({"CACHE_DIR": str(cache_dir)})
            except (OSError, RuntimeError) as exc:  # a read-only model directory: compile every time
                log.info("no OpenVINO model cache in %s: %s", cache_dir, exc)
        devices = list(core.available_devices)
        device = (device or "CPU").upper()
        base = device.split(".")[0]
        if base not in ("AUTO", "MULTI", "HETERO") and not any(d.startswith(base) for d in devices):
            raise ModelLoadError(
                f"OpenVINO has no device {device!r} on this box (it has {', '.join(devices) or 'none'})",
                hint="use device 'CPU'",
            )
        m = read_model(core, model, weights)
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint.upper()}
        if base == "CPU":
            config["INFERENCE_PRECISION_HINT"] = "f16" if precision == "fp16" else "f32"
            if threads:
                config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = core.compile_model(m, device, config)
        except RuntimeError as exc:
            raise ModelLoadError(f"OpenVINO cannot compile {_where(model)} for {device}: {exc}") from exc
        self.device = device
        self.precision = precision
        self.input_names = [_port_name(p, i, "input") for i, p in enumerate(self.compiled.inputs)]
        self.input_shapes: list[list[int | str]] = [
            [d.get_length() if d.is_static else "?" for d in p.get_partial_shape()]
            for p in self.compiled.inputs
        ]
        self.output_names = [_port_name(p, i, "output") for i, p in enumerate(self.compiled.outputs)]
        try:
            n = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        except RuntimeError:
            n = 2
        self.pool_size = max(1, n)
        # A batch can be split over requests only when the batch dimension is dynamic, in and out.
        outs = [list(p.get_partial_shape()) for p in self.compiled.outputs]
        self._split = (
            len(self.input_shapes) == 1
            and bool(self.input_shapes[0])
            and self.input_shapes[0][0] == "?"
            and all(o and not o[0].is_static for o in outs)
        )
        self._pool: queue.Queue[Any] = queue.Queue()
        for _ in range(self.pool_size):
            self._pool.put(self.compiled.create_infer_request())
        if warmup and all(isinstance(d, int) for s in self.input_shapes for d in s):
            self.run(
                {
                    n_: np.zeros([int(d) for d in s], _np_type(p.get_element_type()))
                    for n_, s, p in zip(
                        self.input_names, self.input_shapes, self.compiled.inputs, strict=True
                    )
                }
            )
        log.info("compiled %s for OpenVINO %s (%s, %d requests)", _where(model), device, precision, n)

    def run(self, inputs: dict[str, npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        """Run the model; outputs in :attr:`output_names` order (copies, safe to keep).

        A batch is split over the idle inference requests (one per stream) and run at once: with the
        THROUGHPUT hint each stream has a share of the cores, so one request alone would leave the others
        idle (why a single caller saw OpenVINO slower than ONNX Runtime at batch 8).

        Raises:
            InferenceError: OpenVINO refused the input.
        """
        reqs = [self._pool.get()]
        try:
            feeds = {i: inputs[n] for i, n in enumerate(self.input_names)}
            n = len(feeds[0]) if len(self.input_names) == 1 and self._split else 1
            while len(reqs) < min(n, self.pool_size):
                try:
                    reqs.append(self._pool.get_nowait())
                except queue.Empty:
                    break
            if len(reqs) == 1:
                res = reqs[0].infer(feeds)
                return [np.array(res[p], copy=True) for p in self.compiled.outputs]
            bounds = np.linspace(0, n, len(reqs) + 1).astype(int)
            for r, a, b in zip(reqs, bounds[:-1], bounds[1:], strict=True):
                r.start_async({0: feeds[0][a:b]})
            for r in reqs:
                r.wait()
            return [
                np.concatenate([np.asarray(r.get_tensor(p).data) for r in reqs])
                for p in self.compiled.outputs
            ]
        except KeyError as exc:
            raise InferenceError(f"OpenVINO input {exc} missing (model takes {self.input_names})") from exc
        except (RuntimeError, TypeError, ValueError) as exc:
            raise InferenceError(f"OpenVINO ({self.device}) failed: {exc}") from exc
        finally:
            for r in reqs:
                self._pool.put(r)

    def __repr__(self) -> str:
        return f"OpenVinoRuntime({self.device}, {self.precision}, {self.pool_size} requests)"


def _port_name(port: Any, i: int, kind: str) -> str:
    try:
        return str(port.get_any_name())
    except RuntimeError:
        return f"{kind}{i}"


def _np_type(et: Any) -> Any:
    name = str(et.get_type_name()) if hasattr(et, "get_type_name") else str(et)
    return {"f32": np.float32, "f16": np.float16, "i64": np.int64, "i32": np.int32, "u8": np.uint8}.get(
        name, np.float32
    )


def _where(model: Path | bytes) -> str:
    return "<bytes>" if isinstance(model, bytes) else str(model)
