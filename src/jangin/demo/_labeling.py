"""The demo's Label Studio step: a live round trip when a server is configured, else the committed
example export (``sample_data/label-studio/export.json``, made by ``scripts/label-studio-example.py``
from a real round trip), so the demo runs offline without a server."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jangin.core import Dataset
from jangin.core.progress import ProgressFn, null_progress

__all__ = ["DEMO_FRAME_SCHEMA", "DEMO_SESSION_SCHEMA", "demo_labeling"]

log = logging.getLogger(__name__)

EXPORT = Path("label-studio") / "export.json"
FRAMES_PROJECT = "jangin-demo-defects"
SESSIONS_PROJECT = "jangin-demo-sessions"
DEMO_FRAME_SCHEMA: dict[str, Any] = {
    "target": "frame",
    "labels": [
        {"kind": "box", "names": ["porosity", "undercut", "spatter", "crack"]},
        {"kind": "class", "name": "quality", "names": ["OK", "NG"]},
    ],
}
DEMO_SESSION_SCHEMA: dict[str, Any] = {
    "target": "session",
    "labels": [
        {"kind": "span", "names": ["travel_too_fast", "unstable_arc", "no_current_reduction"]},
        {"kind": "class", "name": "grade", "names": ["expert_like", "needs_coaching"]},
    ],
    "channels": ["travel_speed_mm_s", "arc_current_A", "plate_temp_C"],
    "max_points": 1500,
}


def demo_labeling(
    ds: Dataset,
    sample_data: Path,
    settings: Any,
    *,
    stills_session_id: str | None = None,
    progress: ProgressFn = null_progress,
) -> dict[str, Any]:
    """Push to Label Studio and pull back when ``settings.label_studio_url`` is set; otherwise import
    the committed example export. Returns counts for the report.

    Args:
        ds: The demo dataset (sessions and stills already imported).
        sample_data: The sample data folder (holds ``label-studio/export.json``).
        settings: Jangin settings (``label_studio_url``, ``label_studio_token``, ``home``).
        stills_session_id: Push only this session's frames (the inspection stills); default all frames.
        progress: ``progress(task, done, total)``.

    Returns:
        ``{"mode": "server" | "export", ...counts}``.
    """
    from jangin.labeling import LabelStudioClient, import_export, pull, push

    if settings.label_studio_url:
        client = LabelStudioClient.from_settings(settings)
        root = Path(settings.home) / "label-studio-root"
        where = f"f.session_id = '{stills_session_id}'" if stills_session_id else None
        frames = push(
            ds,
            FRAMES_PROJECT,
            client=client,
            root=root,
            schema=DEMO_FRAME_SCHEMA,
            where=where,
            progress=progress,
        )
        sessions = push(
            ds, SESSIONS_PROJECT, client=client, root=root, schema=DEMO_SESSION_SCHEMA, progress=progress
        )
        pulled = [pull(ds, p, client=client, progress=progress) for p in (FRAMES_PROJECT, SESSIONS_PROJECT)]
        return {
            "mode": "server",
            "url": client.url,
            "tasks_created": frames.created + sessions.created,
            "tasks_existing": frames.existing + sessions.existing,
            "annotations": sum(p.annotations for p in pulled),
            "labels_added": sum(p.written for p in pulled),
        }
    path = Path(sample_data) / EXPORT
    res = import_export(ds, path, missing="skip")
    if res.skipped:
        log.info("%s: %d label(s) refer to frames or sessions not imported in this run", path, res.skipped)
    return {
        "mode": "export",
        "file": str(path),
        "annotations": res.annotations,
        "labels_added": res.written,
        "labels_skipped": res.skipped,
    }
