"""``jangin inspect`` (and, later, ``jangin serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jangin.core.cli import DatasetOption, console, resolve_dataset

__all__ = ["register", "register_skill"]


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
