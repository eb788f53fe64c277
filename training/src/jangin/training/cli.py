"""``jangin train`` and ``jangin models`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jangin.core.cli import DatasetOption, console, progress_bar, resolve_dataset

__all__ = ["models_app", "register_skill", "train_app"]

train_app = typer.Typer(name="train", help="Train and evaluate models.", no_args_is_help=True)
models_app = typer.Typer(
    name="models", help="The model registry: list, show, promote, export.", no_args_is_help=True
)

RegistryOption = Annotated[
    Path | None, typer.Option("--registry", help="Model registry directory [default: the dataset's models/].")
]


@train_app.command("detect")
def detect(
    name: Annotated[str, typer.Option("--name", "-n", help="Model name in the registry.")],
    dataset: DatasetOption = None,
    where: Annotated[
        str | None,
        typer.Option(help="Extra SQL predicate on frames (alias f), e.g. \"f.station = 'st-01'\"."),
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated classes in id order [default: all, sorted].")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    imgsz: Annotated[int, typer.Option(help="Square input size (multiple of 32).")] = 256,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, 0, cuda:1 …")] = "auto",
    model: Annotated[
        str, typer.Option(help="Model YAML (random init), e.g. yolo11n.yaml, or a local .pt file.")
    ] = "yolo11n.yaml",
    weights: Annotated[
        str | None,
        typer.Option(
            help="Registered weights name (`jangin weights ls`) or a local .pt to load into the YAML model."
        ),
    ] = None,
    allow_random_init: Annotated[
        bool, typer.Option("--allow-random-init", help="Publish even when training starts from random init.")
    ] = False,
    group_by: Annotated[
        str, typer.Option(help="frames column kept on one side of the split (frame_id for stills).")
    ] = "session_id",
    seed: Annotated[int, typer.Option(help="Seed of the split and the training.")] = 0,
    patience: Annotated[int, typer.Option(help="Epochs without improvement before stopping.")] = 50,
    registry: RegistryOption = None,
    work_dir: Annotated[Path | None, typer.Option(help="Run directory [default: $JANGIN_HOME/runs].")] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the newest interrupted run of --name (its own settings)."),
    ] = False,
) -> None:
    """Train a detector on the dataset's box labels, check its ONNX export and publish it."""
    from jangin.core import Dataset, ModelRegistry
    from jangin.core.settings import get_settings
    from jangin.training._detect import train_detector
    from jangin.training._detection_set import build_detection_set
    from jangin.training._guard import guard_summary

    ds = Dataset.open(resolve_dataset(dataset))
    home = get_settings().home
    data = build_detection_set(
        ds,
        where=where,
        classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
        group_by=group_by,
        seed=seed,
        cache_dir=home / "cache" / "detection-sets",
    )
    for split in ("train", "val", "test"):
        c = data.counts[split]
        boxes = ", ".join(f"{k} {v}" for k, v in c.items() if k != "_frames")
        console().print(f"{split:5} {c['_frames']:5d} frames  {boxes}")
    with progress_bar() as progress:
        mv = train_detector(
            data,
            registry=ModelRegistry(registry or ds.models_dir),
            name=name,
            model=model,
            weights=_weights_file(weights),
            weights_name=None if _weights_file(weights) else weights,
            allow_random_init=allow_random_init,
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            device=device,
            patience=patience,
            seed=seed,
            resume=resume,
            progress=progress,
            work_dir=work_dir or home / "runs",
        )
    m = mv.manifest.metrics
    per_class = ", ".join(
        f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in m["per_class_ap50"].items()
    )
    console().print(
        f"published [bold]{mv.name}:{mv.version}[/] at {mv.path}\n"
        f"{m['split']}: mAP50 {m['mAP50']:.3f}  mAP50-95 {m['mAP50-95']:.3f}  P {m['precision']:.3f}  "
        f"R {m['recall']:.3f}  ({per_class})\n"
        f"parity: raw score diff {mv.manifest.parity['raw_max_score_diff']:.2e}, passed\n"
        + guard_summary(mv.manifest.extra.get("guard") or {})
    )


def _weights_file(value: str | None) -> Path | None:
    """``--weights``: a path to an existing file, else (None here) a registered name."""
    return Path(value) if value and (Path(value).is_file() or Path(value).suffix in (".pt", ".pth")) else None


