"""``jangin capture`` commands: import, sessions ls|show|finish|retry, align, record (a station's live sources)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jangin.core import ConfigError
from jangin.core.cli import DatasetOption, console, progress_bar, resolve_dataset

app = typer.Typer(
    name="capture", help="Record and import expert sessions (video, sensors, events).", no_args_is_help=True
)
sessions_app = typer.Typer(
    name="sessions", help="List, show, finish and retry recording sessions.", no_args_is_help=True
)
app.add_typer(sessions_app)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov")


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ConfigError(f"{what} {item!r}: expected NAME=VALUE")
        out[k] = v
    return out


def _manifest_from_flags(
    video: Path | None,
    sensors: list[str],
    long_files: list[str],
    events: Path | None,
    meta: dict[str, Any],
    column_map: dict[str, str],
    units: dict[str, str],
    columns: dict[str, Any],
) -> Any:
    """Build a session manifest from command-line flags (no session.yaml).

    ``columns`` holds the device settings shared by every ``--sensor`` file: time column / unit /
    rate, channel and drop globs, phase and label columns.
    """
    from jangin.capture._import import read_events
    from jangin.capture._manifest import SessionManifest

    devices = []
    for spec in sensors:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"--sensor {spec!r}: expected FILE:DEVICE or FILE:DEVICE:OFFSET_S (or :auto)")
        file, device = parts[0], parts[1]
        offset = None if len(parts) == 2 or parts[2] in ("", "auto") else float(parts[2])
        devices.append(
            {
                "name": device,
                "file": str(Path(file).resolve()),
                "clock_offset_s": offset,
                "rename": column_map,
                "units": units,
                **{k: v for k, v in columns.items() if v not in (None, [], ())},
            }
        )
    started = meta.pop("started_at", None)
    if started is None and events is not None:
        first = min((e["ts"] for e in read_events(events, "probe")), default=None)
        started = first.isoformat() if first else None
    if started is None:
        raise ConfigError("give --started-at (ISO 8601 with a timezone) when there is no events file")
    cameras = (
        [
            {
                "name": meta.pop("camera", "camera"),
                "file": str(video.resolve()),
                "clock_offset_s": meta.pop("camera_offset", None),
            }
        ]
        if video
        else []
    )
    key = meta.pop("session_key", None) or (video.stem if video else Path(sensors[0].split(":")[0]).stem)
    return SessionManifest.model_validate(
        {
            **{k: v for k, v in meta.items() if v is not None},
            "session_key": key,
            "started_at": started,
            "devices": devices,
            "cameras": cameras,
            "events": str(events.resolve()) if events else None,
            "long_files": [{"file": str(Path(f).resolve()), "column_map": column_map} for f in long_files],
        }
    )


ChannelsOpt = Annotated[
    list[str],
    typer.Option("--channels", help="Columns to take as channels: names or globs like 'X1_*' (repeatable)."),
]
DropOpt = Annotated[
    list[str], typer.Option("--drop", help="Columns to leave out: names or globs (repeatable).")
]
PhaseOpt = Annotated[
    str | None,
    typer.Option("--phase-column", help="Text / integer column whose values are steps (phase, recipe step)."),
]
LabelColOpt = Annotated[
    list[str],
    typer.Option("--label-column", help="Per-sample label column → span labels (question = column name)."),
]
RateOpt = Annotated[
    float | None, typer.Option("--rate-hz", help="Sample rate, when the files have no time column.")
]
TimeColOpt = Annotated[
    str | None, typer.Option("--time-column", help="Time column (default: 'timestamp' if present).")
]
TimeUnitOpt = Annotated[
    str, typer.Option("--time-unit", help="Unit of a numeric time column: s | ms | us | ns.")
]
PolicyOpt = Annotated[
    list[str],
    typer.Option("--on", help="Policy per problem, e.g. duplicate=drop, gap=reject (repeatable)."),
]


def _policy(on: list[str]) -> Any:
    from jangin.capture._sensors import Policy

    try:
        return Policy.parse(on)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _print_results(results: list[Any]) -> int:
    """One line per run (and its problems); returns the number of failures."""
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            console().print(f"[red]failed[/] {r.session_key}: {r.error}", soft_wrap=True)
        elif r.skipped:
            console().print(f"skipped {r.session_key} ({r.session_id}): already imported")
        else:
            console().print(
                f"imported {r.session_key} → {r.session_id}: {r.samples:,} samples, {r.events} events, "
                f"{r.labels} labels, {r.frames} frames, {r.faces_blurred} face(s) blurred"
            )
            for name, (off, method) in r.offsets.items():
                if method != "given":
                    console().print(f"  clock offset {name}: {off:+.4f} s ({method})")
            for rep in r.sensors:
                for p in rep.problems:
                    console().print(f"  [yellow]{p}[/]", soft_wrap=True)
    if len(results) > 1:
        ok = len(results) - failed
        console().print(f"{ok} imported or skipped, {failed} failed")
    return failed


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="A session folder (with session.yaml), a folder of them, or a video file (metadata from flags)."
        ),
    ],
    dataset: DatasetOption = None,
    stills: Annotated[
        bool, typer.Option("--stills", help="PATH is a folder of still inspection images.")
    ] = False,
    frame_interval: Annotated[float, typer.Option(help="Seconds between sampled video frames.")] = 1.0,
    no_deidentify: Annotated[
        bool, typer.Option("--no-deidentify", help="Do NOT blur faces (logged).")
    ] = False,
    sensor: Annotated[
        list[str], typer.Option("--sensor", help="FILE:DEVICE[:OFFSET_S|auto] wide sensor file (repeatable).")
    ] = [],  # noqa: B006
    long: Annotated[
        list[str],
        typer.Option("--long", help="Long-format sensor file: device,channel,ts,value,unit (repeatable)."),
    ] = [],  # noqa: B006
    events: Annotated[Path | None, typer.Option(help="Events CSV (reference clock).")] = None,
    technician: Annotated[
        str | None, typer.Option(help="Technician's name (stored only as a keyed pseudonym).")
    ] = None,
    skill: Annotated[str, typer.Option(help="expert | intermediate | novice | unknown")] = "unknown",
    site: Annotated[str, typer.Option()] = "site",
    line: Annotated[str | None, typer.Option()] = None,
    station: Annotated[str | None, typer.Option()] = None,
    process: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    session_key: Annotated[str | None, typer.Option(help="Session key (default: the video's name).")] = None,
    started_at: Annotated[
        str | None, typer.Option(help="Session start, ISO 8601 (default: the first event).")
    ] = None,
    camera: Annotated[str, typer.Option(help="Camera name of the video.")] = "camera",
    camera_offset: Annotated[
        float | None, typer.Option(help="Camera clock offset in s (default: from the sync event).")
    ] = None,
    map_: Annotated[
        list[str], typer.Option("--map", help="Rename a column: FILE_COLUMN=NAME (repeatable).")
    ] = [],  # noqa: B006
    unit: Annotated[
        list[str], typer.Option("--unit", help="Unit of a channel: CHANNEL=UNIT (repeatable).")
    ] = [],  # noqa: B006
    on: PolicyOpt = [],  # noqa: B006
    channels: ChannelsOpt = [],  # noqa: B006
    drop: DropOpt = [],  # noqa: B006
    phase_column: PhaseOpt = None,
    label_column: LabelColOpt = [],  # noqa: B006
    rate_hz: RateOpt = None,
    time_column: TimeColOpt = None,
    time_unit: TimeUnitOpt = "s",
    param: Annotated[
        list[str], typer.Option("--param", help="Session parameter NAME=VALUE (repeatable).")
    ] = [],  # noqa: B006
    label: Annotated[
        list[str], typer.Option("--label", help="Session label QUESTION=ANSWER (repeatable).")
    ] = [],  # noqa: B006
) -> None:
    """Import recorded sessions (or still images, or one video with sensor files given as flags)."""
    from jangin.capture import import_session, import_sessions, import_stills
    from jangin.core import Dataset

    policy = _policy(on)
    kw = {"frame_interval_s": frame_interval, "deidentify": not no_deidentify, "policy": policy}
    ds = Dataset.open_or_create(resolve_dataset(dataset))
    with progress_bar() as progress:
        if stills:
            results = [
                import_stills(
                    ds,
                    path,
                    session_key=session_key,
                    site=site,
                    station=station,
                    deidentify=not no_deidentify,
                    progress=progress,
                )
            ]
        elif path.is_file() or sensor or long:
            video = path if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES else None
            meta = {
                "technician": technician,
                "skill_level": skill,
                "site": site,
                "line": line,
                "station": station,
                "process": process,
                "task": task,
                "session_key": session_key,
                "started_at": started_at,
                "camera": camera,
                "camera_offset": camera_offset,
                "parameters": _kv(param, "--param"),
                "labels": _kv(label, "--label"),
            }
            columns = {
                "include": channels,
                "drop": drop,
                "phase_column": phase_column,
                "label_columns": label_column,
                "rate_hz": rate_hz,
                "time_column": time_column,
                "time_unit": time_unit if time_unit != "s" else None,
            }
            m = _manifest_from_flags(
                video, sensor, long, events, meta, _kv(map_, "--map"), _kv(unit, "--unit"), columns
            )
            results = [
                import_session(
                    ds, path.parent if path.is_file() else path, manifest=m, progress=progress, **kw
                )
            ]
        elif (path / "session.yaml").is_file():
            results = [import_session(ds, path, progress=progress, **kw)]
        else:
            results = import_sessions(ds, path, progress=progress, **kw)
    if _print_results(results):
        raise typer.Exit(1)


@app.command("import-images")
def import_images_(
    directory: Annotated[Path, typer.Argument(help="The image set's folder.")],
    dataset: DatasetOption = None,
    layout: Annotated[
        str, typer.Option(help="auto, folders (class sub-folders), index (--index file) or masks.")
    ] = "auto",
    index: Annotated[
        Path | None, typer.Option(help="CSV or Parquet index: path, label[, split] (paths relative to DIR).")
    ] = None,
    good_label: Annotated[
        str | None,
        typer.Option(help="The class that means a good part (recorded in the process definition)."),
    ] = None,
    no_deidentify: Annotated[
        bool, typer.Option("--no-deidentify", help="Do NOT blur faces: for parts without people (logged).")
    ] = False,
    session_key: Annotated[str | None, typer.Option(help="Session key [default: the folder's name].")] = None,
    station: Annotated[str | None, typer.Option(help="Station of every image.")] = None,
    site: Annotated[str, typer.Option()] = "site",
    process: Annotated[
        str, typer.Option(help="Process name (its definition gets --good-label).")
    ] = "inspection",
) -> None:
    """Import an image set in one command: class sub-folders, an index file, or images with masks."""
    from jangin.capture import import_images
    from jangin.core import Dataset

    if layout not in ("auto", "folders", "index", "masks"):
        raise typer.BadParameter("--layout must be auto, folders, index or masks")
    ds = Dataset.open_or_create(resolve_dataset(dataset))
    with progress_bar() as progress:
        r = import_images(
            ds,
            directory,
            layout=layout,  # type: ignore[arg-type]
            index=index,
            good_label=good_label,
            session_key=session_key,
            station=station,
            site=site,
            process=process,
            deidentify=not no_deidentify,
            progress=progress,
        )
    classes = ", ".join(f"{c} {n}" for c, n in sorted(r.per_class.items())) or "none"
    console().print(
        f"session [bold]{r.session_key}[/] ({r.session_id}), layout {r.layout}: {r.images_seen} images → "
        f"{r.frames} new frames, {r.already_in_dataset} already in the dataset, "
        f"{r.duplicates_in_import} duplicate(s) by content\n"
        f"classes: {classes}\nlabels: {r.class_labels} class, {r.mask_labels} mask "
        f"({r.masks_empty} empty mask(s) skipped)"
        + (
            f"\n[yellow]masks matching no image:[/] {', '.join(r.masks_unmatched[:5])}"
            if r.masks_unmatched
            else ""
        )
        + ("\n[yellow]faces NOT blurred (--no-deidentify)[/]" if not r.deidentified else "")
    )


@app.command("import-runs")
def import_runs_(
    run_table: Annotated[
        Path, typer.Argument(help="Run table CSV: one row per run (file, technician, started_at, …).")
    ],
    dataset: DatasetOption = None,
    process: Annotated[
        str | None,
        typer.Option(help="Process name; a registered definition supplies the phase column and units."),
    ] = None,
    phase_column: PhaseOpt = None,
    label_column: LabelColOpt = [],  # noqa: B006
    rate_hz: RateOpt = None,
    time_column: TimeColOpt = None,
    time_unit: TimeUnitOpt = "s",
    channels: ChannelsOpt = [],  # noqa: B006
    drop: DropOpt = [],  # noqa: B006
    unit: Annotated[
        list[str], typer.Option("--unit", help="Unit of a channel: CHANNEL=UNIT (repeatable).")
    ] = [],  # noqa: B006
    labels: Annotated[
        Path | None, typer.Option(help="Labels table: session_key, question, value (more session labels).")
    ] = None,
    site: Annotated[str, typer.Option()] = "site",
    device: Annotated[str, typer.Option(help="Device name of the sensor files.")] = "sensors",
    on: PolicyOpt = [],  # noqa: B006
) -> None:
    """Import a whole folder of runs described by one run table, in one command.

    Columns of the run table: file, session_key, technician, skill_level, site, line, station,
    process, task, started_at, rate_hz / period_s, time_column, time_unit, device; label.<question>
    columns become session labels; param.<name> and any other column become session parameters.
    A bad run is reported and the others are still imported.
    """
    from jangin.capture import RunOptions, import_runs
    from jangin.core import Dataset

    opts = RunOptions(
        process=process,
        phase_column=phase_column,
        label_columns=tuple(label_column),
        rate_hz=rate_hz,
        time_column=time_column,
        time_unit=time_unit,
        channels=tuple(channels),
        drop=tuple(drop),
        units=_kv(unit, "--unit"),
        site=site,
        device=device,
    )
    policy = _policy(on)
    ds = Dataset.open_or_create(resolve_dataset(dataset))
    with progress_bar() as progress:
        results = import_runs(ds, run_table, options=opts, labels=labels, policy=policy, progress=progress)
    if _print_results(results):
        raise typer.Exit(1)


@sessions_app.command("ls")
def sessions_ls(
    dataset: DatasetOption = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List sessions (latest state of each)."""
    from jangin.core import Dataset

    ds = Dataset.open(resolve_dataset(dataset))
    rows = ds.query("""SELECT session_id, json_extract_string(meta_json, '$.session_key') AS session_key, technician,
                       skill_level, station, status, source, started_at FROM current_sessions ORDER BY started_at""").to_pylist()
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=1))
        return
    from rich.table import Table

    t = Table("session_id", "key", "technician", "skill", "station", "status", "source", "started_at")
    for r in rows:
        t.add_row(
            *(
                str(r[k]) if r[k] is not None else ""
                for k in (
                    "session_id",
                    "session_key",
                    "technician",
                    "skill_level",
                    "station",
                    "status",
                    "source",
                    "started_at",
                )
            )
        )
    console().print(t)


