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


@app.command("import-table")
def import_table(
    table_file: Annotated[Path, typer.Argument(help="CSV or Parquet file, one label per row.")],
    key: Annotated[str, typer.Option(help="What a row labels: session | frame | span.")],
    question: Annotated[str, typer.Option(help="The question the values answer, e.g. tool_condition.")],
    column: Annotated[
        str | None, typer.Option(help="Column with the answers (default: QUESTION, label.QUESTION or label).")
    ] = None,
    session_column: Annotated[
        str | None,
        typer.Option(help="Column naming the session: id, session key or run file (default: session_id, …)."),
    ] = None,
    frame_column: Annotated[
        str | None,
        typer.Option(help="Column naming the frame: frame id or source_uri (default: frame_id, …)."),
    ] = None,
    start_column: Annotated[
        str | None,
        typer.Option(help="Span start: ISO time or seconds since the session start (default: start)."),
    ] = None,
    end_column: Annotated[str | None, typer.Option(help="Span end (default: end).")] = None,
    author: Annotated[str | None, typer.Option(help="Who answered (a pseudonym).")] = None,
    source: Annotated[str, typer.Option(help="Label source: import | expert | review.")] = "import",
    dataset: DatasetOption = None,
) -> None:
    """Import run-, frame- or span-level labels answering one question (all rows or none)."""
    from jangin.core import ConfigError, Dataset
    from jangin.labeling import import_label_table

    if key not in ("session", "frame", "span"):
        raise ConfigError(f"--key must be session, frame or span, got {key!r}")
    r = import_label_table(
        Dataset.open(resolve_dataset(dataset)),
        table_file,
        key=key,  # type: ignore[arg-type]
        question=question,
        column=column,
        session_column=session_column,
        frame_column=frame_column,
        start_column=start_column,
        end_column=end_column,
        author=author,
        source=source,
    )
    dup = f", {r.duplicates} repeated row(s)" if r.duplicates else ""
    console().print(
        f"{question} ({key}): {r.rows} row(s): {r.added} new, {r.superseding} superseding, "
        f"{r.unchanged} unchanged label(s){dup}"
    )


# -- Label Studio round trip ------------------------------------------------------------------------

ProjectOption = Annotated[str, typer.Option("--project", "-p", help="Label Studio project title.")]
RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        envvar="JANGIN_LABEL_STUDIO_ROOT",
        help="The server's local-files document root [default: $JANGIN_HOME/label-studio-root].",
    ),
]


def _client():  # type: ignore[no-untyped-def]
    from jangin.core import get_settings
    from jangin.labeling import LabelStudioClient

    return LabelStudioClient.from_settings(get_settings())


@app.command("push")
def push_cmd(
    project: ProjectOption,
    where: Annotated[
        str | None,
        typer.Option(help="SQL over `frames f` / `current_sessions s`, e.g. \"s.station = 'st-01'\"."),
    ] = None,
    schema: Annotated[
        Path | None, typer.Option(help="Label schema YAML (target, labels: [{kind, names}]).")
    ] = None,
    process: Annotated[
        str | None,
        typer.Option(help="Instead of --schema: ask the questions of this registered process definition."),
    ] = None,
    target: Annotated[
        str, typer.Option(help="With --process: session (sensor windows) or frame.")
    ] = "session",
    model: Annotated[
        str | None, typer.Option(help="NAME[:VERSION]: attach that model's label rows as predictions.")
    ] = None,
    root: RootOption = None,
    chunk_size: Annotated[int, typer.Option(help="Tasks per import request.")] = 1000,
    dataset: DatasetOption = None,
) -> None:
    """Create or update a Label Studio project and import frames or sensor windows as tasks."""
    from jangin.core import ConfigError, Dataset, NotFoundError, get_settings
    from jangin.core.cli import progress_bar
    from jangin.core.process_definition import get_process
    from jangin.labeling import LabelSchema, push

    ds = Dataset.open(resolve_dataset(dataset))
    root = root or get_settings().home / "label-studio-root"
    sch: Path | LabelSchema | None = schema
    if process is not None:
        if schema is not None:
            raise ConfigError("give --schema or --process, not both")
        if target not in ("session", "frame"):
            raise ConfigError(f"--target must be session or frame, got {target!r}")
        definition = get_process(ds, process)
        if definition is None:
            raise NotFoundError(
                f"process {process!r} is not registered in this dataset",
                hint="register its definition in the dataset first (jangin.core.process_definition.register_process)",
            )
        sch = LabelSchema.from_process(definition, target)  # type: ignore[arg-type]
    with progress_bar() as progress:
        r = push(
            ds,
            project,
            client=_client(),
            root=root,
            where=where,
            schema=sch,
            model=model,
            chunk_size=chunk_size,
            progress=progress,
        )
    extra = f", {r.predictions} prediction(s) of {r.model_version}" if r.model_version else ""
    console().print(
        f"project [bold]{r.project}[/] (id {r.project_id}): {r.created} new task(s), "
        f"{r.existing} already there{extra} ({r.seconds:.1f} s)"
    )


