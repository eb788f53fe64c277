"""Label tables: run-, frame- and span-level labels from a CSV or Parquet file.

One file answers one *question* (``tool_condition``, ``outcome``, ``visual_inspection``…) for many
targets: one row per session (``key="session"``), per frame (``key="frame"``) or per time span of a
session (``key="span"``). Every label row written carries the question (``labels.question``).

How targets are found:

* session: the value of the session column is a ``session_id``, a ``session_key`` (the name capture
  stored in ``sessions.meta_json``), or a run file name whose stem is the session key
  (``run_007.csv.gz`` → ``run_007``). The labeling stage looks the id up in the ``sessions`` table;
  it never recomputes capture's ids.
* frame: a ``frame_id`` or a frame's ``source_uri`` (restricted to the row's session when the file
  also has a session column).
* span: a session as above plus a start and an end: ISO 8601 times (a time without a zone is UTC)
  or numbers of seconds since the session start.

Idempotent and correcting: a row whose value equals the current answer to the question for that
target (from an earlier table, a capture run table or Label Studio; model predictions aside) writes
nothing; a changed value writes a new row whose ``supersedes`` names the current one (other current
answers to the same question are retracted), so ``current_labels`` shows only the new value. The
label's ``external_id`` is ``table:<question>:<target key>``.

Bad input is all-or-nothing per file: every row is checked first and any problem (a missing column,
an unknown session or frame, an empty value, a start after its end, one key given two different
values) raises :class:`LabelTableError` listing each problem on one line, and nothing is written.
A label table is usually one person's answer sheet; importing the good half of it would leave the
dataset in a state that matches neither the old nor the corrected file, and a re-run after the fix
must not have to reason about which rows already went in.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from jangin.core import Dataset, SchemaError
from jangin.core._ids import stable_id
from jangin.core.schema import LabelRow
from jangin.labeling._labels import append_new_labels

__all__ = ["LabelTableError", "LabelTableResult", "import_label_table"]

log = logging.getLogger(__name__)

KeyKind = Literal["session", "frame", "span"]

#: Columns tried, in order, when the caller does not name one.
SESSION_COLUMNS = ("session_id", "session_key", "session", "file", "run")
FRAME_COLUMNS = ("frame_id", "source_uri", "image", "frame")
START_COLUMNS = ("start", "ts_start", "start_s", "t_start")
END_COLUMNS = ("end", "ts_end", "end_s", "t_end")
FILE_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".csv", ".tsv", ".parquet", ".jsonl", ".json", ".txt")
MAX_LISTED = 20


class LabelTableError(SchemaError):
    """A label table has bad rows; nothing was written.

    Attributes:
        problems: One line per problem, each naming the file, row and column.
    """

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_LISTED]
        more = f"\n… and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(
            f"{path}: {len(problems)} problem(s), nothing imported:\n" + "\n".join(shown) + more,
            hint="fix the rows named above and import the file again (rows already imported are kept)",
        )


@dataclass
class LabelTableResult:
    """What an import of a label table did.

    Attributes:
        rows: Data rows read from the file.
        added: Labels written for keys that had no label for this question yet.
        superseding: Labels written that replace a different current value (corrections).
        unchanged: Rows whose value is already the current label (a re-import).
        duplicates: Rows repeating an earlier row of the file with the same value (counted once).
        label_ids: The label ids written, in file order.
    """

    rows: int = 0
    added: int = 0
    superseding: int = 0
    unchanged: int = 0
    duplicates: int = 0
    label_ids: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        """Label rows written in all."""
        return self.added + self.superseding


def import_label_table(
    ds: Dataset,
    path: str | Path,
    *,
    key: KeyKind,
    question: str,
    column: str | None = None,
    session_column: str | None = None,
    frame_column: str | None = None,
    start_column: str | None = None,
    end_column: str | None = None,
    author: str | None = None,
    source: str = "import",
) -> LabelTableResult:
    """Import one question's labels from a CSV or Parquet file.

    Args:
        ds: The dataset.
        path: A ``.csv`` (``.csv.gz``) or ``.parquet`` file with a header.
        key: What a row labels: ``session`` (a whole run), ``frame`` or ``span``.
        question: The question the values answer, stored on every label (``labels.question``).
        column: The column holding the answers; default: the column named like the question, else
            ``label.<question>`` (a capture run table's label column), else ``label``.
        session_column: Column naming the session (id, session key or run file); default: the first
            of ``session_id, session_key, session, file, run`` present. Optional for ``frame``.
        frame_column: Column naming the frame (id or ``source_uri``); default: the first of
            ``frame_id, source_uri, image, frame`` present.
        start_column: Span start column (``key="span"``); default ``start``, ``ts_start``, ``start_s``.
        end_column: Span end column; default ``end``, ``ts_end``, ``end_s``.
        author: Who gave the answers (a pseudonym), stored on every label.
        source: The labels' ``source`` (``import``, ``expert``, ``review``…).

    Returns:
        What was written.

    Raises:
        LabelTableError: Any row is bad (each problem on one line); nothing was written.
        SchemaError: The file cannot be read.
        ValueError: ``key`` or ``question`` is invalid.
    """
    if key not in ("session", "frame", "span"):
        raise ValueError(f"key must be session, frame or span, got {key!r}")
    if not question or not question.strip():
        raise ValueError("a label table needs a question name (e.g. tool_condition)")
    question = question.strip()
    path = Path(path)
    header, rows = read_table(path)
    problems: list[str] = []

    def pick(
        given: str | None, candidates: tuple[str, ...], what: str, *, required: bool = True
    ) -> str | None:
        if given is not None:
            if given not in header:
                problems.append(f"{path}: no column {given!r} ({what}); columns: {', '.join(header)}")
            return given if given in header else None
        for c in candidates:
            if c in header:
                return c
        if required:
            problems.append(
                f"{path}: no {what} column (looked for {', '.join(candidates)}); columns: {', '.join(header)}"
            )
        return None

    value_col = pick(column, (question, f"label.{question}", "label"), "label value")
    ses_col = pick(session_column, SESSION_COLUMNS, "session", required=key != "frame")
    frame_col = pick(frame_column, FRAME_COLUMNS, "frame") if key == "frame" else None
    start_col = pick(start_column, START_COLUMNS, "span start") if key == "span" else None
    end_col = pick(end_column, END_COLUMNS, "span end") if key == "span" else None
    if key == "frame" and ses_col is not None and ses_col == frame_col:
        ses_col = None  # e.g. a `file` column naming images, not runs
    if problems:
        raise LabelTableError(path, problems)

    sessions = _Sessions(ds)
    frames = _Frames(ds) if key == "frame" else None
    targets: dict[str, tuple[dict[str, Any], str, str]] = {}  # external id -> (row, value, where)
    duplicates = 0
    assert value_col is not None  # a missing column was reported above
    for where, r in rows:
        value = _text(r.get(value_col))
        if value is None:
            problems.append(f"{where}: column {value_col!r} is empty")
            continue
        sid: str | None = None
        if ses_col is not None:
            ref = _text(r.get(ses_col))
            if ref is None:
                if key != "frame":
                    problems.append(f"{where}: column {ses_col!r} is empty")
                    continue
            else:
                sid, err = sessions.resolve(ref)
                if err:
                    problems.append(f"{where}: column {ses_col!r}: {err}")
                    continue
        target: dict[str, Any]
        if key == "session":
            assert sid is not None
            target = {"target": "session", "session_id": sid}
            ext_key = _target_key(key, target)
        elif key == "frame":
            assert frames is not None and frame_col is not None
            ref = _text(r.get(frame_col))
            if ref is None:
                problems.append(f"{where}: column {frame_col!r} is empty")
                continue
            found, err = frames.resolve(ref, sid)
            if err:
                problems.append(f"{where}: column {frame_col!r}: {err}")
                continue
            assert found is not None
            fid, sid = found
            target = {"target": "frame", "frame_id": fid, "session_id": sid}
            ext_key = _target_key(key, target)
        else:
            assert sid is not None and start_col is not None and end_col is not None
            t0 = sessions.started_at.get(sid)
            if t0 is None:
                problems.append(f"{where}: session {sid} has no start time; spans need one")
                continue
            a, err_a = _time(r.get(start_col), t0)
            b, err_b = _time(r.get(end_col), t0)
            if err_a or err_b:
                problems += [
                    f"{where}: column {c!r}: {e}" for c, e in ((start_col, err_a), (end_col, err_b)) if e
                ]
                continue
            assert a is not None and b is not None
            if b < a:
                problems.append(f"{where}: span ends ({b.isoformat()}) before it starts ({a.isoformat()})")
                continue
            target = {"target": "span", "session_id": sid, "ts_start": a, "ts_end": b}
            ext_key = _target_key(key, target)
        ext = f"table:{question}:{ext_key}"
        if ext in targets:
            first_value, first_where = targets[ext][1], targets[ext][2]
            if first_value != value:
                problems.append(
                    f"{where}: {_describe(target)} already has {question} = {first_value!r} "
                    f"({first_where}); this row says {value!r}"
                )
            else:
                duplicates += 1
            continue
        targets[ext] = ({**target, "external_id": ext}, value, where)
    if problems:
        raise LabelTableError(path, problems)

    current = _current_answers(ds, key, question)
    now = datetime.now(UTC)
    result = LabelTableResult(rows=len(rows), duplicates=duplicates)
    out: list[LabelRow] = []
    for ext, (target, value, _where) in targets.items():
        olds = current.get(ext.removeprefix(f"table:{question}:"), [])
        if olds and all(o["name"] == value for o in olds):
            result.unchanged += 1
            continue
        # The newest current answer is superseded; any other current answer to the same question
        # (e.g. one from a capture run table and one from Label Studio) is retracted, so exactly one
        # answer stays current.
        supersedes = olds[-1]["label_id"] if olds else None
        # The superseded id is part of the id, so A → B → A writes a third row instead of finding A.
        label_id = stable_id("lbl", "table", ext, value, supersedes or "")
        row = LabelRow(
            label_id=label_id,
            **target,
            kind="span" if key == "span" else "class",
            name=value,
            question=question,
            source=source,
            author=author,
            created_at=now,
            supersedes=supersedes,
        )
        out.append(row)
        for o in olds[:-1]:
            out.append(
                replace(
                    row,
                    label_id=stable_id("lbl", "table-retract", o["label_id"], label_id),
                    name=o["name"],
                    supersedes=o["label_id"],
                    deleted=True,
                )
            )
        result.label_ids.append(label_id)
        if supersedes:
            result.superseding += 1
        else:
            result.added += 1
    written = append_new_labels(ds, out, source=str(path))
    if written != len(out):  # another import of the same file won the race
        log.info("%s: %d of %d label(s) were already written", path, len(out) - written, len(out))
    log.info(
        "%s: %s labels (%s): %d new, %d superseding, %d unchanged",
        path,
        question,
        key,
        result.added,
        result.superseding,
        result.unchanged,
    )
    return result


# -- reading ----------------------------------------------------------------------------------------


def read_table(path: Path) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """The header and the rows of a CSV or Parquet file, each row with its place (``FILE: row N``).

    CSV rows are numbered as lines (the header is row 1, as a spreadsheet shows it); Parquet rows
    from 1. CSV cells stay text; Parquet cells keep their type.

    Raises:
        SchemaError: The file is missing, unreadable or has no header.
    """
    import pyarrow as pa

    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            header = table.column_names
            rows = [(f"{path}: row {i}", r) for i, r in enumerate(table.to_pylist(), start=1)]
        else:
            import gzip

            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                header = list(reader.fieldnames or [])
                rows = [(f"{path}: row {i}", r) for i, r in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as exc:
        raise SchemaError(f"cannot read label table {path}: {exc}") from exc
    if not header:
        raise SchemaError(f"{path}: no header row", hint="the first line names the columns")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise SchemaError(f"{path}: column name(s) {', '.join(dup)} appear twice in the header")
    return header, rows


def _text(v: Any) -> str | None:
    """A cell as label text; ``None`` when empty."""
    if v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v).strip()
    return s or None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _time(v: Any, session_start: datetime) -> tuple[datetime | None, str | None]:
    """A span bound: an ISO time (UTC when no zone is given), a datetime, or seconds since the start."""
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC), None
    if isinstance(v, int | float) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v):
            return None, "is empty"
        return session_start + timedelta(microseconds=round(float(v) * 1e6)), None
    text = _text(v)
    if text is None:
        return None, "is empty"
    try:
        return session_start + timedelta(microseconds=round(float(text) * 1e6)), None
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None, f"{text!r} is neither an ISO time nor seconds since the session start"
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC), None


def _describe(target: dict[str, Any]) -> str:
    if target["target"] == "frame":
        return f"frame {target['frame_id']}"
    if target["target"] == "span":
        return (
            f"span {target['ts_start'].isoformat()}..{target['ts_end'].isoformat()} of {target['session_id']}"
        )
    return f"session {target['session_id']}"


def _stem(name: str) -> str:
    """``runs/run_007.csv.gz`` → ``run_007``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    changed = True
    while changed:
        changed = False
        for suffix in FILE_SUFFIXES:
            if base.lower().endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                changed = True
    return base


# -- lookups ----------------------------------------------------------------------------------------


class _Sessions:
    """Session ids by id, session key and run file name, from the ``current_sessions`` view."""

    def __init__(self, ds: Dataset) -> None:
        con = ds.connect()
        try:
            rows = con.execute("SELECT session_id, started_at, meta_json FROM current_sessions").fetchall()
        finally:
            con.close()
        self.sessions = {r[0] for r in rows}
        self.started_at: dict[str, datetime] = {}
        self.by_key: dict[str, set[str]] = {}
        for sid, started, meta_json in rows:
            if started is not None:
                self.started_at[sid] = (
                    started if started.tzinfo else started.replace(tzinfo=UTC)
                ).astimezone(UTC)
            try:
                meta = json.loads(meta_json) if meta_json else {}
            except json.JSONDecodeError:
                meta = {}
            names = set()
            if isinstance(meta, dict):
                for k in ("session_key", "file", "run_file", "source_file"):
                    v = meta.get(k)
                    if isinstance(v, str) and v:
                        names |= {v, _stem(v)}
            for n in names:
                self.by_key.setdefault(n, set()).add(sid)

    def resolve(self, ref: str) -> tuple[str | None, str | None]:
        """``(session_id, None)`` or ``(None, problem)``."""
        if ref in self.sessions:
            return ref, None
        found = self.by_key.get(ref) or self.by_key.get(_stem(ref)) or set()
        if len(found) == 1:
            return next(iter(found)), None
        if found:
            return (
                None,
                f"session key {ref!r} names {len(found)} sessions ({', '.join(sorted(found))}); use session ids",
            )
        return None, f"session {ref!r} is not in the dataset (no such session id, session key or run file)"


class _Frames:
    """Frames by id and by ``source_uri``."""

    def __init__(self, ds: Dataset) -> None:
        con = ds.connect()
        try:
            rows = con.execute("SELECT frame_id, session_id, source_uri FROM frames").fetchall()
        finally:
            con.close()
        self.by_id = {fid: sid for fid, sid, _ in rows}
        self.by_uri: dict[str, list[tuple[str, str]]] = {}
        for fid, sid, uri in rows:
            if uri:
                self.by_uri.setdefault(uri, []).append((fid, sid))

    def resolve(self, ref: str, session_id: str | None) -> tuple[tuple[str, str] | None, str | None]:
        """``((frame_id, session_id), None)`` or ``(None, problem)``."""
        if ref in self.by_id:
            sid = self.by_id[ref]
            if session_id is not None and sid != session_id:
                return None, f"frame {ref} belongs to session {sid}, not {session_id}"
            return (ref, sid), None
        found = [f for f in self.by_uri.get(ref, []) if session_id is None or f[1] == session_id]
        if len(found) == 1:
            return found[0], None
        if found:
            return (
                None,
                f"{len(found)} frames have source_uri {ref!r}; add a session column to tell them apart",
            )
        where = f" of session {session_id}" if session_id else ""
        return None, f"frame {ref!r} is not a frame{where} in the dataset (no such frame id or source_uri)"


def _target_key(key: KeyKind, row: dict[str, Any]) -> str:
    """The key of a label's target: session id, frame id, or session id and span bounds."""
    if key == "session":
        return str(row["session_id"])
    if key == "frame":
        return str(row["frame_id"])
    return f"{row['session_id']}@{_us(row['ts_start'])}-{_us(row['ts_end'])}"


def _current_answers(ds: Dataset, key: KeyKind, question: str) -> dict[str, list[dict[str, Any]]]:
    """The current answers to ``question`` (any importer; model predictions excluded) by target
    key, oldest first."""
    sql = (
        "SELECT label_id, session_id, frame_id, ts_start, ts_end, name FROM current_labels "
        "WHERE question = ? AND target = ? AND source <> 'model'"
    )
    if key != "span":  # boxes answering the question are not the per-frame answer
        sql += " AND kind = 'class'"
    con = ds.connect()
    try:
        rows = (
            con.sql(sql + " ORDER BY created_at, label_id", params=[question, key])
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        con.close()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(_target_key(key, r), []).append(r)
    return out
