"""Import a folder of runs described by one run table (one CSV row per run) in one call.

A run table names, per run, its sensor file and who ran it, when, where and with which recipe::

    file,technician,skill_level,station,started_at,rate_hz,rf_power_setpoint_W,label.outcome
    run_001.csv,Kim Min-jun,expert,ch-2,2026-03-02T08:00:00Z,10,450,good

Columns it knows: ``file`` (relative to the table), ``session_key`` (default: the file's stem),
``technician``, ``skill_level``, ``site``, ``line``, ``station``, ``process``, ``task``,
``started_at``, ``rate_hz`` / ``period_s`` (time from the row count when the file has no time
column), ``time_column``, ``time_unit``, ``device``. ``label.<question>`` columns become session labels
answering that question; ``param.<name>`` and every other column become session parameters.

Each run is checked and imported on its own: a bad row or a bad file is reported in its result's
``error`` and the other runs are still imported.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jangin.capture._import import ImportResult, import_session
from jangin.capture._manifest import DeviceSpec, SessionManifest
from jangin.capture._sensors import Policy
from jangin.core import CaptureError, Dataset, JanginError
from jangin.core.process_definition import ProcessDefinition, get_process
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.settings import Settings, get_settings

__all__ = ["RunOptions", "import_runs", "read_run_table"]

log = logging.getLogger(__name__)

#: Run-table columns with a meaning of their own; any other column is a parameter.
KNOWN = {
    "file",
    "session_key",
    "technician",
    "skill_level",
    "site",
    "line",
    "station",
    "process",
    "task",
    "started_at",
    "rate_hz",
    "period_s",
    "time_column",
    "time_unit",
    "device",
}


@dataclass(frozen=True)
class RunOptions:
    """How the runs' sensor files are read (the same for every run; a run-table column wins).

    Attributes:
        process: Process name; when a definition of that name is registered, it supplies the phase
            column (``steps.column``), the phase values to ignore, channel units and display names.
        phase_column: Text / integer column whose runs of equal values become steps.
        label_columns: Per-sample label columns (span labels answering the column's question).
        rate_hz: Sample rate when neither the file nor the run table gives times.
        time_column: Time column of the files (default ``timestamp`` when present).
        time_unit: Unit of a numeric time column.
        channels: Column globs to take as channels (default: every numeric column).
        drop: Column globs to leave out.
        units: Channel -> unit.
        site: Site of every run (when the table has no ``site`` column).
        device: Device name of the sensor files (when the table has no ``device`` column).
    """

    process: str | None = None
    phase_column: str | None = None
    label_columns: Sequence[str] = ()
    rate_hz: float | None = None
    time_column: str | None = None
    time_unit: str = "s"
    channels: Sequence[str] = ()
    drop: Sequence[str] = ()
    units: dict[str, str] = field(default_factory=dict)
    site: str = "site"
    device: str = "sensors"


@dataclass(frozen=True)
class Run:
    """One row of a run table, as read."""

    row: int
    values: dict[str, str]

    @property
    def key(self) -> str:
        return self.values.get("session_key") or _stem(self.values.get("file") or f"row-{self.row}")


def _stem(name: str) -> str:
    base = Path(name).name
    for suffix in (".gz", ".csv", ".tsv", ".parquet", ".jsonl", ".ndjson"):
        base = base.removesuffix(suffix)
    return base


def read_run_table(path: Path) -> list[Run]:
    """The rows of a run table.

    Raises:
        CaptureError: The table is missing, empty or has no ``file`` column.
    """
    if not path.is_file():
        raise CaptureError(f"{path}: run table not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if "file" not in (reader.fieldnames or []):
            raise CaptureError(
                f"{path}: no 'file' column (columns: {', '.join(reader.fieldnames or [])})",
                hint="a run table has one row per run and a 'file' column naming its sensor file",
            )
        runs = [
            Run(i, {k.strip(): (v or "").strip() for k, v in r.items() if k})
            for i, r in enumerate(reader, start=2)
        ]
    if not runs:
        raise CaptureError(f"{path}: the run table has no rows")
    return runs


def _definition(ds: Dataset, name: str | None) -> ProcessDefinition | None:
    if not name:
        return None
    found = get_process(ds, name)
    if found is None:
        log.warning("process %r has no registered definition: channels keep their file names", name)
    return found


def _manifest(table: Path, run: Run, opts: RunOptions, defn: ProcessDefinition | None) -> SessionManifest:
    """The session manifest of one run (raises CaptureError naming the table's row)."""
    v = run.values
    where = f"{table}: row {run.row}"
    rel = v.get("file") or ""
    if not rel:
        raise CaptureError(f"{where}: no file named")
    path = (table.parent / rel).resolve()
    if not any(c in rel for c in "*?[") and not path.is_file():
        raise CaptureError(f"{where}: file {rel!r} not found (looked in {table.parent})")
    started = v.get("started_at") or ""
    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        raise CaptureError(
            f"{where}: started_at {started!r} is not a time",
            hint="ISO 8601 with a timezone, e.g. 2026-03-02T08:15:00Z",
        ) from None
    if start.tzinfo is None:
        raise CaptureError(f"{where}: started_at {started!r} has no timezone")
    steps = defn.steps if defn is not None else None
    phase = opts.phase_column or (
        steps.column if steps is not None and steps.source == "phase_column" else None
    )
    units = {c.name: c.unit for c in defn.channels if c.unit} if defn else {}
    names = {c.name: c.display_name for c in defn.channels if c.display_name} if defn else {}
    device: dict[str, Any] = {
        "name": v.get("device") or opts.device,
        "file": str(path),
        "time_unit": v.get("time_unit") or opts.time_unit,
        "include": list(opts.channels),
        "drop": list(opts.drop),
        "phase_column": phase,
        "phase_ignore": list(steps.ignore) if steps is not None and phase == steps.column else [],
        "label_columns": list(opts.label_columns),
        "units": {**units, **opts.units},
        "display_names": names,
    }
    time_column = v.get("time_column") or opts.time_column
    if time_column:
        device["time_column"] = time_column
    for key, text in (("rate_hz", v.get("rate_hz")), ("period_s", v.get("period_s"))):
        if text:
            try:
                device[key] = float(text)
            except ValueError:
                raise CaptureError(f"{where}: {key} {text!r} is not a number") from None
    if "rate_hz" not in device and "period_s" not in device and opts.rate_hz:
        device["rate_hz"] = opts.rate_hz
    labels: dict[str, Any] = {
        k.removeprefix("label."): x for k, x in v.items() if k.startswith("label.") and x
    }
    params = {
        k.removeprefix("param."): x for k, x in v.items() if k not in KNOWN and not k.startswith("label.")
    }
    process = v.get("process") or opts.process
    try:
        return SessionManifest(
            session_key=run.key,
            technician=v.get("technician") or None,
            skill_level=(v.get("skill_level") or "unknown"),  # type: ignore[arg-type]
            site=v.get("site") or opts.site,
            line=v.get("line") or None,
            station=v.get("station") or None,
            process=process,
            task=v.get("task") or None,
            started_at=start.astimezone(UTC),
            devices=[DeviceSpec.model_validate(device)],
            events=None,
            parameters={k: x for k, x in params.items() if x != ""},
            labels=labels,
            process_definition=defn.name if defn is not None and defn.name == process else None,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CaptureError(f"{where}: {problems}") from exc


def _extra_labels(path: Path, runs: list[Run]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """A labels table (``session_key, question, value``): answers per run, and one error line per
    row naming a session the run table does not have."""
    keys = {r.key for r in runs}
    out: dict[str, dict[str, str]] = {}
    errors: list[str] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"session_key", "question", "value"} - set(reader.fieldnames or [])
        if missing:
            raise CaptureError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for i, r in enumerate(reader, start=2):
            key = (r.get("session_key") or "").strip()
            if key not in keys:
                errors.append(f"{path}: row {i}: label for unknown session {key!r}")
                continue
            out.setdefault(key, {})[(r.get("question") or "").strip()] = (r.get("value") or "").strip()
    return out, errors


def import_runs(
    ds: Dataset,
    run_table: str | Path,
    *,
    options: RunOptions | None = None,
    labels: str | Path | None = None,
    settings: Settings | None = None,
    policy: Policy | None = None,
    progress: ProgressFn = null_progress,
) -> list[ImportResult]:
    """Import every run of a run table (see the module docstring) as one session each.

    Args:
        ds: Target dataset.
        run_table: The run table CSV; files are found relative to it.
        options: How the sensor files are read (see :class:`RunOptions`).
        labels: Optional labels table (``session_key, question, value``) with more session labels.
        settings: Site settings (pseudonym key).
        policy: What to do about problems in the sensor files.
        progress: Progress callback.

    Returns:
        One result per run (and one per bad labels row), failures with their ``error`` set.

    Raises:
        CaptureError: The run table itself cannot be read.
    """
    table = Path(run_table)
    opts = options or RunOptions()
    settings = settings or get_settings()
    runs = read_run_table(table)
    defn = _definition(ds, opts.process)
    extra, label_errors = _extra_labels(Path(labels), runs) if labels else ({}, [])
    results = [ImportResult(session_id="", session_key="labels", error=e) for e in label_errors]
    for i, run in enumerate(runs):
        progress("import runs", i, len(runs))
        try:
            m = _manifest(table, run, opts, defn)
            if run.key in extra:
                m = m.model_copy(update={"labels": {**m.labels, **extra[run.key]}})
            results.append(
                import_session(
                    ds, table.parent, manifest=m, settings=settings, policy=policy, keep_video=False
                )
            )
        except JanginError as exc:
            log.error("%s", exc)
            msg = str(exc) if str(exc).startswith(str(table)) else f"{table}: row {run.row}: {exc}"
            results.append(ImportResult(session_id="", session_key=run.key, error=msg))
    progress("import runs", len(runs), len(runs))
    return results
