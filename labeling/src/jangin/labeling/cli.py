"""``jangin label`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jangin.core.cli import DatasetOption, console, resolve_dataset

app = typer.Typer(name="label", help="Label frames, sensor spans and sessions.", no_args_is_help=True)


@app.command("judgments")
def judgments(dataset: DatasetOption = None) -> None:
    """Turn the experts' OK/NG judgment events into span labels."""
    from jangin.core import Dataset
    from jangin.labeling import labels_from_judgments

    n = labels_from_judgments(Dataset.open(resolve_dataset(dataset)))
    console().print(f"{n} new label(s) from judgments")


@app.command("import-boxes")
def import_boxes(
    csv_file: Annotated[Path, typer.Argument(help="CSV with image, class, xmin, ymin, xmax, ymax (pixels).")],
    session: Annotated[str, typer.Option(help="Session id whose frames the image paths refer to.")],
    dataset: DatasetOption = None,
) -> None:
    """Import boxes from a CSV file as box labels."""
    from jangin.core import Dataset
    from jangin.labeling import import_box_csv

    n = import_box_csv(Dataset.open(resolve_dataset(dataset)), csv_file, session_id=session)
    console().print(f"{n} new box label(s)")