def _registry(dataset: Path | None, registry: Path | None):  # type: ignore[no-untyped-def]
    from jangin.core import Dataset, ModelRegistry

    return ModelRegistry(
        registry if registry is not None else Dataset.open(resolve_dataset(dataset)).models_dir
    )


@models_app.command("ls")
def ls(dataset: DatasetOption = None, registry: RegistryOption = None) -> None:
    """List every model version."""
    from rich.console import Console
    from rich.table import Table

    reg = _registry(dataset, registry)
    t = Table(title=str(reg.root))
    for col in ("name", "version", "active", "task", "classes", "metric", "licence", "created"):
        t.add_column(col)
    for mv in reg.list():
        m = mv.manifest
        metric = next(
            (
                f"{k} {m.metrics[k]:.3f}"
                for k in ("mAP50", "auroc", "accuracy")
                if m.metrics.get(k) is not None
            ),
            "",
        )
        t.add_row(
            m.name,
            m.version,
            "*" if reg.active(m.name) == m.version else "",
            m.task,
            ", ".join(m.classes),
            metric,
            m.architecture_licence,
            m.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(t)


@models_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME[:VERSION]")],
    dataset: DatasetOption = None,
    registry: RegistryOption = None,
) -> None:
    """Print a version's manifest (JSON, with its ``architecture_licence``) after checking its files'
    checksums."""
    from jangin.core.artifacts import manifest_json

    mv = _registry(dataset, registry).get(ref)
    typer.echo(json.dumps(manifest_json(mv), indent=2, default=str))


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version, e.g. v3.")],
    dataset: DatasetOption = None,
    registry: RegistryOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even a version its guard rails refused.")
    ] = False,
) -> None:
    """Make NAME:VERSION the active version (what `inspect` and the server load by default).

    Refused when the version's guard rails say so (one predicted class, a threshold flagging nearly
    everything, no better than its trivial baseline), unless --force."""
    mv = _registry(dataset, registry).promote(name, version, force=force)
    console().print(f"{mv.name}:{mv.version} is now active")


@models_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Model name (NAME or NAME:VERSION).")],
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="openvino, onnxruntime, or best: try openvino int8, onnxruntime int8, openvino fp32 and "
            "keep every one that passes (the server serves the fastest).",
        ),
    ] = "openvino",
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or int8.")] = "fp32",
    version: Annotated[
        str | None, typer.Option("--version", help="Version [default: active, else latest].")
    ] = None,
    calibration: Annotated[
        int,
        typer.Option(
            "--calibration",
            help="INT8: training images to calibrate on (NEU-DET: 128 lost 1.1 points mAP50, 256 none).",
        ),
    ] = 256,
    method: Annotated[
        str, typer.Option("--calibration-method", help="INT8: minmax, entropy or percentile.")
    ] = "minmax",
    device: Annotated[
        str | None, typer.Option("--device", help="Device to build for [default: CPU].")
    ] = None,
    dataset: DatasetOption = None,
    registry: RegistryOption = None,
) -> None:
    """Add a runtime artifact (OpenVINO IR, INT8 …) to a model version, after the parity gate: the task
    metric on the held-out split may drop by at most 1 point mAP50 / 0.01 AUROC against fp32 ONNX."""
    from jangin.core import Dataset
    from jangin.training._export import export_best, export_runtime
    from jangin.training._export_data import check_set_for

    if runtime not in ("openvino", "onnxruntime", "best") or precision not in ("fp32", "fp16", "int8"):
        raise typer.BadParameter("--runtime openvino|onnxruntime|best, --precision fp32|fp16|int8")
    reg = _registry(dataset, registry)
    mv = reg.get(name, version)
    root = Dataset.open(resolve_dataset(dataset)).root if dataset is not None else None
    check = check_set_for(mv, dataset=root, calibration=calibration)
    if runtime == "best":
        with progress_bar() as bar:
            arts, refused = export_best(
                mv, check, stop_at=None, calibration_method=method, progress=lambda msg: bar(msg, 0, None)
            )
        for a in arts:
            ratio = (a.throughput or 0.0) / (a.fp32_throughput or float("inf"))
            console().print(
                f"added [bold]{a.runtime} {a.precision}[/]: {a.parity['metric']} {a.parity['value']:.4f} "
                f"(drop {a.parity['drop']:.4f}), {ratio:.2f}x fp32 ONNX Runtime throughput"
            )
        for line in refused:
            console().print(f"refused {line}")
        return
    with progress_bar() as bar:
        art = export_runtime(
            mv,
            check,
            runtime=runtime,
            precision=precision,
            device=device,
            calibration_method=method,
            progress=lambda msg: bar(msg, 0, None),
        )
    p = art.parity
    speed = (
        f", {art.throughput:.1f} img/s vs fp32 ONNX Runtime {art.fp32_throughput:.1f}"
        if art.throughput and art.fp32_throughput
        else ""
    )
    console().print(
        f"added [bold]{runtime} {precision}[/] to {mv.name}:{mv.version} ({', '.join(art.files)})\n"
        f"parity: {p['metric']} {p['value']:.4f} vs fp32 {p['fp32']:.4f} (drop {p['drop']:.4f} <= {p['tolerance']})"
        f"{speed}"
    )


