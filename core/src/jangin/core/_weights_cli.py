"""``jangin weights add|ls|rm|fetch``: the site's registered backbone and model weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["weights_app"]

weights_app = typer.Typer(
    name="weights",
    help="Pretrained weights as managed artifacts (checksum pinned, under $JANGIN_HOME/weights).",
    no_args_is_help=True,
)

Architecture = Annotated[
    str,
    typer.Option("--architecture", "-a", help="Network the weights fit: resnet18, wide_resnet50_2, yolo11n…"),
]
Framework = Annotated[
    str, typer.Option("--framework", "-f", help="torchvision, timm, ultralytics or jangin.")
]
Licence = Annotated[
    str, typer.Option("--licence", help="Licence of the weights (e.g. BSD-3-Clause, AGPL-3.0).")
]
Home = Annotated[
    Path | None,
    typer.Option("--home", help="Registry home [default: $JANGIN_HOME]; weights go in HOME/weights."),
]


def _print(msg: str) -> None:
    from jangin.core.cli import console  # here, not at the top: jangin.core.cli mounts this module

    console().print(msg)


@weights_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Name training options refer to (--backbone-weights NAME).")],
    file: Annotated[Path, typer.Argument(help="The weights file (.pth, .pt, .safetensors).")],
    architecture: Architecture,
    licence: Licence,
    source: Annotated[str, typer.Option("--source", help="URL, or how the weights were made.")],
    framework: Framework = "torchvision",
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="Expected sha256: refuse the file when it differs.")
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Point an existing name at this file.")] = False,
    home: Home = None,
) -> None:
    """Copy a weights file into the registry, pinned by its sha256."""
    from jangin.core.weights import default_registry

    entry = default_registry(home).add(
        name,
        file,
        architecture=architecture,
        framework=framework,
        licence=licence,
        source=source,
        sha256=sha256,
        replace=replace,
    )
    _print(f"weights [bold]{entry.name}[/]: {entry.architecture} ({entry.framework}), sha256 {entry.sha256}")


@weights_app.command("ls")
def ls(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Check every file's sha256.")] = False,
    home: Home = None,
) -> None:
    """List the registered weights."""
    from rich.table import Table

    from jangin.core.cli import console
    from jangin.core.weights import default_registry

    reg = default_registry(home)
    entries = [reg.get(e.name) for e in reg.ls()] if verify else reg.ls()
    if as_json:
        typer.echo(json.dumps([e.to_json() for e in entries], indent=2))
        return
    if not entries:
        _print(f"no weights registered in {reg.root} (`jangin weights add NAME FILE …`)")
        return
    table = Table("name", "architecture", "framework", "licence", "MB", "sha256", "source")
    for e in entries:
        table.add_row(
            e.name, e.architecture, e.framework, e.licence, f"{e.size / 1e6:.1f}", e.sha256[:12], e.source
        )
    console().print(table)


@weights_app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(help="Registered name.")],
    home: Home = None,
) -> None:
    """Forget registered weights (their file is deleted when no other name uses it)."""
    from jangin.core.weights import default_registry

    default_registry(home).remove(name)
    _print(f"removed weights [bold]{name}[/]")


@weights_app.command("fetch")
def fetch(
    url: Annotated[str, typer.Argument(help="http(s) URL of the weights file.")],
    name: Annotated[str, typer.Option("--name", help="Registry name.")],
    sha256: Annotated[str, typer.Option("--sha256", help="Expected sha256 (required).")],
    architecture: Architecture,
    licence: Licence,
    framework: Framework = "torchvision",
    home: Home = None,
) -> None:
    """Download weights on a connected machine (JANGIN_OFFLINE=0) and register them; refused offline."""
    from jangin.core.cli import progress_bar
    from jangin.core.weights import default_registry
    from jangin.core.weights import fetch as fetch_weights

    with progress_bar() as cb:
        entry = fetch_weights(
            url,
            sha256=sha256,
            name=name,
            architecture=architecture,
            framework=framework,
            licence=licence,
            registry=default_registry(home),
            progress=cb,
        )
    _print(f"fetched weights [bold]{entry.name}[/] ({entry.size / 1e6:.1f} MB), sha256 verified")
