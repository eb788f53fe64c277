"""Export box labels of frames without a server: a YOLO folder, COCO JSON, or a Parquet dataset that
Hugging Face ``datasets`` loads with its ``Image`` feature.

Class order (YOLO class index, COCO ``category_id - 1``, HF ``ClassLabel`` index) is fixed: the
``classes`` given (e.g. a label schema's box names, in schema order), else the box label names in
alphabetical order. It is written next to the data (``classes.txt``, ``data.yaml``, COCO
``categories``, the HF features), so a consumer never has to guess it. Label Studio's own YOLO export
orders classes alphabetically too, but from the project config, which may hold unused names.

``question`` keeps only the boxes that answer that question (``labels.question``, e.g. ``defect``
when a project also marks ``tooling`` boxes); rows without a question (written before questions
existed) are left out when it is given.

Only the current labels count (corrections applied, retractions removed); model predictions
(``source = 'model'``) are left out unless ``sources`` names them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from jangin.core import ConfigError, Dataset, DatasetError

__all__ = ["export_labels"]

log = logging.getLogger(__name__)

DEFAULT_SOURCES = ("expert", "labeller", "import", "review")


def export_labels(
    ds: Dataset,
    out: str | Path,
    *,
    fmt: Literal["yolo", "coco", "hf"],
    where: str | None = None,
    classes: Sequence[str] | None = None,
    sources: Sequence[str] = DEFAULT_SOURCES,
    question: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write the box labels of the selected frames to ``out`` in format ``fmt``.

    Args:
        ds: The dataset.
        out: Output directory (created; files in it are overwritten).
        fmt: ``yolo`` (``images/``, ``labels/``, ``classes.txt``, ``data.yaml``), ``coco``
            (``images/``, ``annotations.json``) or ``hf`` (``data/train-00000-of-00001.parquet`` with
            columns ``image`` {bytes, path}, ``frame_id``, ``session_id``, ``width``, ``height``,
            ``objects`` {``bbox`` [x, y, w, h] pixels, ``category``}).
        where: SQL condition over ``frames f`` and ``current_sessions s``; default: every frame
            with at least one box label.
        classes: The class order; default the box names found, sorted.
        sources: Label sources included.
        question: Only boxes answering this question (or one of these); default: all.

    Returns:
        ``{"format", "out", "images", "boxes", "classes", "questions"}``.

    Raises:
        ConfigError: A label's name is not in ``classes``, or ``fmt`` is unknown.
        DatasetError: The selection SQL is invalid.
    """
    import duckdb

    if fmt not in ("yolo", "coco", "hf"):
        raise ConfigError(f"unknown export format {fmt!r}; use yolo, coco or hf")
    out = Path(out)
    questions = [question] if isinstance(question, str) else list(question) if question is not None else None
    # One condition for the boxes and for the default frame selection.
    box_filter = "kind = 'box' AND target = 'frame' AND source IN (SELECT unnest(?))"
    params: list[Any] = [list(sources)]
    if questions is not None:
        box_filter += " AND question IN (SELECT unnest(?))"
        params.append(questions)
    con = ds.connect()
    try:
        boxes = (
            con.sql(
                f"SELECT label_id, frame_id, name, bbox_xyxy_norm FROM current_labels WHERE {box_filter} "
                "ORDER BY frame_id, label_id",
                params=params,
            )
            .to_arrow_table()
            .to_pylist()
        )
        sql = (
            "SELECT f.frame_id, f.session_id, f.width, f.height FROM frames f "
            "JOIN current_sessions s ON s.session_id = f.session_id"
        )
        if where:
            sql += f" WHERE ({where})"
        else:
            sql += f" WHERE f.frame_id IN (SELECT frame_id FROM current_labels WHERE {box_filter})"
        frames = (
            con.sql(sql + " ORDER BY f.session_id, f.ts, f.frame_id", params=None if where else params)
            .to_arrow_table()
            .to_pylist()
        )
    except duckdb.Error as exc:
        raise DatasetError(f"export selection failed: {exc}") from exc
    finally:
        con.close()
    wanted = {f["frame_id"] for f in frames}
    boxes = [b for b in boxes if b["frame_id"] in wanted]
    names = list(classes) if classes else sorted({b["name"] for b in boxes})
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({b["name"] for b in boxes} - set(index))
    if unknown:
        raise ConfigError(
            f"box label(s) {', '.join(unknown)} are not in the class list {names}",
            hint="add them to the schema / --classes, or narrow the selection",
        )
    by_frame: dict[str, list[dict[str, Any]]] = {}
    for b in boxes:
        by_frame.setdefault(b["frame_id"], []).append(b)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "yolo":
        _yolo(ds, out, frames, by_frame, names, index)
    elif fmt == "coco":
        _coco(ds, out, frames, by_frame, names, index)
    else:
        _hf(ds, out, frames, by_frame, names, index)
    summary = {
        "format": fmt,
        "out": str(out),
        "images": len(frames),
        "boxes": len(boxes),
        "classes": names,
        "questions": questions,
    }
    log.info("exported %d image(s), %d box(es) as %s to %s", len(frames), len(boxes), fmt, out)
    return summary