@train_app.command("anomaly")
def anomaly(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Model name in the registry.")] = "anomaly",
    dataset: DatasetOption = None,
    algorithm: Annotated[
        str,
        typer.Option(
            "--method",
            "--algorithm",
            help="patchcore, padim (pretrained --weights advised); cutpaste, draem (learn from good images alone); texture (no weights: filter-bank descriptors, best on textured surfaces).",
        ),
    ] = "patchcore",
    epochs: Annotated[int, typer.Option(help="cutpaste / draem: training epochs.")] = 8,
    where: Annotated[
        str | None, typer.Option(help="SQL predicate on frames (alias f), e.g. \"f.session_id = 'ses-…'\".")
    ] = None,
    good_where: Annotated[
        str | None, typer.Option(help="SQL predicate marking good frames [default: no defect label].")
    ] = None,
    imgsz: Annotated[int, typer.Option(help="Square input size (multiple of 32).")] = 128,
    backbone: Annotated[str, typer.Option(help="timm backbone (resnet18, wide_resnet50_2 …).")] = "resnet18",
    backbone_weights: Annotated[
        str | None, typer.Option(help="Registered weights name (`jangin weights ls`) for the backbone.")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            help="Unregistered local state_dict (prefer --backbone-weights); cutpaste: a backbone.pt or its registered name."
        ),
    ] = None,
    allow_random_init: Annotated[
        bool, typer.Option("--allow-random-init", help="Publish even with a random-init backbone (warned).")
    ] = False,
    good_label: Annotated[
        list[str],
        typer.Option(help="Class label meaning good (repeatable; default: from the process definition)."),
    ] = [],  # noqa: B006
    split_column: Annotated[
        str | None, typer.Option(help="frames column holding train / val / test (an explicit split).")
    ] = None,
    split_file: Annotated[
        Path | None, typer.Option(help="CSV with split and frame_id, source_uri or path (an explicit split).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda.")] = "auto",
    group_by: Annotated[str, typer.Option(help="frames column kept on one side of the split.")] = "frame_id",
    seed: Annotated[int, typer.Option(help="Seed of the split and the backbone's init.")] = 0,
    config: Annotated[
        Path | None, typer.Option(help="YAML with AnomalyConfig fields (flags override).")
    ] = None,
    registry: RegistryOption = None,
    work_dir: Annotated[Path | None, typer.Option(help="Run directory [default: $JANGIN_HOME/runs].")] = None,
) -> None:
    """Train an anomaly model on good images, calibrate it, check its ONNX export and publish it."""
    from jangin.training._anomaly import AnomalyConfig, train_anomaly
    from jangin.training._guard import guard_summary

    cfg = AnomalyConfig(
        **_merge(
            ctx,
            config,
            dict(
                name=name,
                algorithm=algorithm,
                epochs=epochs,
                where=where,
                good_where=good_where,
                imgsz=imgsz,
                backbone=backbone,
                backbone_weights=backbone_weights,
                weights=weights,
                allow_random_init=allow_random_init,
                good_labels=tuple(good_label) or None,
                split_column=split_column,
                split_file=split_file,
                device=device,
                group_by=group_by,
                seed=seed,
            ),
        )
    )
    mv = _fit(train_anomaly, dataset, cfg, registry, work_dir)
    m = mv.manifest.metrics
    console().print(
        f"published [bold]{mv.name}:{mv.version}[/] at {mv.path}\n"
        f"test: {m['good']} good + {m['defective']} defective: image AUROC {m['auroc']}  F1 {m['f1']:.3f} "
        f"(intensity baseline AUROC {m['baseline_intensity_auroc']})\n"
        + (f"pixel: AUROC {m['pixel_auroc']}  PRO {m['pro']}\n" if m.get("pixel_auroc") is not None else "")
        + f"parity: normalised score diff {mv.manifest.parity['max_norm_score_diff']:.2e}, passed\n"
        + guard_summary(mv.manifest.extra.get("guard") or {})
    )


