"""``jangin view SESSION [--rrd FILE | --serve]`` (see :mod:`jangin.inference._view`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from jangin.core.cli import DatasetOption, console, resolve_dataset

__all__ = ["view"]


def view(
    session: Annotated[str, typer.Argument(help="Session id.")],
    rrd: Annotated[Path | None, typer.Option(help="Write a Rerun recording (.rrd) here.")] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the Rerun web viewer on 127.0.0.1 until Ctrl-C.")
    ] = False,
    web_port: Annotated[int, typer.Option(help="Port of the web viewer (--serve).")] = 9090,
    skill: Annotated[
        bool, typer.Option(help="Score the session against the expert band, if a profile exists.")
    ] = True,
    dataset: DatasetOption = None,
) -> None:
    """A session in Rerun: channels at native rate, video, steps, labels, verdicts, skill deviations."""
    from jangin.core import ConfigError, Dataset
    from jangin.inference._view import serve as serve_session
    from jangin.inference._view import view_session

    if (rrd is None) == (not serve):
        raise ConfigError("give exactly one of --rrd FILE or --serve")
    ds = Dataset.open(resolve_dataset(dataset))
    if rrd is not None:
        res = view_session(ds, session, rrd=rrd, skill=skill)
        console().print(
            f"wrote {rrd}: {len(res)} entities, {sum(res.values())} rows (open it with `rerun {rrd}`)"
        )
        for n in res.notes:
            console().print(f"  note: {n}")
        return
    url = serve_session(ds, session, web_port=web_port)
    console().print(f"Rerun web viewer: {url}  (Ctrl-C stops)")
    # rerun-sdk 0.41 binds its web viewer on every interface (no host option): say so
    console().print(
        f"[bold yellow]warning:[/] Rerun's web viewer listens on all interfaces (port {web_port}), not only "
        "127.0.0.1: on a shared network prefer --rrd FILE, or firewall the port"
    )
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