@sessions_app.command("show")
def sessions_show(session_id: str, dataset: DatasetOption = None) -> None:
    """Show one session: metadata, device clock offsets and row counts (JSON on stdout)."""
    from jangin.capture._staging import check_name
    from jangin.core import Dataset, NotFoundError

    check_name("session id", session_id)
    ds = Dataset.open(resolve_dataset(dataset))
    rows = ds.query(f"SELECT * FROM current_sessions WHERE session_id = '{session_id}'").to_pylist()
    if not rows:
        raise NotFoundError(f"no session {session_id!r}", hint="`jangin capture sessions ls` lists them")
    out = rows[0]
    out["parameters"] = dict(out.get("parameters") or [])
    for table in ("sensor_samples", "events", "frames", "media", "labels"):
        out[f"n_{table}"] = (
            ds.query(f"SELECT count(*) n FROM {table} WHERE session_id = '{session_id}'")
            .column("n")[0]
            .as_py()
        )
    out["channels"] = (
        ds.query(f"""SELECT device, channel, any_value(unit) unit, count(*) n FROM sensor_samples
                                   WHERE session_id = '{session_id}' GROUP BY 1, 2 ORDER BY 1, 2""").to_pylist()
    )
    out["steps"] = ds.query(f"""SELECT name, occurrence, min(ts) FILTER (kind = 'step_start') AS start,
                                max(ts) FILTER (kind = 'step_end') AS "end" FROM events
                                WHERE session_id = '{session_id}' AND kind IN ('step_start', 'step_end')
                                GROUP BY 1, 2 ORDER BY 3""").to_pylist()
    out["labels"] = ds.query(f"""SELECT question, target, name, ts_start, ts_end FROM current_labels
                                 WHERE session_id = '{session_id}' ORDER BY question, ts_start""").to_pylist()
    typer.echo(json.dumps(out, default=str, indent=1))


