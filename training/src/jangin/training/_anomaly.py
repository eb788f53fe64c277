"""Anomaly models trained on good images only: PatchCore and PaDiM (anomalib's torch models).

anomalib is used through its torch models only (``PatchcoreModel``, ``PadimModel``), behind this
adapter: no Lightning engine, no anomalib data modules. The adapter feeds them decoded frames of a
dataset snapshot, calibrates the threshold on held-out images, exports ONNX and gates it on parity.
See the package docstring for the serving contract (``anomaly_v1``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jangin.core import Dataset, ModelManifest, ModelRegistry, ModelVersion, TrainingError
from jangin.core.artifacts import InputSpec
from jangin.core.progress import ProgressFn, null_progress
from jangin.training._backbone import backbone_record, check_random_init, resolve_weights
from jangin.training._guard import anomaly_guard
from jangin.training._image_set import ImageSet, decode_images, decode_mask, select_anomaly_images
from jangin.training._metrics import best_f1_threshold, binary_metrics, pro_score, rank_auc, roc_auc

__all__ = ["AnomalyConfig", "check_anomaly_parity", "train_anomaly"]

log = logging.getLogger(__name__)

#: ImageNet statistics: what the backbones (and their local weight files) expect.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
OPSET = 17
PARITY_IMAGES = 32
_ARCH_LICENCE = {
    "patchcore": "Apache-2.0 (anomalib PatchCore)",
    "padim": "Apache-2.0 (anomalib PaDiM)",
    "cutpaste": "Apache-2.0 (Jangin CutPaste backbone + PatchCore)",
    "draem": "Apache-2.0 (Jangin DRAEM-style networks)",
    "texture": "Apache-2.0 (Jangin texture descriptors + nearest neighbours; no learned weights)",
}
SCRATCH = ("cutpaste", "draem", "texture")


class AnomalyConfig(BaseModel):
    """Settings of one ``jangin train anomaly`` run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "anomaly"
    algorithm: Literal["patchcore", "padim", "cutpaste", "draem", "texture"] = Field(
        "patchcore",
        description="the method: patchcore / padim (anomalib, --weights or random init); cutpaste "
        "(self-supervised backbone + PatchCore) and draem (synthetic anomalies) learn from the good "
        "images alone (jangin.training._ssl, _draem); texture (fixed Gabor + grey-level descriptors, "
        "nearest good neighbours: no weights at all, jangin.training._texture)",
    )
    epochs: int = Field(8, ge=1, description="cutpaste / draem: training epochs over the good images")
    backbone: str = "resnet18"
    layers: tuple[str, ...] = ("layer2", "layer3")
    weights: Path | None = Field(
        None, description="local backbone state_dict (unregistered; prefer backbone_weights)"
    )
    backbone_weights: str | None = Field(
        None, description="registered weights name (`jangin weights ls`); none and no weights: random init"
    )
    allow_random_init: bool = Field(
        False, description="publish even when the backbone starts from random init"
    )
    good_labels: tuple[str, ...] | None = Field(
        None, description="class labels meaning good [default: process]"
    )
    split_column: str | None = Field(None, description="frames column with train/val/test (explicit split)")
    split_file: Path | None = Field(
        None, description="CSV: split + frame_id/source_uri/path (explicit split)"
    )
    imgsz: int = Field(128, ge=32, le=1024)
    coreset_ratio: float = Field(0.1, gt=0, le=1)
    num_neighbors: int = Field(
        1,
        ge=1,
        description="PatchCore: 1 = max patch distance. anomalib's default 9 re-weights the score by a "
        "top-k over expanded distances whose near-ties flip between PyTorch and ONNX Runtime (the parity "
        "gate measured 0.5 % score differences), so it is not served by default",
    )
    n_features: int | None = Field(None, description="PaDiM: random feature subset size")
    where: str | None = None
    good_where: str | None = None
    group_by: str = "frame_id"
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    max_defective: int | None = Field(None, ge=1, description="cap on defective images per split (val, test)")
    seed: int = 0
    batch: int = Field(16, ge=1)
    device: str = "auto"
    parity_tolerance: float = Field(1e-3, gt=0, description="max |normalised score diff| ONNX vs torch")


