"""Open a served model through :mod:`jangin.core.runtimes` and give it the session interface the model
classes use (``get_inputs``, ``get_outputs``, ``run(names, feeds)``), whatever the runtime."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jangin.core import ModelLoadError, ModelManifest, ModelVersion

__all__ = ["RuntimeSession", "ServedOnnx", "open_model"]


@dataclass(frozen=True)
class _Port:
    name: str
    shape: list[Any]


def _ov_shape(port: Any) -> list[Any]:
    try:
        return [d.get_length() if d.is_static else "?" for d in port.get_partial_shape()]
    except (AttributeError, RuntimeError):
        return []


class RuntimeSession:
    """A :class:`jangin.core.runtimes.Runtime` that looks like an ``onnxruntime.InferenceSession``.

    Args:
        rt: The opened runtime.
    """

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        sess = getattr(rt, "session", None)
        compiled = getattr(rt, "compiled", None)
        if sess is not None:
            self._inputs = [_Port(i.name, list(i.shape)) for i in sess.get_inputs()]
            self._outputs = [_Port(o.name, list(o.shape)) for o in sess.get_outputs()]
        else:
            ins = list(compiled.inputs) if compiled is not None else []
            outs = list(compiled.outputs) if compiled is not None else []
            self._inputs = [
                _Port(n, _ov_shape(ins[i]) if i < len(ins) else list(s))
                for i, (n, s) in enumerate(zip(rt.input_names, rt.input_shapes, strict=True))
            ]
            self._outputs = [
                _Port(n, _ov_shape(outs[i]) if i < len(outs) else []) for i, n in enumerate(rt.output_names)
            ]
        self._index = {p.name: i for i, p in enumerate(self._outputs)}

    @property
    def artifact(self) -> str:
        """Which artifact runs (``runtime:precision``)."""
        return str(getattr(self.rt, "artifact", f"{self.rt.name}:{self.rt.precision}"))

    def get_inputs(self) -> list[_Port]:
        """The inputs (name, shape)."""
        return self._inputs

    def get_outputs(self) -> list[_Port]:
        """The outputs (name, shape; OpenVINO: dynamic dimensions as ``"?"``)."""
        return self._outputs

    def get_providers(self) -> list[str]:
        """One entry: ``runtime:precision:device``."""
        return [f"{self.rt.name}:{self.rt.precision}:{self.rt.device}"]

    def run(self, names: Sequence[str] | None, feeds: dict[str, Any]) -> list[Any]:
        """Outputs ``names`` (None: all, in the model's order) for ``feeds``."""
        outs = self.rt.run(feeds)
        if names is None:
            return list(outs)
        return [outs[self._index[n]] for n in names]


def open_model(
    mv: ModelVersion,
    *,
    providers: Sequence[str] | None = None,
    prefer: Sequence[str] | None = None,
    threads: int = 0,
    blob: bytes | None = None,
) -> Any:
    """Open ``mv`` for serving.

    Without ``providers``: the best runtime artifact this box can run
    (:func:`jangin.core.runtimes.open_artifact`: ``prefer``, else ``JANGIN_RUNTIME``, else the fastest
    that passed the parity gate, else the fp32 ONNX model; every file's checksum verified). With
    ``providers`` (``JANGIN_INFERENCE_PROVIDERS``): the fp32 ONNX model on those ONNX Runtime providers.

    Raises:
        ModelLoadError: A checksum mismatch, or nothing can open it.
    """
    from jangin.core.runtimes import open_artifact

    if providers is not None:
        from jangin.inference._runtime import load_session

        return load_session(
            blob if blob is not None else mv.file("model.onnx").read_bytes(), providers, threads=threads
        )
    return RuntimeSession(open_artifact(mv.path, mv.manifest, prefer=prefer, threads=threads))


class ServedOnnx:
    """Base of the served model classes (detector, classifier, anomaly, process): the model version, its
    session on whatever runtime, the dynamic-batch check, and the verify-then-open of ``from_version``."""

    session: Any
    version: ModelVersion

    def _bind(self, session: Any, version: ModelVersion) -> None:
        self.session = session
        self.version = version
        inp = session.get_inputs()[0]
        self._input_name: str = inp.name
        self._dynamic_batch = not (isinstance(inp.shape[0], int) and inp.shape[0] > 0)

    @property
    def name(self) -> str:
        """Model name."""
        return self.version.name

    @property
    def model_version(self) -> str:
        """Model version, e.g. ``v2``."""
        return self.version.version

    @property
    def runtime(self) -> str:
        """What runs it: ``runtime:precision``, e.g. ``openvino:int8`` (a session opened on named ONNX
        Runtime providers runs ``model.onnx``: ``onnxruntime:fp32``)."""
        return str(getattr(self.session, "artifact", "onnxruntime:fp32"))

    @staticmethod
    def open_verified(
        mv: ModelVersion,
        check: Callable[[ModelManifest], None],
        *,
        providers: Sequence[str] | None = None,
        prefer: Sequence[str] | None = None,
        threads: int = 0,
    ) -> tuple[ModelVersion, Any]:
        """Read the manifest again with every checksum verified, ``check`` it (it raises for a model the
        class cannot serve), and open it (:func:`open_model`): the ONNX bytes that were hashed are the
        ones loaded.

        Raises:
            ModelLoadError: A checksum mismatch, a file changed while loading, or a broken file.
        """
        mv = ModelVersion.load(mv.path, verify=True)
        m = mv.manifest
        check(m)
        blob = None
        if providers is not None:  # open_artifact checks the bytes it loads itself; this path reads them here
            path = mv.file("model.onnx")
            blob = path.read_bytes()
            if hashlib.sha256(blob).hexdigest() != m.files["model.onnx"]:
                raise ModelLoadError(f"{path} changed while loading", hint="reload the model")
        return mv, open_model(mv, providers=providers, prefer=prefer, threads=threads, blob=blob)
