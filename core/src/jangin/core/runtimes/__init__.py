"""Pluggable model runtimes: ONNX Runtime (CPU, CUDA, TensorRT) and OpenVINO (CPU, GPU, NPU).

Training (the parity gate) and inference (serving) open models through this one API::

    rt = open_runtime(Path("model.onnx"))                        # fp32 ONNX Runtime, best device
    rt = open_runtime(Path("openvino-int8/model.xml"), runtime="openvino", precision="int8")
    rt = open_artifact(version_dir, manifest)                    # the best artifact this box can run
    outputs = rt.run({rt.input_names[0]: batch})                 # thread-safe

Importing this package is cheap: ``onnxruntime`` and ``openvino`` load when a runtime is opened.
``openvino`` is optional (``pip install 'jangin-inference[openvino]'``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from jangin.core._errors import ModelLoadError

if TYPE_CHECKING:
    import numpy.typing as npt

    from jangin.core.artifacts import ModelManifest

__all__ = [
    "RUNTIMES",
    "Runtime",
    "available_runtimes",
    "open_artifact",
    "open_runtime",
    "runtime_preference",
    "uses_onnx_ml",
]

log = logging.getLogger(__name__)

RUNTIMES = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "fp16", "int8")


@runtime_checkable
class Runtime(Protocol):
    """A loaded model on one runtime and device. ``run`` is thread-safe."""

    name: str  #: ``onnxruntime`` | ``openvino``
    precision: str  #: ``fp32`` | ``fp16`` | ``int8``
    device: str  #: ``cpu`` | ``cuda`` | ``tensorrt`` (ONNX Runtime); ``CPU`` | ``GPU`` | ``NPU`` (OpenVINO)
    input_names: list[str]
    input_shapes: list[list[int | str]]
    output_names: list[str]

    def run(self, inputs: dict[str, npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        """Run on ``{input name: array}``; the outputs in ``output_names`` order."""
        ...


def available_runtimes() -> list[tuple[str, str]]:
    """``[(runtime, device)]`` this box can run, best first within each runtime.

    ONNX Runtime: ``tensorrt`` and ``cuda`` when this build has those providers, always ``cpu``.
    OpenVINO (when installed): every device in ``Core().available_devices``.
    """
    from jangin.core.runtimes._openvino import openvino_devices
    from jangin.core.runtimes._ort import ort_devices

    return [("onnxruntime", d) for d in ort_devices()] + [("openvino", d) for d in openvino_devices()]


def uses_onnx_ml(model: bytes) -> bool:
    """Whether ONNX bytes hold a node of the ``ai.onnx.ml`` operator domain (tree ensembles, scalers …:
    what skl2onnx writes for process models). OpenVINO has no conversion rule for those operators.

    Looks for the serialised ``NodeProto.domain`` field (field 7, 10 bytes: ``0x3a 0x0a``) so that
    ``onnx`` is not needed; a model that only imports the domain (ONNX Runtime's quantiser adds it) is
    not one.
    """
    return b"\x3a\x0aai.onnx.ml" in model


#: OpenVINO's compiled-model cache inside a model version directory (like ``trt_cache/`` for TensorRT).
OV_CACHE = "ov_cache"

#: Why a model that :func:`uses_onnx_ml` is never opened on OpenVINO.
ONNX_ML_REASON = "it uses ai.onnx.ml operators (tree ensembles), which OpenVINO cannot run"


def open_runtime(
    model: Path | bytes,
    *,
    runtime: str = "onnxruntime",
    device: str | None = None,
    precision: str = "fp32",
    threads: int = 0,
    warmup: bool = True,
    cache_dir: Path | None = None,
) -> Runtime:
    """Load a model on one runtime.

    Args:
        model: An ``.onnx`` file or its bytes; for OpenVINO also an IR ``.xml`` (``.bin`` beside it).
        runtime: ``onnxruntime`` or ``openvino``.
        device: ONNX Runtime: ``cpu``, ``cuda``, ``tensorrt`` (default the best this build has);
            OpenVINO: ``CPU``, ``GPU``, ``NPU``, ``AUTO`` (default ``CPU``).
        precision: ``fp32``, ``fp16`` or ``int8``: what the model file holds, and for TensorRT and
            OpenVINO the precision the device may compute in (TensorRT builds an FP16 engine for fp16,
            cached in ``trt_cache/`` beside a model given as a path).
        threads: CPU threads (0: the runtime decides, usually every core).
        warmup: Run once on zeros when the input shape is static.
        cache_dir: OpenVINO only: its compiled-model cache (see :class:`OpenVinoRuntime`).

    Raises:
        ModelLoadError: Unknown runtime or precision, runtime not installed (the hint names the extra),
            device missing, or a model the runtime cannot load.
    """
    if precision not in PRECISIONS:
        raise ModelLoadError(f"unknown precision {precision!r}", hint=f"use one of {', '.join(PRECISIONS)}")
    if runtime == "onnxruntime":
        from jangin.core.runtimes._ort import OrtRuntime

        return OrtRuntime(model, device=device, precision=precision, threads=threads, warmup=warmup)
    if runtime == "openvino":
        from jangin.core.runtimes._openvino import OpenVinoRuntime

        if isinstance(model, Path) and model.suffix == ".xml":
            xml, bin_ = model.read_bytes(), _read(model.with_suffix(".bin"))
            return OpenVinoRuntime(
                xml,
                device=device,
                precision=precision,
                threads=threads,
                warmup=warmup,
                weights=bin_,
                cache_dir=cache_dir,
            )
        return OpenVinoRuntime(
            model, device=device, precision=precision, threads=threads, warmup=warmup, cache_dir=cache_dir
        )
    raise ModelLoadError(f"unknown runtime {runtime!r}", hint=f"use one of {', '.join(RUNTIMES)}")


def runtime_preference(prefer: Sequence[str] | str | None = None) -> list[tuple[str, str | None]]:
    """Parse a preference (``"openvino:int8,onnxruntime"``) into ``[(runtime, precision or None)]``.

    ``None`` reads ``JANGIN_RUNTIME`` (``Settings.runtime``).

    Raises:
        ModelLoadError: An unknown runtime or precision.
    """
    if prefer is None:
        from jangin.core.settings import get_settings

        prefer = get_settings().runtime
    items = prefer.split(",") if isinstance(prefer, str) else list(prefer)
    out: list[tuple[str, str | None]] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        rt, _, prec = item.partition(":")
        if rt not in RUNTIMES or (prec and prec not in PRECISIONS):
            raise ModelLoadError(
                f"runtime preference {item!r} is not runtime[:precision]",
                hint=f"runtimes {', '.join(RUNTIMES)}; precisions {', '.join(PRECISIONS)}",
            )
        out.append((rt, prec or None))
    return out


def open_artifact(
    model_dir: Path,
    manifest: ModelManifest | dict[str, Any],
    *,
    prefer: Sequence[str] | None = None,
    threads: int = 0,
) -> Runtime:
    """Open the best runtime artifact of a model version that this box can run.

    Candidates are the manifest's ``runtimes`` entries that passed the parity gate, and the fp32
    ``model.onnx`` on ONNX Runtime. Order: the configured preference first (``prefer``, else
    ``JANGIN_RUNTIME``), then by the throughput measured at export (fastest first), the fp32 ONNX
    model last. Runtimes or devices this box lacks are skipped. Each file's sha256 is checked against
    the manifest, and the bytes that were hashed are the bytes loaded.

    Args:
        model_dir: The version directory (``models/<name>/<version>``).
        manifest: Its manifest.
        prefer: ``["openvino:int8", "onnxruntime"]`` …; default ``Settings.runtime``.
        threads: CPU threads for the runtime (0: its default).

    Returns:
        The opened runtime; ``artifact`` on it names the entry used (``runtime:precision``).

    Raises:
        ModelLoadError: A file does not match its checksum (refused, never skipped), or nothing can run.
    """
    from jangin.core.artifacts import ModelManifest, RuntimeArtifact

    m = manifest if isinstance(manifest, ModelManifest) else ModelManifest.model_validate(manifest)
    order = runtime_preference(prefer)
    have = {rt for rt, _ in available_runtimes()}
    base = RuntimeArtifact(
        runtime="onnxruntime",
        precision="fp32",
        device_hint="",
        files=["model.onnx"],
        sha256={"model.onnx": m.files.get("model.onnx", "")},
        throughput=max((r.fp32_throughput or 0.0 for r in m.runtimes), default=0.0),
    )

    def rank(r: RuntimeArtifact) -> int:
        for i, (rt, prec) in enumerate(order):
            if r.runtime == rt and (prec is None or r.precision == prec):
                return i
        return len(order)

    cands = [r for r in m.runtimes if r.parity.get("passed", True)]
    cands.sort(key=lambda r: -(r.throughput or 0.0))
    # Not configured and not measured faster than the fp32 ONNX model: never chosen over it.
    cands = [r for r in cands if rank(r) < len(order) or (r.throughput or 0.0) > (base.throughput or 0.0)]
    cands.append(base)
    cands.sort(key=rank)  # stable: throughput order within each preference rank
    tried: list[str] = []
    if any(rt == "openvino" for rt, _ in order) and not any(r.runtime == "openvino" for r in cands):
        onnx_path = Path(model_dir) / "model.onnx"
        if onnx_path.is_file() and uses_onnx_ml(onnx_path.read_bytes()):
            tried.append(f"openvino ({ONNX_ML_REASON})")
    for r in cands:
        label = f"{r.runtime}:{r.precision}"
        if r.runtime not in have:
            tried.append(f"{label} (not installed)")
            continue
        blobs = [_verified(model_dir, rel, r.sha256.get(rel, "")) for rel in r.files]
        device = None if r.runtime == "onnxruntime" or r.device_hint in ("", "cpu") else r.device_hint
        try:
            if r.runtime == "openvino":
                from jangin.core.runtimes._openvino import OpenVinoRuntime

                rt: Any = OpenVinoRuntime(
                    blobs[0],
                    device=device,
                    precision=r.precision,
                    threads=threads,
                    weights=blobs[1] if len(blobs) > 1 else None,
                    cache_dir=Path(model_dir) / OV_CACHE,
                )
            else:
                from jangin.core.runtimes._ort import OrtRuntime

                rt = OrtRuntime(
                    blobs[0],
                    precision=r.precision,
                    threads=threads,
                    cache_dir=Path(model_dir) / "trt_cache" / f"{r.runtime}-{r.precision}",
                )
        except ModelLoadError as exc:
            if r is base:
                raise
            log.warning("%s: cannot open %s (%s); trying the next runtime", model_dir, label, exc)
            tried.append(f"{label} ({exc.message})")
            continue
        rt.artifact = label
        if tried:
            log.info("%s: serving %s (skipped: %s)", model_dir, label, "; ".join(tried))
        return rt  # type: ignore[no-any-return]
    raise ModelLoadError(f"{model_dir}: no runtime can open this model (tried {', '.join(tried)})")


def _verified(model_dir: Path, rel: str, digest: str) -> bytes:
    p = Path(model_dir) / rel
    if not digest:
        raise ModelLoadError(f"{p}: no sha256 in the manifest", hint="re-export the runtime artifact")
    try:
        blob = p.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{p} is listed in the manifest but cannot be read: {exc}") from exc
    actual = hashlib.sha256(blob).hexdigest()
    if actual != digest:
        raise ModelLoadError(
            f"{p} does not match its sha256 in the manifest (expected {digest[:12]}…, got {actual[:12]}…)",
            hint="the artifact was modified after it was exported; re-export it",
        )
    return blob


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{p} cannot be read: {exc}") from exc
