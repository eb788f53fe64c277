"""Image sets for anomaly models: good and defective frames of a dataset snapshot, split by group."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import Dataset, DatasetError, TrainingError
from jangin.core.schema import schema_of

__all__ = ["ImageSet", "decode_images", "decode_mask", "good_labels_of", "select_anomaly_images"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSet:
    """Frames for an anomaly model, split into train (good only), val and test.

    Attributes:
        splits: ``{split: [row, …]}``; a row holds ``frame_id``, ``session_id``, ``station``,
            ``source_uri``, ``image`` (JPEG bytes) and ``bad`` (bool).
        snapshot: The dataset snapshot the rows were read at.
        dataset: Dataset root.
        params: The query and split parameters (for the manifest).
    """

    splits: dict[str, list[dict[str, Any]]]
    snapshot: dict[str, int]
    dataset: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {"good": n, "bad": n}}``."""
        return {
            s: {"good": sum(not r["bad"] for r in rows), "bad": sum(bool(r["bad"]) for r in rows)}
            for s, rows in self.splits.items()
        }


def select_anomaly_images(
    ds: Dataset,
    *,
    where: str | None = None,
    good_where: str | None = None,
    group_by: str = "frame_id",
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    max_defective: int | None = None,
    snapshot: Mapping[str, int] | None = None,
    good_labels: Sequence[str] | None = None,
    split_column: str | None = None,
    split_file: str | Path | None = None,
) -> ImageSet:
    """Select good and defective frames with SQL and split them by group.

    A frame is *bad* when it has a current ``box`` or ``mask`` label, or a ``class`` label that is not
    one of ``good_labels`` (default: :func:`good_labels_of` the dataset's process definitions). It is *good* when ``good_where`` holds for it, or — without ``good_where`` — when it has no
    such label. Good groups go to train / val / test by ``fractions``; bad groups (never trained on)
    go half to val (threshold calibration) and half to test. Groups (``group_by``) never straddle
    splits.

    Args:
        ds: The dataset.
        where: SQL predicate on ``frames`` aliased ``f`` that every frame must meet,
            e.g. ``"f.session_id = 'inspection'"``.
        good_where: SQL predicate that marks good frames, e.g. ``"f.source_uri LIKE 'good/%'"``.
        group_by: ``frames`` column kept on one side of the split (``frame_id`` for still images).
        fractions: Train / val / test shares of the good groups.
        seed: Seed of the split.
        max_defective: Keep at most this many defective images in val and in test (a seeded choice).
        snapshot: Dataset snapshot to read; default the current one.
        good_labels: Class label names that mean a good part (``--good-label``).
        split_column: A ``frames`` column holding ``train`` / ``val`` / ``test``: an explicit split.
        split_file: CSV with ``split`` and ``frame_id``, ``source_uri`` or ``path``: an explicit split
            (e.g. the index given to ``jangin capture import-images``). Frames it does not list are left
            out; defective frames listed as ``train`` go to ``test`` (an anomaly model never trains on them).

    Raises:
        ValueError: Bad ``fractions`` or ``group_by``.
        DatasetError: A predicate is invalid SQL.
        TrainingError: Too few good images.
    """
    if group_by not in schema_of("frames").names:
        raise ValueError(f"group_by must be a column of frames, got {group_by!r}")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6 or fractions[0] <= 0:
        raise ValueError(f"fractions must be three non-negative shares summing to 1, got {fractions}")
    snap = dict(snapshot if snapshot is not None else ds.snapshot().to_dict())
    goods_sql = ", ".join(_sql_str(g) for g in (good_labels or good_labels_of(ds)))
    defect = (
        "EXISTS (SELECT 1 FROM current_labels l WHERE l.frame_id = f.frame_id AND "
        f"(l.kind IN ('box', 'mask') OR (l.kind = 'class' AND l.name NOT IN ({goods_sql}))))"
    )
    good = f"({good_where})" if good_where else f"NOT {defect}"
    sql = f"""
        SELECT f.frame_id, f.session_id, f.station, f.source_uri, CAST(f."{group_by}" AS VARCHAR) AS grp,
               {f'CAST(f."{split_column}" AS VARCHAR)' if split_column else "NULL"} AS fixed_split,
               f.image, {defect} AS bad, {good} AS good
        FROM frames f
        WHERE {f"({where})" if where else "true"}
        ORDER BY f.frame_id"""
    import duckdb

    con = ds.connect(snap)
    try:
        rows = con.sql(sql).to_arrow_table().to_pylist()
        masks: dict[str, list[str]] = {}
        for fid, geom in con.sql(
            "SELECT frame_id, geometry_json FROM current_labels WHERE kind = 'mask' AND frame_id IS NOT NULL"
        ).fetchall():
            if geom:
                masks.setdefault(fid, []).append(geom)
    except duckdb.Error as exc:
        raise DatasetError(f"selecting images failed: {exc}", hint="check --where / --good-where") from exc
    finally:
        con.close()
    seen: set[str] = set()
    goods: dict[str, list[dict[str, Any]]] = {}
    bads: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["frame_id"] in seen:  # append-only table: first row of a frame id wins
            continue
        seen.add(r["frame_id"])
        r["masks"] = masks.get(r["frame_id"], [])
        if r["bad"]:
            bads.setdefault(r["grp"], []).append(r)
        elif r["good"]:
            r["bad"] = False
            goods.setdefault(r["grp"], []).append(r)
    n_good = sum(map(len, goods.values()))
    if len(goods) < 3 or n_good < 6:
        raise TrainingError(
            f"{n_good} good image(s) in {len(goods)} group(s); an anomaly model needs at least 6 in 3 groups",
            hint="check --where / --good-where",
        )
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    if split_column or split_file:
        listed = _split_file(split_file) if split_file else {}
        for r in (r for grp in (*goods.values(), *bads.values()) for r in grp):
            name = (
                r.pop("fixed_split", None) or listed.get(r["frame_id"]) or listed.get(r["source_uri"] or "")
            )
            name = str(name or "").strip().lower()
            if name not in splits:
                continue
            splits["test" if name == "train" and r["bad"] else name].append(r)
        if not splits["train"]:
            raise TrainingError(
                "the explicit split puts no good image in train", hint="check the split file/column"
            )
    else:
        for g, n in _assign(sorted(goods), fractions, seed, "good").items():
            splits[n].extend(goods[g])
        for g, n in _assign(sorted(bads), (0.0, 0.5, 0.5), seed, "bad").items():
            splits[n].extend(bads[g])
    if max_defective is not None:
        for name in ("val", "test"):
            bad = [r for r in splits[name] if r["bad"]]
            keep = {id(r) for r in _pick(bad, max_defective, seed)}
            splits[name] = [r for r in splits[name] if not r["bad"] or id(r) in keep]
    if not splits["val"] or not any(not r["bad"] for r in splits["val"]):
        raise TrainingError("no good image left for threshold calibration (val)", hint="add good images")
    params = {
        "where": where,
        "good_where": good_where,
        "group_by": group_by,
        "fractions": list(fractions),
        "seed": seed,
        "max_defective": max_defective,
        "good_labels": list(good_labels or good_labels_of(ds)),
        "split_column": split_column,
        "split_file": str(split_file) if split_file else None,
    }
    res = ImageSet(splits=splits, snapshot=snap, dataset=str(ds.root), params=params)
    log.info("anomaly image set: %s", res.counts())
    return res


