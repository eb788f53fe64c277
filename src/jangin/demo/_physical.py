"""Demo step "physical": the expert welding sessions as a LeRobot v3.0 dataset, and one session as a
Rerun recording (.rrd); the report links both. Skipped with ``JANGIN_DEMO_SKIP=physical``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["demo_physical"]

WHERE = "process = 'mig_butt_weld' AND skill_level = 'expert'"


def demo_physical(
    ds: Any, out: Path, *, where: str = WHERE, fps: int = 10, say: Any = print
) -> dict[str, Any]:
    """Export the expert welding sessions to ``out/lerobot`` (10 fps) and the first of them to
    ``out/session.rrd``; returns figures and the report section (``{}`` when skipped)."""
    if "physical" in os.environ.get("JANGIN_DEMO_SKIP", "").split(","):
        return {}
    from jangin.core import JanginError
    from jangin.training._lerobot import export_lerobot

    t = time.perf_counter()
    res = export_lerobot(
        ds, out / "lerobot", where=where, fps=fps, repo_id="jangin/demo-experts", overwrite=True
    )
    export_s = time.perf_counter() - t
    say(
        f"physical AI: {res.episodes} expert sessions -> LeRobot v3.0 at {out / 'lerobot'} ({res.frames} frames, "
        f"action {len(res.action)} / state {len(res.state)} channels, {export_s:.1f} s)"
    )
    links = [("LeRobot dataset card (expert sessions)", "../lerobot/README.md")]
    rrd: str | None = None
    note = ""
    try:
        from jangin.inference._view import view_session

        t = time.perf_counter()
        view = view_session(ds, res.sessions[0], rrd=out / "session.rrd")
        rrd = str(out / "session.rrd")
        links.append((f"Rerun recording of session {res.sessions[0]} (open with `rerun`)", "../session.rrd"))
        say(
            f"physical AI: session {res.sessions[0]} -> {rrd} ({sum(view.values())} rows, {time.perf_counter() - t:.1f} s)"
        )
    except JanginError as exc:  # rerun-sdk not installed: the export still stands
        note = f"no .rrd: {exc}"
        say(f"physical AI: {note}")
    section = {
        "title": "Physical AI: LeRobot dataset and Rerun recording",
        "text": (
            f"The {res.episodes} expert welding sessions exported as a LeRobot v3.0 dataset ({res.frames} frames at "
            f"{res.fps} fps; action = operator channels {', '.join(res.action)}; observation.state = "
            f"{', '.join(res.state)}; de-identified video {', '.join(res.cameras)}), loadable with LeRobot's "
            "LeRobotDataset; one session as a Rerun recording. " + note
        ),
        "links": links,
        "code": f'jangin export lerobot -d {ds.root} --where "{where}" -o lerobot\n'
        f"jangin view -d {ds.root} {res.sessions[0]} --rrd session.rrd",
    }
    return {
        "lerobot": str(out / "lerobot"),
        "episodes": res.episodes,
        "frames": res.frames,
        "rrd": rrd,
        "export_s": round(export_s, 2),
        "section": section,
    }
