"""``jangin export lerobot``: sessions as a LeRobot v3.0 dataset (see :mod:`jangin.training._lerobot`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jangin.core.cli import DatasetOption, console, progress_bar, resolve_dataset

__all__ = ["export_lerobot_cmd", "register"]


def export_lerobot_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (empty or new).")],
    where: Annotated[
        str | None,
        typer.Option(help="SQL condition over current_sessions, e.g. \"skill_level = 'expert'\"."),
    ] = None,
    session: Annotated[
        list[str] | None, typer.Option("--session", help="Only this session (repeat).")
    ] = None,
    fps: Annotated[
        int | None, typer.Option(help="Frames per second [default: the video's, else the channels'].")
    ] = None,
    resample: Annotated[
        str, typer.Option(help="linear | asof: how channels are put on the frame grid.")
    ] = "linear",
    action: Annotated[
        str | None,
        typer.Option(
            help="CH,... forming `action` (without a process definition, or to override its roles)."
        ),
    ] = None,
    repo_id: Annotated[str, typer.Option(help="Name in the dataset card.")] = "jangin/export",
    licence: Annotated[str, typer.Option("--license", help="Licence of the exported data (card).")] = "other",
    allow_identifiable: Annotated[
        bool, typer.Option(help="Export videos stored without de-identification (refused otherwise).")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace what is in --out.")] = False,
    dataset: DatasetOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Export sessions (one episode each) as a LeRobot v3.0 dataset: Parquet + MP4 + meta + card."""
    from jangin.core import ConfigError, Dataset
    from jangin.training._lerobot import export_lerobot

    if resample not in ("linear", "asof"):
        raise ConfigError(f"--resample {resample!r}: use linear or asof")
    ds = Dataset.open(resolve_dataset(dataset))
    with progress_bar(progress) as bar:
        res = export_lerobot(
            ds,
            out,
            where=where,
            session_ids=session or None,
            fps=fps,
            resample=resample,  # type: ignore[arg-type]
            action=[a.strip() for a in action.split(",") if a.strip()] if action else None,
            repo_id=repo_id,
            licence=licence,
            allow_identifiable=allow_identifiable,
            overwrite=overwrite,
            progress=bar,
        )
    for w in res.warnings:
        console().print(f"[bold yellow]warning:[/] {w}")
    console().print(
        f"wrote LeRobot v3.0 dataset {res.root}: {res.episodes} episode(s), {res.frames} frames at {res.fps} fps, "
        f"state {len(res.state)}, action {len(res.action)}, cameras {', '.join(res.cameras) or 'none'}, "
        f"{len(res.tasks)} task(s)"
    )


def register(app: typer.Typer) -> None:
    """``jangin export lerobot`` (entry point ``export`` of group ``jangin.cli``)."""
    from jangin.core.cli import command_group

    command_group(app, "export", help="Export sessions to other tools' formats.").command("lerobot")(
        export_lerobot_cmd
    )
