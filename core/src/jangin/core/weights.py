"""Backbone and model weights as managed artifacts: ``$JANGIN_HOME/weights/``.

A plant's machines are usually offline, so pretrained weights (torchvision / timm ResNets, Wide-ResNet-50,
YOLO checkpoints) are brought once, on purpose, and pinned by checksum. The registry keeps each file once,
named by its sha256 (``files/<sha256><suffix>``), and an ``index.json`` that maps a name to the file, its
architecture, framework, licence and source. Every read verifies the checksum, so a training run that uses
``--backbone-weights NAME`` records exactly which bytes it started from.

Layout::

    $JANGIN_HOME/weights/
    ├── index.json                      {"format": "jangin-weights", "entries": {name: {...}}}
    └── files/<sha256>.pth              one copy per distinct file

Nothing here reaches the network except :func:`fetch`, which only the ``jangin weights fetch`` command
calls: it refuses without a sha256 and while ``settings.offline`` is true (the default).

Example:
    >>> reg = WeightsRegistry(tmp / "weights")                              # doctest: +SKIP
    >>> reg.add("resnet18-imagenet", Path("resnet18-f37072fd.pth"), architecture="resnet18",
    ...         framework="torchvision", licence="BSD-3-Clause", source="https://download.pytorch.org/…")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from jangin.core._errors import WeightsError

__all__ = [
    "FRAMEWORKS",
    "RANDOM_INIT",
    "WeightsEntry",
    "WeightsRegistry",
    "default_registry",
    "fetch",
]

#: What a manifest records as the weights of a backbone trained from random initialisation.
RANDOM_INIT = "random-init"
Framework = Literal["torchvision", "timm", "ultralytics", "jangin"]
FRAMEWORKS: tuple[str, ...] = ("torchvision", "timm", "ultralytics", "jangin")
INDEX = "index.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsEntry:
    """One registered weights file.

    Attributes:
        name: The name training options refer to (``--backbone-weights NAME``).
        file: Where the file is stored in the registry (``files/<sha256><suffix>``).
        sha256: Hex sha256 of the file, checked on every read.
        size: File size in bytes.
        architecture: The network the weights fit, e.g. ``"resnet18"``, ``"wide_resnet50_2"``, ``"yolo11n"``.
        framework: Who defines the architecture: ``torchvision``, ``timm``, ``ultralytics`` or ``jangin``.
        licence: The licence the weights come under (e.g. ``"BSD-3-Clause"``, ``"AGPL-3.0"``).
        source: Where the weights came from: a URL, or e.g. ``"self-supervised on dataset X snapshot Y"``.
        added_at: When the weights were registered (UTC).
    """

    name: str
    file: Path
    sha256: str
    size: int
    architecture: str
    framework: str
    licence: str
    source: str
    added_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON data (the file as a path relative to the registry root)."""
        data = asdict(self)
        data["file"] = f"files/{self.file.name}"
        data["added_at"] = self.added_at.isoformat()
        return data

    def record(self) -> dict[str, Any]:
        """What a model manifest records about these weights (name, sha256, architecture, licence, source)."""
        return {
            "weights": self.name,
            "weights_sha256": self.sha256,
            "architecture": self.architecture,
            "framework": self.framework,
            "licence": self.licence,
            "source": self.source,
        }