def _fit(train: Any, dataset: Path | None, cfg: Any, registry: Path | None, work_dir: Path | None) -> Any:
    """Run ``train(ds, cfg, ...)`` (anomaly, process) on the dataset with a progress bar; the version."""
    from jangin.core import Dataset, ModelRegistry
    from jangin.core.settings import get_settings

    ds = Dataset.open(resolve_dataset(dataset))
    with progress_bar() as progress:
        return train(
            ds,
            cfg,
            registry=ModelRegistry(registry or ds.models_dir),
            work_dir=work_dir or get_settings().home / "runs",
            progress=progress,
        )


@train_app.command("process")
def process(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Option("--name", "-n", help="Model name in the registry.")
    ] = "process-quality",
    dataset: DatasetOption = None,
    where: Annotated[str | None, typer.Option(help="SQL predicate on current_labels (alias l).")] = None,
    question: Annotated[
        str | None, typer.Option(help="The label question to learn (labels.question), e.g. tool_condition.")
    ] = None,
    target: Annotated[str, typer.Option(help="auto, span or session (run-level labels).")] = "auto",
    per_step: Annotated[
        bool, typer.Option("--per-step", help="Run-level labels: one window per step occurrence.")
    ] = False,
    group_by: Annotated[
        str | None,
        typer.Option(
            help="Evaluation group: session [default], a session column (technician, station…) "
            "or param:<name>."
        ),
    ] = None,
    ok_name: Annotated[str, typer.Option(help="Name of the negative class (OK, unworn…).")] = "OK",
    channels: Annotated[str | None, typer.Option(help="Comma-separated channels [default: all].")] = None,
    features: Annotated[str, typer.Option(help="deviation or all.")] = "deviation",
    seed: Annotated[int, typer.Option(help="Seed of the gradient boosting and the bootstrap.")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Publish even if the AUROC is undefined or below the baseline.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option(help="YAML with ProcessConfig fields (flags override).")
    ] = None,
    registry: RegistryOption = None,
    work_dir: Annotated[Path | None, typer.Option(help="Run directory [default: $JANGIN_HOME/runs].")] = None,
) -> None:
    """Train a model of an expert judgment from sensor windows (span or run-level labels), evaluated
    leave-one-group-out with a confound check, and publish it."""
    from jangin.training._process import ProcessConfig, train_process

    chans = tuple(c.strip() for c in channels.split(",") if c.strip()) if channels else None
    flags = dict(
        name=name,
        where=where,
        question=question,
        target=target,
        per_step=per_step,
        group_by=group_by,
        ok_name=ok_name,
        channels=chans,
        features=features,
        seed=seed,
        force=force,
    )
    cfg = ProcessConfig(**_merge(ctx, config, flags))
    mv = _fit(train_process, dataset, cfg, registry, work_dir)
    m = mv.manifest.metrics
    out = console()
    for w in m.get("warnings", []):
        out.print(f"[yellow]warning:[/] {w}", markup=True, highlight=False)
    out.print(
        f"published [bold]{mv.name}:{mv.version}[/] at {mv.path}\n"
        f"{m['evaluation']}: {m['windows']} {m['target']} windows, {m['ng']} NG: AUROC {m['auroc']} "
        f"(95 % CI {m['auroc_ci95']}), accuracy {m['accuracy']} (95 % CI {m['accuracy_ci95']})\n"
        f"single-channel threshold chosen inside each fold: AUROC {m['baseline_auroc']} "
        f"(chosen on all data: {m['baseline_hindsight_auroc']}, {m['baseline_hindsight_channel']})\n"
        + (
            f"without confounded channels {', '.join(m['confounds']['channels'])}: AUROC "
            f"{m.get('auroc_without_confounds')}\n"
            if m["confounds"]["channels"]
            else ""
        )
        + f"out-of-fold predictions: {mv.path / 'oof.parquet'}\n"
        f"parity: P(NG) diff {mv.manifest.parity['max_proba_diff']:.2e}, passed"
    )