@sessions_app.command("finish")
def sessions_finish(
    session_id: str,
    dataset: DatasetOption = None,
    no_deidentify: Annotated[bool, typer.Option("--no-deidentify")] = False,
) -> None:
    """Finish a session recorded through the API and process it now (when no server runs)."""
    from jangin.capture._process import process_staged
    from jangin.capture._staging import Staging
    from jangin.core import Dataset
    from jangin.core.settings import get_settings

    ds = Dataset.open(resolve_dataset(dataset))
    staging = Staging(ds.root / "staging")
    st = staging.status(session_id)
    if st["state"] == "processed":
        console().print(f"{session_id} is already processed")
        return
    staging.finish(session_id, {"deidentify": not no_deidentify, "frame_interval_s": 1.0})
    out = process_staged(ds, staging, session_id, get_settings())
    out["offsets"] = {k: {"offset_s": v[0], "method": v[1]} for k, v in out["offsets"].items()}
    staging.set_status(session_id, {"state": "processed", **out})
    staging.release(session_id)
    console().print(
        f"processed {session_id}: {out['samples']:,} samples, {out['events']} events, {out['frames']} frames"
    )


@sessions_app.command("retry")
def sessions_retry(session_id: str, dataset: DatasetOption = None) -> None:
    """Process a session whose processing failed again, from its staged data (fix the cause first)."""
    from jangin.capture.server import IngestService
    from jangin.core import CaptureError, Dataset
    from jangin.core.settings import get_settings

    ds = Dataset.open(resolve_dataset(dataset))
    st = IngestService(ds, get_settings()).retry(session_id, wait=True)
    if st["state"] != "processed":
        raise CaptureError(f"session {session_id}: processing failed again: {st.get('error')}")
    console().print(
        f"processed {session_id}: {st['samples']:,} samples, {st['events']} events, {st['frames']} frames"
    )


