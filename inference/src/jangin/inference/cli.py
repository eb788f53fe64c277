"""``jangin inspect`` (and, later, ``jangin serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jangin.core.cli import DatasetOption, console, resolve_dataset

__all__ = ["register"]


def inspect(
    images: Annotated[
        list[Path], typer.Argument(help="Image files (JPEG, PNG, …).", exists=True, dir_okay=False)
    ],
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="NAME[:VERSION]; no version: the active one, else the latest."),
    ],
    dataset: DatasetOption = None,
    registry: Annotated[
        Path | None, typer.Option(help="Model registry [default: the dataset's models/].")
    ] = None,
    station: Annotated[str | None, typer.Option(help="Station id recorded with each inspection.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera name recorded with each inspection.")] = None,
    ng: Annotated[
        list[str] | None, typer.Option("--ng", help="An NG class (repeat); default every class.")
    ] = None,
    conf: Annotated[float | None, typer.Option(help="Confidence threshold [default: the model's].")] = None,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Append the inspections to the dataset.")
    ] = True,
) -> None:
    """Inspect images with a detector: one line per image (verdict, boxes, latency)."""
    from jangin.core import Dataset
    from jangin.inference._detector import OnnxDetector
    from jangin.inference._inspect import inspect_images

    ds_path = resolve_dataset(dataset)
    ds = Dataset.open(ds_path) if (log or registry is None) else None
    root = registry if registry is not None else Dataset.open(ds_path).models_dir
    detector = OnnxDetector.load(root, model, conf=conf)
    rows = inspect_images(
        ds if log else None,
        detector,
        ((str(p), p.read_bytes()) for p in images),
        station=station,
        camera=camera,
        ng_classes=ng,
        min_conf=detector.conf,
    )
    for row in rows:
        boxes = ", ".join(f"{d['name']} {d['score']:.2f}" for d in row["detections"][:5])
        more = f" +{len(row['detections']) - 5}" if len(row["detections"]) > 5 else ""
        typer.echo(
            f"{row['source_uri']}\t{row['verdict']}\t{len(row['detections'])} box(es)"
            f"{': ' + boxes + more if boxes else ''}\t{row['latency_ms']:.1f} ms"
        )
    if log and ds is not None:
        console().print(
            f"logged {len(rows)} inspection(s) to {ds.root} ({detector.name}:{detector.model_version})"
        )


def register(app: typer.Typer) -> None:
    """Add the inference commands to the ``jangin`` command."""
    app.command("inspect")(inspect)