class WeightsRegistry:
    """The weights of one site, under ``root`` (by default ``$JANGIN_HOME/weights``).

    Writes are atomic (a temporary file, then a rename) and serialised by a lock file, so two commands
    adding weights at once cannot lose an entry.

    Args:
        root: The registry directory; created on the first :meth:`add`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading -------------------------------------------------------------------------------------

    def ls(self) -> list[WeightsEntry]:
        """Every registered entry, sorted by name (checksums are not verified here)."""
        return [self._entry(n, e) for n, e in sorted(self._read_index().items())]

    def get(self, name: str, *, verify: bool = True) -> WeightsEntry:
        """The entry named ``name``, its file's checksum verified.

        Raises:
            WeightsError: No such name, the file is missing, or its bytes changed since it was added.
        """
        entries = self._read_index()
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise WeightsError(
                f"{self.root / INDEX}: no weights named {name!r} (registered: {known})",
                hint="`jangin weights add NAME FILE --architecture … --licence … --source …` registers a file",
            )
        entry = self._entry(name, entries[name])
        if verify:
            if not entry.file.is_file():
                raise WeightsError(
                    f"{entry.file}: the file of weights {name!r} is missing",
                    hint=f"add it again with `jangin weights add {name} FILE`",
                )
            actual = _sha256(entry.file)
            if actual != entry.sha256:
                raise WeightsError(
                    f"{entry.file}: weights {name!r} changed after they were added "
                    f"(expected sha256 {entry.sha256[:12]}…, got {actual[:12]}…)",
                    hint=f"remove them (`jangin weights rm {name}`) and add the original file again",
                )
        return entry

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._read_index()

    # -- writing -------------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        file: str | Path,
        *,
        architecture: str,
        framework: str,
        licence: str,
        source: str,
        sha256: str | None = None,
        replace: bool = False,
    ) -> WeightsEntry:
        """Copy ``file`` into the registry under ``name``.

        Args:
            name: Registry name (letters, digits, ``_ . -``; at most 64).
            file: The weights file (``.pth``, ``.pt``, ``.safetensors``, …).
            architecture: The network the weights fit (``resnet18``, ``wide_resnet50_2``, ``yolo11n``).
            framework: ``torchvision``, ``timm``, ``ultralytics`` or ``jangin``.
            licence: Licence of the weights (say "unknown" rather than guess).
            source: URL, or how they were made (``self-supervised on dataset X snapshot Y``).
            sha256: Expected hex sha256: the copy is refused when the file does not match it.
            replace: Point an existing name at a different file (otherwise refused).

        Returns:
            The new entry. Adding the same name with the same bytes again returns the existing entry.

        Raises:
            WeightsError: The file is missing, its checksum differs from ``sha256``, or ``name`` is taken
                by other bytes and ``replace`` is false.
            ValueError: A bad name, framework or sha256 string.
        """
        _check_name(name)
        if framework not in FRAMEWORKS:
            raise ValueError(f"unknown framework {framework!r}: use one of {', '.join(FRAMEWORKS)}")
        for field, value in (("architecture", architecture), ("licence", licence), ("source", source)):
            if not value.strip():
                raise ValueError(f"weights {name!r}: {field} must not be empty (say 'unknown' if unknown)")
        expected = _check_sha(sha256) if sha256 is not None else None
        src = Path(file)
        if not src.is_file():
            raise WeightsError(f"{src}: no such weights file", hint="give the path of a .pth / .pt file")
        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        tmp = files / f".{uuid.uuid4().hex}.tmp"
        try:
            digest, size = _copy_hashing(src, tmp)
            if expected is not None and digest != expected:
                raise WeightsError(
                    f"{src}: sha256 {digest} does not match the expected {expected}",
                    hint="the file is not the one you meant, or it was damaged in transfer; nothing was added",
                )
            final = files / (digest + _suffix(src))
            with self._lock():
                entries = self._read_index()
                old = entries.get(name)
                if old is not None and old["sha256"] == digest:
                    if not final.is_file():
                        os.replace(tmp, final)
                    return self._entry(name, old)
                if old is not None and not replace:
                    raise WeightsError(
                        f"{self.root / INDEX}: weights {name!r} already exist with other bytes "
                        f"(sha256 {old['sha256'][:12]}…)",
                        hint="choose another name, or pass --replace to point the name at the new file",
                    )
                os.replace(tmp, final)
                entry = WeightsEntry(
                    name=name,
                    file=final,
                    sha256=digest,
                    size=size,
                    architecture=architecture.strip(),
                    framework=framework,
                    licence=licence.strip(),
                    source=source.strip(),
                    added_at=datetime.now(UTC),
                )
                entries[name] = entry.to_json()
                self._write_index(entries)
                if old is not None:
                    self._drop_unused(old, entries)
                return entry
        finally:
            tmp.unlink(missing_ok=True)

    def remove(self, name: str) -> None:
        """Forget ``name``; its file is deleted when no other name uses it.

        Raises:
            WeightsError: No such name.
        """
        with self._lock():
            entries = self._read_index()
            if name not in entries:
                raise WeightsError(f"{self.root / INDEX}: no weights named {name!r}")
            old = entries.pop(name)
            self._write_index(entries)
            self._drop_unused(old, entries)

    # -- internals -----------------------------------------------------------------------------------

    def _entry(self, name: str, data: dict[str, Any]) -> WeightsEntry:
        try:
            return WeightsEntry(
                name=name,
                file=self.root / str(data["file"]),
                sha256=str(data["sha256"]),
                size=int(data["size"]),
                architecture=str(data["architecture"]),
                framework=str(data["framework"]),
                licence=str(data["licence"]),
                source=str(data["source"]),
                added_at=datetime.fromisoformat(str(data["added_at"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"{self.root / INDEX}: entry {name!r} is invalid ({exc})") from exc

    def _read_index(self) -> dict[str, dict[str, Any]]:
        path = self.root / INDEX
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{path}: cannot read the weights index: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != "jangin-weights":
            raise WeightsError(f"{path}: not a Jangin weights index (no format 'jangin-weights')")
        entries = data.get("entries", {})
        if not isinstance(entries, dict):
            raise WeightsError(f"{path}: 'entries' must be an object")
        return entries

    def _write_index(self, entries: dict[str, dict[str, Any]]) -> None:
        path = self.root / INDEX
        tmp = path.with_name(f".{INDEX}.{uuid.uuid4().hex[:8]}.tmp")
        body = {"format": "jangin-weights", "format_version": 1, "entries": dict(sorted(entries.items()))}
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def _drop_unused(self, old: dict[str, Any], entries: dict[str, dict[str, Any]]) -> None:
        if all(e.get("file") != old.get("file") for e in entries.values()):
            (self.root / str(old["file"])).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as fh:
            try:
                import fcntl
            except ImportError:  # Windows: atomic renames still keep the index whole
                yield
                return
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def default_registry(home: str | Path | None = None) -> WeightsRegistry:
    """The site's registry: ``<home>/weights`` (``home`` defaults to ``$JANGIN_HOME``)."""
    if home is None:
        from jangin.core.settings import get_settings

        home = get_settings().home
    return WeightsRegistry(Path(home) / "weights")