@app.command("align")
def align(
    session_id: str,
    dataset: DatasetOption = None,
    channels: Annotated[str | None, typer.Option(help="Comma-separated channels (default all).")] = None,
    rate: Annotated[float | None, typer.Option(help="Regular grid in Hz.")] = None,
    at_frames: Annotated[bool, typer.Option("--at-frames", help="At the stored frames' times.")] = False,
    camera: Annotated[str | None, typer.Option(help="With --at-frames: one camera only.")] = None,
    method: Annotated[str, typer.Option(help="asof | linear")] = "asof",
    fmt: Annotated[str, typer.Option("--format", help="csv | parquet")] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (csv: default stdout).")
    ] = None,
) -> None:
    """Write a session's channels aligned on a grid (--rate) or at frame times (--at-frames)."""
    from jangin.capture._align import align_session
    from jangin.core import Dataset

    if (rate is None) == (not at_frames):
        raise ConfigError("give exactly one of --rate or --at-frames")
    if fmt not in ("csv", "parquet") or (fmt == "parquet" and out is None):
        raise ConfigError("--format is csv or parquet (parquet needs --out)")
    ds = Dataset.open(resolve_dataset(dataset))
    table = align_session(
        ds,
        session_id,
        channels=channels.split(",") if channels else None,
        rate_hz=rate,
        at_frames=at_frames,
        camera=camera,
        method=method,
    )  # type: ignore[arg-type]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out)  # type: ignore[arg-type]
    else:
        import sys

        import pyarrow.csv as pcsv

        if out is None:
            sink = sys.stdout.buffer
            pcsv.write_csv(table, sink)
            sink.flush()
        else:
            pcsv.write_csv(table, out)
    if out is not None:
        console().print(f"wrote {table.num_rows:,} rows x {table.num_columns} columns to {out}")


