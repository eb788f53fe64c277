"""Demo step: a skill profile from the expert sessions, every novice session scored and coached."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from jangin.core import Dataset, ModelRegistry
from jangin.core.process_definition import get_process
from jangin.core.progress import ProgressFn, null_progress

__all__ = ["demo_skill"]

log = logging.getLogger(__name__)


def demo_skill(
    ds: Dataset,
    out_dir: Path,
    *,
    name: str = "weld-skill",
    process: str | None = None,
    where: str | None = None,
    operator_channels_only: bool = False,
    also_score: tuple[str, ...] = (),
    bin_hz: float | None = None,
    max_reports: int | None = None,
    condition_on: tuple[str, ...] = (),
    progress: ProgressFn = null_progress,
) -> dict[str, Any]:
    """Build and promote a skill profile from the expert sessions of ``process`` (default: the process
    with the most expert sessions), optionally narrowed by ``where`` (an SQL condition on
    ``current_sessions``, e.g. one recipe), score every other session of that selection against it
    and write their coaching reports into ``out_dir``.

    The experts are scored too, each against a profile built without it (leave one out), so their
    scores say what an expert's score looks like rather than how well the profile fits its own data.

    With ``operator_channels_only`` the profile scores only the channels the registered process
    definition marks as operator-controlled (and not a command/actual duplicate), plus ``also_score``
    (e.g. the machine signals the experts react to); the others are kept as context. ``bin_hz`` is the rate signals are compared at (default: the skill stage's).
    ``max_reports`` limits the coaching reports written to the lowest-scoring sessions (default: all).
    ``condition_on`` records the recipe parameters the selection holds (e.g. ``("recipe",)`` with a
    ``where`` on one recipe), so the profile and its coaching pages name the recipe.

    Returns:
        ``{"profile": "name:vN", "process", "experts", "sessions": [{session_id, skill_level, score,
        deviations_major, missed_adjustments, report}], "outcomes": [...], "build_s", "score_s"}``;
        ``report`` is relative to ``out_dir`` (None for experts). ``{"error": ...}`` when the dataset
        has fewer than two expert sessions of any process.
    """
    from jangin.core.skill import read_session
    from jangin.inference._skill import load_profile, relate_outcomes, score_session
    from jangin.inference._skill_report import outcome_words, write_report
    from jangin.training._skill import SkillProfileConfig, build_skill_profile, profile_from_sessions

    if process is None:
        rows = ds.query(
            "SELECT process, count(*) AS n FROM current_sessions WHERE skill_level = 'expert' "
            "AND process IS NOT NULL GROUP BY 1 ORDER BY n DESC, process"
        ).to_pylist()
        if not rows or rows[0]["n"] < 2:
            return {"error": "fewer than two expert sessions of any process"}
        process = str(rows[0]["process"])
    cond = f"process = '{process.replace(chr(39), chr(39) * 2)}'" + (f" AND ({where})" if where else "")
    n_exp = ds.query(f"SELECT count(*) AS n FROM current_sessions WHERE skill_level = 'expert' AND {cond}")
    if n_exp.column(0)[0].as_py() < 2:
        return {
            "error": f"fewer than two expert sessions of {process}" + (f" where {where}" if where else "")
        }
    t = time.perf_counter()
    registry = ModelRegistry(ds.models_dir)
    cfg = SkillProfileConfig(
        name=name,
        process=process,
        where=where,
        condition_on=condition_on,
        **_channel_choice(ds, process, operator_channels_only, also_score, bin_hz),
    )
    mv = build_skill_profile(ds, cfg, registry=registry, progress=progress)
    registry.promote(mv.name, mv.version)
    prof = load_profile(mv)
    ref = f"{mv.name}:{mv.version}"
    build_s = time.perf_counter() - t

    t = time.perf_counter()
    sessions = ds.query(
        f"SELECT session_id, skill_level FROM current_sessions WHERE {cond} ORDER BY skill_level, started_at"
    ).to_pylist()
    sigs = {r["session_id"]: read_session(ds, r["session_id"]) for r in sessions}
    experts = [sid for sid in prof.sessions if sid in sigs]
    definition = get_process(ds, process)  # the leave-one-out profiles are built as the profile was
    scored = []
    out: list[dict[str, Any]] = []
    for i, r in enumerate(sessions):
        progress("skill scores", i, len(sessions))
        sid, level = r["session_id"], r["skill_level"]
        if sid in experts:  # leave one out
            loo = profile_from_sessions([sigs[o] for o in experts if o != sid], cfg, definition=definition)
            sc = score_session(loo, sigs[sid], profile_name=f"{ref} without {sid}")
        else:
            sc = score_session(prof, sigs[sid], profile_name=ref)
            scored.append((sc, sigs[sid]))
        out.append(
            {
                "session_id": sid,
                "skill_level": level,
                "score": round(sc.score, 1),
                "deviations_major": sum(1 for d in sc.deviations if d.severity != "minor"),
                "missed_adjustments": len(sc.missed),
                "loso": sid in experts,
                "report": None,
                "_score": sc,
            }
        )
    progress("skill scores", len(sessions), len(sessions))
    outcomes = relate_outcomes(scored)
    out_dir.mkdir(parents=True, exist_ok=True)
    coached = sorted((r for r in out if not r["loso"]), key=lambda r: r["score"])[:max_reports]
    keep = {r["session_id"] for r in coached}
    for row in out:
        sc = row.pop("_score")
        if row["session_id"] not in keep:
            continue
        path, _ = write_report(
            ds,
            row["session_id"],
            out_dir / f"{row['session_id']}.html",
            profile=(ref, prof),
            outcomes=outcomes,
            score=sc,
            sig=sigs[row["session_id"]],
        )
        row["report"] = path.name
    score_s = time.perf_counter() - t
    log.info("skill profile %s: %d sessions scored in %.1f s", ref, len(out), score_s)
    return {
        "profile": ref,
        "process": process,
        "where": where,
        "experts": experts,
        "sessions": out,
        "adjustments": mv.manifest.extra.get("adjustments", []),
        "outcomes": [outcome_words(prof, r) for r in outcomes],
        "build_s": round(build_s, 2),
        "score_s": round(score_s, 2),
    }


def _channel_choice(
    ds: Dataset, process: str, operator_only: bool, also: tuple[str, ...], bin_hz: float | None
) -> dict[str, Any]:
    """Config fields for the channels scored: the operator's channels of the process definition."""
    from jangin.training._skill import SkillProfileConfig

    fields = SkillProfileConfig.model_fields
    out: dict[str, Any] = {}
    if bin_hz is not None and "bin_hz" in fields:
        out["bin_hz"] = bin_hz
    defn = get_process(ds, process) if operator_only else None
    if defn is None:
        return out
    scored = [
        c.name for c in defn.channels if (c.role == "operator" and not c.duplicate_of) or c.name in also
    ]
    if "channels" in fields:
        out["channels"] = tuple(scored)
    elif "context_channels" in fields:
        out["context_channels"] = tuple(c.name for c in defn.channels if c.name not in scored)
    return out
