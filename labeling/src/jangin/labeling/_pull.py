"""Annotations from Label Studio (live, or a JSON export file) → rows of the ``labels`` table.

Geometry is converted exactly: a box's ``x, y, width, height`` are percentages (0–100) of the
original image, top-left origin, so ``bbox_xyxy_norm = [x/100, y/100, (x+width)/100, (y+height)/100]``;
a span's ``start``/``end`` are in the units of the window CSV's time column (seconds since the
session start), so ``ts = session start + value`` to the microsecond.

Every row's ``question`` is the name of the control it came from (``from_name``: a ``Choices``,
``RectangleLabels`` or ``TimeSeriesLabels`` name), so a project that asks several questions of one
session or frame keeps them apart.

Every row's ``external_id`` is ``ls:<project>:<annotation id>@<updated_at>#<result id>`` and its
``label_id`` is derived from it, so pulling (or importing) the same annotation twice adds nothing.
When an annotation changed (a new ``updated_at``), its rows supersede the rows of the earlier version
(matched by result id); results that disappeared, and annotations deleted in Label Studio (pull
only: a pull sees the whole project), get a retracting row (``deleted = true``).
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from jangin.core import Dataset, LabelStudioError, SchemaError
from jangin.core._ids import stable_id
from jangin.core.progress import ProgressFn, null_progress
from jangin.labeling._client import LabelStudioClient
from jangin.labeling._labels import append_new_labels

__all__ = ["PullResult", "import_export", "pull"]

log = logging.getLogger(__name__)

_TAGS = {"RectangleLabels": "box", "TimeSeriesLabels": "span", "Choices": "class", "Labels": "span"}


@dataclass
class PullResult:
    """What a pull or an import added to the ``labels`` table.

    Attributes:
        annotations: Annotations read.
        added: New label rows (first versions).
        superseding: Rows that replace an earlier version of a changed annotation.
        retracted: Retracting rows (results or annotations deleted).
        unchanged: Rows already in the table.
        skipped: Rows left out because their frame or session is not in the dataset (import with
            ``missing='skip'``).
    """

    annotations: int = 0
    added: int = 0
    superseding: int = 0
    retracted: int = 0
    unchanged: int = 0
    skipped: int = 0

    @property
    def written(self) -> int:
        """Rows written in all."""
        return self.added + self.superseding + self.retracted


def pull(
    ds: Dataset, project: str, *, client: LabelStudioClient, progress: ProgressFn = null_progress
) -> PullResult:
    """Read every annotation of Label Studio project ``project`` into the ``labels`` table.

    Raises:
        LabelStudioError: The server is unreachable, refuses the token, has no such project, or an
            annotation uses a label the project's config does not define.
        SchemaError: A task refers to a frame that is not in the dataset.
    """
    client.check()
    proj = client.project(project)
    known = config_labels(proj.get("label_config") or "")
    # The JSON export holds every annotated task with full annotations in one request; a task whose
    # annotations were all deleted is absent from it, so its earlier rows are retracted below.
    progress(f"pull {project}", 0, None)
    tasks = client.export(int(proj["id"]))
    progress(f"pull {project}", len(tasks), len(tasks))
    return _apply(
        ds, tasks, known=known, where=f"project {project!r}", complete=True, project_id=int(proj["id"])
    )


def import_export(
    ds: Dataset,
    path: str | Path,
    *,
    label_config: str | None = None,
    missing: Literal["error", "skip"] = "error",
) -> PullResult:
    """Import a Label Studio JSON export (the ``JSON`` format: a list of tasks with annotations).

    Only tasks that Jangin pushed (their data has a ``jangin`` block) can be mapped to frames and
    sessions; others are skipped with a warning. Deleted annotations cannot be seen in a file, so an
    import never retracts; a later export of a changed annotation supersedes the earlier rows.

    Args:
        label_config: The project's labelling config, to reject labels it does not define.
        missing: A label on a frame or session that is not in the dataset: ``error`` (the default)
            or ``skip`` (counted in :attr:`PullResult.skipped`, for partial datasets).

    Raises:
        SchemaError: The file is not a Label Studio JSON export, a task refers to a frame that is not
            in the dataset (unless ``missing='skip'``), or an annotation uses a label the config does not define.
    """
    path = Path(path)
    try:
        tasks = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SchemaError(f"{path}: not a readable Label Studio JSON export: {exc}") from exc
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise SchemaError(f"{path}: a Label Studio JSON export is a list of tasks")
    known = config_labels(label_config) if label_config else None
    return _apply(ds, tasks, known=known, where=str(path), complete=False, project_id=None, missing=missing)


def config_labels(label_config: str) -> dict[str, tuple[str, set[str]]]:
    """``{control name: (kind, label names)}`` of a labelling config."""
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as exc:
        raise LabelStudioError(f"the project's labelling config is not valid XML: {exc}") from exc
    out: dict[str, tuple[str, set[str]]] = {}
    for el in root.iter():
        if el.tag in _TAGS and el.get("name"):
            out[el.get("name", "")] = (
                _TAGS[el.tag],
                {c.get("value", "") for c in el if c.get("value") is not None},
            )
    return out


# -- conversion -------------------------------------------------------------------------------------


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _author(ann: dict[str, Any]) -> str:
    by = ann.get("completed_by")
    if isinstance(by, dict):
        by = by.get("id")
    # A Label Studio user id, not the e-mail: labels carry pseudonyms, never names.
    return f"labelstudio-user:{by}" if by is not None else "labelstudio-user:unknown"


def _clamp(v: float) -> float:
    return min(max(v, 0.0), 1.0)


def _rows_of_annotation(
    task: dict[str, Any],
    ann: dict[str, Any],
    *,
    origin: str,
    known: dict[str, tuple[str, set[str]]] | None,
    where: str,
) -> list[dict[str, Any]]:
    info = (task.get("data") or {}).get("jangin") or {}
    updated = ann.get("updated_at") or ann.get("created_at") or ""
    created_at = _parse_time(updated)
    base = {
        "source": "labeller",
        "author": _author(ann),
        "created_at": created_at,
        "lead_time_s": float(ann["lead_time"]) if ann.get("lead_time") is not None else None,
        "session_id": info.get("session_id"),
    }
    rows = []
    for res in ann.get("result") or []:
        rtype = res.get("type")
        value = res.get("value") or {}
        control = res.get("from_name", "")
        key = {
            "rectanglelabels": "rectanglelabels",
            "timeserieslabels": "timeserieslabels",
            "choices": "choices",
            "labels": "labels",
        }.get(rtype or "")
        if key is None:
            log.debug("%s: task %s: result type %r is not converted", where, task.get("id"), rtype)
            continue
        names = value.get(key) or []
        for j, name in enumerate(names):
            if known is not None:
                kind_names = known.get(control)
                if kind_names is None or name not in kind_names[1]:
                    raise LabelStudioError(
                        f"{where}: annotation {ann.get('id')} on task {task.get('id')} uses label {name!r} "
                        f"(control {control!r}) that the project's labelling config does not define",
                        hint="add it to the label schema and push again, or fix the annotation",
                    )
            ext = f"{origin}:{ann.get('id')}@{updated}#{res.get('id')}" + (f"/{j}" if len(names) > 1 else "")
            row = {
                **base,
                "label_id": stable_id("lbl", "ls", ext),
                "external_id": ext,
                "name": name,
                # The control's name is the question the label answers (``quality``, ``defect``…).
                "question": control or None,
                "frame_id": None,
                "ts_start": None,
                "ts_end": None,
                "bbox_xyxy_norm": None,
                "geometry_json": None,
                "channel": None,
                "supersedes": None,
                "deleted": None,
                "score": None,
            }
            if rtype == "rectanglelabels":
                if info.get("target") != "frame":
                    raise SchemaError(f"{where}: task {task.get('id')}: a box on a task that is not a frame")
                x, y = float(value["x"]), float(value["y"])
                w, h = float(value["width"]), float(value["height"])
                box = [_clamp(x / 100.0), _clamp(y / 100.0), _clamp((x + w) / 100.0), _clamp((y + h) / 100.0)]
                if not (box[0] < box[2] and box[1] < box[3]):
                    log.warning("%s: task %s: empty box %s skipped", where, task.get("id"), box)
                    continue
                row |= {
                    "target": "frame",
                    "kind": "box",
                    "frame_id": info.get("frame_id"),
                    "bbox_xyxy_norm": box,
                }
                if value.get("rotation"):
                    row["geometry_json"] = json.dumps({"rotation_deg": value["rotation"]})
            elif rtype in ("timeserieslabels", "labels"):
                if info.get("target") != "session":
                    raise SchemaError(
                        f"{where}: task {task.get('id')}: a time span on a task that is not a sensor window"
                    )
                t0 = int(info["started_at_us"])
                row |= {
                    "target": "span",
                    "kind": "span",
                    "ts_start": _ts(t0, float(value["start"])),
                    "ts_end": _ts(t0, float(value["end"])),
                }
            else:
                if info.get("target") == "frame":
                    row |= {"target": "frame", "kind": "class", "frame_id": info.get("frame_id")}
                else:
                    row |= {"target": "session", "kind": "class"}
            rows.append(row)
    return rows


def _ts(session_start_us: int, seconds: float) -> datetime:
    # Seconds with at most 6 decimals in the CSV: round to the microsecond, exactly.
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=session_start_us + round(seconds * 1e6))


def _apply(
    ds: Dataset,
    tasks: list[dict[str, Any]],
    *,
    known: dict[str, tuple[str, set[str]]] | None,
    where: str,
    complete: bool,
    project_id: int | None,
    missing: str = "error",
) -> PullResult:
    result = PullResult()
    new_rows: list[dict[str, Any]] = []
    seen_anns: set[str] = set()
    origins: set[str] = set()
    for task in tasks:
        info = (task.get("data") or {}).get("jangin")
        if not info:
            log.warning(
                "%s: task %s was not pushed by Jangin (no `jangin` data); skipped", where, task.get("id")
            )
            continue
        pid = project_id if project_id is not None else task.get("project")
        for ann in task.get("annotations") or []:
            pid_a = pid if pid is not None else ann.get("project")
            origin = f"ls:{pid_a}"
            origins.add(origin)
            result.annotations += 1
            seen_anns.add(f"{origin}:{ann.get('id')}")
            if ann.get("was_cancelled"):
                continue
            new_rows += _rows_of_annotation(task, ann, origin=origin, known=known, where=where)
    unknown = _missing_targets(ds, new_rows)
    if unknown and missing == "skip":
        result.skipped = sum(1 for r in new_rows if r["label_id"] in unknown)
        new_rows = [r for r in new_rows if r["label_id"] not in unknown]
    elif unknown:
        r = next(r for r in new_rows if r["label_id"] in unknown)
        what = f"frame {r['frame_id']}" if r["frame_id"] else f"session {r['session_id']}"
        raise SchemaError(
            f"{where}: {r['external_id']}: {what} is not in the dataset",
            hint="import the frames and sessions first (jangin capture import)",
        )
    if project_id is not None:
        origins.add(f"ls:{project_id}")
    current = _current_rows(ds, origins)
    have_ids = _existing_ids(ds, [r["label_id"] for r in new_rows])
    # The current rows of each annotation, by result id (one version is current at a time).
    by_ann: dict[str, dict[str, dict[str, Any]]] = {}
    for r in current:
        ann_key, _, rid = _split(r["external_id"])
        by_ann.setdefault(ann_key, {})[rid] = r
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    new_by_ann: dict[str, set[str]] = {}
    for r in new_rows:
        ann_key, _, rid = _split(r["external_id"])
        new_by_ann.setdefault(ann_key, set()).add(rid)
        if r["label_id"] in have_ids:
            result.unchanged += 1
            continue
        old = by_ann.get(ann_key, {}).get(rid)
        if old is not None and old["label_id"] != r["label_id"]:
            r["supersedes"] = old["label_id"]
            result.superseding += 1
        else:
            result.added += 1
        out.append(r)
    for ann_key, olds in by_ann.items():
        if ann_key in seen_anns:
            keep = new_by_ann.get(ann_key, set())  # results removed, or the annotation emptied / cancelled
        elif complete:
            keep = set()  # the annotation (or its task) was deleted in Label Studio
        else:
            continue
        for rid, old in olds.items():
            if rid not in keep:
                out.append(_retraction(old, now))
                result.retracted += 1
    append_new_labels(ds, out, source=where)
    log.info(
        "%s: %d annotation(s): %d new, %d superseding, %d retracted, %d unchanged label row(s)",
        where,
        result.annotations,
        result.added,
        result.superseding,
        result.retracted,
        result.unchanged,
    )
    return result


def _split(external_id: str) -> tuple[str, str, str]:
    """``ls:<project>:<ann>@<updated>#<rid>`` → (``ls:<project>:<ann>``, updated, rid)."""
    head, _, rid = external_id.partition("#")
    ann_key, _, updated = head.partition("@")
    return ann_key, updated, rid


