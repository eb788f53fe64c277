"""Push frames and sensor windows to Label Studio as tasks, with model pre-annotations.

Files go under a *document root* that the Label Studio server serves as local files
(``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``): ``<root>/jangin/frames/<session>/<frame>.jpg`` and
``<root>/jangin/windows/<project>/<session>/<start_ms>-<end_ms>.csv``. Tasks refer to them as
``/data/local-files/?d=<path relative to root>``.

Every task carries ``jangin_key`` (``frame:<frame_id>`` or ``window:<session_id>:<start_us>:<end_us>``,
offsets from the session start) and a ``jangin`` block with what a pull needs to map results back
(frame id and size; session id, session start, window). Before importing, push lists the project's
tasks and skips every key already there, so pushing twice adds nothing.

Pre-annotations come *through the dataset*: another stage runs a model and writes its output as
``labels`` rows with ``source = 'model'`` and ``author = '<name>:<version>'``. ``model=`` attaches
those rows as Label Studio predictions with that ``model_version`` and makes it the project's model
version, so labellers see them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jangin.core import ConfigError, Dataset, LabelStudioError, NotFoundError
from jangin.core.progress import ProgressFn, null_progress
from jangin.labeling._client import LabelStudioClient
from jangin.labeling._schema import IMAGE, SERIES, TIME_COLUMN, LabelSchema, load_schema

__all__ = ["PushResult", "push"]

log = logging.getLogger(__name__)

FILES_DIR = "jangin"
SOURCES_SHOWN = ("expert", "labeller", "import", "review")


@dataclass
class PushResult:
    """What a push did.

    Attributes:
        project: Project title.
        project_id: Label Studio project id.
        created: Tasks imported by this push.
        existing: Selected tasks already in the project (skipped).
        predictions: Predictions attached.
        model_version: The project's model version, if ``model`` was given.
        seconds: Wall time.
    """

    project: str
    project_id: int
    created: int = 0
    existing: int = 0
    predictions: int = 0
    model_version: str | None = None
    seconds: float = 0.0


def push(
    ds: Dataset,
    project: str,
    *,
    client: LabelStudioClient,
    root: str | Path,
    where: str | None = None,
    schema: Any = None,
    model: str | None = None,
    chunk_size: int = 1000,
    progress: ProgressFn = null_progress,
) -> PushResult:
    """Create or update Label Studio project ``project`` and import the selected frames or windows.

    Args:
        ds: The dataset.
        project: Project title (created if missing; its labelling config follows ``schema``).
        client: The Label Studio client.
        root: The server's local-files document root (``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``).
        where: SQL condition over ``frames f`` joined with ``current_sessions s`` (schema target
            ``frame``) or over ``current_sessions s`` (target ``session``); default: all.
        schema: A label schema (path, YAML text, dict or :class:`LabelSchema`); default: box labels
            named after the box labels already in the dataset.
        model: ``NAME`` or ``NAME:VERSION`` of a model whose ``labels`` rows (``source = 'model'``)
            become predictions; without a version, the newest version found in the table.
        chunk_size: Tasks per import request.
        progress: ``progress(task, done, total)``.

    Returns:
        What was created and skipped.

    Raises:
        LabelStudioError: The server is unreachable, refuses the token, or a model label is not in
            the project's config.
        NotFoundError: ``model`` has no rows in ``labels``.
        ConfigError: The schema is invalid, or no schema given and none can be derived.
    """
    if not 0 < len(project) <= 50:
        raise ValueError(
            f"a Label Studio project title has 1..50 characters, got {len(project)}: {project!r}"
        )
    t0 = time.perf_counter()
    sch = load_schema(schema) if schema is not None else _default_schema(ds)
    root = Path(root).expanduser().resolve()
    author = _resolve_model(ds, model) if model else None
    if sch.target == "frame":
        targets = _select_frames(ds, where)
        channels = None
    else:
        targets = _select_sessions(ds, where)
        channels = sch.channels or _channels_of(ds, [t["session_id"] for t in targets])
    client.check()
    proj, _ = client.ensure_project(
        project, sch.label_config(channels), description="made by jangin label push"
    )
    pid = int(proj["id"])
    files = root / FILES_DIR
    files.mkdir(parents=True, exist_ok=True)
    client.ensure_local_storage(pid, str(files))
    existing: dict[str, dict[str, Any]] = {}
    for task in client.iter_tasks(pid, include="id,data"):
        key = (task.get("data") or {}).get("jangin_key")
        if key:
            existing[key] = task
    result = PushResult(project=project, project_id=pid, model_version=author)
    preds = _model_rows(ds, author) if author else {}

    if sch.target == "frame":
        items = [(f"frame:{t['frame_id']}", t) for t in targets]
    else:
        items = []
        for s in targets:
            for w in _windows(s, sch.window_s):
                items.append((f"window:{s['session_id']}:{w[0]}:{w[1]}", {**s, "window": w}))
    todo = [(k, t) for k, t in items if k not in existing]
    result.existing = len(items) - len(todo)
    total = len(todo)
    progress(f"push {project}", 0, total)
    slug = _slug(project)
    series_cache: dict[str, Any] = {}
    for i in range(0, total, chunk_size):
        chunk = todo[i : i + chunk_size]
        if sch.target == "frame":
            _write_images(ds, root, [t for _, t in chunk])
        tasks = []
        for key, t in chunk:
            if sch.target == "frame":
                data = _frame_task(key, t)
            else:
                data = _window_task(ds, root, slug, key, t, channels or [], sch.max_points, series_cache)
            task: dict[str, Any] = {"data": data}
            if author:
                pred = _prediction(sch, project, author, data["jangin"], preds)
                if pred:
                    task["predictions"] = [pred]
                    result.predictions += 1
            tasks.append(task)
        ids = client.import_tasks(pid, tasks)
        if ids and len(ids) != len(tasks):
            raise LabelStudioError(
                f"project {project!r}: imported {len(tasks)} tasks but got {len(ids)} ids back"
            )
        result.created += len(tasks)
        progress(f"push {project}", min(i + chunk_size, total), total)
    if author and result.existing:
        # Tasks pushed earlier get this model's predictions once (a later push with a new model).
        selected = {k for k, _ in items}
        versions = client.model_versions(pid)
        for key, task in existing.items():
            if key not in selected or author in versions.get(int(task["id"]), set()):
                continue
            pred = _prediction(sch, project, author, task["data"].get("jangin") or {}, preds)
            if pred:
                client.add_prediction(
                    int(task["id"]), pred["result"], score=pred["score"], model_version=author
                )
                result.predictions += 1
    if author:
        client.set_model_version(pid, author)
    result.seconds = time.perf_counter() - t0
    log.info(
        "pushed %d new task(s) to %r (%d already there, %d prediction(s)) in %.1f s",
        result.created,
        project,
        result.existing,
        result.predictions,
        result.seconds,
    )
    return result


# -- selection --------------------------------------------------------------------------------------


def _query(ds: Dataset, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    import duckdb

    from jangin.core import DatasetError

    con = ds.connect()
    try:
        return con.sql(sql, params=params or None).to_arrow_table().to_pylist()
    except duckdb.Error as exc:
        raise DatasetError(
            f"selecting tasks failed: {exc}",
            hint="--where is SQL over `frames f` and `current_sessions s`, e.g. \"s.station = 'st-01'\"",
        ) from exc
    finally:
        con.close()


def _select_frames(ds: Dataset, where: str | None) -> list[dict[str, Any]]:
    sql = (
        "SELECT f.frame_id, f.session_id, f.width, f.height, f.source_uri FROM frames f "
        "JOIN current_sessions s ON s.session_id = f.session_id"
    )
    if where:
        sql += f" WHERE ({where})"
    return _query(ds, sql + " ORDER BY f.session_id, f.ts, f.frame_id")


def _select_sessions(ds: Dataset, where: str | None) -> list[dict[str, Any]]:
    sql = (
        "SELECT s.session_id, s.started_at, s.ended_at, "
        "coalesce(json_extract_string(s.meta_json, '$.session_key'), s.session_id) AS session_key, "
        "(SELECT max(x.ts) FROM sensor_samples x WHERE x.session_id = s.session_id) AS last_sample "
        "FROM current_sessions s"
    )
    if where:
        sql += f" WHERE ({where})"
    # Sessions without sensor samples (e.g. a folder of stills) have nothing to draw.
    sql = f"SELECT * FROM ({sql}) WHERE last_sample IS NOT NULL"
    return _query(ds, sql + " ORDER BY started_at, session_id")


def _channels_of(ds: Dataset, session_ids: list[str]) -> list[str]:
    rows = _query(
        ds,
        "SELECT DISTINCT channel FROM sensor_samples WHERE session_id IN (SELECT unnest(?)) ORDER BY 1",
        [session_ids],
    )
    return [r["channel"] for r in rows]


def _default_schema(ds: Dataset) -> LabelSchema:
    names = [
        r["name"]
        for r in _query(ds, "SELECT DISTINCT name FROM current_labels WHERE kind = 'box' ORDER BY 1")
    ]
    if not names:
        raise ConfigError(
            "no label schema given and the dataset has no box labels to derive one from",
            hint="pass --schema FILE (YAML: target, labels: [{kind, names}])",
        )
    return LabelSchema(target="frame", labels=[{"kind": "box", "names": names}])  # type: ignore[list-item]


def _resolve_model(ds: Dataset, model: str) -> str:
    name, _, version = model.partition(":")
    if version:
        rows = _query(
            ds, "SELECT count(*) AS n FROM current_labels WHERE source = 'model' AND author = ?", [model]
        )
        found = rows[0]["n"] > 0
        author = model
    else:
        rows = _query(
            ds,
            "SELECT author, max(created_at) AS t FROM current_labels WHERE source = 'model' "
            "AND author LIKE ? GROUP BY author ORDER BY t DESC LIMIT 1",
            [f"{name}:%"],
        )
        found = bool(rows)
        author = rows[0]["author"] if rows else model
    if not found:
        raise NotFoundError(
            f"model {model!r} has no predictions in the labels table (source = 'model', author = '{name}:<version>')",
            hint=f"run model {name} on these frames first; its detections must be written as labels rows "
            "with source 'model' before `--model` can attach them",
        )
    return author


def _model_rows(ds: Dataset, author: str) -> dict[str, list[dict[str, Any]]]:
    """Model label rows by frame id (frame targets) or session id (span / session targets)."""
    rows = _query(
        ds,
        "SELECT label_id, target, frame_id, session_id, ts_start, ts_end, kind, name, question, "
        "bbox_xyxy_norm, score FROM current_labels WHERE source = 'model' AND author = ? ORDER BY label_id",
        [author],
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["frame_id"] if r["target"] == "frame" else r["session_id"], []).append(r)
    return out


# -- tasks ------------------------------------------------------------------------------------------


def _us(t: datetime) -> int:
    """Microseconds since the epoch, exactly (no float round trip)."""
    return (t - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _windows(s: dict[str, Any], window_s: float | None) -> list[tuple[int, int]]:
    """Windows of a session as (start, end) microseconds from the session start."""
    start = _us(s["started_at"])
    end_t = s["ended_at"] or s["last_sample"] or s["started_at"]
    length = max(_us(end_t) - start, 0)
    if not window_s:
        return [(0, length)]
    step = round(window_s * 1e6)
    return [(a, min(a + step, length)) for a in range(0, max(length, 1), step)]


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60]
    return f"{s}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _url(root: Path, path: Path) -> str:
    return f"/data/local-files/?d={path.relative_to(root).as_posix()}"


def _image_path(root: Path, t: dict[str, Any]) -> Path:
    return root / FILES_DIR / "frames" / t["session_id"] / f"{t['frame_id']}.jpg"


def _write_images(ds: Dataset, root: Path, targets: list[dict[str, Any]]) -> None:
    """Write the JPEGs of ``targets`` that are not on disk yet (frames never change: same id, same bytes)."""
    need = [t for t in targets if not _image_path(root, t).exists()]
    if not need:
        return
    by_id = {t["frame_id"]: t for t in need}
    sessions = sorted({t["session_id"] for t in need})
    rows = _query(
        ds,
        "SELECT frame_id, image FROM frames WHERE session_id IN (SELECT unnest(?)) "
        "AND frame_id IN (SELECT unnest(?))",
        [sessions, list(by_id)],
    )
    for r in rows:
        path = _image_path(root, by_id[r["frame_id"]])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(r["image"])
        tmp.replace(path)


def _frame_task(key: str, t: dict[str, Any]) -> dict[str, Any]:
    return {
        IMAGE: f"/data/local-files/?d={FILES_DIR}/frames/{t['session_id']}/{t['frame_id']}.jpg",
        "jangin_key": key,
        "jangin": {
            "target": "frame",
            "frame_id": t["frame_id"],
            "session_id": t["session_id"],
            "width": t["width"],
            "height": t["height"],
            "source_uri": t.get("source_uri"),
        },
    }


def _window_task(
    ds: Dataset,
    root: Path,
    slug: str,
    key: str,
    t: dict[str, Any],
    channels: list[str],
    max_points: int,
    cache: dict[str, Any],
) -> dict[str, Any]:
    import numpy as np

    from jangin.core.timeseries import read_channels

    sid = t["session_id"]
    if cache.get("sid") != sid:
        cache.clear()
        cache["sid"] = sid
        cache["data"] = read_channels(ds, sid, channels=channels)
    start_us = _us(t["started_at"])
    a, b = t["window"]
    path = root / FILES_DIR / "windows" / slug / sid / f"{a // 1000:09d}-{b // 1000:09d}.csv"
    if not path.exists():
        # Downsampled for display only: span times stay exact because the time column is seconds
        # since the session start, whatever the grid.
        n = max(2, min(max_points, (b - a) // 1000 + 1))
        grid = np.linspace(a, b, n).round().astype(np.int64)
        cols = []
        for c in channels:
            ts, vals = cache["data"].get(c, (np.zeros(0, np.int64), np.zeros(0)))
            rel = ts - start_us
            if len(rel) == 0:
                cols.append(np.full(n, np.nan))
                continue
            v = np.interp(grid, rel, vals)
            v[(grid < rel[0]) | (grid > rel[-1])] = np.nan
            cols.append(v)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [",".join([TIME_COLUMN, *channels])]
        for j, g in enumerate(grid):
            cells = [f"{g / 1e6:.6f}"] + ["" if np.isnan(col[j]) else f"{col[j]:.6g}" for col in cols]
            lines.append(",".join(cells))
        tmp = path.with_suffix(".part")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)
    return {
        "csv": _url(root, path),
        "session_key": t["session_key"],
        "window": f"{a / 1e6:.3f}–{b / 1e6:.3f} s",
        "jangin_key": key,
        "jangin": {
            "target": "session",
            "session_id": sid,
            "started_at_us": start_us,
            "window_start_us": a,
            "window_end_us": b,
        },
    }


def _result_id(label_id: str) -> str:
    return hashlib.sha256(label_id.encode()).hexdigest()[:10]


def _prediction(
    sch: LabelSchema, project: str, author: str, info: dict[str, Any], preds: dict[str, list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """A Label Studio prediction for one task from the model's label rows, or ``None`` if it has none."""
    if info.get("target") == "frame":
        rows = preds.get(info.get("frame_id") or "", [])
    else:
        rows = []
        a = info["started_at_us"] + info["window_start_us"]
        b = info["started_at_us"] + info["window_end_us"]
        for r in preds.get(info.get("session_id") or "", []):
            outside = r["ts_start"] is not None and not (a <= _us(r["ts_start"]) and _us(r["ts_end"]) <= b)
            if r["target"] == "span" and outside:
                continue
            rows.append(r)
    results = []
    scores = []
    for r in rows:
        control = _control_for(sch, r, project, author)
        if control is None:
            continue
        rid = _result_id(r["label_id"])
        if r["kind"] == "box" and info.get("target") == "frame":
            x1, y1, x2, y2 = r["bbox_xyxy_norm"]
            value = {
                "x": x1 * 100.0,
                "y": y1 * 100.0,
                "width": (x2 - x1) * 100.0,
                "height": (y2 - y1) * 100.0,
                "rotation": 0,
                "rectanglelabels": [r["name"]],
            }
            results.append(
                {
                    "id": rid,
                    "from_name": control,
                    "to_name": IMAGE,
                    "type": "rectanglelabels",
                    "original_width": info["width"],
                    "original_height": info["height"],
                    "image_rotation": 0,
                    "value": value,
                    "score": r["score"],
                }
            )
        elif r["kind"] == "span" or (
            r["target"] == "span" and sch.target == "session" and _kind_of(sch, control) == "span"
        ):
            s = (_us(r["ts_start"]) - info["started_at_us"]) / 1e6
            e = (_us(r["ts_end"]) - info["started_at_us"]) / 1e6
            results.append(
                {
                    "id": rid,
                    "from_name": control,
                    "to_name": SERIES,
                    "type": "timeserieslabels",
                    "value": {"start": s, "end": e, "instant": s == e, "timeserieslabels": [r["name"]]},
                    "score": r["score"],
                }
            )
        elif r["kind"] == "class":
            results.append(
                {
                    "id": rid,
                    "from_name": control,
                    "to_name": IMAGE if sch.target == "frame" else SERIES,
                    "type": "choices",
                    "value": {"choices": [r["name"]]},
                    "score": r["score"],
                }
            )
        else:
            continue
        if r["score"] is not None:
            scores.append(float(r["score"]))
    if not results:
        return None
    return {
        "model_version": author,
        "score": (sum(scores) / len(scores)) if scores else None,
        "result": results,
    }


