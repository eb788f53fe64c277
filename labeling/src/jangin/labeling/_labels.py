"""Labels from the data itself: the expert's judgments in the event stream, and box files."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from jangin.core import Dataset, SchemaError
from jangin.core._ids import stable_id
from jangin.core.process_definition import ProcessDefinition, get_process
from jangin.core.schema import LabelRow

__all__ = ["append_new_labels", "import_box_csv", "labels_from_judgments"]

log = logging.getLogger(__name__)

#: The question of judgment labels when the session's process definition names no span label.
JUDGMENT_QUESTION = "judgment"


def append_new_labels(
    ds: Dataset, rows: Sequence[dict[str, Any]] | Sequence[LabelRow], *, source: str | None = None
) -> int:
    """Append the label rows (dicts or :class:`LabelRow` records, not mixed) whose ``label_id`` is
    not in the table yet; return how many were new.

    Label ids are deterministic in every importer, so importing the same thing twice adds nothing.
    """
    if not rows:
        return 0
    ids = [r.label_id if isinstance(r, LabelRow) else r["label_id"] for r in rows]
    con = ds.connect()
    try:
        existing = {
            r[0]
            for r in con.execute(
                "SELECT label_id FROM labels WHERE label_id IN (SELECT unnest(?))", [ids]
            ).fetchall()
        }
    finally:
        con.close()
    new = [r for r, i in zip(rows, ids, strict=True) if i not in existing]
    if new:
        ds.append("labels", new, source=source)
    return len(new)


def labels_from_judgments(ds: Dataset, *, session_ids: list[str] | None = None) -> int:
    """Turn every ``judgment`` event into a span label (source ``expert``).

    A judgment's value is ``OK`` or ``NG:<defect>``; the label's name is ``OK`` or the defect
    (``NG`` when no defect is given), over the judged segment (``segment_start``..``segment_end``,
    else the event time). Returns the number of new labels.

    The label's question comes from the session's process definition (``sessions.process_definition``,
    else ``sessions.process``): the span label spec whose choices hold the label's name, else a span
    spec with no fixed choices; without either it is ``judgment``.
    """
    sql = (
        "SELECT e.event_id, e.session_id, e.ts, e.name, e.value, e.author, e.segment_start, e.segment_end, "
        "coalesce(s.process_definition, s.process) AS process FROM events e "
        "LEFT JOIN current_sessions s ON s.session_id = e.session_id WHERE e.kind = 'judgment'"
    )
    params: list[Any] = []
    if session_ids:
        sql += " AND e.session_id IN (SELECT unnest(?))"
        params.append(session_ids)
    con = ds.connect()
    try:
        events = con.sql(sql, params=params or None).to_arrow_table().to_pylist()
    finally:
        con.close()
    now = datetime.now(UTC)
    processes: dict[str, ProcessDefinition | None] = {}
    for name in {e["process"] for e in events if e["process"]}:
        processes[name] = get_process(ds, name)
    rows = []
    for e in events:
        value = (e["value"] or "").strip()
        verdict, _, defect = value.partition(":")
        if verdict.upper() not in ("OK", "NG"):
            log.warning("judgment %s has value %r; expected OK or NG:<defect>; skipped", e["event_id"], value)
            continue
        name = "OK" if verdict.upper() == "OK" else (defect.strip() or "NG")
        rows.append(
            {
                "label_id": stable_id("lbl", "judgment", e["event_id"]),
                "target": "span",
                "session_id": e["session_id"],
                "ts_start": e["segment_start"] or e["ts"],
                "ts_end": e["segment_end"] or e["ts"],
                "kind": "class",
                "name": name,
                "geometry_json": None,
                "source": "expert",
                "author": e["author"],
                "created_at": now,
                "external_id": e["event_id"],
                "question": judgment_question(processes.get(e["process"] or ""), name),
            }
        )
    return append_new_labels(ds, rows, source="events (judgments)")


def judgment_question(definition: ProcessDefinition | None, name: str) -> str:
    """The question a judgment label ``name`` answers under ``definition`` (see :func:`labels_from_judgments`)."""
    spans = [x for x in (definition.labels if definition else []) if x.target == "span"]
    for spec in spans:
        if name in spec.choices:
            return spec.question
    open_ended = [x for x in spans if not x.choices]
    return open_ended[0].question if open_ended else JUDGMENT_QUESTION


def import_box_csv(
    ds: Dataset,
    path: str | Path,
    *,
    session_id: str,
    source: str = "import",
    author: str | None = None,
    missing: Literal["error", "skip"] = "error",
    question: str | None = "defect",
) -> int:
    """Import boxes from a CSV (``image, class, xmin, ymin, xmax, ymax`` in pixels, top-left origin)
    as box labels on the frames of ``session_id`` whose ``source_uri`` is the ``image`` path.

    Args:
        missing: What to do with a row whose image is not a frame of the session: ``error`` (the
            default) or ``skip`` (counted in the log, for partial imports).
        question: The question the boxes answer (``labels.question``).

    Raises:
        SchemaError: A row names an image that is not a frame of the session (unless ``missing`` is
            ``skip``), or a box outside the image; the row is named and nothing is written.
    """
    path = Path(path)
    con = ds.connect()
    try:
        frames = {
            uri: (fid, w, h)
            for fid, uri, w, h in con.execute(
                "SELECT frame_id, source_uri, width, height FROM frames WHERE session_id = ?", [session_id]
            ).fetchall()
        }
    finally:
        con.close()
    now = datetime.now(UTC)
    rows = []
    skipped = 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"image", "class", "xmin", "ymin", "xmax", "ymax"}
        absent = need - set(reader.fieldnames or [])
        if absent:
            raise SchemaError(f"{path}: missing column(s) {', '.join(sorted(absent))}")
        for i, r in enumerate(reader, start=2):
            if r["image"] not in frames:
                if missing == "skip":
                    skipped += 1
                    continue
                raise SchemaError(
                    f"{path}: row {i}: image {r['image']!r} is not a frame of session {session_id}"
                )
            fid, w, h = frames[r["image"]]
            try:
                x1, y1, x2, y2 = (float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError:
                raise SchemaError(f"{path}: row {i}: box coordinates must be numbers") from None
            if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
                raise SchemaError(
                    f"{path}: row {i}: box ({x1}, {y1}, {x2}, {y2}) is not inside the {w}×{h} image"
                )
            rows.append(
                {
                    "label_id": stable_id("lbl", "boxcsv", fid, r["class"], x1, y1, x2, y2),
                    "target": "frame",
                    "frame_id": fid,
                    "session_id": session_id,
                    "kind": "box",
                    "name": r["class"],
                    "question": question,
                    "bbox_xyxy_norm": [x1 / w, y1 / h, x2 / w, y2 / h],
                    "source": source,
                    "author": author,
                    "created_at": now,
                }
            )
    if skipped:
        log.info("%s: skipped %d box(es) of images that are not frames of %s", path, skipped, session_id)
    return append_new_labels(ds, rows, source=str(path))
