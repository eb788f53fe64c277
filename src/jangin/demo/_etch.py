"""Demo step: the second sample process, a plasma-etch chamber, through the generic import path.

The etch runs in ``sample_data/etch/`` are raw files as a tool would log them (one CSV per run, 33
channels at 10 Hz, a text ``recipe_step`` column, no time column) plus one run table (who ran it,
which chamber, when, at what rate, the recipe, the run's outcome labels). They are imported as they
are, in one call, after the process definitions of both sample processes (``sample_data/processes``)
are registered: the etch definition supplies the phase column, the units and the display names. A
skill profile is then built per recipe from that recipe's expert runs, and every run is scored
against the profile of its own recipe (experts leave one out), with coaching reports.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from jangin.capture import RunOptions, import_runs
from jangin.core import ConfigError, Dataset, JanginError
from jangin.core.process_definition import get_process, load_process_definition, register_process
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.settings import Settings
from jangin.demo._skill import demo_skill

__all__ = ["ETCH_PROCESS", "demo_etch", "etch_report_sections", "register_sample_processes"]

log = logging.getLogger(__name__)

ETCH_PROCESS = "plasma_etch"
RATE_HZ = 10  # the etch tool logs at 10 Hz: comparing at a finer rate only interpolates
#: Machine channels shown beside the operator's set points in the report's signal plots: what the
#: experts react to (reflected power, the endpoint) and how the chamber answers (throttle valve).
_SHOWN_MACHINE = ("rf_reflected_W", "throttle_valve_pct", "electrode_temp_C", "endpoint_signal")


def _q(text: str) -> str:
    return text.replace("'", "''")


def register_sample_processes(ds: Dataset, data: Path) -> dict[str, int]:
    """Register every process definition in ``data/processes/*.yaml``; returns name → version.

    Raises:
        ConfigError: The folder is missing or a definition is invalid (file and field named).
    """
    folder = data / "processes"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{folder}: no process definitions (*.yaml)", hint="the sample data is incomplete")
    out = {}
    for f in files:
        d = load_process_definition(f)
        out[d.name] = register_process(ds, d)
    return out


def demo_etch(
    ds: Dataset,
    data: Path,
    out_dir: Path,
    *,
    settings: Settings,
    skill: bool = True,
    progress: ProgressFn = null_progress,
) -> dict[str, Any]:
    """Import the etch runs, then (with ``skill``) build, score and coach one skill profile per recipe.

    Args:
        ds: The demo dataset (the process definitions registered, see :func:`register_sample_processes`).
        data: The sample data folder (``etch/runs.csv`` inside).
        out_dir: Where the coaching reports go (``report/coaching``).
        settings: Site settings (the technician pseudonym key).
        progress: Progress callback.

    Returns:
        ``{"process", "display_name", "runs", "samples", "sessions": [...], "steps": [...],
        "parameters": [...], "labels": [...], "skill": {recipe: demo_skill result}, "import_s",
        "skill_s"}``.

    Raises:
        ConfigError: The run table is missing, or a run failed to import.
    """
    runs_csv = data / "etch" / "runs.csv"
    if not runs_csv.is_file():
        raise ConfigError(
            f"{runs_csv}: the etch run table is missing", hint="python sample_data/generate_etch.py"
        )
    defn = get_process(ds, ETCH_PROCESS)
    t = time.perf_counter()
    results = import_runs(
        ds, runs_csv, options=RunOptions(process=ETCH_PROCESS), settings=settings, progress=progress
    )
    failed = [r for r in results if r.error]
    if failed:
        raise ConfigError(f"etch run {failed[0].session_key} failed to import: {failed[0].error}")
    import_s = time.perf_counter() - t
    keys = {r.session_id: r.session_key for r in results}
    ids = ", ".join(f"'{_q(s)}'" for s in keys)

    sessions = ds.query(
        "SELECT s.session_id, s.technician, s.skill_level, s.station, s.parameters['recipe'] AS recipe, "
        "(SELECT string_agg(l.name, ', ') FROM current_labels l WHERE l.session_id = s.session_id "
        " AND l.target = 'session' AND l.question = 'outcome') AS outcome, "
        "(SELECT string_agg(l.name, ', ') FROM current_labels l WHERE l.session_id = s.session_id "
        " AND l.target = 'session' AND l.question = 'etch_depth_ok') AS etch_depth_ok, "
        "(SELECT count(*) FROM events e WHERE e.session_id = s.session_id AND e.kind = 'step_start') AS steps, "
        "(SELECT count(*) FROM sensor_samples x WHERE x.session_id = s.session_id) AS samples "
        f"FROM current_sessions s WHERE s.session_id IN ({ids}) ORDER BY s.started_at"
    ).to_pylist()
    for row in sessions:
        row["run"] = keys[row["session_id"]]
        if isinstance(row["recipe"], list):  # DuckDB versions differ: map['k'] is a value or [value]
            row["recipe"] = row["recipe"][0] if row["recipe"] else None
    steps = ds.query(
        "SELECT s.name AS step, s.occurrence, count(*) AS runs, "
        "round(avg(epoch(e.ts) - epoch(s.ts)), 1) AS mean_s, "
        "round(min(epoch(e.ts) - epoch(s.ts)), 1) AS min_s, round(max(epoch(e.ts) - epoch(s.ts)), 1) AS max_s "
        "FROM events s JOIN events e ON e.session_id = s.session_id AND e.kind = 'step_end' "
        "AND e.name = s.name AND e.occurrence IS NOT DISTINCT FROM s.occurrence "
        f"WHERE s.kind = 'step_start' AND s.session_id IN ({ids}) "
        "GROUP BY 1, 2 ORDER BY avg(epoch(s.ts) - epoch((SELECT started_at FROM current_sessions c "
        "WHERE c.session_id = s.session_id)))"
    ).to_pylist()
    params = ds.query(
        "SELECT p.session_id, p.name, p.value FROM session_parameters p "
        f"WHERE p.session_id IN ({ids}) ORDER BY p.name"
    ).to_pylist()
    by_session: dict[str, dict[str, str]] = {}
    for p in params:
        by_session.setdefault(p["session_id"], {})[p["name"]] = p["value"]
    recipes: dict[str, dict[str, Any]] = {}
    for ps in by_session.values():
        rec = recipes.setdefault(ps.get("recipe", "?"), {"recipe": ps.get("recipe", "?"), "runs": 0, **ps})
        rec["runs"] += 1
    labels = ds.query(
        "SELECT question, name AS answer, count(*) AS runs FROM current_labels "
        f"WHERE session_id IN ({ids}) AND target = 'session' GROUP BY 1, 2 ORDER BY 1, 2"
    ).to_pylist()

    t = time.perf_counter()
    profiles: dict[str, Any] = {}
    for recipe in sorted(r for r in recipes if r != "?" and skill):
        where = f"session_id IN (SELECT session_id FROM session_parameters WHERE name = 'recipe' AND value = '{_q(recipe)}')"
        try:
            profiles[recipe] = demo_skill(
                ds,
                out_dir,
                name="etch-skill",  # with condition_on: etch-skill-<recipe>
                process=ETCH_PROCESS,
                where=where,
                operator_channels_only=True,  # the engineer's set points; the chamber's answers are context
                bin_hz=float(RATE_HZ),
                condition_on=("recipe",),  # the profile (and its coaching pages) name the recipe
                progress=progress,
            )
        except JanginError as exc:  # the demo goes on: the report shows the error in the skill section
            log.error("etch skill profile for recipe %s: %s", recipe, exc)
            profiles[recipe] = {"error": str(exc)}
    skill_s = time.perf_counter() - t
    return {
        "process": ETCH_PROCESS,
        "display_name": defn.display_name if defn else ETCH_PROCESS,
        "runs": len(results),
        "samples": sum(r.samples for r in results),
        "sessions": sessions,
        "steps": steps,
        "parameters": list(recipes.values()),
        "labels": labels,
        "skill": profiles,
        "import_s": round(import_s, 2),
        "skill_s": round(skill_s, 2),
    }


def etch_report_sections(ds: Dataset, etch: dict[str, Any], rdir: Path) -> list[dict[str, Any]]:
    """The report sections of the etch process (sessions, signals, steps, parameters, labels, skill)."""
    from jangin.demo._report import plot_sensor_session

    name = etch.get("display_name") or etch["process"]
    sections: list[dict[str, Any]] = [
        {
            "title": f"Second process: {name}",
            "text": (
                f"{etch['runs']} runs imported from raw tool logs with one call (import-runs: one CSV per run, "
                "no time column, a text recipe_step column, one run table with recipes and outcome labels); "
                f"{etch['samples']:,} sensor samples in {etch['import_s']:.1f} s. The process definition "
                "(sample_data/processes/plasma_etch.yaml) names the channels, their units and roles."
            ),
            "table": [
                {
                    k: r.get(k)
                    for k in (
                        "run",
                        "technician",
                        "skill_level",
                        "station",
                        "recipe",
                        "outcome",
                        "etch_depth_ok",
                        "steps",
                        "samples",
                    )
                }
                for r in etch["sessions"]
            ],
        }
    ]
    defn = get_process(ds, etch["process"])
    shown = [c.name for c in defn.channels if c.role == "operator"] if defn else []
    shown += [c for c in _SHOWN_MACHINE if defn is None or defn.channel(c) is not None]
    plots = []
    for level in ("expert", "novice"):
        row = next((s for s in etch["sessions"] if s["skill_level"] == level and s["samples"]), None)
        if row is None:
            continue
        sid = row["session_id"]
        samples = ds.read("sensor_samples", filters=[("session_id", "=", sid)])
        events = ds.read("events", filters=[("session_id", "=", sid)])
        spread = samples.group_by("channel").aggregate([("value", "min"), ("value", "max")]).to_pylist()
        moving = {r["channel"] for r in spread if r["value_min"] < r["value_max"]}  # constant: not drawn
        p = plot_sensor_session(
            samples,
            events,
            rdir / f"etch_signals_{level}.png",
            f"{level} run {row['run']} ({row['technician']}, recipe {row['recipe']})",
            channels=[c for c in shown if c in moving] or None,
        )
        plots.append(p.name)
    sections.append(
        {
            "title": f"{name}: signals",
            "images": plots,
            "text": "The engineer's set points and what the chamber answers; grey lines: recipe steps "
            "(from the recipe_step column; main_etch occurs twice).",
        }
    )
    sections.append({"title": f"{name}: recipe steps (occurrences)", "table": etch["steps"]})
    sections.append({"title": f"{name}: recipes (session parameters)", "table": etch["parameters"]})
    sections.append({"title": f"{name}: run labels (question, answer)", "table": etch["labels"]})
    rows: list[dict[str, Any]] = []
    links: list[tuple[str, str]] = []
    texts = []
    outcome = {s["session_id"]: s.get("outcome") for s in etch["sessions"]}
    run_of = {s["session_id"]: s["run"] for s in etch["sessions"]}
    for recipe, sk in etch["skill"].items():
        if "error" in sk:
            texts.append(f"recipe {recipe}: {sk['error']}")
            continue
        texts.append(
            f"recipe {recipe}: profile {sk['profile']} from {len(sk['experts'])} expert runs; adjustments the "
            f"experts make: {'; '.join(sk.get('adjustments', [])) or 'none found'}"
        )
        for r in sk["sessions"]:
            rows.append(
                {
                    "recipe": recipe,
                    "run": run_of.get(r["session_id"], r["session_id"]),
                    "skill_level": r["skill_level"],
                    "score": r["score"],
                    "deviations_major": r["deviations_major"],
                    "missed_adjustments": r["missed_adjustments"],
                    "outcome": outcome.get(r["session_id"]),
                }
            )
            if r.get("report"):
                links.append(
                    (
                        f"coaching report {run_of.get(r['session_id'], r['session_id'])} ({recipe}, "
                        f"{r['skill_level']}, score {r['score']:.0f})",
                        f"coaching/{r['report']}",
                    )
                )
    sections.append(
        {
            "title": f"{name}: skill profiles per recipe",
            "text": " ".join(texts)
            + " Experts are scored against a profile built without them (leave one out).",
            "table": rows,
            "links": links,
        }
    )
    return sections
