"""The ``jangin`` command.

Core owns the command and its shared options; each installed stage adds its command group through
the ``jangin.cli`` entry-point group. An entry point's object is either a ``typer.Typer`` (mounted
under the entry point's name, e.g. ``jangin capture …``) or a callable ``register(app)`` that adds
commands itself (the umbrella package registers ``jangin demo`` that way). A box with only
``jangin-inference`` installed therefore gets ``jangin serve`` and nothing it cannot run.

Commands are thin: parse options, call the library, print a summary. Only the CLI configures logging,
progress bars and exit codes.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

from jangin.core._errors import JanginError
from jangin.core._weights_cli import weights_app

__all__ = ["DatasetOption", "app", "command_group", "console", "main", "progress_bar", "resolve_dataset"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jangin.cli"

app = typer.Typer(
    name="jangin",
    help="Jangin (장인): capture expert know-how on the shop floor and turn it into AI beside the line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state: dict[str, Any] = {"debug": False}


def console() -> Any:
    """The shared rich console (stderr for messages, so stdout stays clean for data)."""
    from rich.console import Console

    if "console" not in _state:
        # soft_wrap: a long line (a path) is never broken at the terminal's width, where a copied
        # path would carry the break (CI's narrow terminal printed ".../wear/v1/o of.parquet").
        _state["console"] = Console(stderr=True, highlight=False, soft_wrap=True)
    return _state["console"]


DatasetOption = Annotated[
    Path | None,
    typer.Option("--dataset", "-d", help="Dataset directory [default: $JANGIN_DATASET or ./jangin-data]."),
]


def resolve_dataset(path: Path | None) -> Path:
    """The dataset directory to use: the option, else the settings' default."""
    if path is not None:
        return path
    from jangin.core.settings import get_settings

    return get_settings().dataset


def command_group(parent: typer.Typer, name: str, *, help: str | None = None) -> typer.Typer:
    """The sub-command group ``name`` of ``parent``, created (and mounted) on first use.

    Lets several stages add commands to one group (``jangin skill build`` from training,
    ``jangin skill score`` from inference): each stage's ``jangin.cli`` entry point is a callable
    ``register(app)`` that calls ``command_group(app, "skill")`` and adds its commands to it.
    """
    for info in parent.registered_groups:
        if info.name == name and isinstance(info.typer_instance, typer.Typer):
            return info.typer_instance
    group = typer.Typer(name=name, help=help, no_args_is_help=True)
    parent.add_typer(group, name=name, help=help)
    return group


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int | None], None]]:
    """A progress callback (see :mod:`jangin.core.progress`) drawing rich progress bars on stderr."""
    if not enabled:
        yield lambda task, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(),
        transient=False,
    ) as bar:

        def update(task: str, done: int, total: int | None) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield update


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Directory for the new dataset.")],
) -> None:
    """Create an empty dataset (one Delta table per table of the schema) and, if the site has none, a
    random site key for technician pseudonyms in $JANGIN_HOME/site.key (mode 0600)."""
    from jangin.core._dataset import Dataset
    from jangin.core._errors import ConfigError
    from jangin.core.settings import ensure_site_key, get_settings

    settings = get_settings()
    key_path = settings.site_key_path().resolve()
    if key_path.is_relative_to(directory.resolve()):
        raise ConfigError(
            f"{key_path}: the site key would be inside the dataset {directory}",
            hint="keep the key out of the dataset (it must not travel with it): set JANGIN_HOME or "
            "JANGIN_SITE_KEY_FILE elsewhere",
        )
    ds = Dataset.create(directory)
    console().print(f"created dataset [bold]{ds.root}[/] with tables: {', '.join(ds.counts())}")
    written = ensure_site_key(settings)
    if written is not None:
        console().print(
            f"wrote a new site key to [bold]{written}[/] (mode 0600): back it up; pseudonyms depend on it"
        )
    elif settings.site_key.get_secret_value().strip():
        console().print("site key: from JANGIN_SITE_KEY")
    else:
        console().print(f"site key: {settings.site_key_path()} (kept)")


