"""``jangin capture`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jangin.core.cli import DatasetOption, console, progress_bar, resolve_dataset

app = typer.Typer(name="capture", help="Record and import expert sessions (video, sensors, events).", no_args_is_help=True)


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A session folder (with session.yaml) or a folder of them.")],
    dataset: DatasetOption = None,
    stills: Annotated[bool, typer.Option("--stills", help="PATH is a folder of still inspection images.")] = False,
    frame_interval: Annotated[float, typer.Option(help="Seconds between sampled video frames.")] = 1.0,
    no_deidentify: Annotated[bool, typer.Option("--no-deidentify", help="Do NOT blur faces (logged).")] = False,
) -> None:
    """Import recorded sessions (or still images) into the dataset."""
    from jangin.capture import import_session, import_sessions, import_stills
    from jangin.core import Dataset

    ds = Dataset.open_or_create(resolve_dataset(dataset))
    with progress_bar() as progress:
        if stills:
            results = [import_stills(ds, path, deidentify=not no_deidentify, progress=progress)]
        elif (path / "session.yaml").is_file():
            results = [import_session(ds, path, frame_interval_s=frame_interval, deidentify=not no_deidentify, progress=progress)]
        else:
            results = import_sessions(ds, path, frame_interval_s=frame_interval, deidentify=not no_deidentify, progress=progress)
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            console().print(f"[red]failed[/] {r.session_key}: {r.error}")
        elif r.skipped:
            console().print(f"skipped {r.session_key} ({r.session_id}): already imported")
        else:
            console().print(
                f"imported {r.session_key} → {r.session_id}: {r.samples:,} samples, {r.events} events, "
                f"{r.frames} frames, {r.faces_blurred} face(s) blurred"
            )
    if failed:
        raise typer.Exit(1)