def train_anomaly(
    ds: Dataset,
    config: AnomalyConfig | None = None,
    *,
    registry: ModelRegistry,
    work_dir: Path,
    data: ImageSet | None = None,
    progress: ProgressFn | None = None,
) -> ModelVersion:
    """Fit an anomaly model on good frames, calibrate, evaluate, export ONNX behind a parity gate, publish.

    Args:
        ds: The dataset.
        config: Run settings (defaults: PatchCore on a random-init resnet18 at 128 px).
        registry: Where to publish.
        work_dir: Scratch directory for the export and the report.
        data: A ready image set (default: :func:`select_anomaly_images` with the config's predicates).
        progress: ``progress(task, done, total)``.

    Returns:
        The published version (``model.onnx``, ``model.pt`` state dict, ``metrics.json``, report).

    Raises:
        TrainingError: Too little data, a failed fit or export, or a refused export (parity gate).
    """
    cfg = config or AnomalyConfig()
    progress = progress or null_progress
    if cfg.imgsz % 32:
        raise ValueError(f"imgsz must be a multiple of 32, got {cfg.imgsz}")
    entry = resolve_weights(cfg.backbone_weights)
    if entry is not None and cfg.weights is not None:
        raise ValueError("give either backbone_weights (registered) or weights (a file), not both")
    if entry is not None and entry.architecture != cfg.backbone:
        raise TrainingError(
            f"weights {entry.name!r} are for {entry.architecture}, the backbone is {cfg.backbone}",
            hint=f"pass --backbone {entry.architecture}, or weights registered for {cfg.backbone}",
        )
    backbone = backbone_record(cfg.backbone, entry, cfg.weights)
    # cutpaste / draem learn their own features from the good images: never a random-init backbone
    scratch = cfg.algorithm in SCRATCH
    warnings = (
        []
        if scratch
        else check_random_init(backbone, allow=cfg.allow_random_init, what=f"anomaly model {cfg.name}")
    )
    if data is None:
        data = select_anomaly_images(
            ds,
            where=cfg.where,
            good_where=cfg.good_where,
            group_by=cfg.group_by,
            fractions=cfg.fractions,
            seed=cfg.seed,
            max_defective=cfg.max_defective,
            good_labels=cfg.good_labels,
            split_column=cfg.split_column,
            split_file=cfg.split_file,
        )
    work_dir = Path(work_dir) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    work_dir.mkdir(parents=True, exist_ok=True)
    import torch

    dev = _device(cfg.device, torch)
    torch.manual_seed(cfg.seed)
    if cfg.algorithm in SCRATCH:
        from jangin.training._ssl import fit_scratch

        t0 = time.perf_counter()
        x_train = decode_images([r["image"] for r in data.splits["train"]], cfg.imgsz, MEAN, STD)
        src = f"of {data.dataset} snapshot {data.snapshot}"
        net, backbone_init, fit_info = fit_scratch(cfg, x_train, work_dir, progress, source=src)
        model, fit_s, train = net, time.perf_counter() - t0, data.splits["train"]
        net.to(dev)
        backbone = {
            "architecture": cfg.algorithm,
            "weights": fit_info.get("backbone_weights") or backbone_init,
            "weights_sha256": fit_info.get("backbone_sha256"),
        }
    else:
        weights_file = entry.file if entry is not None else cfg.weights
        net, model, backbone_init, fit_s, train = _fit_anomalib(cfg, data, torch, dev, progress, weights_file)
        fit_info = {}

    progress("evaluate", 0, 1)
    val_s, val_m = _score(net, data.splits["val"], cfg, torch, dev)
    val_bad = np.array([r["bad"] for r in data.splits["val"]], bool)
    if val_bad.any():
        thr, how = best_f1_threshold(val_s, val_bad), "best F1 on val (good + defective)"
    else:
        thr, how = float(val_s.max()), "max score of good val images (no defective images)"
    norm = {
        "score_min": float(val_s.min()),
        "score_max": float(val_s.max()),
        "map_min": float(val_m.min()),
        "map_max": float(val_m.max()),
    }
    if norm["score_max"] <= norm["score_min"]:
        norm["score_max"] = norm["score_min"] + 1e-6
    if norm["map_max"] <= norm["map_min"]:
        norm["map_max"] = norm["map_min"] + 1e-6
    val_masks = _masks(data.splits["val"], cfg.imgsz)
    pixel_thr, pixel_how = _pixel_threshold(val_m[:, 0], val_masks)
    t1 = time.perf_counter()
    test = data.splits["test"]
    test_s, test_m = _score(net, test, cfg, torch, dev)
    ms_per_image = 1000 * (time.perf_counter() - t1) / max(len(test), 1)
    y = np.array([r["bad"] for r in test], bool)
    metrics: dict[str, Any] = {
        "split": "test",
        "images": len(test),
        "good": int((~y).sum()),
        "defective": int(y.sum()),
        "auroc": roc_auc(y, test_s),
        **{k: v for k, v in binary_metrics(y, test_s >= thr).items()},
        "baseline_auroc": 0.5,
        "baseline_intensity_auroc": roc_auc(y, _intensity_score(data, test)),
        "threshold_method": how,
        "fit_seconds": round(fit_s, 2),
        "torch_ms_per_image": round(ms_per_image, 2),
        "train_images": len(train),
        "per_station": _per_station(test, y, test_s),
        "pixel_threshold_method": pixel_how,
        **_pixel_metrics(test, test_m[:, 0], cfg.imgsz, pixel_thr),
    }
    flagged = {
        name: (int((s >= thr).sum()), len(s), int((s[~b] >= thr).sum()), int((~b).sum()))
        for name, s, b in (("val", val_s, val_bad), ("test", test_s, y))
    }
    guard = anomaly_guard(metrics, flagged, warnings=warnings)
    metrics["flagged"] = {
        k: {"flagged": a, "images": b, "good_flagged": c, "good": d} for k, (a, b, c, d) in flagged.items()
    }
    metrics["baseline_all_ng_f1"] = guard["baselines"]["f1"]["baseline"]
    progress("evaluate", 1, 1)

    progress("export", 0, 1)
    onnx_path = work_dir / "model.onnx"
    export_anomaly_onnx(net, onnx_path, cfg.imgsz)
    check = [r["image"] for r in (test or data.splits["val"])[:PARITY_IMAGES]]
    x_check = decode_images(check, cfg.imgsz, MEAN, STD)
    parity = check_anomaly_parity(onnx_path, net, x_check, thr, norm, tolerance=cfg.parity_tolerance)
    progress("export", 1, 1)

    pt_path = work_dir / "model.pt"
    torch.save(model.state_dict(), pt_path)  # for retraining/inspection; serving never loads it
    files: dict[str, Path] = {"model.onnx": onnx_path, "model.pt": pt_path}
    if fit_info.get("backbone_file"):
        files["backbone.pt"] = Path(fit_info["backbone_file"])
    from jangin.training._report import anomaly_report

    report_files = anomaly_report(
        work_dir / "report", cfg.name, metrics, y, test_s, thr, test, test_m, norm, cfg.imgsz, guard=guard
    )
    files.update({f"report/{p.name}": p for p in report_files})
    (work_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    files["metrics.json"] = work_dir / "metrics.json"
    if not fit_info:
        import anomalib

    manifest = ModelManifest(
        name=cfg.name,
        task="anomaly",
        framework=f"anomalib {anomalib.__version__} ({cfg.algorithm}, torch {torch.__version__})"
        if not fit_info
        else f"jangin {cfg.algorithm} (torch {torch.__version__})",
        architecture_licence=_ARCH_LICENCE[cfg.algorithm],
        classes=["good", "anomalous"],
        input=InputSpec(
            width=cfg.imgsz,
            height=cfg.imgsz,
            color="rgb",
            resize="stretch",
            scale=1 / 255,
            mean=MEAN,
            std=STD,
        ),
        outputs={
            "format": "anomaly_v1",
            "norm": norm,
            "inputs": ["images"],
            "names": ["pred_score", "anomaly_map"],
            "dynamic_batch": True,
            "opset": OPSET,
        },
        thresholds={"image": thr, "pixel": pixel_thr},
        metrics=metrics,
        dataset=data.dataset,
        dataset_snapshot=data.snapshot,
        train_config={
            **json.loads(cfg.model_dump_json()),
            "backbone_init": backbone_init,
            "backbone": backbone,
            "method_fit": fit_info,
            "device": dev,
            "set_params": data.params,
            "split_counts": data.counts(),
        },
        parity=parity,
        extra={"report": "report/index.html", "guard": guard},
    )
    mv = registry.add(manifest, files)
    log.info("published %s:%s (test AUROC %.3f)", mv.name, mv.version, metrics["auroc"])
    return mv


def _fit_anomalib(
    cfg: AnomalyConfig, data: ImageSet, torch: Any, dev: str, progress: ProgressFn, weights: Path | None
) -> tuple:
    """PatchCore / PaDiM (anomalib torch models) on the good train images: scorer, model, init, seconds."""
    model, backbone_init = _build(cfg, torch, weights)
    model.to(dev)

    task = f"fit {cfg.name}"
    train = data.splits["train"]
    t0 = time.perf_counter()
    model.train()
    try:
        for i in range(0, len(train), cfg.batch):
            x = decode_images([r["image"] for r in train[i : i + cfg.batch]], cfg.imgsz, MEAN, STD)
            model(torch.from_numpy(x).to(dev))
            progress(task, min(i + cfg.batch, len(train)), len(train))
        if cfg.algorithm == "patchcore":
            if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
                log.warning(
                    "MALLOC_MMAP_THRESHOLD_ is not set: PatchCore's coreset may fragment memory "
                    "on large sets (start the process with MALLOC_MMAP_THRESHOLD_=1048576)"
                )
            emb = torch.vstack(model.embedding_store)
            model.embedding_store.clear()
            model.memory_bank = emb[k_center_greedy(emb, cfg.coreset_ratio, cfg.seed)]
        else:
            model.fit()
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(f"fitting {cfg.algorithm} failed: {exc}") from exc
    model.eval()
    fit_s = time.perf_counter() - t0
    net = _Scorer(model).eval()
    return net, model, backbone_init, fit_s, train


# -- model --------------------------------------------------------------------------------------


def _build(cfg: AnomalyConfig, torch: Any, weights: Path | None = None) -> tuple[Any, str]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm must never try the hub (fails fast instead)
    try:
        if cfg.algorithm == "patchcore":
            from anomalib.models.image.patchcore.torch_model import PatchcoreModel

            model = PatchcoreModel(
                layers=list(cfg.layers),
                backbone=cfg.backbone,
                pre_trained=False,
                num_neighbors=cfg.num_neighbors,
            )
        else:
            from anomalib.models.image.padim.torch_model import PadimModel

            model = PadimModel(
                layers=list(cfg.layers), backbone=cfg.backbone, pre_trained=False, n_features=cfg.n_features
            )
    except (ImportError, RuntimeError, ValueError) as exc:
        raise TrainingError(
            f"building {cfg.algorithm} on {cfg.backbone} failed: {exc}", hint="pip install anomalib==2.7.0"
        ) from exc
    weights = weights if weights is not None else cfg.weights
    if weights is None:
        log.warning(
            "no backbone weights given: %s starts from RANDOM initialisation (nothing is downloaded); "
            "register weights (`jangin weights add`) and pass --backbone-weights NAME for better features",
            cfg.backbone,
        )
        return model, "random"
    if not Path(weights).is_file():
        raise TrainingError(f"backbone weights {weights} not found; Jangin never downloads weights")
    try:
        sd = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, runtime and zip errors alike
        raise TrainingError(f"cannot read backbone weights {weights}: {exc}") from exc
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    fe = model.feature_extractor.feature_extractor
    own = fe.state_dict()
    sd = {k: v for k, v in sd.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    res = fe.load_state_dict(sd, strict=False)
    loaded = len(own) - len(res.missing_keys)
    if loaded == 0:
        raise TrainingError(f"{weights} holds no weight of a {cfg.backbone} backbone")
    log.info("backbone %s: %d of %d tensors loaded from %s", cfg.backbone, loaded, len(own), weights)
    return model, f"file:{Path(weights).name}"


def k_center_greedy(emb: Any, ratio: float, seed: int = 0, proj_dim: int = 128) -> Any:
    """Indices of a PatchCore coreset: greedy k-center on a Gaussian random projection of ``emb``.

    The algorithm of anomalib's ``KCenterGreedy``, vectorised in torch (anomalib's took ~66 s for
    1,227 centres from 12k patches on 2 busy cores; this ~1 s).
    """
    import torch

    n = max(1, int(len(emb) * ratio))
    g = torch.Generator().manual_seed(seed)
    x = emb.detach().float().cpu()
    if x.shape[1] > proj_dim:
        x = x @ (torch.randn(x.shape[1], proj_dim, generator=g) / proj_dim**0.5)
    first = int(torch.randint(len(x), (1,), generator=g))
    idx = torch.empty(n, dtype=torch.long)
    idx[0] = first
    # One mat-vec per centre, on one thread: these small ops only lose to thread hand-offs on a busy box.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sq = (x * x).sum(1)
        dmin = sq - 2 * (x @ x[first]) + sq[first]
        for k in range(1, n):
            i = int(torch.argmax(dmin))
            idx[k] = i
            dmin = torch.minimum(dmin, sq - 2 * (x @ x[i]) + sq[i])
    finally:
        torch.set_num_threads(threads)
    return idx.to(emb.device)


def _scorer_class() -> Any:
    import torch

    class Scorer(torch.nn.Module):
        """``images (N,3,H,W)`` → ``pred_score (N,)``, ``anomaly_map (N,1,H,W)``, raw."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: Any) -> tuple[Any, Any]:
            out = self.model(images)
            return out.pred_score.reshape(-1), out.anomaly_map

    return Scorer


def _Scorer(model: Any) -> Any:
    return _scorer_class()(model)


def _score(
    net: Any, rows: list[dict[str, Any]], cfg: AnomalyConfig, torch: Any, dev: str
) -> tuple[np.ndarray, np.ndarray]:
    scores, maps = [], []
    with torch.no_grad():
        for i in range(0, len(rows), cfg.batch):
            x = decode_images([r["image"] for r in rows[i : i + cfg.batch]], cfg.imgsz, MEAN, STD)
            s, m = net(torch.from_numpy(x).to(dev))
            scores.append(s.float().cpu().numpy())
            maps.append(m.float().cpu().numpy())
    if not scores:
        return np.zeros(0, np.float32), np.zeros((0, 1, cfg.imgsz, cfg.imgsz), np.float32)
    return np.concatenate(scores), np.concatenate(maps)


def _device(device: str, torch: Any) -> str:
    device = device.strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} asked for but CUDA is not available", hint="use --device cpu")
    return device


def _per_station(rows: list[dict[str, Any]], y: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stations = np.array([r.get("station") or "-" for r in rows], object)
    for st in sorted(set(stations.tolist())):
        m = stations == st
        out[st] = {"images": int(m.sum()), "defective": int(y[m].sum()), "auroc": roc_auc(y[m], s[m])}
    return out


def _masks(rows: list[dict[str, Any]], size: int) -> np.ndarray | None:
    """Ground-truth masks of ``rows`` at ``size`` (``(N, size, size)`` bool), or None when no row has one."""
    if not any(r.get("masks") for r in rows):
        return None
    return np.stack([decode_mask(r.get("masks") or [], size) for r in rows])


def _pixel_threshold(maps: np.ndarray, masks: np.ndarray | None) -> tuple[float, str]:
    """The pixel threshold, calibrated on its own: best pixel F1 on val masks when there are some, else
    the 99.9th percentile of the good val images' pixels (about one false pixel per thousand)."""
    if masks is not None and masks.any():
        flat_m, flat_s = masks.ravel(), maps.ravel()
        # Best F1 over 256 quantile thresholds (exact best-F1 over millions of pixels is too slow).
        cand = np.unique(np.quantile(flat_s, np.linspace(0.5, 1.0, 256)))
        pos = flat_m.sum()
        best, best_t = -1.0, float(cand[-1])
        for t in cand:
            pred = flat_s >= t
            tp = float((pred & flat_m).sum())
            f1 = 2 * tp / max(pred.sum() + pos, 1)
            if f1 > best:
                best, best_t = f1, float(t)
        return best_t, "best pixel F1 on val masks"
    good = maps if masks is None else maps[~masks.reshape(len(maps), -1).any(1)]
    if len(good) == 0:
        good = maps
    return float(np.quantile(good, 0.999)), "99.9th percentile of good val pixels (no masks)"


def _pixel_metrics(rows: list[dict[str, Any]], maps: np.ndarray, size: int, thr: float) -> dict[str, Any]:
    """Pixel AUROC, PRO (to FPR 0.3) and pixel F1 at the pixel threshold when ``rows`` have masks, with
    a grey-level baseline (distance of each pixel's grey level from the good images' median)."""
    masks = _masks(rows, size)
    if masks is None or not masks.any():
        return {"pixel_auroc": None, "pro": None}
    import cv2

    grey = np.stack(
        [
            cv2.resize(cv2.imdecode(np.frombuffer(r["image"], np.uint8), cv2.IMREAD_GRAYSCALE), (size, size))
            for r in rows
        ]
    ).astype(np.float32)
    ref = float(np.median(grey[~masks]))
    pm = binary_metrics(masks.ravel(), maps.ravel() >= thr)
    return {
        "pixel_auroc": rank_auc(masks, maps),
        "pro": pro_score(masks, maps),
        "pixel_f1": pm["f1"],
        "pixel_precision": pm["precision"],
        "pixel_recall": pm["recall"],
        "baseline_pixel_auroc": rank_auc(masks, np.abs(grey - ref)),
        "baseline_pro": pro_score(masks, np.abs(grey - ref)),
        "mask_images": int(masks.reshape(len(masks), -1).any(1).sum()),
    }


def _intensity_score(data: ImageSet, rows: list[dict[str, Any]]) -> np.ndarray:
    """Trivial baseline: distance of an image's mean grey level from the good training images'."""
    import cv2

    def grey(r: dict[str, Any]) -> float:
        return float(cv2.imdecode(np.frombuffer(r["image"], np.uint8), cv2.IMREAD_GRAYSCALE).mean())

    ref = np.median([grey(r) for r in data.splits["train"]])
    return np.array([abs(grey(r) - ref) for r in rows])


# -- export and parity ---------------------------------------------------------------------------


def export_anomaly_onnx(net: Any, path: Path, imgsz: int) -> Path:
    """Export the scorer to ONNX: input ``images``, outputs ``pred_score``, ``anomaly_map``; dynamic batch."""
    import warnings

    import torch

    net = net.cpu().eval()
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns about traced shapes and constant folding: expected here,
            # and the parity gate checks the result.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (torch.zeros(1, 3, imgsz, imgsz),),
                str(path),
                input_names=["images"],
                output_names=["pred_score", "anomaly_map"],
                dynamic_axes={
                    "images": {0: "batch"},
                    "pred_score": {0: "batch"},
                    "anomaly_map": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many kinds
        raise TrainingError(f"ONNX export of the anomaly model failed: {exc}") from exc
    return path


def normalise(raw: np.ndarray, threshold: float, lo: float, hi: float) -> np.ndarray:
    """anomalib's min-max normalisation: the threshold maps to 0.5, clipped to [0, 1]."""
    return np.clip((np.asarray(raw, np.float64) - threshold) / (hi - lo) + 0.5, 0.0, 1.0)


def check_anomaly_parity(
    onnx_path: Path,
    net: Any,
    images: np.ndarray,
    threshold: float,
    norm: dict[str, float],
    *,
    tolerance: float = 1e-3,
) -> dict[str, Any]:
    """Run the ONNX file (ONNX Runtime) and the torch scorer on the same inputs; refuse on a mismatch.

    Compares normalised image scores (the figure served) within ``tolerance``, normalised maps within
    ``10 × tolerance``, and the OK/NG decision of every image.

    Returns:
        The figures (for the manifest).

    Raises:
        TrainingError: The export differs beyond the tolerance; the message carries the figures.
    """
    import torch

    from jangin.training._ultralytics_env import import_onnxruntime

    ort = import_onnxruntime()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    if names[:2] != ["pred_score", "anomaly_map"] or sess.get_inputs()[0].name != "images":
        raise TrainingError(
            f"{onnx_path}: outputs {names} / input {sess.get_inputs()[0].name} break anomaly_v1"
        )
    o_s, o_m = sess.run(["pred_score", "anomaly_map"], {"images": images.astype(np.float32)})
    net = net.cpu().eval()
    with torch.no_grad():
        t_s, t_m = (t.numpy() for t in net(torch.from_numpy(images)))
    lo, hi = norm["score_min"], norm["score_max"]
    ds = np.abs(normalise(o_s, threshold, lo, hi) - normalise(t_s, threshold, lo, hi))
    dm = np.abs(
        normalise(o_m, threshold, norm["map_min"], norm["map_max"])
        - normalise(t_m, threshold, norm["map_min"], norm["map_max"])
    )
    flips = int(((o_s >= threshold) != (t_s >= threshold)).sum())
    figures = {
        "images": len(images),
        "max_norm_score_diff": float(ds.max()),
        "max_raw_score_diff": float(np.abs(o_s - t_s).max()),
        "max_norm_map_diff": float(dm.max()),
        "decision_flips": flips,
        "tolerance": tolerance,
        "passed": bool(ds.max() <= tolerance and dm.max() <= 10 * tolerance and flips == 0),
    }
    if not figures["passed"]:
        raise TrainingError(
            f"parity gate refused {onnx_path}: normalised score diff {figures['max_norm_score_diff']:.3g} "
            f"(tolerance {tolerance}), map diff {figures['max_norm_map_diff']:.3g}, {flips} decision flip(s) "
            f"on {len(images)} images",
            hint="the ONNX export does not compute what the trained model computes; do not serve it",
        )
    return figures