def _retraction(old: dict[str, Any], now: datetime) -> dict[str, Any]:
    row = {
        k: old[k]
        for k in ("target", "frame_id", "session_id", "ts_start", "ts_end", "channel", "kind", "name")
    }
    ann_key, _, rid = _split(old["external_id"])
    return row | {
        "question": old.get("question"),
        "label_id": stable_id("lbl", "ls-retract", old["label_id"]),
        "source": "labeller",
        "author": old.get("author"),
        "created_at": now,
        "supersedes": old["label_id"],
        "deleted": True,
        "external_id": f"{ann_key}@deleted#{rid}",
    }


def _current_rows(ds: Dataset, origins: set[str]) -> list[dict[str, Any]]:
    if not origins:
        return []
    con = ds.connect()
    try:
        return (
            con.sql(
                "SELECT * EXCLUDE (bbox_xyxy_norm, geometry_json) FROM current_labels "
                "WHERE external_id IS NOT NULL AND split_part(external_id, ':', 1) || ':' || split_part(external_id, ':', 2) "
                "IN (SELECT unnest(?))",
                params=[sorted(origins)],
            )
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        con.close()


def _existing_ids(ds: Dataset, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    con = ds.connect()
    try:
        return {
            r[0]
            for r in con.execute(
                "SELECT label_id FROM labels WHERE label_id IN (SELECT unnest(?))", [ids]
            ).fetchall()
        }
    finally:
        con.close()


def _missing_targets(ds: Dataset, rows: list[dict[str, Any]]) -> set[str]:
    """Label ids of ``rows`` whose frame or session is not in the dataset."""
    if not rows:
        return set()

    def present(sql: str, ids: list[str]) -> set[str]:
        return {r[0] for r in con.execute(sql, [ids]).fetchall()} if ids else set()

    con = ds.connect()
    try:
        have_f = present(
            "SELECT frame_id FROM frames WHERE frame_id IN (SELECT unnest(?))",
            sorted({r["frame_id"] for r in rows if r["frame_id"]}),
        )
        have_s = present(
            "SELECT session_id FROM sessions WHERE session_id IN (SELECT unnest(?))",
            sorted({r["session_id"] for r in rows if r["session_id"]}),
        )
    finally:
        con.close()
    return {
        r["label_id"]
        for r in rows
        if (r["frame_id"] and r["frame_id"] not in have_f) or r["session_id"] not in have_s
    }
