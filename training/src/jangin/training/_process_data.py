"""The labelled windows of a process model: span labels, or run-level (session) labels with one window per
session or per step occurrence; refusals for unknown channels and mixed label questions; the session
attributes (station, technician, recipe parameters) the confound check looks at.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from jangin.core import Dataset, DatasetError, TrainingError
from jangin.core.timeseries import read_channels

__all__ = ["load_labelled_windows", "session_attributes"]

#: Session columns the confound check compares with the label (when present).
SESSION_ATTRIBUTES = ("station", "technician", "site", "line", "task", "skill_level")


def _columns(con: Any, view: str) -> set[str]:
    return {r[0] for r in con.sql(f"DESCRIBE {view}").fetchall()}


def _dicts(con: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _fail(msg: str, hint: str | None = None) -> TrainingError:
    return TrainingError(msg, hint=hint)


def _select_labels(
    con: Any, *, where: str | None, target: str, question: str | None
) -> tuple[list[dict[str, Any]], str]:
    """Current class labels of the chosen target; refuses mixed questions. Returns ``(rows, target)``."""
    cols = _columns(con, "current_labels")
    has_q = "question" in cols
    if question is not None and not has_q:
        raise _fail(
            "--question given but the labels table has no question column (dataset schema < 2)",
            hint="select the labels with --where instead",
        )
    q_sql = "l.question" if has_q else "CAST(NULL AS VARCHAR)"
    sql = f"""
        SELECT l.label_id, l.session_id, l.name, l.target, {q_sql} AS question,
               epoch_us(l.ts_start) AS t0, epoch_us(l.ts_end) AS t1, epoch_us(l.created_at) AS created
        FROM current_labels l
        WHERE (l.kind = 'class' OR (l.kind = 'span' AND l.target = 'span')) AND l.target IN ('span', 'session')
          AND (l.target = 'session' OR (l.ts_start IS NOT NULL AND l.ts_end IS NOT NULL))
          AND {f"({where})" if where else "true"}
          AND {"l.question = $q" if question is not None else "true"}
        ORDER BY l.session_id, l.ts_start, l.created_at"""
    rows = _dicts(con, sql, {"q": question} if question is not None else {})
    if target == "auto":
        target = "span" if any(r["target"] == "span" for r in rows) else "session"
    rows = [r for r in rows if r["target"] == target]
    questions = sorted({r["question"] or "(no question)" for r in rows})
    if len(questions) > 1:
        counts = {q: sum((r["question"] or "(no question)") == q for r in rows) for q in questions}
        raise _fail(
            f"the selected {target} labels answer {len(questions)} questions: "
            + ", ".join(f"{q} ({n} labels)" for q, n in counts.items())
            + "; a model must learn one",
            hint="choose one with --question NAME (or narrow --where)",
        )
    if target == "session":
        # one label per session: the latest (a relabel without supersedes still wins)
        latest: dict[str, dict[str, Any]] = {}
        for r in rows:
            if r["session_id"] not in latest or (r["created"] or 0) >= (
                latest[r["session_id"]]["created"] or 0
            ):
                latest[r["session_id"]] = r
        rows = [latest[s] for s in sorted(latest)]
    return rows, target


def _steps(con: Any, session_ids: list[str]) -> dict[str, list[tuple[str, int, int, int]]]:
    """``{session: [(step, occurrence, t0_us, t1_us)]}`` from step_start/step_end markers (an end at the
    same instant as the next start of that step closes the earlier occurrence first)."""
    if not session_ids:
        return {}
    ev = con.execute(
        """SELECT session_id, kind, name, epoch_us(ts) AS t FROM events
           WHERE kind IN ('step_start', 'step_end') AND name IS NOT NULL AND session_id IN (SELECT unnest($s))
           ORDER BY session_id, t, kind""",
        {"s": session_ids},
    ).fetchall()
    out: dict[str, list[tuple[str, int, int, int]]] = {}
    open_: dict[tuple[str, str], int] = {}
    seen: dict[tuple[str, str], int] = {}
    for sid, kind, name, t in ev:
        key = (sid, name)
        if kind == "step_start":
            open_[key] = t
        elif key in open_:
            seen[key] = seen.get(key, 0) + 1
            out.setdefault(sid, []).append((name, seen[key], open_.pop(key), t))
    return out


def load_labelled_windows(
    ds: Dataset,
    *,
    snapshot: dict[str, int],
    where: str | None = None,
    channels: tuple[str, ...] | None = None,
    target: str = "auto",
    question: str | None = None,
    per_step: bool = False,
) -> tuple[list[dict[str, Any]], list[str], str]:
    """The labelled windows with their raw samples.

    Returns:
        ``(windows, channels, target)``; each window ``{label_id, session_id, name, ts_start, ts_end,
        step, occurrence, samples}``.

    Raises:
        TrainingError: Unknown channels (named, with the known ones), labels answering several
            questions, or ``--per-step`` with sessions that have no step markers.
        DatasetError: The ``where`` predicate is invalid.
    """
    import duckdb

    con = ds.connect(snapshot)
    try:
        rows, target = _select_labels(con, where=where, target=target, question=question)
        sids = sorted({r["session_id"] for r in rows})
        known = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT channel FROM sensor_samples WHERE session_id IN (SELECT unnest($s)) ORDER BY 1",
                {"s": sids or [""]},
            ).fetchall()
        ]
        steps = _steps(con, sids) if per_step else {}
    except duckdb.Error as exc:
        raise DatasetError(f"selecting labels failed: {exc}", hint="check --where") from exc
    finally:
        con.close()
    if channels is not None:
        unknown = [c for c in channels if c not in known]
        if unknown:
            raise _fail(
                f"unknown channel(s) {', '.join(unknown)}: not in the {len(sids)} labelled session(s); "
                f"known: {', '.join(known) or '(none)'}",
                hint="check --channels against `jangin data channels` or the process definition",
            )
    chans = list(channels) if channels is not None else known
    out: list[dict[str, Any]] = []
    cache: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for r in rows:
        sid = r["session_id"]
        if sid not in cache:
            cache[sid] = read_channels(ds, sid, channels=chans, snapshot=snapshot)
        if target == "span":
            spans = [(None, None, r["t0"], r["t1"])]
        elif per_step:
            if not steps.get(sid):
                raise _fail(
                    f"--per-step: session {sid} has no step_start/step_end markers",
                    hint="drop --per-step (one window per session) or add step markers",
                )
            spans = [(name, occ, a, b) for name, occ, a, b in steps[sid]]
        else:
            spans = [(None, None, None, None)]
        for step, occ, a, b in spans:
            samples = {}
            for ch, (t, v) in cache[sid].items():
                m = np.ones(len(t), bool) if a is None else (t >= a) & (t < b)
                samples[ch] = (t[m], v[m])
            if a is None:
                ts = [t for t, _ in cache[sid].values() if len(t)]
                a = int(min(x[0] for x in ts)) if ts else None
                b = int(max(x[-1] for x in ts)) if ts else None
            out.append(
                {
                    "label_id": r["label_id"],
                    "session_id": sid,
                    "name": r["name"],
                    "question": r["question"],
                    "ts_start": a,
                    "ts_end": b,
                    "step": step,
                    "occurrence": occ,
                    "samples": samples,
                }
            )
    return out, chans, target


def _parameters(row: dict[str, Any]) -> dict[str, str]:
    """Recipe parameters of a session row: ``parameters`` (schema 2) or ``meta_json["parameters"]``."""
    p = row.get("parameters")
    if isinstance(p, list):  # Arrow map -> list of (key, value)
        return {str(k): str(v) for k, v in p if v is not None}
    if isinstance(p, dict) and set(p) == {"key", "value"} and isinstance(p["key"], list):
        return {str(k): str(v) for k, v in zip(p["key"], p["value"], strict=True) if v is not None}
    if isinstance(p, dict) and p:
        return {str(k): str(v) for k, v in p.items() if v is not None}
    try:
        meta = json.loads(row.get("meta_json") or "{}")
    except ValueError:
        return {}
    params = meta.get("parameters") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in params.items() if v is not None} if isinstance(params, dict) else {}


def session_attributes(
    ds: Dataset, session_ids: list[str], *, snapshot: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """``{session_id: {attribute: value}}``: station, technician… and ``param:<name>`` recipe parameters."""
    con = ds.connect(snapshot)
    try:
        cols = _columns(con, "current_sessions")
        want = [c for c in (*SESSION_ATTRIBUTES, "parameters", "meta_json") if c in cols]
        rows = _dicts(
            con,
            f"SELECT session_id, {', '.join(want)} FROM current_sessions WHERE session_id IN (SELECT unnest($s))",
            {"s": session_ids or [""]},
        )
    finally:
        con.close()
    out: dict[str, dict[str, Any]] = {s: {} for s in session_ids}
    for r in rows:
        attrs = {c: r.get(c) for c in SESSION_ATTRIBUTES if c in r}
        attrs |= {f"param:{k}": v for k, v in _parameters(r).items()}
        out[r["session_id"]] = attrs
    return out