def _kind_of(sch: LabelSchema, control: str) -> str:
    return sch.group(control).kind


def _control_for(sch: LabelSchema, row: dict[str, Any], project: str, author: str) -> str | None:
    """The control a model row goes to: the one named like its question, else the first of its kind
    listing its name. ``None``: the row answers a question this project does not ask (skipped)."""
    kind = row["kind"] if row["kind"] in ("box", "class", "span") else None
    question = row.get("question")
    if question:
        for g in sch.labels:
            if g.control == question and (g.kind == kind or (g.kind == "span" and row["target"] == "span")):
                if row["name"] in g.names:
                    return g.control
                raise LabelStudioError(
                    f"label {row['name']!r} of model {author} answers {question!r}, whose control in project "
                    f"{project!r} lists only {', '.join(g.names)}",
                    hint="add the name to the label schema (--schema) and push again",
                )
        if all(g.control != question for g in sch.labels):
            log.debug("model row %s answers %r, not asked in %r; skipped", row["label_id"], question, project)
            return None
    for g in sch.labels:
        if g.kind == kind and row["name"] in g.names:
            return g.control
    where = f"frame {row['frame_id']}" if row.get("frame_id") else f"session {row['session_id']}"
    raise LabelStudioError(
        f"label {row['name']!r} ({row['kind']}) of model {author} on {where} is not in the labelling config of "
        f"project {project!r} (known: {', '.join(sch.names(row['kind'])) or 'none'})",
        hint="add the name to the label schema (--schema) and push again",
    )
