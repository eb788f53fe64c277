"""Train an Ultralytics detector on a :class:`DetectionSet`, evaluate it, export it and publish it."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from jangin.core import ModelManifest, ModelRegistry, ModelVersion, TrainingError
from jangin.core.artifacts import InputSpec
from jangin.core.progress import ProgressFn, null_progress
from jangin.training._backbone import backbone_record, check_random_init, resolve_weights
from jangin.training._detection_set import DetectionSet
from jangin.training._parity import check_parity
from jangin.training._ultralytics_env import import_onnxruntime, ultralytics_offline

__all__ = ["SERVING_THRESHOLDS", "train_detector"]

log = logging.getLogger(__name__)

#: Thresholds written to the manifest for serving.
SERVING_THRESHOLDS = {"conf": 0.25, "iou": 0.45}
OPSET = 17
#: At most this many images of the check set go through the parity gate.
PARITY_IMAGES = 32


def train_detector(
    data: DetectionSet,
    *,
    registry: ModelRegistry,
    name: str = "detector",
    model: str = "yolo11n.yaml",
    weights: Path | None = None,
    epochs: int = 30,
    imgsz: int = 256,
    batch: int = 16,
    device: str = "auto",
    patience: int = 50,
    seed: int = 0,
    workers: int = 0,
    resume: bool = False,
    progress: ProgressFn | None = None,
    work_dir: Path,
    weights_name: str | None = None,
    allow_random_init: bool = False,
) -> ModelVersion:
    """Train a YOLO detector, evaluate it on the test split, export ONNX, check parity and publish.

    Nothing is downloaded: the model comes from an Ultralytics model YAML (random initialisation) or
    a local ``.pt`` file, and Ultralytics runs offline (see :func:`ultralytics_offline`).

    Args:
        data: The training set (:func:`build_detection_set`).
        registry: Where to publish the model version.
        name: Model name in the registry.
        model: Ultralytics model YAML (``yolo11n.yaml``: random init) or a local ``.pt`` checkpoint.
        weights: Optional local weights to load into a YAML model (e.g. from an earlier run).
        epochs: Training epochs.
        imgsz: Square input size in pixels (a multiple of 32); also the exported input size.
        batch: Batch size.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``0``, ``cuda:1`` …
        patience: Epochs without improvement before stopping early.
        seed: Training seed.
        workers: Data loader worker processes (0: load in the main process).
        resume: Continue the newest interrupted run of ``name`` under ``work_dir`` from its
            ``weights/last.pt`` (same data, epochs and settings as that run); an error when there is
            none or it had finished.
        progress: ``progress(task, done, total)``, called after every epoch and step.
        work_dir: Directory for the run (Ultralytics' config, checkpoints, plots).
        weights_name: Registered weights (``jangin weights ls``, framework ``ultralytics``) to load into
            the YAML model; the manifest records their name and sha256.
        allow_random_init: Publish even when the model starts from random initialisation (a YAML model
            without weights); otherwise that is refused before training (see :mod:`._backbone`).

    Returns:
        The published version: ``model.onnx``, ``best.pt``, ``metrics.json``, plots and the manifest.

    Raises:
        ValueError: Bad arguments.
        TrainingError: Training, evaluation or export failed, or the parity gate refused the export.
    """
    progress = progress or null_progress
    if imgsz <= 0 or imgsz % 32:
        raise ValueError(f"imgsz must be a positive multiple of 32 (the model's largest stride), got {imgsz}")
    if epochs < 1 or batch < 1:
        raise ValueError(f"epochs and batch must be at least 1, got epochs={epochs}, batch={batch}")
    work_dir = Path(work_dir).resolve()
    entry = resolve_weights(weights_name)
    if entry is not None:
        if weights is not None:
            raise ValueError("give either weights (a file) or weights_name (registered), not both")
        if entry.framework != "ultralytics":
            raise TrainingError(
                f"weights {entry.name!r} are {entry.framework} weights; a detector loads ultralytics ones",
                hint="register a YOLO checkpoint with --framework ultralytics",
            )
        weights = entry.file
    pt = model if Path(model).suffix == ".pt" else None
    backbone = backbone_record(Path(model).stem, entry, weights or (Path(pt) if pt else None))
    warnings: list[str] = []
    if not resume:
        warnings = check_random_init(backbone, allow=allow_random_init, what=f"detector {name}")
    last: Path | None = None
    if resume:
        last = _resumable_run(work_dir, name)
        run_name = last.parents[1].name
        source = str(last)
    else:
        source = _model_source(model, weights)
        run_name = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_dir = work_dir / run_name
    ultralytics_offline(work_dir / "ultralytics")

    import torch
    import ultralytics
    from ultralytics import YOLO

    dev = _resolve_device(device, torch)
    amp = _amp(dev, torch)
    threads = _cpu_threads()
    task = f"train {name}"

    def set_threads(_: Any) -> None:
        # Ultralytics' select_device() resets torch to cpu_count - 1 threads (one here): use them all.
        torch.set_num_threads(threads)

    stopped = [False]

    def on_epoch(trainer: Any) -> None:
        # Fired after each epoch's validation, and once more by the final validation of best.pt (with
        # epoch + 1): by then the trainer's ``stop`` was already set at the last epoch.
        if stopped[0]:
            return
        stopped[0] = bool(trainer.stop)
        progress(task, int(trainer.epoch) + 1, int(trainer.epochs))

    t0 = time.perf_counter()
    try:
        yolo = YOLO(source, task="detect")
        if weights is not None and last is None:
            yolo.load(str(weights))
        for event in ("on_pretrain_routine_start", "on_train_start"):
            yolo.add_callback(event, set_threads)
        yolo.add_callback("on_fit_epoch_end", on_epoch)
        progress(task, 0, epochs)
        if last is not None:  # Ultralytics takes the run's own arguments from the checkpoint
            yolo.train(resume=True, data=str(data.yaml_path), device=dev, workers=workers, plots=True)
        else:
            yolo.train(
                data=str(data.yaml_path),
                epochs=epochs,
                imgsz=imgsz,
                batch=batch,
                device=dev,
                patience=patience,
                seed=seed,
                deterministic=True,
                workers=workers,
                project=str(work_dir),
                name=run_name,
                exist_ok=True,
                amp=amp,
                plots=True,
                verbose=False,
            )
        trainer: Any = yolo.trainer
        if last is not None:  # the resumed run's own settings
            imgsz, epochs = int(trainer.args.imgsz), int(trainer.epochs)
    except Exception as exc:  # Ultralytics raises anything from RuntimeError to AssertionError
        raise TrainingError(f"training {name} failed: {exc}", hint=f"see the run in {run_dir}") from exc
    train_s = time.perf_counter() - t0
    epochs_run = int(trainer.epoch) + 1
    best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
    save_dir = Path(trainer.save_dir)

    progress("evaluate", 0, 1)
    split = "test" if data.splits["test"] else "val"
    metrics = _evaluate(YOLO, best, data, split, imgsz, batch, dev, save_dir, set_threads)
    metrics.update(
        train_seconds=round(train_s, 2),
        epochs_run=epochs_run,
        seconds_per_epoch=round(train_s / max(epochs_run, 1), 3),
    )
    progress("evaluate", 1, 1)

    progress("export", 0, 1)
    onnx_path, out_shape = _export(YOLO, best, imgsz, len(data.classes))
    progress("export", 1, 1)

    progress("parity", 0, 1)
    check_set = data.images(split)[:PARITY_IMAGES] or data.images("val")[:PARITY_IMAGES]
    torch.set_num_threads(threads)
    parity = check_parity(
        onnx_path,
        best,
        check_set,
        imgsz=imgsz,
        confs=(SERVING_THRESHOLDS["conf"], 0.001),
        iou=SERVING_THRESHOLDS["iou"],
    )
    progress("parity", 1, 1)

    (save_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    files = {"model.onnx": onnx_path, "best.pt": best, "metrics.json": save_dir / "metrics.json"}
    for rel, src in (
        ("plots/PR_curve.png", save_dir / "eval" / "BoxPR_curve.png"),
        ("plots/results.csv", save_dir / "results.csv"),
        ("plots/results.png", save_dir / "results.png"),
        ("plots/confusion_matrix.png", save_dir / "eval" / "confusion_matrix.png"),
    ):
        if src.is_file():
            files[rel] = src
    manifest = ModelManifest(
        name=name,
        task="detect",
        framework=f"ultralytics {ultralytics.__version__}",
        architecture_licence="AGPL-3.0 (Ultralytics YOLO)",
        classes=list(data.classes),
        input=InputSpec(
            width=imgsz, height=imgsz, color="rgb", resize="letterbox", scale=1 / 255, pad_value=114
        ),
        outputs={
            "format": "yolo_v8",
            "shape": out_shape,
            "layout": "cx, cy, w, h (input pixels), then one score per class (after sigmoid)",
            "nms": False,
            "dynamic_batch": True,
            "opset": OPSET,
        },
        thresholds=dict(SERVING_THRESHOLDS),
        metrics=metrics,
        dataset=data.dataset,
        dataset_snapshot=data.snapshot,
        train_config={
            "model": model,
            "weights": str(weights) if weights else None,
            "backbone": backbone,
            "epochs": epochs,
            "imgsz": imgsz,
            "batch": batch,
            "device": dev,
            "amp": amp,
            "patience": patience,
            "seed": seed,
            "workers": workers,
            "threads": threads,
            "torch": torch.__version__,
            "set": str(data.path),
            "set_params": data.params,
            "split_counts": data.counts,
        },
        parity=parity,
        extra={"guard": {"warnings": warnings, "refuse_promotion": [], "baselines": {}}},
    )
    mv = registry.add(manifest, files)
    log.info("published %s:%s (mAP50 %.3f on %s)", mv.name, mv.version, metrics["mAP50"], split)
    return mv


def _resumable_run(work_dir: Path, name: str) -> Path:
    """``weights/last.pt`` of the newest run of ``name`` under ``work_dir`` that can be resumed."""
    import torch

    runs = sorted(work_dir.glob(f"{name}-*/weights/last.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not runs:
        raise TrainingError(
            f"no run of {name!r} to resume under {work_dir}", hint="train without --resume first"
        )
    last = runs[0]
    ckpt = torch.load(
        last, map_location="cpu", weights_only=False
    )  # our own checkpoint, written by Ultralytics
    if ckpt.get("optimizer") is None or int(ckpt.get("epoch", -1)) < 0:
        raise TrainingError(
            f"{last.parents[1].name} finished its training: nothing to resume", hint="train without --resume"
        )
    return last


def _model_source(model: str, weights: Path | None) -> str:
    path = Path(model)
    if path.suffix == ".pt":
        if weights is not None:
            raise ValueError("give either a .pt model or weights for a YAML model, not both")
        if not path.is_file():
            raise TrainingError(
                f"weights file {model} not found; Jangin never downloads weights",
                hint="give a local .pt file, or a model YAML such as yolo11n.yaml for random init",
            )
        return str(path.resolve())
    if path.suffix not in (".yaml", ".yml"):
        raise ValueError(f"model must be a model YAML or a local .pt file, got {model!r}")
    if weights is not None and not Path(weights).is_file():
        raise TrainingError(f"weights file {weights} not found; Jangin never downloads weights")
    return model


def _resolve_device(device: str, torch: Any) -> str:
    device = device.strip().lower()
    if device == "auto":
        return "0" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = "0"
    if device.startswith("cuda:"):
        device = device[5:]
    if device != "cpu" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} asked for but CUDA is not available", hint="use --device cpu")
    return device


def _amp(device: str, torch: Any) -> bool | str:
    """Mixed precision: never on CPU. On CUDA ``bf16`` where supported: Ultralytics skips its AMP check
    for ``bf16``, and that check loads (downloads) ``yolo26n.pt``; elsewhere fp32."""
    if device == "cpu":
        return False
    return "bf16" if torch.cuda.is_bf16_supported() else False


def _cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _evaluate(
    yolo_cls: Any,
    best: Path,
    data: DetectionSet,
    split: str,
    imgsz: int,
    batch: int,
    dev: str,
    save_dir: Path,
    set_threads: Any,
) -> dict[str, Any]:
    try:
        ev = yolo_cls(str(best), task="detect")
        ev.add_callback("on_val_start", set_threads)
        res = ev.val(
            data=str(data.yaml_path),
            split=split,
            imgsz=imgsz,
            batch=batch,
            device=dev,
            plots=True,
            project=str(save_dir),
            name="eval",
            exist_ok=True,
            verbose=False,
        )
    except Exception as exc:  # Ultralytics raises anything from RuntimeError to AssertionError
        raise TrainingError(f"evaluating {best} on the {split} split failed: {exc}") from exc
    box = res.box
    per_class: dict[str, float | None] = dict.fromkeys(data.classes)
    for k, ci in enumerate(box.ap_class_index):
        per_class[data.classes[int(ci)]] = round(float(box.ap50[k]), 5)
    return {
        "split": split,
        "images": len(data.splits[split]),
        "mAP50": round(float(box.map50), 5),
        "mAP50-95": round(float(box.map), 5),
        "precision": round(float(box.mp), 5),
        "recall": round(float(box.mr), 5),
        "per_class_ap50": per_class,
    }


def _export(yolo_cls: Any, best: Path, imgsz: int, nc: int) -> tuple[Path, list[Any]]:
    """ONNX, dynamic batch (the runtime may batch), no NMS inside, no onnxslim (it would be installed)."""
    import numpy as np

    ort = import_onnxruntime()

    try:
        ex = yolo_cls(str(best), task="detect")
        out = ex.export(
            format="onnx",
            imgsz=imgsz,
            opset=OPSET,
            simplify=False,
            dynamic=True,
            nms=False,
            device="cpu",
            batch=1,
        )
        strides = [int(s) for s in ex.model.stride]
    except Exception as exc:  # Ultralytics raises anything from RuntimeError to AssertionError
        raise TrainingError(f"ONNX export of {best} failed: {exc}") from exc
    path = Path(out)
    anchors = sum((imgsz // s) ** 2 for s in strides)
    # Dimensions of a dynamic export are symbolic: run it once to see the layout.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 3, imgsz, imgsz), np.float32)})
    if len(outs) != 1 or outs[0].shape != (2, 4 + nc, anchors):
        raise TrainingError(
            f"the export has an output layout this runtime does not decode: {[o.shape for o in outs]} "
            f"for a batch of 2 (expected (2, {4 + nc}, {anchors}))",
            hint="use a YOLOv8/YOLO11 model YAML (end-to-end heads such as YOLO26 are not supported yet)",
        )
    return path, ["batch", 4 + nc, anchors]