def _images(ds: Dataset, frames: list[dict[str, Any]]) -> Any:
    """Yield ``(frame, jpeg bytes)`` in ``frames`` order, reading a session at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    by_session: dict[str, list[dict[str, Any]]] = {}
    for f in frames:
        by_session.setdefault(f["session_id"], []).append(f)
    for sid, fs in by_session.items():
        t = ds.read("frames", columns=["frame_id", "image"], filters=[("session_id", "=", sid)])
        t = t.filter(pc.is_in(t.column("frame_id"), pa.array([f["frame_id"] for f in fs], pa.string())))
        data = dict(zip(t.column("frame_id").to_pylist(), t.column("image").to_pylist(), strict=True))
        for f in fs:
            yield f, data[f["frame_id"]]


def _pixels(b: dict[str, Any], f: dict[str, Any]) -> list[float]:
    x1, y1, x2, y2 = b["bbox_xyxy_norm"]
    w, h = f["width"], f["height"]
    return [x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h]


def _yolo(
    ds: Dataset,
    out: Path,
    frames: list[dict[str, Any]],
    by_frame: dict[str, list[dict[str, Any]]],
    names: list[str],
    index: dict[str, int],
) -> None:
    (out / "images").mkdir(exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    for f, jpeg in _images(ds, frames):
        (out / "images" / f"{f['frame_id']}.jpg").write_bytes(jpeg)
        lines = []
        for b in by_frame.get(f["frame_id"], []):
            x1, y1, x2, y2 = b["bbox_xyxy_norm"]
            lines.append(
                f"{index[b['name']]} {(x1 + x2) / 2:.8f} {(y1 + y2) / 2:.8f} {x2 - x1:.8f} {y2 - y1:.8f}"
            )
        (out / "labels" / f"{f['frame_id']}.txt").write_text("".join(line + "\n" for line in lines))
    (out / "classes.txt").write_text("".join(n + "\n" for n in names))
    yaml_names = "\n".join(f"  {i}: {json.dumps(n)}" for i, n in enumerate(names))
    (out / "data.yaml").write_text(
        "# Written by jangin label export. Class order: as listed (fixed; see classes.txt).\n"
        f"path: {json.dumps(str(out.resolve()))}\ntrain: images\nval: images\nnames:\n{yaml_names}\n"
    )


def _coco(
    ds: Dataset,
    out: Path,
    frames: list[dict[str, Any]],
    by_frame: dict[str, list[dict[str, Any]]],
    names: list[str],
    index: dict[str, int],
) -> None:
    (out / "images").mkdir(exist_ok=True)
    images, anns = [], []
    for i, (f, jpeg) in enumerate(_images(ds, frames), start=1):
        rel = f"images/{f['frame_id']}.jpg"
        (out / rel).write_bytes(jpeg)
        images.append(
            {
                "id": i,
                "file_name": rel,
                "width": f["width"],
                "height": f["height"],
                "jangin_frame_id": f["frame_id"],
            }
        )
        for b in by_frame.get(f["frame_id"], []):
            x, y, w, h = _pixels(b, f)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": index[b["name"]] + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "jangin_label_id": b["label_id"],
                }
            )
    doc = {
        "info": {"description": "exported by jangin label export", "version": "1"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(names)],
    }
    (out / "annotations.json").write_text(json.dumps(doc, indent=1))


def _hf(
    ds: Dataset,
    out: Path,
    frames: list[dict[str, Any]],
    by_frame: dict[str, list[dict[str, Any]]],
    names: list[str],
    index: dict[str, int],
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for f, jpeg in _images(ds, frames):
        bs = by_frame.get(f["frame_id"], [])
        rows.append(
            {
                "image": {"bytes": jpeg, "path": f"{f['frame_id']}.jpg"},
                "frame_id": f["frame_id"],
                "session_id": f["session_id"],
                "width": f["width"],
                "height": f["height"],
                "objects": {
                    "bbox": [_pixels(b, f) for b in bs],
                    "category": [index[b["name"]] for b in bs],
                    "label_id": [b["label_id"] for b in bs],
                },
            }
        )
    schema = pa.schema(
        [
            pa.field("image", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])),
            pa.field("frame_id", pa.string()),
            pa.field("session_id", pa.string()),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field(
                "objects",
                pa.struct(
                    [
                        pa.field("bbox", pa.list_(pa.list_(pa.float64()))),
                        pa.field("category", pa.list_(pa.int64())),
                        pa.field("label_id", pa.list_(pa.string())),
                    ]
                ),
            ),
        ]
    )
    value = lambda dtype: {"dtype": dtype, "_type": "Value"}  # noqa: E731
    # The features `datasets` reads from the Parquet metadata: `image` becomes an Image feature,
    # `category` a ClassLabel with the fixed class order. Plain lists are list features in every
    # `datasets` version (Sequence became List in 4.0; a JSON list reads as either).
    features = {
        "image": {"_type": "Image"},
        "frame_id": value("string"),
        "session_id": value("string"),
        "width": value("int32"),
        "height": value("int32"),
        "objects": {
            "bbox": [[value("float64")]],
            "category": [{"names": names, "_type": "ClassLabel"}],
            "label_id": [value("string")],
        },
    }
    schema = schema.with_metadata({b"huggingface": json.dumps({"info": {"features": features}}).encode()})
    table = pa.Table.from_pylist(rows, schema=schema)
    (out / "data").mkdir(exist_ok=True)
    pq.write_table(table, out / "data" / "train-00000-of-00001.parquet")
    (out / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/*.parquet\n---\n"
        "# Jangin box labels\n\nExported by `jangin label export --format hf`. Load with "
        '`datasets.load_dataset("parquet", data_files="data/*.parquet")` or `load_dataset("<this folder>")`.\n'
        f"`objects.bbox` is [x, y, width, height] in pixels (COCO style); `objects.category` indexes {names}.\n"
    )