def _merge(ctx: typer.Context, config: Path | None, flags: dict) -> dict:  # type: ignore[type-arg]
    """Flag defaults, then the YAML config's fields, then the flags given on the command line."""
    # By name: Typer may bring its own copy of click, whose ParameterSource is another class.
    given = {
        k: v
        for k, v in flags.items()
        if k not in ctx.params or getattr(ctx.get_parameter_source(k), "name", "") != "DEFAULT"
    }
    return {**flags, **_yaml(config), **given}


def _yaml(path: Path | None) -> dict:  # type: ignore[type-arg]
    if path is None:
        return {}
    import yaml

    from jangin.core import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config fields")
    return data


@train_app.command("classify")
def classify(
    name: Annotated[str, typer.Option("--name", "-n", help="Model name in the registry.")] = "classifier",
    dataset: DatasetOption = None,
    source: Annotated[
        str, typer.Option(help="boxes (crops of box labels) or frames (frame class labels).")
    ] = "boxes",
    where: Annotated[str | None, typer.Option(help="SQL predicate on frames (alias f).")] = None,
    group_by: Annotated[str, typer.Option(help="frames column kept on one side of the split.")] = "frame_id",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    imgsz: Annotated[int, typer.Option(help="Square input size.")] = 64,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 32,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, 0 …")] = "auto",
    model: Annotated[str, typer.Option(help="Model YAML (random init) or a local .pt.")] = "yolo11n-cls.yaml",
    weights: Annotated[
        str | None, typer.Option(help="Registered Ultralytics classification weights (`jangin weights ls`).")
    ] = None,
    balance: Annotated[
        bool, typer.Option("--balance/--no-balance", help="Oversample classes to the largest one's count.")
    ] = True,
    split_column: Annotated[
        str | None, typer.Option(help="frames column holding train / val / test (an explicit split).")
    ] = None,
    split_file: Annotated[
        Path | None, typer.Option(help="CSV with split and frame_id or source_uri (an explicit split).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the training.")] = 0,
    registry: RegistryOption = None,
    work_dir: Annotated[Path | None, typer.Option(help="Run directory [default: $JANGIN_HOME/runs].")] = None,
) -> None:
    """Train an image classifier (frame class labels or box crops), check its ONNX export and publish it."""
    from jangin.core import Dataset, ModelRegistry
    from jangin.core.settings import get_settings
    from jangin.training._classify import build_classification_set, train_classifier
    from jangin.training._guard import guard_summary

    if source not in ("boxes", "frames"):
        raise typer.BadParameter("--source must be boxes or frames")
    ds = Dataset.open(resolve_dataset(dataset))
    home = get_settings().home
    data = build_classification_set(
        ds,
        cache_dir=home / "cache" / "cls-sets",
        source=source,  # type: ignore[arg-type]
        where=where,
        group_by=group_by,
        seed=seed,
        split_column=split_column,
        split_file=split_file,
    )
    with progress_bar() as progress:
        mv = train_classifier(
            data,
            registry=ModelRegistry(registry or ds.models_dir),
            name=name,
            model=model,
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            device=device,
            seed=seed,
            work_dir=work_dir or home / "runs",
            progress=progress,
            balance=balance,
            weights_name=weights,
        )
    m = mv.manifest.metrics
    recall = ", ".join(
        f"{c} {v:.2f}" if v is not None else f"{c} -" for c, v in m["per_class_recall"].items()
    )
    console().print(
        f"published [bold]{mv.name}:{mv.version}[/] at {mv.path}\n"
        f"{m['split']}: accuracy {m['accuracy']:.3f} (majority class {m['baseline_accuracy']:.3f})  "
        f"macro F1 {m['macro_f1']:.3f} (majority class {m['baseline_macro_f1']:.3f})\n"
        f"recall per class: {recall}\n"
        f"parity: probability diff {mv.manifest.parity['max_prob_diff']:.2e}, passed\n"
        + guard_summary(mv.manifest.extra.get("guard") or {})
    )