keys_app = typer.Typer(name="keys", help="API keys and the site key.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("hash")
def keys_hash(key: Annotated[str, typer.Argument(help="The API key to hash.")]) -> None:
    """Print the hashed form of an API key (``sha256:<hex>``) to put in JANGIN_API_KEYS instead of it."""
    from jangin.core.settings import hash_api_key

    if key.startswith("sha256:"):
        raise typer.BadParameter("this is already a hashed key", param_hint="KEY")
    typer.echo(hash_api_key(key))


@keys_app.command("rotate-site-key")
def keys_rotate_site_key() -> None:
    """Replace the site key file with a new random key; the old one is kept beside it as
    ``site.key.<UTC time>.old`` (mode 0600). Old sessions keep their pseudonyms; new sessions get new
    ones; keep the old key to link the two (see "The site key" in the README)."""
    from datetime import UTC, datetime

    from jangin.core._errors import ConfigError
    from jangin.core.settings import ensure_site_key, get_settings

    settings = get_settings()
    if settings.site_key.get_secret_value().strip():
        raise ConfigError(
            "the site key comes from JANGIN_SITE_KEY", hint="rotate it where that variable is set"
        )
    path = settings.site_key_path()
    if not path.exists():
        raise ConfigError(f"{path}: no site key to rotate", hint="run `jangin init` to write one")
    old = path.with_name(f"{path.name}.{datetime.now(UTC):%Y%m%dT%H%M%SZ}.old")
    path.rename(old)
    old.chmod(0o600)
    ensure_site_key(settings)
    console().print(f"new site key in [bold]{path}[/]; the old one is kept in [bold]{old}[/]")


app.add_typer(weights_app, name="weights")


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SQL statement (DuckDB dialect) over the dataset's tables.")],
    dataset: DatasetOption = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (required for parquet).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows shown in table format.")] = 50,
) -> None:
    """Run SQL over the dataset. Tables: sessions, sensor_samples, events, frames, media, labels,
    inspections, reviews; views current_sessions and current_labels."""
    from jangin.core._dataset import Dataset

    ds = Dataset.open(resolve_dataset(dataset))
    result = ds.query(sql)
    _write_result(result, fmt, output, limit)


@app.command()
def info(dataset: DatasetOption = None) -> None:
    """Show a dataset's tables, row counts and versions."""
    from rich.table import Table

    from jangin.core._dataset import Dataset

    ds = Dataset.open(resolve_dataset(dataset))
    t = Table(title=f"{ds.root} (schema version {ds.schema_version})")
    t.add_column("table")
    t.add_column("rows", justify="right")
    t.add_column("version", justify="right")
    snap = ds.snapshot()
    for name, n in ds.counts().items():
        t.add_row(name, str(n), str(snap[name]))
    console().print(t)