@app.command("pull")
def pull_cmd(project: ProjectOption, dataset: DatasetOption = None) -> None:
    """Read a project's annotations into the labels table (corrections supersede; twice adds nothing)."""
    from jangin.core import Dataset
    from jangin.core.cli import progress_bar
    from jangin.labeling import pull

    ds = Dataset.open(resolve_dataset(dataset))
    with progress_bar() as progress:
        r = pull(ds, project, client=_client(), progress=progress)
    console().print(
        f"{r.annotations} annotation(s): {r.added} new, {r.superseding} superseding, "
        f"{r.retracted} retracted, {r.unchanged} unchanged label row(s)"
    )


@app.command("import")
def import_cmd(
    export_file: Annotated[
        Path, typer.Argument(help="A Label Studio JSON export of a project Jangin pushed.")
    ],
    schema: Annotated[
        Path | None, typer.Option(help="Label schema: reject labels it does not define.")
    ] = None,
    dataset: DatasetOption = None,
) -> None:
    """Import a Label Studio JSON export (no server needed)."""
    from jangin.core import Dataset
    from jangin.labeling import import_export, load_schema

    ds = Dataset.open(resolve_dataset(dataset))
    config = load_schema(schema).label_config() if schema else None
    r = import_export(ds, export_file, label_config=config)
    console().print(
        f"{r.annotations} annotation(s): {r.added} new, {r.superseding} superseding, "
        f"{r.unchanged} unchanged label row(s)"
    )


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="yolo | coco | hf")] = "yolo",
    where: Annotated[str | None, typer.Option(help="SQL over `frames f` / `current_sessions s`.")] = None,
    schema: Annotated[
        Path | None, typer.Option(help="Label schema: its box names give the class order.")
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated class order [default: alphabetical].")
    ] = None,
    question: Annotated[
        list[str] | None, typer.Option(help="Only boxes answering this question (repeatable), e.g. defect.")
    ] = None,
    dataset: DatasetOption = None,
) -> None:
    """Export box labels as a YOLO folder, COCO JSON, or a Hugging Face–loadable Parquet dataset."""
    from jangin.core import Dataset
    from jangin.labeling import export_labels, load_schema

    ds = Dataset.open(resolve_dataset(dataset))
    order = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    if order is None and schema is not None:
        order = load_schema(schema).names("box")
    s = export_labels(ds, out, fmt=fmt, where=where, classes=order, question=question or None)  # type: ignore[arg-type]
    console().print(
        f"wrote {s['images']} image(s), {s['boxes']} box(es) as {fmt} to {out} "
        f"(classes: {', '.join(s['classes'])})"
    )


@app.command("config")
def config_cmd(schema: Annotated[Path, typer.Argument(help="Label schema YAML.")]) -> None:
    """Print the Label Studio labelling config generated from a label schema."""
    from jangin.labeling import load_schema

    sch = load_schema(schema)
    print(sch.label_config(sch.channels or (["channel"] if sch.target == "session" else None)), end="")
