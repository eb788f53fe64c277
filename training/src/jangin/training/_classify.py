"""Image classifiers (Ultralytics ``yolo11n-cls.yaml``) from frame class labels or box crops.

Serving contract (``task = "classify"``, ``outputs.format = "cls_v1"``): ``InputSpec`` with
``resize = "center_crop"`` (shorter side to ``width``, then a centred square crop), RGB, ``1/255``;
ONNX input ``images`` ``(N, 3, S, S)``, one output ``(N, n_classes)`` of class probabilities
(softmax inside the model), classes in ``manifest.classes`` order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jangin.core import Dataset, DatasetError, ModelManifest, ModelRegistry, ModelVersion, TrainingError
from jangin.core.artifacts import InputSpec
from jangin.core.progress import ProgressFn, null_progress
from jangin.core.weights import RANDOM_INIT
from jangin.training._backbone import RANDOM_INIT_WARNING, backbone_record, resolve_weights
from jangin.training._guard import classifier_guard
from jangin.training._image_set import _assign, _split_file
from jangin.training._metrics import binary_metrics
from jangin.training._ultralytics_env import import_onnxruntime, ultralytics_offline

__all__ = ["ClassificationSet", "build_classification_set", "train_classifier"]

log = logging.getLogger(__name__)
OPSET = 17
_MARKER = "jangin-cls-set.json"


@dataclass(frozen=True)
class ClassificationSet:
    """``<path>/{train,val,test}/<class>/<id>.jpg`` (Ultralytics' classification layout)."""

    path: Path
    classes: tuple[str, ...]
    snapshot: dict[str, int]
    counts: dict[str, dict[str, int]]
    stations: dict[str, str]
    dataset: str = ""

    def images(self, split: str) -> list[tuple[Path, int]]:
        """``(file, class index)`` of a split, sorted."""
        return [
            (p, i) for i, c in enumerate(self.classes) for p in sorted((self.path / split / c).glob("*.jpg"))
        ]


def build_classification_set(
    ds: Dataset,
    *,
    cache_dir: Path,
    source: Literal["frames", "boxes"] = "boxes",
    where: str | None = None,
    group_by: str = "frame_id",
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    pad: float = 0.15,
    seed: int = 0,
    stratify: bool = True,
    split_column: str | None = None,
    split_file: Path | None = None,
) -> ClassificationSet:
    """Frames with a current ``class`` label (``source="frames"``), or the crops of current ``box``
    labels, padded by ``pad`` of the box size (``source="boxes"``), split by ``group_by`` (one group
    never on two sides), read at one snapshot and cached by content.

    Splits are stratified by class (each group goes by its most frequent label, so every class gets its
    share of val and test), unless an explicit split is given: ``split_column`` (a ``frames`` column
    holding ``train`` / ``val`` / ``test``) or ``split_file`` (CSV with ``split`` and ``frame_id`` or
    ``source_uri`` or ``path``; frames it does not list are left out).

    Raises:
        TrainingError: Fewer than 2 classes.
        DatasetError: Bad ``where``.
    """
    import cv2
    import duckdb

    snap = ds.snapshot().to_dict()
    kind = "class" if source == "frames" else "box"
    key = hashlib.sha256(
        json.dumps(
            [
                str(ds.root),
                snap.get("frames"),
                snap.get("labels"),
                source,
                where,
                group_by,
                fractions,
                pad,
                seed,
                stratify,
                split_column,
                str(split_file) if split_file else None,
                _file_digest(split_file),
            ]
        ).encode()
    ).hexdigest()[:20]
    final = Path(cache_dir) / f"cls-{key}"
    sql = f"""
        SELECT l.label_id, l.name, l.bbox_xyxy_norm, f.frame_id, f.station, CAST(f."{group_by}" AS VARCHAR) grp,
               f.source_uri, {f'CAST(f."{split_column}" AS VARCHAR)' if split_column else "NULL"} AS fixed_split, f.image
        FROM current_labels l JOIN frames f USING (frame_id)
        WHERE l.kind = '{kind}' AND {f"({where})" if where else "true"}
        ORDER BY l.label_id"""
    if not (final / _MARKER).is_file():
        con = ds.connect(snap)
        try:
            rows = con.sql(sql).to_arrow_table().to_pylist()
        except duckdb.Error as exc:
            raise DatasetError(f"selecting {kind} labels failed: {exc}", hint="check --where") from exc
        finally:
            con.close()
        classes = sorted({r["name"] for r in rows})
        if len(classes) < 2:
            raise TrainingError(
                f"{len(classes)} class(es) among the {kind} labels; a classifier needs 2 or more"
            )
        split_of = _split(rows, fractions, seed, stratify=stratify, split_file=split_file)
        staging = Path(cache_dir) / f".staging-{uuid.uuid4().hex[:8]}"
        counts: dict[str, dict[str, int]] = {s: dict.fromkeys(classes, 0) for s in ("train", "val", "test")}
        stations = {}
        for r in rows:
            img = cv2.imdecode(np.frombuffer(r["image"], np.uint8), cv2.IMREAD_COLOR)
            if source == "boxes":
                h, w = img.shape[:2]
                x1, y1, x2, y2 = r["bbox_xyxy_norm"]
                px, py = pad * (x2 - x1), pad * (y2 - y1)
                xa, ya = int(max(0, (x1 - px) * w)), int(max(0, (y1 - py) * h))
                xb, yb = int(min(w, np.ceil((x2 + px) * w))), int(min(h, np.ceil((y2 + py) * h)))
                if xb - xa < 2 or yb - ya < 2:
                    continue
                img = img[ya:yb, xa:xb]
            split = split_of.get(r["grp"]) if r["fixed_split"] is None else str(r["fixed_split"]).lower()
            if split not in ("train", "val", "test"):
                if split_column or split_file:
                    continue  # not listed in the explicit split: left out
                raise TrainingError(f"frame {r['frame_id']}: no split")
            d = staging / split / r["name"]
            d.mkdir(parents=True, exist_ok=True)
            stem = hashlib.sha256(r["label_id"].encode()).hexdigest()[:16]
            cv2.imwrite(str(d / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            counts[split][r["name"]] += 1
            stations[stem] = r["station"] or "-"
        for split in counts:
            for c in classes:
                (staging / split / c).mkdir(parents=True, exist_ok=True)
        meta = {
            "classes": classes,
            "snapshot": snap,
            "counts": counts,
            "stations": stations,
            "dataset": str(ds.root),
        }
        (staging / _MARKER).write_text(json.dumps(meta))
        try:
            os.rename(staging, final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    meta = json.loads((final / _MARKER).read_text())
    for c, n in Counter(
        {c: sum(meta["counts"][s][c] for s in meta["counts"]) for c in meta["classes"]}
    ).items():
        if n < 10:
            log.warning("class %r has only %d example(s)", c, n)
    return ClassificationSet(
        final, tuple(meta["classes"]), meta["snapshot"], meta["counts"], meta["stations"], meta["dataset"]
    )


def _file_digest(path: Path | None) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise TrainingError(
            f"{path}: no such split file", hint="CSV with columns split and frame_id or source_uri"
        )
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _split(
    rows: list[dict[str, Any]],
    fractions: tuple[float, float, float],
    seed: int,
    *,
    stratify: bool,
    split_file: Path | None,
) -> dict[str, str]:
    """``{group: split}``: from the split file, else stratified by each group's most frequent class."""
    if split_file is not None:
        by = _split_file(split_file)
        out = {}
        for r in rows:
            s = by.get(r["frame_id"]) or by.get(r["source_uri"] or "")
            if s:
                out[r["grp"]] = s.strip().lower()
        return out
    groups: dict[str, Counter[str]] = {}
    for r in rows:
        groups.setdefault(r["grp"], Counter())[r["name"]] += 1
    if not stratify:
        return _assign(sorted(groups), fractions, seed, "good")
    out = {}
    for c in sorted({cnt.most_common(1)[0][0] for cnt in groups.values()}):
        members = sorted(g for g, cnt in groups.items() if cnt.most_common(1)[0][0] == c)
        out.update(_assign(members, fractions, seed, f"class:{c}"))
    return out


def preprocess(paths: list[Path], size: int) -> np.ndarray:
    """Shorter side to ``size`` (bilinear), centre crop, RGB, ``/255``, NCHW float32."""
    import cv2

    out = np.empty((len(paths), 3, size, size), np.float32)
    for i, p in enumerate(paths):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        r = size / min(h, w)
        img = cv2.resize(
            img, (max(size, round(w * r)), max(size, round(h * r))), interpolation=cv2.INTER_LINEAR
        )
        h, w = img.shape[:2]
        y, x = (h - size) // 2, (w - size) // 2
        out[i] = img[y : y + size, x : x + size, ::-1].transpose(2, 0, 1) / 255.0
    return out


def train_classifier(
    data: ClassificationSet,
    *,
    registry: ModelRegistry,
    work_dir: Path,
    name: str = "classifier",
    model: str = "yolo11n-cls.yaml",
    epochs: int = 20,
    imgsz: int = 64,
    batch: int = 32,
    device: str = "auto",
    seed: int = 0,
    parity_tolerance: float = 1e-4,
    progress: ProgressFn | None = None,
    balance: bool = True,
    weights_name: str | None = None,
) -> ModelVersion:
    """Train, evaluate on the test split (accuracy, macro F1, confusion matrix, per station), export ONNX
    behind a parity gate (class probabilities, ONNX Runtime vs PyTorch on the same tensors), publish.

    Guard rails: with ``balance`` the training split is oversampled so every class is seen as often as
    the largest (imbalanced sets otherwise teach "always the majority class"); the metrics sit next to
    the majority-class baselines, recall is reported per class, and a classifier that predicts one class
    for every test image, or does not beat the majority-class macro-F1, is published but marked not to
    be promoted (``extra["guard"]``).

    Args:
        weights_name: Registered Ultralytics classification weights to start from (``jangin weights ls``).

    Raises:
        TrainingError: Training or export failed, or the parity gate refused the export.
    """
    from jangin.training._detect import _amp, _resolve_device

    progress = progress or null_progress
    work_dir = Path(work_dir).resolve()
    run = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    ultralytics_offline(work_dir / "ultralytics")
    import torch
    import ultralytics
    from ultralytics import YOLO

    dev = _resolve_device(device, torch)
    entry = resolve_weights(weights_name)
    if entry is not None and entry.framework != "ultralytics":
        raise TrainingError(
            f"weights {entry.name!r} are {entry.framework} weights; a classifier loads ultralytics ones"
        )
    backbone = backbone_record(Path(model).stem, entry, Path(model) if model.endswith(".pt") else None)
    warnings = []
    if backbone["weights"] == RANDOM_INIT:
        warnings.append(RANDOM_INIT_WARNING)
    train_root = _balanced(data, work_dir / run / "balanced") if balance else data.path
    t0 = time.perf_counter()
    try:
        yolo = YOLO(model, task="classify")
        if entry is not None:
            yolo.load(str(entry.file))
        yolo.add_callback("on_fit_epoch_end", lambda tr: progress(f"train {name}", int(tr.epoch) + 1, epochs))
        yolo.train(
            data=str(train_root),
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            device=dev,
            seed=seed,
            deterministic=True,
            workers=0,
            project=str(work_dir),
            name=run,
            exist_ok=True,
            amp=_amp(dev, torch),
            plots=False,
            verbose=False,
            val=True,
        )
        best = Path(yolo.trainer.best if Path(yolo.trainer.best).is_file() else yolo.trainer.last)
    except Exception as exc:  # Ultralytics raises anything from RuntimeError to AssertionError
        raise TrainingError(f"training {name} failed: {exc}") from exc
    train_s = time.perf_counter() - t0
    split = "test" if data.images("test") else "val"
    items = data.images(split)
    net = YOLO(str(best), task="classify").model.float().eval().cpu()
    x = preprocess([p for p, _ in items], imgsz)
    with torch.no_grad():
        out = net(torch.from_numpy(x))
        probs = (out[0] if isinstance(out, tuple | list) else out).numpy()
    y = np.array([c for _, c in items])
    pred = probs.argmax(1)
    k = len(data.classes)
    cm = np.zeros((k, k), int)
    for t, p in zip(y, pred, strict=True):
        cm[t, p] += 1
    f1s = [binary_metrics(y == c, pred == c)["f1"] for c in range(k)]
    stations = np.array([data.stations.get(p.stem, "-") for p, _ in items])
    guard = classifier_guard(y, pred, data.classes, warnings=warnings)
    metrics: dict[str, Any] = {
        "split": split,
        "images": len(items),
        "accuracy": round(float((pred == y).mean()), 5),
        "macro_f1": round(float(np.mean(f1s)), 5),
        "per_class_f1": dict(zip(data.classes, f1s, strict=True)),
        "confusion_matrix": cm.tolist(),
        "baseline_accuracy": round(float(np.bincount(y, minlength=k).max() / max(len(y), 1)), 5),
        "baseline_macro_f1": guard["baselines"]["macro_f1"]["baseline"],
        "per_class_recall": guard["per_class_recall"],
        "predicted_classes": sorted({data.classes[i] for i in pred.tolist()}),
        "balanced_training": balance,
        "per_station_accuracy": {
            s: round(float((pred[stations == s] == y[stations == s]).mean()), 5)
            for s in sorted(set(stations.tolist()))
        },
        "train_seconds": round(train_s, 2),
    }
    try:
        onnx_path = Path(
            YOLO(str(best), task="classify").export(
                format="onnx", imgsz=imgsz, opset=OPSET, simplify=False, dynamic=True, device="cpu"
            )
        )
    except Exception as exc:  # Ultralytics raises anything from RuntimeError to AssertionError
        raise TrainingError(f"ONNX export of {best} failed: {exc}") from exc
    parity = check_classifier_parity(onnx_path, net, x[:32], tolerance=parity_tolerance)
    files = {"model.onnx": onnx_path, "best.pt": best}
    rep = work_dir / run / "report"
    files.update({f"report/{p.name}": p for p in _report(rep, name, metrics, data.classes, guard)})
    (work_dir / run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    files["metrics.json"] = work_dir / run / "metrics.json"
    manifest = ModelManifest(
        name=name,
        task="classify",
        framework=f"ultralytics {ultralytics.__version__}",
        architecture_licence="AGPL-3.0 (Ultralytics YOLO classify)",
        classes=list(data.classes),
        input=InputSpec(width=imgsz, height=imgsz, color="rgb", resize="center_crop", scale=1 / 255),
        outputs={"format": "cls_v1", "softmax": True, "dynamic_batch": True, "opset": OPSET},
        metrics=metrics,
        dataset=data.dataset,
        dataset_snapshot=data.snapshot,
        train_config={
            "model": model,
            "epochs": epochs,
            "imgsz": imgsz,
            "batch": batch,
            "device": dev,
            "seed": seed,
            "set": str(data.path),
            "split_counts": data.counts,
            "balance": balance,
            "backbone": backbone,
        },
        parity=parity,
        extra={"report": "report/index.html", "guard": guard},
    )
    return registry.add(manifest, files)


def check_classifier_parity(
    onnx_path: Path, net: Any, x: np.ndarray, *, tolerance: float = 1e-4
) -> dict[str, Any]:
    """Class probabilities of ONNX Runtime vs the PyTorch model on the same tensors; refuse beyond tolerance.

    Raises:
        TrainingError: The export differs (the message has the figures).
    """
    import torch

    ort = import_onnxruntime()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    with torch.no_grad():
        out = net(torch.from_numpy(x))
        ref = (out[0] if isinstance(out, tuple | list) else out).numpy()
    diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
    flips = int((got.argmax(1) != ref.argmax(1)).sum()) if got.shape == ref.shape else len(x)
    fig = {
        "images": len(x),
        "max_prob_diff": diff,
        "top1_flips": flips,
        "tolerance": tolerance,
        "passed": diff <= tolerance and flips == 0,
    }
    if not fig["passed"]:
        raise TrainingError(
            f"parity gate refused {onnx_path}: class probabilities differ by up to {diff:.3g} "
            f"(tolerance {tolerance}), {flips} top-1 flip(s) on {len(x)} images"
        )
    return fig


def _balanced(data: ClassificationSet, out: Path) -> Path:
    """A copy of the set's layout whose train split repeats each class's images (symbolic links) until
    every class has as many as the largest; val and test are linked unchanged."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("val", "test"):
        if (data.path / split).is_dir() and not (out / split).exists():
            (out / split).symlink_to((data.path / split).resolve(), target_is_directory=True)
    files = {c: sorted((data.path / "train" / c).glob("*.jpg")) for c in data.classes}
    most = max((len(v) for v in files.values()), default=0)
    for c, items in files.items():
        d = out / "train" / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(most if items else 0):
            src = items[i % len(items)]
            link = d / f"{src.stem}-{i // len(items)}.jpg"
            if not link.exists():
                link.symlink_to(src.resolve())
    log.info("balanced training split: %s → %d per class", {c: len(v) for c, v in files.items()}, most)
    return out


def _report(
    out: Path,
    name: str,
    metrics: dict[str, Any],
    classes: tuple[str, ...],
    guard: dict[str, Any] | None = None,
) -> list[Path]:
    from jangin.training._report import _page, _plt, guard_html

    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    cm = np.array(metrics["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.1 * len(classes) + 1.5))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix (test)",
    )
    fig.tight_layout()
    p = out / "confusion_matrix.png"
    fig.savefig(p, dpi=80)
    plt.close(fig)
    return [p, _page(out, f"classifier {name}", metrics, [p], notes=guard_html(guard))]