SKILL_HELP = "Skill profiles: build them from expert sessions, score and coach other sessions."


def skill_build(
    process: Annotated[
        str | None, typer.Option("--process", "-p", help="Process of the reference sessions.")
    ] = None,
    name: Annotated[
        str, typer.Option("--name", "-n", help="Profile name in the registry.")
    ] = "skill-profile",
    dataset: DatasetOption = None,
    skill_level: Annotated[str, typer.Option(help="Skill level of the reference sessions.")] = "expert",
    where: Annotated[
        str | None, typer.Option(help="Extra SQL condition on current_sessions, e.g. \"station = 'st-01'\".")
    ] = None,
    session: Annotated[
        list[str] | None, typer.Option("--session", help="Explicit reference session id (repeatable).")
    ] = None,
    k_sigma: Annotated[
        float,
        typer.Option(
            help="Band half-width in standard deviations when fewer than 3 experts (else calibrated)."
        ),
    ] = 3.0,
    channels: Annotated[
        list[str] | None,
        typer.Option(
            "--channels", help="Channel glob to score (repeatable, e.g. 'X1_*'); default: automatic."
        ),
    ] = None,
    condition_on: Annotated[
        list[str] | None,
        typer.Option(
            "--condition-on",
            help="One profile per recipe: session parameter NAME, or NAME:WIDTH to bin a number (repeatable).",
        ),
    ] = None,
    registry: RegistryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the published version as JSON.")] = False,
) -> None:
    """Build a skill profile from the reference (expert) sessions of a process and publish it."""
    from jangin.core import Dataset, ModelRegistry
    from jangin.training._skill import SkillProfileConfig, build_skill_profiles

    if not process and not where and not session:
        raise typer.BadParameter("give --process, --where or --session", param_hint="--process")
    ds = Dataset.open(resolve_dataset(dataset))
    cfg = SkillProfileConfig(
        name=name,
        process=process,
        skill_level=skill_level,
        where=where,
        sessions=tuple(session or ()),
        k_sigma=k_sigma,
        channels=tuple(channels or ()),
        condition_on=tuple(condition_on or ()),
    )
    with progress_bar(not as_json) as progress:
        mvs = build_skill_profiles(
            ds, cfg, registry=ModelRegistry(registry) if registry else None, progress=progress
        )
    for mv in mvs:
        m = mv.manifest
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "name": mv.name,
                        "version": mv.version,
                        "path": str(mv.path),
                        "metrics": m.metrics,
                        "steps": m.classes,
                        "condition": m.extra.get("condition", {}),
                        "dropped_channels": m.extra.get("dropped_channels", {}),
                        "thresholds": m.thresholds,
                        "adjustments": m.extra.get("adjustments", []),
                    }
                )
            )
            continue
        cond = m.extra.get("condition") or {}
        console().print(
            f"published skill profile [bold]{mv.name}:{mv.version}[/]"
            f"{' for ' + ', '.join(f'{k} = {v}' for k, v in cond.items()) if cond else ''} from "
            f"{m.metrics.get('sessions')} session(s): {len(m.classes)} steps ({', '.join(m.classes)})"
        )
        for c, why in (m.extra.get("dropped_channels") or {}).items():
            console().print(f"  not scored: {c} ({why})")
        for a in m.extra.get("adjustments", []):
            console().print(f"  adjustment: {a}")
    skipped = mvs[0].manifest.extra.get("skipped_conditions") or {} if mvs else {}
    for cond, n in skipped.items():
        console().print(f"  no profile for {cond}: only {n} reference session(s)")


def register_skill(app: typer.Typer) -> None:
    """``jangin skill build`` (entry point ``skill-build`` of group ``jangin.cli``)."""
    from jangin.core.cli import command_group

    command_group(app, "skill", help=SKILL_HELP).command("build")(skill_build)
