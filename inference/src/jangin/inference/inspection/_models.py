"""Model slots: the models an inspection server serves, loaded, warmed and hot-swapped.

One image slot (``/v1/inspect``: a detector, a classifier or an anomaly model) and one process slot
(``/v1/process/score``: a process-signal model; other process models are loaded by name on demand and
kept). A swap loads and warms the new model first, then replaces the reference in one assignment:
a micro-batch holds the reference it started with, so a swap never splits a batch nor fails a request.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import numpy as np

from jangin.core import InferenceError, ModelLoadError, ModelRegistry, ModelVersion

__all__ = ["IMAGE_TASKS", "ModelSlots", "ServedModel"]

log = logging.getLogger(__name__)

#: Tasks served on ``/v1/inspect``.
IMAGE_TASKS = ("detect", "classify", "anomaly")
SERVED_TASKS = (*IMAGE_TASKS, "process")


class ServedModel:
    """A detector, classifier, anomaly or process model behind one interface.

    Image models: ``run(images) -> outputs``; process models: ``impl.score(windows)``.
    """

    def __init__(self, impl: Any, kind: str) -> None:
        self.impl = impl
        self.kind = kind
        self.name = impl.name
        self.version = impl.model_version
        #: What runs it (``openvino:int8``, ``onnxruntime:fp32`` …)
        self.runtime = str(getattr(impl, "runtime", "onnxruntime"))
        self.loaded_at = datetime.now(UTC)

    @classmethod
    def load(
        cls,
        mv: ModelVersion,
        *,
        providers: list[str] | None,
        min_conf: float,
        prefer: list[str] | None = None,
    ) -> ServedModel:
        """Load and warm ``mv`` (``prefer``: runtime preference, see :func:`~jangin.core.runtimes.open_artifact`).

        Raises:
            ModelLoadError: A task this server does not serve, or a broken artifact.
        """
        task = mv.manifest.task
        if task == "anomaly":
            from jangin.inference._anomaly import OnnxAnomaly

            return cls(OnnxAnomaly.from_version(mv, providers=providers, prefer=prefer), task)
        if task == "detect":
            from jangin.inference._detector import OnnxDetector

            conf = min(float(mv.manifest.thresholds.get("conf", 0.25)), min_conf)
            return cls(OnnxDetector.from_version(mv, providers=providers, conf=conf, prefer=prefer), task)
        if task == "classify":
            from jangin.inference._classifier import OnnxClassifier

            return cls(OnnxClassifier.from_version(mv, providers=providers, prefer=prefer), task)
        if task == "process":
            from jangin.inference._process import OnnxProcess

            return cls(OnnxProcess.from_version(mv, providers=providers, prefer=prefer), task)
        raise ModelLoadError(f"{mv.name}:{mv.version} is a {task} model; the server serves {SERVED_TASKS}")

    def run(self, images: list[np.ndarray]) -> list[Any]:
        """Run an image model on a batch of BGR images."""
        return list(self.impl.predict(images))

    def info(self) -> dict[str, Any]:
        """Name, version, task, classes, thresholds, load time."""
        m = self.impl.version.manifest
        out = {
            "name": self.name,
            "version": self.version,
            "task": self.kind,
            "runtime": self.runtime,
            "classes": list(m.classes),
            "thresholds": m.thresholds,
            "loaded_at": self.loaded_at.isoformat(),
        }
        if self.kind == "process":
            out["channels"] = self.impl.channels
        return out


class ModelSlots:
    """The served models (see the module docstring).

    Args:
        registry: The model registry.
        providers: ONNX Runtime providers (None: the best available).
        min_conf: The lowest detection score the verdict rules look at.
    """

    def __init__(
        self, registry: ModelRegistry | None, *, providers: list[str] | None = None, min_conf: float = 0.25
    ) -> None:
        self.registry = registry
        self.providers = providers
        self.min_conf = min_conf
        self.image: ServedModel | None = None
        self.process: ServedModel | None = None
        self._process_cache: dict[str, ServedModel] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, model: ServedModel) -> ModelSlots:
        """Slots holding one model, without a registry (``jangin inspect``, embedding code)."""
        slots = cls(None)
        if model.kind == "process":
            slots.process = model
        else:
            slots.image = model
        return slots

    @property
    def _registry(self) -> ModelRegistry:
        if self.registry is None:
            raise ModelLoadError("these model slots have no registry", hint="name the model when loading")
        return self.registry

    def default_ref(self, tasks: tuple[str, ...]) -> str | None:
        """The first registry model with an ACTIVE version whose task is in ``tasks``."""
        if self.registry is None:
            return None
        for name in self.registry.names():
            version = self.registry.active(name)
            if version and self.registry.get(f"{name}:{version}", verify=False).manifest.task in tasks:
                return name
        return None

    def _load(self, ref: str, runtime: str | None = None) -> ServedModel:
        mv = self._registry.get(ref, verify=False)
        if mv.manifest.task not in SERVED_TASKS:  # the request's fault, not the server's
            raise InferenceError(
                f"{mv.name}:{mv.version} is a {mv.manifest.task} model; this server serves {', '.join(SERVED_TASKS)}",
                hint="activate one of those (`jangin models ls`)",
            )
        prefer = None
        if runtime:
            from jangin.core.runtimes import runtime_preference

            runtime_preference(runtime)  # an unknown runtime is refused before anything loads
            prefer = runtime.split(",")
        return ServedModel.load(mv, providers=self.providers, min_conf=self.min_conf, prefer=prefer)

    def activate(
        self, ref: str, version: str | None = None, *, promote: bool = False, runtime: str | None = None
    ) -> ServedModel:
        """Load and warm ``ref`` (``name[:version]``), then swap it into its slot (image or process).

        ``runtime`` (``"openvino:int8"``, ``"onnxruntime"`` …) picks the runtime artifact; default the
        configured preference, else the fastest that passed the parity gate. Swapping between runtimes of
        one version is a swap like any other.

        Raises:
            NotFoundError: No such model / version.
            InferenceError: A task this server does not serve (HTTP 422).
            ModelLoadError: It cannot be loaded (the old model keeps serving).
        """
        if version is not None:
            ref = f"{ref.split(':', 1)[0]}:{version}"
        with self._lock:  # one load at a time; inspections are not blocked by it
            new = self._load(ref, runtime)
            if new.kind == "process":
                old, self.process = self.process, new
                self._process_cache[f"{new.name}:{new.version}"] = new
            else:
                old, self.image = self.image, new
            if promote:
                self._registry.promote(new.name, new.version)
        log.info(
            "serving %s %s:%s on %s (was %s)",
            new.kind,
            new.name,
            new.version,
            new.runtime,
            f"{old.name}:{old.version} on {old.runtime}" if old else "none",
        )
        return new

    def process_model(self, ref: str | None = None) -> ServedModel:
        """The process model for ``ref`` (``name[:version]``; None: the process slot's), loaded once.

        Raises:
            ModelLoadError: No process model is active and none was named.
            InferenceError: ``ref`` is not a process model.
        """
        if ref is None:
            if self.process is not None:
                return self.process
            ref = self.default_ref(("process",))
            if ref is None:
                raise ModelLoadError(
                    "no process model is active", hint="name one (?model=NAME) or activate one (admin)"
                )
            return self.activate(ref)
        mv = self._registry.get(ref, verify=False)
        key = f"{mv.name}:{mv.version}"
        hit = self._process_cache.get(key)
        if hit is not None:
            return hit
        if mv.manifest.task != "process":
            raise InferenceError(f"{key} is a {mv.manifest.task} model, not a process model")
        with self._lock:
            model = self._process_cache.get(key) or self._load(key)
            self._process_cache[key] = model
        return model

    def serving(self, name: str, version: str) -> bool:
        """Whether ``name:version`` is in a slot."""
        return any(
            m is not None and (m.name, m.version) == (name, version) for m in (self.image, self.process)
        )
