"""Detection training sets: box-labelled frames of a dataset snapshot, split by group, in YOLO layout."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import Dataset, DatasetError, TrainingError
from jangin.core.schema import schema_of

__all__ = ["SPLITS", "DetectionSet", "build_detection_set"]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SET_MARKER = "jangin-set.json"
#: Bump when the on-disk layout changes, so old cache entries are not reused.
_LAYOUT_VERSION = 1
#: Fewer boxes than this in a class draws a warning.
MIN_BOXES_PER_CLASS = 10
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class DetectionSet:
    """A materialised detection training set (Ultralytics YOLO folder layout).

    Attributes:
        path: Root directory: ``images/{train,val,test}/*.jpg``, ``labels/…/*.txt``, ``data.yaml``.
        yaml_path: The ``data.yaml`` to give Ultralytics.
        classes: Class names in class-id order (fixed: the ``classes`` argument, else sorted names).
        snapshot: The dataset snapshot (``{table: version}``) the set was read at.
        counts: ``{split: {class: boxes}}`` plus ``{split: {"_frames": n}}``.
        splits: ``{split: (frame_id, …)}``.
        dataset: The dataset root the set was read from.
        params: The query and split parameters (for the model manifest).
    """

    path: Path
    yaml_path: Path
    classes: tuple[str, ...]
    snapshot: dict[str, int]
    counts: dict[str, dict[str, int]]
    splits: dict[str, tuple[str, ...]]
    dataset: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def images(self, split: str) -> list[Path]:
        """Image files of ``split``, sorted."""
        return sorted((self.path / "images" / split).glob("*.jpg"))

    def truths(self, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Ground truth of each image of :meth:`images`: ``(boxes_xyxy_norm (N, 4), class_ids (N,))``."""
        out = []
        for img in self.images(split):
            rows = np.loadtxt(self.path / "labels" / split / (img.stem + ".txt"), ndmin=2).reshape(-1, 5)
            cx, cy, w, h = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
            out.append((boxes.astype(np.float32), rows[:, 0].astype(np.int64)))
        return out


def build_detection_set(
    ds: Dataset,
    *,
    where: str | None = None,
    classes: Sequence[str] | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    group_by: str = "session_id",
    seed: int = 0,
    cache_dir: Path,
    snapshot: Mapping[str, int] | None = None,
) -> DetectionSet:
    """Select the frames with current box labels, split them by group, and write a YOLO folder.

    Frames come from the ``frames`` table, boxes from the ``current_labels`` view (``kind = 'box'``),
    both read at one pinned snapshot. Whole groups (sessions by default) go to one split, so frames of
    one session never appear in both training and test; groups are stratified by their dominant class.
    The result is cached under ``cache_dir`` by a key made of the dataset, snapshot, query and split
    parameters: a repeat with the same inputs returns the existing directory and writes nothing.

    Args:
        ds: The dataset.
        where: Extra SQL predicate on the ``frames`` table aliased ``f``, e.g. ``"f.station = 'st-01'"``.
        classes: Class names to train, in class-id order; boxes of other classes are dropped (and frames
            left with none). Default: every box class, sorted.
        fractions: Share of groups' frames for train, val, test (sums to 1; test may be 0).
        group_by: ``frames`` column that defines groups kept together: ``session_id``, or ``frame_id``
            for independent still images.
        seed: Seed of the split; the same seed and data give the same split.
        cache_dir: Directory of materialised sets.
        snapshot: Dataset snapshot to read; default the current one.

    Returns:
        The set.

    Raises:
        ValueError: Bad ``fractions`` or ``group_by``.
        TrainingError: No labelled frames, or too few groups to fill train and val.
        DatasetError: The ``where`` predicate is invalid SQL.
    """
    fr = _check_fractions(fractions)
    if group_by not in schema_of("frames").names:
        raise ValueError(f"group_by must be a column of frames, got {group_by!r}")
    snap = dict(snapshot if snapshot is not None else ds.snapshot().to_dict())
    params = {
        "where": where,
        "classes": list(classes) if classes is not None else None,
        "fractions": list(fr),
        "group_by": group_by,
        "seed": seed,
    }
    key = _cache_key(ds, snap, params)
    final = Path(cache_dir) / f"det-{key[:20]}"
    if (final / SET_MARKER).is_file():
        log.info("detection set cache hit: %s", final)
        return _load(final)

    frames, boxes = _read(ds, snap, where, group_by)
    names = list(classes) if classes is not None else sorted({b[1] for b in boxes})
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        raise ValueError(f"classes has duplicates: {names}")
    per_frame: dict[str, list[tuple[int, list[float]]]] = {}
    for frame_id, name, bbox in boxes:
        if name in index:
            per_frame.setdefault(frame_id, []).append((index[name], bbox))
    frames = {fid: row for fid, row in frames.items() if fid in per_frame}
    if not frames:
        raise TrainingError(
            "no frame with a current box label matches" + (f" {where!r}" if where else ""),
            hint="label frames first (kind='box'), or check --where and the class names",
        )
    assignment = _split(frames, per_frame, len(names), fr, seed)
    staging = Path(cache_dir) / f".staging-{uuid.uuid4().hex[:8]}"
    try:
        result = _materialise(staging, final, ds, snap, names, frames, per_frame, assignment, params)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


# -- reading ----------------------------------------------------------------------------------------


def _read(
    ds: Dataset, snap: Mapping[str, int], where: str | None, group_by: str
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, list[float]]]]:
    import duckdb

    pred = f"AND ({where})" if where else ""
    frames_sql = f"""
        SELECT f.frame_id, f."{group_by}" AS grp, f.width, f.height, f.image
        FROM frames f
        WHERE f.frame_id IN (SELECT frame_id FROM current_labels WHERE kind = 'box' AND frame_id IS NOT NULL)
        {pred}
        ORDER BY f.frame_id"""
    boxes_sql = f"""
        SELECT l.frame_id, l.name, l.bbox_xyxy_norm
        FROM current_labels l JOIN (SELECT DISTINCT frame_id FROM frames f WHERE true {pred}) f USING (frame_id)
        WHERE l.kind = 'box' AND l.bbox_xyxy_norm IS NOT NULL
        ORDER BY l.frame_id, l.label_id"""
    con = ds.connect(snap)
    try:
        frows = con.sql(frames_sql).to_arrow_table().to_pylist()
        brows = con.sql(boxes_sql).fetchall()
    except duckdb.Error as exc:
        raise DatasetError(
            f"selecting labelled frames failed: {exc}", hint="check the --where predicate"
        ) from exc
    finally:
        con.close()
    frames: dict[str, dict[str, Any]] = {}
    for row in frows:
        frames.setdefault(row["frame_id"], row)  # append-only table: first row of a frame id wins
    return frames, [(fid, name, list(bbox)) for fid, name, bbox in brows]


# -- splitting --------------------------------------------------------------------------------------


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    if fractions[0] <= 0 or fractions[1] <= 0:
        raise ValueError(f"train and val fractions must be positive, got {tuple(fractions)}")
    return (float(fractions[0]), float(fractions[1]), float(fractions[2]))


def _split(
    frames: Mapping[str, Mapping[str, Any]],
    per_frame: Mapping[str, list[tuple[int, list[float]]]],
    n_classes: int,
    fractions: tuple[float, float, float],
    seed: int,
) -> dict[str, str]:
    """Assign each group to a split: greedy on the frame deficit of the group's stratum and overall.

    Groups are visited largest first (ties in a seeded random order); each goes to the split furthest
    below its target share, counting both its stratum (dominant class) and all groups. Afterwards an
    empty val (or test, when its fraction is positive) takes the smallest group of train.
    """
    groups: dict[str, list[str]] = {}
    for fid, row in frames.items():
        groups.setdefault(str(row["grp"]), []).append(fid)
    needed = 2 + (fractions[2] > 0)
    if len(groups) < needed:
        raise TrainingError(
            f"{len(groups)} group(s) of frames; a split into train/val{'/test' * (fractions[2] > 0)} needs {needed}",
            hint="record more sessions, or split still images with group_by='frame_id'",
        )
    stratum = {}
    for g, fids in groups.items():
        c = Counter(cls for fid in fids for cls, _ in per_frame[fid])
        stratum[g] = min(c, key=lambda k: (-c[k], k))  # dominant class, ties to the lower id
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    visit = sorted((keys[i] for i in order), key=lambda g: -len(groups[g]))  # stable: keeps shuffle on ties
    total = [0.0, 0.0, 0.0]
    by_stratum = {s: [0.0, 0.0, 0.0] for s in range(n_classes)}
    split_of: dict[str, int] = {}
    for g in visit:
        n = len(groups[g])
        st = by_stratum[stratum[g]]
        deficit = [
            fractions[i] * (sum(st) + n) - st[i] + fractions[i] * (sum(total) + n) - total[i]
            for i in range(3)
        ]
        best = max((i for i in range(3) if fractions[i] > 0), key=lambda i: (deficit[i], -i))
        split_of[g] = best
        total[best] += n
        st[best] += n
    for empty in (1, 2)[: needed - 1]:
        members = [g for g, s in split_of.items() if s == empty]
        if not members:
            donors = [g for g, s in split_of.items() if s == 0]
            give = min(donors, key=lambda g: (len(groups[g]), g))
            split_of[give] = empty
    return {fid: SPLITS[split_of[g]] for g, fids in groups.items() for fid in fids}


# -- writing ----------------------------------------------------------------------------------------


def _materialise(
    staging: Path,
    final: Path,
    ds: Dataset,
    snap: Mapping[str, int],
    names: list[str],
    frames: Mapping[str, Mapping[str, Any]],
    per_frame: Mapping[str, list[tuple[int, list[float]]]],
    assignment: Mapping[str, str],
    params: dict[str, Any],
) -> DetectionSet:
    for split in SPLITS:
        (staging / "images" / split).mkdir(parents=True)
        (staging / "labels" / split).mkdir(parents=True)
    counts: dict[str, dict[str, int]] = {s: {n: 0 for n in names} | {"_frames": 0} for s in SPLITS}
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    skipped = 0
    for fid in sorted(frames):
        split = assignment[fid]
        stem = _file_stem(fid)
        (staging / "images" / split / f"{stem}.jpg").write_bytes(frames[fid]["image"])
        lines = []
        for cls, (x1, y1, x2, y2) in per_frame[fid]:
            x1, x2 = sorted((min(max(x1, 0.0), 1.0), min(max(x2, 0.0), 1.0)))
            y1, y2 = sorted((min(max(y1, 0.0), 1.0), min(max(y2, 0.0), 1.0)))
            if x2 - x1 <= 0 or y2 - y1 <= 0:
                skipped += 1
                continue
            lines.append(f"{cls} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}")
            counts[split][names[cls]] += 1
        (staging / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        counts[split]["_frames"] += 1
        splits[split].append(fid)
    if skipped:
        log.warning("skipped %d empty box(es) (zero width or height)", skipped)
    for name in names:
        n = sum(counts[s][name] for s in SPLITS)
        if n < MIN_BOXES_PER_CLASS:
            log.warning("class %r has only %d box(es); a detector needs many more to learn it", name, n)
    for split in SPLITS:
        log.info(
            "split %s: %d frames, boxes %s",
            split,
            counts[split]["_frames"],
            {n: counts[split][n] for n in names},
        )
    yaml_text = _data_yaml(final, names)
    (staging / "data.yaml").write_text(yaml_text)
    meta = {
        "format": "jangin-detection-set",
        "layout_version": _LAYOUT_VERSION,
        "dataset": str(ds.root),
        "snapshot": dict(snap),
        "classes": names,
        "counts": counts,
        "splits": splits,
        "params": params,
    }
    (staging / SET_MARKER).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError:
        if not (final / SET_MARKER).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another process built the same set meanwhile
    return _load(final)


def _data_yaml(root: Path, names: list[str]) -> str:
    # JSON strings are valid YAML scalars: safe for any class name (quotes, colons, Hangul).
    lines = [
        f"path: {json.dumps(str(root))}",
        "train: images/train",
        "val: images/val",
        "test: images/test",
        f"nc: {len(names)}",
        "names:",
        *(f"  {i}: {json.dumps(n, ensure_ascii=False)}" for i, n in enumerate(names)),
    ]
    return "\n".join(lines) + "\n"


def _file_stem(frame_id: str) -> str:
    safe = _SAFE.sub("_", frame_id)
    if safe != frame_id:
        safe += "-" + hashlib.sha256(frame_id.encode()).hexdigest()[:8]
    return safe


def _cache_key(ds: Dataset, snap: Mapping[str, int], params: Mapping[str, Any]) -> str:
    # Only the versions of the tables the query reads: appends to others (inspections from the line)
    # must not invalidate the cache. ``where`` may name any table, directly or through a current_ view.
    where = (params.get("where") or "").lower()
    read = {"frames", "labels"} | {t for t in snap if re.search(rf"\b(current_)?{t}\b", where)}
    blob = json.dumps(
        {
            "layout": _LAYOUT_VERSION,
            "dataset": str(ds.root),
            "snapshot": {t: int(v) for t, v in sorted(snap.items()) if t in read},
            **params,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _load(path: Path) -> DetectionSet:
    meta = json.loads((path / SET_MARKER).read_text())
    return DetectionSet(
        path=path,
        yaml_path=path / "data.yaml",
        classes=tuple(meta["classes"]),
        snapshot={k: int(v) for k, v in meta["snapshot"].items()},
        counts=meta["counts"],
        splits={s: tuple(meta["splits"][s]) for s in SPLITS},
        dataset=meta["dataset"],
        params=meta["params"],
    )
