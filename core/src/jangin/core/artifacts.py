"""Model artifacts and the model registry: ``models/<name>/<version>/`` with a ``manifest.json``.

A version directory holds ``model.onnx`` for serving, the training checkpoint beside it, and the
manifest: task, classes, input, thresholds, metrics, the dataset snapshot it was trained on, creation
time and the sha256 of every file. Serving reads the manifest and the ONNX file only; it never
unpickles anything. Versions are published atomically (written to a staging directory, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jangin.core._errors import ModelLoadError, NotFoundError, TrainingError

__all__ = ["InputSpec", "ModelManifest", "ModelRegistry", "ModelVersion", "RuntimeArtifact", "sha256_file"]

MANIFEST = "manifest.json"
ACTIVE = "ACTIVE"
Task = Literal["detect", "classify", "anomaly", "process", "skill_profile"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class InputSpec(BaseModel):
    """What the model expects as input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    channels: int = 3
    color: Literal["rgb", "bgr", "gray"] = "rgb"
    resize: Literal["letterbox", "stretch", "center_crop"] = "letterbox"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    pad_value: int = 114


class RuntimeArtifact(BaseModel):
    """One runtime artifact of a model version (``jangin models export``), beside ``model.onnx``.

    Attributes:
        runtime: ``onnxruntime`` or ``openvino``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        device_hint: Device it was built and measured for (``cpu``, ``CPU``, ``GPU``, ``tensorrt`` …).
        files: Its files, relative to the version directory; the first is the one a runtime opens.
        sha256: Hex sha256 of each file (checked before loading).
        parity: The parity gate's figures: ``metric``, ``fp32`` (the fp32 ONNX model's value), ``value``
            (this artifact's), ``drop``, ``tolerance``, and output-closeness figures where measured.
        throughput: Images per second measured at export on the exporting box (batch 8), if measured.
        fp32_throughput: The fp32 ONNX Runtime figure of the same measurement.
        created_at: When it was exported.
    """

    model_config = ConfigDict(extra="forbid")

    runtime: str
    precision: Literal["fp32", "fp16", "int8"]
    device_hint: str = "cpu"
    files: list[str]
    sha256: dict[str, str]
    parity: dict[str, Any] = Field(default_factory=dict)
    throughput: float | None = None
    fp32_throughput: float | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ModelManifest(BaseModel):
    """The manifest of one model version (``manifest.json``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format: Literal["jangin-model"] = "jangin-model"
    format_version: int = 1
    name: str
    version: str = ""
    task: Task
    framework: str = ""
    #: The licence of the model architecture and the code that defines it, e.g. ``"AGPL-3.0 (Ultralytics
    #: YOLO)"``: it travels with the weights (see "Licences" in the README). "unknown" for older manifests.
    architecture_licence: str = "unknown"
    classes: list[str] = Field(default_factory=list)
    input: InputSpec | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    dataset: str | None = None
    dataset_snapshot: dict[str, int] | None = None
    train_config: dict[str, Any] = Field(default_factory=dict)
    parity: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    files: dict[str, str] = Field(default_factory=dict)
    #: Runtime artifacts added after publishing (OpenVINO IR, INT8 …), each with its own checksums.
    runtimes: list[RuntimeArtifact] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class ModelVersion:
    """A published model version on disk."""

    def __init__(self, path: Path, manifest: ModelManifest) -> None:
        self.path = path
        self.manifest = manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def file(self, name: str) -> Path:
        """Path of a file of this version, checked against the manifest.

        Raises:
            ModelLoadError: The file is not listed in the manifest or is missing.
        """
        if name not in self.manifest.files:
            raise ModelLoadError(f"{self.path}: {name} is not part of this model version")
        p = self.path / name
        if not p.is_file():
            raise ModelLoadError(f"{self.path}: {name} is listed in the manifest but missing")
        return p

    def verify(self) -> None:
        """Check every file's sha256 against the manifest.

        Raises:
            ModelLoadError: A file is missing or was changed after publishing.
        """
        for rel, digest in self.manifest.files.items():
            p = self.path / rel
            if not p.is_file():
                raise ModelLoadError(f"{self.path}: {rel} is missing")
            actual = sha256_file(p)
            if actual != digest:
                raise ModelLoadError(
                    f"{self.path}: {rel} does not match its checksum in {MANIFEST} (expected {digest[:12]}…, got {actual[:12]}…)",
                    hint="the artifact was modified after it was published; re-export it",
                )

    def add_runtime(self, artifact: RuntimeArtifact) -> None:
        """Record a runtime artifact in the manifest (replacing one of the same runtime, precision and
        device), rewriting ``manifest.json`` atomically. Its files must already be in the directory.

        Raises:
            ModelLoadError: A listed file is missing or does not match its checksum.
        """
        for rel in artifact.files:
            p = self.path / rel
            if not p.is_file() or sha256_file(p) != artifact.sha256.get(rel):
                raise ModelLoadError(
                    f"{self.path}: runtime file {rel} is missing or does not match its sha256"
                )
        key = (artifact.runtime, artifact.precision, artifact.device_hint)
        kept = [r for r in self.manifest.runtimes if (r.runtime, r.precision, r.device_hint) != key]
        self.manifest.runtimes = [*kept, artifact]
        _atomic_write(self.path / MANIFEST, self.manifest.model_dump_json(indent=2) + "\n")

    def __repr__(self) -> str:
        return f"ModelVersion({self.name}:{self.version} at {self.path})"

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> ModelVersion:
        """Load a version directory (manifest only; nothing is unpickled).

        Raises:
            ModelLoadError: No manifest, an invalid manifest, or (with ``verify``) a file mismatch.
        """
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise ModelLoadError(f"{path} is not a model version (no {MANIFEST})")
        try:
            manifest = ModelManifest.model_validate_json(mpath.read_text())
        except (ValidationError, OSError) as exc:
            raise ModelLoadError(f"{mpath} is invalid: {exc}") from exc
        mv = cls(path, manifest)
        if verify:
            mv.verify()
        return mv


class ModelRegistry:
    """The models of one site: ``<root>/<name>/<version>/``, versions ``v1``, ``v2``, …

    Args:
        root: Registry directory (e.g. a dataset's ``models/``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        """Model names with at least one version."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        """Published versions of ``name``, oldest first."""
        d = self.root / name
        if not d.is_dir():
            return []
        found = [
            p.name
            for p in d.iterdir()
            if p.is_dir() and (p / MANIFEST).is_file() and re.fullmatch(r"v\d+", p.name)
        ]
        return sorted(found, key=lambda v: int(v[1:]))

    def active(self, name: str) -> str | None:
        """The promoted version of ``name``, if any."""
        f = self.root / name / ACTIVE
        return f.read_text().strip() if f.is_file() else None

    def get(self, name: str, version: str | None = None, *, verify: bool = True) -> ModelVersion:
        """Load ``name:version``; ``version`` None means the active version, else the latest.

        Accepts ``"name:version"`` in ``name``.

        Raises:
            NotFoundError: No such model or version.
        """
        if version is None and ":" in name:
            name, version = name.split(":", 1)
        _check_name(name)
        versions = self.versions(name)
        if not versions:
            raise NotFoundError(
                f"no model named {name!r} in {self.root}", hint="`jangin models ls` lists the models"
            )
        if version in (None, "", "active"):
            version = self.active(name) or versions[-1]
        elif version == "latest":
            version = versions[-1]
        if version not in versions:
            raise NotFoundError(f"model {name!r} has no version {version!r} (has {', '.join(versions)})")
        return ModelVersion.load(self.root / name / version, verify=verify)

    def list(self) -> list[ModelVersion]:
        """Every published version of every model."""
        return [
            ModelVersion.load(self.root / n / v, verify=False) for n in self.names() for v in self.versions(n)
        ]

    def promote(self, name: str, version: str, *, force: bool = False) -> ModelVersion:
        """Mark ``name:version`` as the active one (atomically).

        Args:
            name: Model name.
            version: Version, e.g. ``v3``.
            force: Promote even a version whose guard rails refused promotion.

        Raises:
            TrainingError: The version's manifest lists reasons not to promote it
                (``extra["guard"]["refuse_promotion"]``: e.g. it predicts one class, flags nearly every
                image, or does not beat its trivial baseline), and ``force`` is false.
        """
        mv = self.get(name, version)
        reasons = (mv.manifest.extra.get("guard") or {}).get("refuse_promotion") or []
        if reasons and not force:
            raise TrainingError(
                f"{mv.path}: not promoted: {'; '.join(str(r) for r in reasons)}",
                hint="see the report's warnings; pass --force to promote it anyway",
            )
        _atomic_write(self.root / name / ACTIVE, version + "\n")
        return mv

    @contextmanager
    def publish(self, manifest: ModelManifest) -> Iterator[Path]:
        """Write a new version: yields a staging directory; on exit, hashes the files, writes the
        manifest and renames the directory to the next version. On error the staging is removed.

        Example:
            >>> with registry.publish(manifest) as d:      # doctest: +SKIP
            ...     shutil.copy(onnx_file, d / "model.onnx")
        """
        _check_name(manifest.name)
        base = self.root / manifest.name
        base.mkdir(parents=True, exist_ok=True)
        staging = base / f".staging-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            yield staging
            files = {
                str(p.relative_to(staging)): sha256_file(p)
                for p in sorted(staging.rglob("*"))
                if p.is_file() and p.name != MANIFEST
            }
            for attempt in range(1000):
                existing = self.versions(manifest.name)
                n = int(existing[-1][1:]) + 1 + attempt if existing else 1 + attempt
                final = base / f"v{n}"
                manifest.version = final.name
                manifest.files = files
                (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
                try:
                    os.rename(staging, final)  # atomic; fails if another writer took this number
                except OSError:
                    continue
                self.last_published = ModelVersion(final, manifest)
                break
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def add(self, manifest: ModelManifest, files: dict[str, Path]) -> ModelVersion:
        """Publish a version made of ``files`` (``{name in artifact: source path}``)."""
        with self.publish(manifest) as d:
            for rel, src in files.items():
                dst = d / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        return self.last_published


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '_', '-', '.' (max 64)")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def manifest_json(mv: ModelVersion) -> dict[str, Any]:
    """The manifest as plain JSON data."""
    data: dict[str, Any] = json.loads(mv.manifest.model_dump_json())
    return data