def good_labels_of(ds: Dataset) -> list[str]:
    """The class labels that mean a good part: the ``good`` choices of the frame label specs of the
    dataset's registered process definitions, else ``OK`` and ``good``."""
    from jangin.core.process_definition import list_processes

    try:
        found = sorted({g for p in list_processes(ds) for spec in p.labels for g in spec.good})
    except (DatasetError, KeyError, ValueError):  # a dataset without a processes table
        found = []
    return found or ["OK", "good"]


def _split_file(path: str | Path) -> dict[str, str]:
    """``{frame_id or source_uri or path: split}`` from a CSV with a ``split`` column."""
    import csv

    p = Path(path)
    if not p.is_file():
        raise TrainingError(
            f"{p}: no such split file", hint="CSV with split and frame_id, source_uri or path"
        )
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in ("frame_id", "source_uri", "path") if rows and k in rows[0]]
    if not rows or "split" not in rows[0] or not keys:
        raise TrainingError(f"{p}: needs a split column and a frame_id, source_uri or path column")
    return {str(r[keys[0]]).strip(): str(r["split"]) for r in rows}


def _sql_str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _pick(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    order = sorted(rows, key=lambda r: hashlib.sha256(f"{seed}:pick:{r['frame_id']}".encode()).hexdigest())
    return order[:n]


def _assign(groups: Sequence[str], fractions: Sequence[float], seed: int, salt: str) -> dict[str, str]:
    """Seeded, stable assignment: groups ordered by a hash of (seed, salt, group), then cut by shares."""
    order = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}:{salt}:{g}".encode()).hexdigest())
    n = len(order)
    cuts = np.floor(np.cumsum(fractions) * n + 1e-9).astype(int)
    out = {}
    for i, g in enumerate(order):
        out[g] = ("train", "val", "test")[int(np.searchsorted(cuts, i, side="right"))] if i < n else "test"
    # At least one good group in val and (when asked) test.
    if salt == "good":
        for k, split in ((1, "val"), (2, "test")):
            if fractions[k] > 0 and split not in out.values():
                donor = max((g for g in order if out[g] == "train"), key=order.index)
                out[donor] = split
    return out


def decode_images(
    blobs: Sequence[bytes], size: int, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """JPEG bytes → ``(N, 3, size, size)`` float32: RGB, stretched to ``size``, ``/255``, then
    ``(x - mean) / std`` — exactly the manifest's :class:`~jangin.core.artifacts.InputSpec`."""
    import cv2

    out = np.empty((len(blobs), 3, size, size), np.float32)
    m = np.asarray(mean, np.float32).reshape(3, 1, 1)
    s = np.asarray(std, np.float32).reshape(3, 1, 1)
    for i, b in enumerate(blobs):
        img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise TrainingError(f"image {i} of the set is not a decodable image")
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        rgb = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
        out[i] = (rgb - m) / s
    return out


def decode_mask(geometries: Sequence[str], size: int) -> np.ndarray:
    """Union of ``mask`` labels (``geometry_json`` with a base64 PNG, see capture's image import) as a
    ``(size, size)`` bool array, stretched like the images (nearest neighbour)."""
    import base64
    import json

    import cv2

    out = np.zeros((size, size), bool)
    for g in geometries:
        try:
            data = json.loads(g)
            png = base64.b64decode(data["png"])
        except (ValueError, KeyError, TypeError):
            continue  # a polygon or another geometry this reader does not know
        m = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
        if m is not None:
            out |= cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) > 0
    return out