@app.command()
def migrate(dataset: DatasetOption = None) -> None:
    """Upgrade a dataset written by an older Jangin to the current schema (adds tables and columns;
    existing rows are untouched; running it twice changes nothing)."""
    from jangin.core._dataset import Dataset
    from jangin.core.schema import HISTORY, SCHEMA_VERSION

    ds = Dataset.open(resolve_dataset(dataset))
    before = ds.schema_version
    added = ds.migrate()
    for table, cols in added.items():
        console().print(f"{table}: added {', '.join(cols)}")
    if before < SCHEMA_VERSION:
        for v in range(before + 1, SCHEMA_VERSION + 1):
            console().print(f"schema {v}: {HISTORY[v]}")
    console().print(
        f"{ds.root}: schema version {before} -> {SCHEMA_VERSION}"
        if before < SCHEMA_VERSION
        else f"{ds.root}: already at schema version {SCHEMA_VERSION}"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    dataset: DatasetOption = None,
    router: Annotated[
        list[str] | None, typer.Option("--router", help="Mount only these routers (repeatable).")
    ] = None,
    camera: Annotated[
        list[str] | None,
        typer.Option(
            "--camera", help="NAME=SOURCE camera worker (rtsp://…, /dev/video0, file.mp4); repeatable."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (ingest, inspection, review, models, metrics) of the installed stages."""
    import uvicorn

    from jangin.core.server import create_app, json_logging
    from jangin.core.settings import get_settings

    cams = {}
    for spec in camera or []:
        name, sep, source = spec.partition("=")
        if not sep or not name or not source:
            raise typer.BadParameter(f"{spec!r}: expected NAME=SOURCE", param_hint="--camera")
        cams[name] = source
    overrides: dict[str, Any] = {"dataset": resolve_dataset(dataset)}
    if cams:
        overrides["cameras"] = cams
    settings = get_settings(**overrides)
    if not settings.api_keys:
        console().print(
            "[yellow]warning:[/] no API keys configured (JANGIN_API_KEYS): only /healthz will answer"
        )
    json_logging()
    uvicorn.run(create_app(settings, routers=router), host=host, port=port, log_config=None)


def _write_result(result: Any, fmt: OutputFormat, output: Path | None, limit: int) -> None:
    import pyarrow as pa

    if fmt is OutputFormat.parquet:
        import pyarrow.parquet as pq

        if output is None:
            raise typer.BadParameter("--format parquet needs --output FILE", param_hint="--output")
        pq.write_table(result, output)
        console().print(f"wrote {result.num_rows} rows to {output}")
        return
    # Inline images would flood a terminal: show their size instead; intervals read as durations.
    names = _dedupe(result.column_names)
    arrays = []
    for i, name in enumerate(names):
        col = result.column(i)
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            import pyarrow.compute as pc

            col = pc.binary_length(col)
            names[i] = f"{name}_bytes"
        elif pa.types.is_interval(col.type):
            col = pa.array([None if v is None else _interval(v) for v in col.to_pylist()], pa.string())
        arrays.append(col)
    shown = pa.Table.from_arrays(arrays, names=_dedupe(names)) if arrays else result
    if fmt is OutputFormat.csv:
        sink: Any = open(output, "w", newline="") if output else sys.stdout  # noqa: SIM115
        try:
            _write_csv(_flat(shown), sink)
        finally:
            if output:
                sink.close()
            else:
                sys.stdout.flush()
    elif fmt is OutputFormat.json:
        import json

        text = "\n".join(json.dumps(row, default=str) for row in shown.to_pylist())
        if output:
            output.write_text(text + "\n")
        else:
            sys.stdout.write(text + ("\n" if text else ""))
    else:
        from rich.table import Table

        t = Table(show_lines=False)
        for name in shown.column_names:
            t.add_column(name, overflow="fold")
        for row in shown.slice(0, limit).to_pylist():
            t.add_row(*(_cell(v) for v in row.values()))
        from rich.console import Console

        Console().print(t)
        if shown.num_rows > limit:
            console().print(f"… {shown.num_rows - limit} more rows (use --limit, or --format csv)")
        else:
            console().print(f"{shown.num_rows} row(s)")


def _dedupe(names: list[str]) -> list[str]:
    """Column names made unique: a repeated ``a`` becomes ``a_1``, ``a_2`` (SQL allows repeats)."""
    seen: set[str] = set()
    out = []
    for name in names:
        new, k = name, 0
        while new in seen:
            k += 1
            new = f"{name}_{k}"
        seen.add(new)
        out.append(new)
    return out


def _interval(v: Any) -> str:
    """A DuckDB interval as ``[N mon ][N d ]HH:MM:SS[.fff]`` (e.g. ``00:01:02.5``)."""
    months, days, ns = v.months, v.days, v.nanoseconds
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    sec, frac = divmod(rem, 1_000_000_000)
    text = f"{sign}{h:02d}:{m:02d}:{sec:02d}" + (f".{frac:09d}".rstrip("0") if frac else "")
    prefix = (f"{months} mon " if months else "") + (f"{days} d " if days else "")
    return prefix + text


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _write_csv(table: Any, sink: Any) -> None:
    """CSV with minimal quoting (only values holding a comma, quote or newline), so that the output
    pipes into cut / awk / sort; nulls are empty fields."""
    import csv

    writer = csv.writer(sink, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(table.column_names)
    for batch in table.to_batches(max_chunksize=65536):
        cols = [[_csv_value(v) for v in c.to_pylist()] for c in batch.columns]
        writer.writerows(zip(*cols, strict=True))


def _flat(table: Any) -> Any:
    """CSV cannot hold nested values: render lists and structs as JSON text."""
    import json

    import pyarrow as pa

    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_map(col.type):
            col = pa.array(
                [None if v is None else json.dumps(dict(v), default=str) for v in col.to_pylist()],
                pa.string(),
            )
        elif pa.types.is_nested(col.type):
            col = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in col.to_pylist()], pa.string()
            )
        cols[name] = col
    return pa.table(cols) if cols else table


def _cell(v: Any) -> str:
    if v is None:
        return "∅"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _load_plugins() -> None:
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as exc:
            log.warning("cannot load command group %r (%s): %s", ep.name, ep.value, exc)
            continue
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=ep.name)
        elif callable(obj):
            obj(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``jangin`` command."""
    import click

    try:  # Typer >= 0.17 vendors its own click: its exceptions are not click's
        from typer._click import exceptions as _tclick

        click_errors: tuple[type[Exception], ...] = (click.ClickException, _tclick.ClickException)
    except ImportError:
        click_errors = (click.ClickException,)
    exits: tuple[type[BaseException], ...] = (click.exceptions.Exit, typer.Exit)
    aborts: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort)

    _load_plugins()
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="jangin", standalone_mode=False)
    except JanginError as exc:
        if _state["debug"] or "--debug" in args:
            traceback.print_exc()
        console().print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            console().print(f"[dim]hint:[/] {exc.hint}")
        raise SystemExit(1) from None
    except exits as exc:
        raise SystemExit(getattr(exc, "exit_code", 0)) from None
    except aborts:
        console().print("aborted")
        raise SystemExit(130) from None
    except click_errors as exc:
        exc.show()  # type: ignore[attr-defined]
        raise SystemExit(exc.exit_code) from None  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