@app.command("record")
def record(
    station_yaml: Annotated[
        Path, typer.Argument(help="Station YAML: sources, channels, session control, target.")
    ],
    session_key: Annotated[
        str | None,
        typer.Option("--session-key", help="Key of the session (no trigger): default station + time."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics.")
    ] = None,
    control_port: Annotated[
        int | None,
        typer.Option(
            "--control-port",
            help="With session.control: http, the start/stop endpoint's port on 127.0.0.1 (default: any free one).",
        ),
    ] = None,
) -> None:
    """Record a station's live sources (OPC UA, Modbus, MQTT, cameras, replay) as sessions.

    Every batch is staged on disk before the source is acknowledged; a stopped session is processed
    exactly as an uploaded one (dataset mode) or sent to a running `jangin serve` (server mode, spooled
    while the server is away). Ctrl-C finishes the session cleanly.
    """
    import os
    import signal

    from jangin.capture._recorder import Recorder
    from jangin.capture._recorder_sink import DatasetSink, ServerSink
    from jangin.capture._station import load_station
    from jangin.core.settings import get_settings

    st = load_station(station_yaml)
    if st.dataset is not None:
        sink: Any = DatasetSink(st.dataset, get_settings(dataset=st.dataset), st.station, st.buffer.retry_s)
    else:
        key = os.environ.get(st.api_key_env)
        if not key:
            raise ConfigError(
                f"{station_yaml}: server mode needs an API key in ${st.api_key_env}",
                hint="export it (a key with the recorder role), or set api_key_env in the station YAML",
            )
        spool = st.spool or Path.home() / ".cache" / "jangin" / "spool" / st.station
        sink = ServerSink(str(st.server), key, spool, st.station, min(st.buffer.retry_s, 2.0))
    rec = Recorder(
        st,
        sink,
        session_key=session_key,
        say=lambda m: console().print(m, soft_wrap=True, markup=False),
        metrics_port=metrics_port,
        control_port=control_port,
    )
    if rec.control_port is not None:
        console().print(
            f"control: POST http://127.0.0.1:{rec.control_port}/session/start?key=K and /session/stop"
        )
    if rec.health.metrics_port is not None:
        console().print(f"metrics on http://127.0.0.1:{rec.health.metrics_port}/metrics")
    previous = signal.signal(signal.SIGINT, lambda *_: rec.stop_event.set())
    signal.signal(signal.SIGTERM, lambda *_: rec.stop_event.set())
    try:
        res = rec.run(duration)
    finally:
        signal.signal(signal.SIGINT, previous)
        sink.close()
    for sid in res.sessions:
        state = sink.status(sid).get("state")
        console().print(f"{sid}: {state}")
    console().print(
        f"recorded {len(res.sessions)} session(s): {res.samples:,} samples, {res.events} events, "
        f"{res.gaps} gap(s), {res.dropped} dropped, in {res.seconds:.1f} s"
    )