def fetch(
    url: str,
    *,
    sha256: str,
    name: str,
    architecture: str,
    framework: str,
    licence: str,
    registry: WeightsRegistry | None = None,
    offline: bool | None = None,
    timeout_s: float = 60.0,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> WeightsEntry:
    """Download ``url`` and register it, refusing any byte that does not match ``sha256``.

    Only the ``jangin weights fetch`` command calls this; nothing in Jangin downloads implicitly.

    Args:
        url: ``http://`` or ``https://`` URL of the file.
        sha256: The expected hex sha256 (required: an unpinned download is refused).
        name: Registry name.
        architecture: Network the weights fit.
        framework: ``torchvision``, ``timm``, ``ultralytics`` or ``jangin``.
        licence: Licence of the weights.
        registry: Where to register (default: :func:`default_registry`).
        offline: Override ``settings.offline`` (``JANGIN_OFFLINE``, true by default).
        timeout_s: Socket timeout.
        progress: Optional ``(task, done_bytes, total_bytes)`` callback.

    Raises:
        WeightsError: Offline, no sha256, a network error or a checksum mismatch (nothing is registered).
    """
    if not sha256:
        raise WeightsError(
            f"{url}: refusing to download weights without a sha256",
            hint="pass --sha256 with the checksum published by the weights' source",
        )
    expected = _check_sha(sha256)
    if offline is None:
        from jangin.core.settings import get_settings

        offline = get_settings().offline
    if offline:
        raise WeightsError(
            f"{url}: this machine is offline (JANGIN_OFFLINE is true), nothing was downloaded",
            hint="on a connected machine run `JANGIN_OFFLINE=0 jangin weights fetch …`, or copy the file "
            "here and run `jangin weights add NAME FILE --sha256 …`",
        )
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url}: only http:// and https:// URLs can be fetched")
    import tempfile
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    reg = registry if registry is not None else default_registry()
    suffix = _suffix(Path(urlsplit(url).path)) or ".bin"
    reg.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=reg.root, prefix=".fetch-") as tmpdir:
        tmp = Path(tmpdir) / f"download{suffix}"
        h = hashlib.sha256()
        done = 0
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(tmp, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                while block := resp.read(_CHUNK):
                    out.write(block)
                    h.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(f"fetch {name}", done, total)
        except (urllib.error.URLError, OSError) as exc:
            raise WeightsError(
                f"{url}: download failed: {exc}", hint="check the URL and the network"
            ) from exc
        digest = h.hexdigest()
        if digest != expected:
            raise WeightsError(
                f"{url}: downloaded sha256 {digest} does not match the expected {expected}",
                hint="the URL serves other bytes than the checksum says; nothing was registered",
            )
        return reg.add(
            name,
            tmp,
            architecture=architecture,
            framework=framework,
            licence=licence,
            source=url,
            sha256=expected,
        )


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"invalid weights name {name!r}: use letters, digits, '_', '-', '.' (max 64)")


def _check_sha(sha256: str) -> str:
    s = sha256.strip().lower()
    if not _SHA.match(s):
        raise ValueError(f"invalid sha256 {sha256!r}: expected 64 hex digits")
    return s


def _suffix(path: Path) -> str:
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".tar.gz") else path.suffix
    return suffix if re.fullmatch(r"(\.[A-Za-z0-9]{1,12}){0,2}", suffix) else ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(_CHUNK):
            fout.write(block)
            h.update(block)
            size += len(block)
    shutil.copystat(src, dst)
    return h.hexdigest(), size
