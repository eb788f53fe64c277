"""Import an image set in one command: class sub-folders, an index file, or images with pixel masks.

``jangin capture import-images DIR`` reads three layouts (``--layout auto`` picks from what is there):

* **folders** — ``DIR/<class>/…/*.png``: every folder counts (no name is skipped); an image's class is
  the name of the folder it sits in (``train/good/000.png`` → ``good``).
* **index** — a CSV or Parquet file with ``path`` (relative to ``DIR``), ``label`` and optionally
  ``split``; pass the same file to ``jangin train classify --split-file`` to keep its split.
* **masks** — image files with same-named masks beside them (``x.png`` + ``x_mask.png``) or in a mask
  folder (``masks/``, ``ground_truth/``, ``gt/``; ``ground_truth/crack/000_mask.png`` ↔
  ``test/crack/000.png``). Masks are never imported as frames: each becomes a ``mask`` label on its
  image (binarised, stored as a 1-bit PNG in ``geometry_json``); an all-black mask adds nothing.

Images are deduplicated by content (sha256): a frame's id is derived from its bytes, so the same
picture in two folders, or imported twice, is stored once and the counts say so. All images of one
import form one session (``--session-key``, default the folder's name; ``--station`` on every frame).
``--good-label NAME`` registers which class means a good part in the process definition
(``labels: [{question: class, target: frame, good: [NAME]}]``), which training reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jangin.capture._import import _existing_session, _session_row, session_id_for
from jangin.capture._manifest import SessionManifest
from jangin.capture._rows import frame_label, still_frame_row
from jangin.capture._video import FaceBlurrer, encode_jpeg
from jangin.core import CaptureError, Dataset
from jangin.core._ids import stable_id
from jangin.core.process_definition import LabelSpec, ProcessDefinition, get_process, register_process
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.settings import Settings, get_settings

__all__ = ["ImagesImportResult", "import_images"]

log = logging.getLogger(__name__)

Layout = Literal["auto", "folders", "index", "masks"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_DIRS = frozenset({"masks", "mask", "ground_truth", "groundtruth", "gt"})
MASK_SUFFIXES = ("_mask", "-mask", ".mask")


@dataclass
class ImagesImportResult:
    """What one image-set import did (the CLI prints it)."""

    session_id: str
    session_key: str
    layout: str
    images_seen: int = 0
    frames: int = 0
    already_in_dataset: int = 0
    duplicates_in_import: int = 0
    class_labels: int = 0
    mask_labels: int = 0
    masks_empty: int = 0
    masks_unmatched: list[str] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)
    deidentified: bool = True
    faces_blurred: int = 0


def import_images(
    ds: Dataset,
    directory: str | Path,
    *,
    layout: Layout = "auto",
    index: str | Path | None = None,
    good_label: str | None = None,
    session_key: str | None = None,
    station: str | None = None,
    site: str = "site",
    process: str = "inspection",
    deidentify: bool = True,
    settings: Settings | None = None,
    progress: ProgressFn = null_progress,
) -> ImagesImportResult:
    """Import an image set (see the module docstring for the layouts).

    Args:
        ds: The dataset.
        directory: The image set's root folder.
        layout: ``auto``, ``folders``, ``index`` or ``masks``.
        index: The index file (``layout="index"``; with ``auto``, given means index).
        good_label: The class that means a good part; registered in the process definition ``process``.
        session_key: Session key (default: the folder's name); a later import with the same key adds
            to that session.
        station: Station of every frame.
        site: Site of the session.
        process: Process name of the session (and of the definition ``good_label`` goes to).
        deidentify: Blur faces (off for parts without people: ``--no-deidentify``, logged).
        settings: Site settings.
        progress: ``progress(task, done, total)``.

    Raises:
        CaptureError: No images, an unreadable image or mask (named), a bad index file.
    """
    import cv2

    directory = Path(directory)
    if not directory.is_dir():
        raise CaptureError(f"{directory}: not a folder", hint="give the image set's root folder")
    settings = settings or get_settings()
    key = session_key or directory.name
    sid = session_id_for(site, key)
    entries, masks, unmatched, chosen = _list(directory, layout, Path(index) if index else None)
    res = ImagesImportResult(session_id=sid, session_key=key, layout=chosen, deidentified=deidentify)
    res.masks_unmatched = unmatched
    if not entries:
        raise CaptureError(f"{directory}: no images found (layout {chosen})")
    classes = sorted({c for _, c in entries if c})
    if good_label and classes and good_label not in classes:
        raise CaptureError(
            f"--good-label {good_label!r} is not one of the classes found: {', '.join(classes)}",
            hint="give the folder / label name of the good parts",
        )
    if not deidentify:
        log.warning(
            "faces are NOT blurred in the %d images of session %s (%s): --no-deidentify",
            len(entries),
            key,
            directory,
        )
    known = _existing_frames(ds, sid)
    label_ids = _existing_labels(ds, sid)
    blur = FaceBlurrer() if deidentify else None
    start = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=len(known))
    frames: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    task = f"images {key}"
    for i, (rel, cls) in enumerate(entries):
        progress(task, i, len(entries))
        path = directory / rel
        raw = path.read_bytes() if path.is_file() else b""
        res.images_seen += 1
        digest = hashlib.sha256(raw).hexdigest()
        fid = stable_id("frm", sid, digest)
        if cls:
            res.per_class[cls] = res.per_class.get(cls, 0) + 1
        if digest in seen:
            res.duplicates_in_import += 1
        elif fid in known:
            res.already_in_dataset += 1
        img = None
        if digest not in seen and fid not in known:
            img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR) if raw else None
            if img is None:
                raise CaptureError(f"{path}: missing or not a readable image")
            faces, deid = 0, None
            if blur is not None:
                img, dets = blur.blur(img)
                faces, deid = len(dets), blur.record(dets)
            res.faces_blurred += faces
            jpeg = raw if faces == 0 and path.suffix.lower() in (".jpg", ".jpeg") else encode_jpeg(img, 95)
            ts = start + timedelta(seconds=len(frames))
            frames.append(
                still_frame_row(
                    fid,
                    sid,
                    ts,
                    img.shape,
                    jpeg,
                    source_uri=rel,
                    station=station,
                    deidentified=deidentify,
                    deid_json=deid,
                )
            )
        seen.setdefault(digest, rel)
        if cls:
            lbl = frame_label(sid, fid, ("class", cls), kind="class", name=cls, question="class")
            if lbl["label_id"] not in label_ids:
                label_ids.add(lbl["label_id"])
                labels.append(lbl)
                res.class_labels += 1
        mask_path = masks.get(rel)
        if mask_path is not None:
            geom = _mask_geometry(directory / mask_path)
            if geom is None:
                res.masks_empty += 1
            else:
                lbl = frame_label(
                    sid, fid, ("mask", mask_path), kind="mask", name=cls or "defect", geometry_json=geom
                )
                if lbl["label_id"] not in label_ids:
                    label_ids.add(lbl["label_id"])
                    labels.append(lbl)
                    res.mask_labels += 1
    progress(task, len(entries), len(entries))
    if frames:
        ds.append("frames", frames, source=str(directory))
    if not _existing_session(ds, sid):
        m = SessionManifest(
            session_key=key, site=site, station=station, process=process, task="image set", started_at=start
        )
        meta = {"deidentify": deidentify, "image_set": str(directory), "layout": chosen}
        ds.append("sessions", [_session_row(m, sid, settings, [], source="file", meta=meta)])
    if labels:
        ds.append("labels", labels, source=str(directory))
    res.frames = len(frames)
    if good_label:
        _register_good(ds, process, good_label, classes)
    log.info(
        "imported %s: %d images, %d new frames, %d already there, %d duplicates, %d class / %d mask labels",
        directory,
        res.images_seen,
        res.frames,
        res.already_in_dataset,
        res.duplicates_in_import,
        res.class_labels,
        res.mask_labels,
    )
    return res


# -- listing -------------------------------------------------------------------------------------


def _is_mask(rel: Path) -> bool:
    parts = {p.lower() for p in rel.parts[:-1]}
    return bool(parts & MASK_DIRS) or rel.stem.lower().endswith(MASK_SUFFIXES)


def _base_stem(stem: str) -> str:
    low = stem.lower()
    for suf in MASK_SUFFIXES:
        if low.endswith(suf):
            return stem[: -len(suf)]
    return stem


def _list(
    directory: Path, layout: Layout, index: Path | None
) -> tuple[list[tuple[str, str | None]], dict[str, str], list[str], str]:
    """``([(image path, class or None)], {image path: mask path}, [unmatched masks], layout used)``,
    paths relative to ``directory``."""
    files = sorted(
        p.relative_to(directory)
        for p in directory.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not any(s.startswith(".") for s in p.parts)
    )
    mask_files = [p for p in files if _is_mask(p)]
    images = [p for p in files if not _is_mask(p)]
    if layout == "auto":
        layout = "index" if index is not None else "masks" if mask_files else "folders"
    if layout == "index":
        if index is None:
            raise CaptureError(f"{directory}: --layout index needs --index FILE (CSV or Parquet)")
        entries = _read_index(index, directory)
    else:
        entries = [(str(p), p.parent.name if p.parent != Path(".") else None) for p in images]
    masks, unmatched = _match_masks(entries, mask_files)
    if layout == "masks" and not masks:
        raise CaptureError(
            f"{directory}: no mask matches an image",
            hint="name masks like the image (x.png + x_mask.png) or put them in a masks/ folder",
        )
    return entries, masks, unmatched, layout


def _read_index(index: Path, directory: Path) -> list[tuple[str, str | None]]:
    if not index.is_file():
        raise CaptureError(f"{index}: no such index file")
    try:
        if index.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(index).to_pylist()
        else:
            import csv

            with open(index, newline="") as f:
                rows = list(csv.DictReader(f))
    except (OSError, ValueError) as exc:
        raise CaptureError(f"{index}: cannot read the index: {exc}") from exc
    if not rows or "path" not in rows[0]:
        raise CaptureError(f"{index}: needs a 'path' column (and 'label', optionally 'split')")
    out = []
    for n, r in enumerate(rows, start=2):
        rel = str(r["path"]).strip()
        if not rel or not (directory / rel).is_file():
            raise CaptureError(f"{index}: row {n}: image {rel!r} not found under {directory}")
        label = str(r.get("label") or "").strip() or None
        out.append((rel, label))
    return out


def _match_masks(
    entries: list[tuple[str, str | None]], mask_files: list[Path]
) -> tuple[dict[str, str], list[str]]:
    """Pair masks with images: by (folder name, stem) first, then by stem when that is unique."""
    by_parent: dict[tuple[str, str], str] = {}
    by_stem: dict[str, list[str]] = {}
    for rel, _ in entries:
        p = Path(rel)
        by_parent[(p.parent.name, p.stem)] = rel
        by_stem.setdefault(p.stem, []).append(rel)
    out: dict[str, str] = {}
    unmatched: list[str] = []
    for m in mask_files:
        stem = _base_stem(m.stem)
        rel = by_parent.get((m.parent.name, stem))
        if rel is None and len(by_stem.get(stem, [])) == 1:
            rel = by_stem[stem][0]
        if rel is not None:
            out[rel] = str(m)
        else:
            unmatched.append(str(m))
    return out, unmatched


def _mask_geometry(path: Path) -> str | None:
    """The mask as ``geometry_json`` (1-bit PNG, base64), or None when it is all background."""
    import cv2

    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise CaptureError(f"{path}: not a readable mask image")
    binary = (m > 127 if m.max() > 1 else m > 0).astype(np.uint8) * 255
    if not binary.any():
        return None
    ok, buf = cv2.imencode(".png", binary, [cv2.IMWRITE_PNG_BILEVEL, 1, cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise CaptureError(f"{path}: PNG encoding of the mask failed")
    h, w = binary.shape
    return json.dumps(
        {
            "format": "png_base64",
            "width": int(w),
            "height": int(h),
            "png": base64.b64encode(bytes(buf)).decode(),
            "area": round(float((binary > 0).mean()), 6),
        }
    )


# -- dataset look-ups ----------------------------------------------------------------------------


def _existing_frames(ds: Dataset, sid: str) -> set[str]:
    t = ds.read("frames", columns=["frame_id"], filters=[("session_id", "=", sid)])
    return set(t.column("frame_id").to_pylist())


def _existing_labels(ds: Dataset, sid: str) -> set[str]:
    t = ds.read("labels", columns=["label_id"], filters=[("session_id", "=", sid)])
    return set(t.column("label_id").to_pylist())


def _register_good(ds: Dataset, process: str, good: str, classes: list[str]) -> None:
    """Record ``good`` as the good class of frame class labels in the process definition ``process``."""
    current = get_process(ds, process)
    definition = current or ProcessDefinition(name=process)
    specs = [s for s in definition.labels if not (s.question == "class" and s.target == "frame")]
    old = next((s for s in definition.labels if s.question == "class" and s.target == "frame"), None)
    choices = sorted(set(classes) | set(old.choices if old else []))
    specs.append(LabelSpec(question="class", target="frame", kind="class", choices=choices, good=[good]))
    register_process(ds, definition.model_copy(update={"labels": specs}))
    counts = Counter(classes)
    log.info("process %s: frame class %r means good (classes %s)", process, good, dict(counts))
