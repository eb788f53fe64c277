"""``jangin inspect`` (and, later, ``jangin serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from jangin.core.cli import DatasetOption, console, resolve_dataset

__all__ = ["register", "register_skill"]


def inspect(
    images: Annotated[
        list[Path] | None,
        typer.Argument(help="Image files or folders (JPEG, PNG, …) for an image model.", exists=True),
    ] = None,
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="NAME[:VERSION]; no version: the active one, else the latest."),
    ] = ...,  # type: ignore[assignment]
    dataset: DatasetOption = None,
    registry: Annotated[
        Path | None, typer.Option(help="Model registry [default: the dataset's models/].")
    ] = None,
    session: Annotated[
        list[str] | None,
        typer.Option("--session", help="Process model: score this session's samples (repeat)."),
    ] = None,
    csv: Annotated[
        list[Path] | None,
        typer.Option(
            "--csv",
            help="Process model: score a CSV window (t_us or t_s, then one column per channel).",
            exists=True,
        ),
    ] = None,
    station: Annotated[str | None, typer.Option(help="Station id recorded with each inspection.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera name recorded with each inspection.")] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Verdict rules file (YAML/JSON) [default: built-in rules].", exists=True),
    ] = None,
    ng: Annotated[
        list[str] | None, typer.Option("--ng", help="An NG class (repeat); default the rules' / model's.")
    ] = None,
    conf: Annotated[float | None, typer.Option(help="Confidence threshold [default: the model's].")] = None,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Append the inspections to the dataset.")
    ] = True,
) -> None:
    """Inspect with any served model through the same Inspector as the server: images (detector,
    classifier, anomaly model) or sensor windows (process model: --session / --csv). One line each:
    source, verdict, what decided it, latency."""
    from jangin.core import ConfigError, Dataset, ModelRegistry
    from jangin.inference._inspect import expand_images, run_images
    from jangin.inference._rules import load_rules
    from jangin.inference.inspection import Inspector, ModelSlots, ServedModel

    ds_path = (
        resolve_dataset(dataset) if (dataset is not None or log or registry is None or session) else None
    )
    ds = Dataset.open(ds_path) if ds_path is not None else None
    root = registry if registry is not None else ds.models_dir  # type: ignore[union-attr]
    cfg = load_rules(rules)
    if ng is not None or conf is not None:
        over: dict[str, Any] = {}
        if ng is not None:
            over["ng_classes"] = list(ng)
        if conf is not None:
            over["min_conf"] = conf
        cfg = cfg.model_copy(update={"default": cfg.default.model_copy(update=over)})
    mv = ModelRegistry(root).get(model, verify=False)
    task = mv.manifest.task
    served = ServedModel.load(mv, providers=None, min_conf=conf if conf is not None else cfg.lowest_score)
    inspector = Inspector(ModelSlots.of(served), cfg)
    if task == "process":
        if images or not (session or csv):
            raise ConfigError(
                f"{mv.name}:{mv.version} is a process model: give --session ID or --csv FILE, not images"
            )
        rows = _process_rows(inspector, ds, session or [], csv or [], station=station, camera=camera)
    else:
        if not images or session or csv:
            raise ConfigError(f"{mv.name}:{mv.version} is a {task} model: give image files or folders")
        files = list(expand_images(images))
        rows = run_images(
            inspector, ((str(p), p.read_bytes()) for p in files), station=station, camera=camera
        )
    for row in rows:
        typer.echo(f"{row['source_uri']}\t{row['verdict']}\t{_detail(row)}\t{row['latency_ms']:.1f} ms")
    for r in rows:
        r.pop("_response")
    if log and ds is not None and rows:
        ds.append("inspections", rows, source="inspect")
        console().print(f"logged {len(rows)} inspection(s) to {ds.root} ({served.name}:{served.version})")


def _process_rows(
    inspector: Any, ds: Any, sessions: list[str], csvs: list[Path], *, station: str | None, camera: str | None
) -> list[dict[str, Any]]:
    from jangin.core import JanginError
    from jangin.core.timeseries import read_channels
    from jangin.inference._process import window_from_csv

    model = inspector.slots.process
    windows = [
        (f"session:{s}", lambda s=s: read_channels(ds, s, channels=model.impl.channels)) for s in sessions
    ]
    windows += [(str(p), lambda p=p: window_from_csv(p)) for p in csvs]
    rows = []
    for source, read in windows:
        try:
            insp = inspector.score_process(read(), station=station, camera=camera, source=source)
        except JanginError as exc:
            raise type(exc)(f"{source}: {exc.message}", hint=exc.hint) from exc
        rows.append({**insp.row, "_response": insp.response})
    return rows


def _detail(row: dict[str, Any]) -> str:
    res = row["_response"]
    if res["task"] == "detect":
        dets = row["detections"]
        boxes = ", ".join(f"{d['name']} {d['score']:.2f}" for d in dets[:5])
        more = f" +{len(dets) - 5}" if len(dets) > 5 else ""
        return f"{len(dets)} box(es){': ' + boxes + more if boxes else ''}"
    if res["task"] == "classify":
        return ", ".join(f"{c['name']} {c['score']:.2f}" for c in res["classes"])
    if res["task"] == "anomaly":
        return f"anomaly {res['score']:.3f}"
    return f"P(NG) {res['score']:.3f}"


def register(app: typer.Typer) -> None:
    """Add the inference commands to the ``jangin`` command."""
    app.command("inspect")(inspect)


# -- jangin skill score / report / steps -----------------------------------------------------------------

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", "-p", help="NAME[:VERSION]; default the active profile of the session's process."
    ),
]


def _skill_context(session: str, dataset: Path | None, profile: str | None):  # type: ignore[no-untyped-def]
    from jangin.core import Dataset, ModelRegistry
    from jangin.core.skill import read_session
    from jangin.inference._skill import find_profile

    ds = Dataset.open(resolve_dataset(dataset))
    sig = read_session(ds, session)
    name, prof = find_profile(ModelRegistry(ds.models_dir), sig.process, profile, sig.parameters)
    return ds, sig, name, prof


def skill_score(
    session: Annotated[str, typer.Argument(help="Session id.")],
    profile: ProfileOption = None,
    dataset: DatasetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="List minor deviations too.")] = False,
) -> None:
    """Score a session against a skill profile: score, deviations, missed adjustments."""
    import json

    from jangin.inference._skill import score_session

    _, sig, name, prof = _skill_context(session, dataset, profile)
    sc = score_session(prof, sig, profile_name=name)
    if as_json:
        typer.echo(json.dumps(sc.to_dict(), default=str))
        return
    major = [d for d in sc.deviations if all_ or d.severity != "minor"]
    console().print(
        f"[bold]{session}[/] against {name}: score [bold]{sc.score:.0f}[/]/100, "
        f"{len(sc.deviations)} deviation(s) ({len(sc.deviations) - sum(d.severity == 'minor' for d in sc.deviations)} major+), "
        f"{len(sc.missed)} missed adjustment(s)"
    )
    for d in major:
        typer.echo(f"{d.severity}\t{d.step}\t{d.channel or d.kind}\t{d.duration_s:.1f} s\t{d.message}")
    for x in sc.step_timing:
        if not x["ok"]:
            typer.echo(
                f"timing\t{x['step']}\t{x['duration_s']:.1f} s (experts {x['expert_min_s']:.1f}-{x['expert_max_s']:.1f} s)"
            )


def skill_report(
    session: Annotated[str, typer.Argument(help="Session id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")],
    profile: ProfileOption = None,
    dataset: DatasetOption = None,
) -> None:
    """Write the coaching report of a session (one self-contained HTML page)."""
    from jangin.inference._skill_report import write_report

    ds, sig, name, prof = _skill_context(session, dataset, profile)
    path, sc = write_report(ds, session, output, profile=(name, prof), sig=sig)
    score = f"score {sc.score:.0f}/100" if sc is not None else "not scored"
    console().print(f"wrote {path} ({score} against {name})")


def skill_steps(
    session: Annotated[str, typer.Argument(help="Session id.")],
    profile: ProfileOption = None,
    dataset: DatasetOption = None,
) -> None:
    """The session's steps: how each was found (markers, the definition's signal template, or none:
    the whole session), with what confidence (low when the template does not fit)."""
    from jangin.inference._skill import session_steps

    _, sig, _, prof = _skill_context(session, dataset, profile)
    steps = session_steps(prof, sig)
    t0 = sig.span_us[0]
    typer.echo("step\tstart_s\tend_s\tduration_s\tmethod\tconfidence")
    for st in steps:
        typer.echo(
            f"{st.name}\t{(st.start_us - t0) / 1e6:.2f}\t{(st.end_us - t0) / 1e6:.2f}\t{st.duration_s:.2f}"
            f"\t{st.method}\t{st.confidence:.2f}"
        )


def register_skill(app: typer.Typer) -> None:
    """``jangin skill score|report|steps`` (entry point ``skill`` of group ``jangin.cli``)."""
    from jangin.core.cli import command_group

    group = command_group(
        app, "skill", help="Skill profiles: build them from expert sessions, score and coach other sessions."
    )
    group.command("score")(skill_score)
    group.command("report")(skill_report)
    group.command("steps")(skill_steps)
