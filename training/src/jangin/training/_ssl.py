"""Self-supervised backbone for anomaly models when no pretrained weights exist: CutPaste pretext + PatchCore.

A small CNN (three stages, ~0.3 M parameters) learns, from good images only and without labels, to tell
an image from the same image with a patch of itself cut and pasted elsewhere (CutPaste) or a thin
scar pasted (CutPaste-scar) (Li et al., "CutPaste: Self-Supervised Learning for Anomaly Detection and
Localization", CVPR 2021). Its stage-2 + stage-3 features then feed a PatchCore memory bank
(nearest-neighbour patch distance, greedy coreset), all in one torch module that exports to ONNX under
the ``anomaly_v1`` contract (``pred_score``, ``anomaly_map``).

Everything runs on the CPU in minutes at 64-128 px; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import TrainingError
from jangin.core.progress import ProgressFn

__all__ = [
    "SslConfig",
    "cutpaste_batch",
    "fit_cutpaste",
    "fit_scratch",
    "load_backbone",
    "pretrain_cutpaste",
    "save_backbone",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SslConfig:
    """CutPaste pretraining and PatchCore settings.

    Attributes:
        epochs: Pretext epochs over the good training images.
        batch: Images per step (each also appears as a CutPaste and a scar copy).
        lr: Adam learning rate.
        width: Channels of the first stage (then ×2, ×4).
        coreset_ratio: Share of training patch features kept in the memory bank.
        max_bank: Cap on patch features before the coreset (a seeded subsample).
        seed: Seed of init, augmentation and coreset.
        threads: torch threads while training (0 = leave as is).
    """

    epochs: int = 30
    batch: int = 32
    lr: float = 1e-3
    width: int = 16
    coreset_ratio: float = 0.1
    max_bank: int = 60000
    seed: int = 0
    threads: int = 0


def _modules() -> dict[str, Any]:
    import torch
    from torch import nn
    from torch.nn import functional as F

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class Backbone(nn.Module):
        """Three conv stages at 1/2, 1/4, 1/8 resolution; ``features`` = stage 2 ⊕ upsampled stage 3."""

        def __init__(self, width: int = 32) -> None:
            super().__init__()
            self.width = width
            self.stem = nn.Sequential(block(3, width), nn.MaxPool2d(2))
            self.stage2 = nn.Sequential(block(width, 2 * width), nn.MaxPool2d(2))
            self.stage3 = nn.Sequential(block(2 * width, 4 * width), nn.MaxPool2d(2))
            self.head = nn.Sequential(
                nn.Linear(4 * width, 4 * width), nn.ReLU(inplace=True), nn.Linear(4 * width, 3)
            )

        def stages(self, x: Any) -> tuple[Any, Any]:
            f2 = self.stage2(self.stem(x))
            return f2, self.stage3(f2)

        def features(self, x: Any) -> Any:
            f2, f3 = self.stages(x)
            f3 = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
            f = torch.cat([f2, f3], 1)
            return F.avg_pool2d(f, 3, stride=1, padding=1, count_include_pad=False)  # local context

        def forward(self, x: Any) -> Any:
            _, f3 = self.stages(x)
            return self.head(f3.mean((2, 3)))

    class PatchScorer(nn.Module):
        """``images`` → ``pred_score (N,)`` = max patch distance, ``anomaly_map (N,1,H,W)``, raw."""

        def __init__(self, backbone: Any, bank: Any) -> None:
            super().__init__()
            self.backbone = backbone
            self.register_buffer("bank", bank)
            self.register_buffer("bank_sq", (bank * bank).sum(1))

        def forward(self, images: Any) -> tuple[Any, Any]:
            f = self.backbone.features(images)
            n, c, h, w = f.shape
            q = f.permute(0, 2, 3, 1).reshape(-1, c)
            d2 = (q * q).sum(1, keepdim=True) - 2 * q @ self.bank.t() + self.bank_sq[None, :]
            d = torch.sqrt(torch.clamp(d2.min(1).values, min=0.0)).reshape(n, 1, h, w)
            score = d.reshape(n, -1).max(1).values
            amap = F.interpolate(d, size=images.shape[-2:], mode="bilinear", align_corners=False)
            return score, amap

    return {"Backbone": Backbone, "PatchScorer": PatchScorer}


def build_backbone(width: int = 32) -> Any:
    """A fresh (random-init) CutPaste backbone."""
    return _modules()["Backbone"](width)


def cutpaste_batch(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Normal, CutPaste and CutPaste-scar copies of ``x (N,C,H,W)``: ``(3N,C,H,W)`` and labels 0/1/2.

    CutPaste: a rectangle of 2-15 % of the area, aspect 0.3-3.3, copied (brightness-jittered) to another
    place. Scar: a thin 2-6 px × 10-40 % long strip, horizontal or vertical, copied the same way.
    """
    n, _, h, w = x.shape
    base = _augment(x, rng)
    out = [base]
    for kind in (1, 2):
        y = base.copy()
        for i in range(n):
            if kind == 1:
                area = rng.uniform(0.02, 0.15) * h * w
                ar = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
                ph = int(np.clip(round(np.sqrt(area * ar)), 2, h - 1))
                pw = int(np.clip(round(np.sqrt(area / ar)), 2, w - 1))
            else:
                long, thin = int(rng.uniform(0.1, 0.4) * max(h, w)) + 2, int(rng.integers(2, 7))
                ph, pw = (thin, long) if rng.random() < 0.5 else (long, thin)
                ph, pw = min(ph, h - 1), min(pw, w - 1)
            sy, sx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
            ty, tx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
            patch = y[i, :, sy : sy + ph, sx : sx + pw] * rng.uniform(0.8, 1.2) + rng.uniform(-0.3, 0.3)
            y[i, :, ty : ty + ph, tx : tx + pw] = patch
        out.append(y)
    labels = np.repeat(np.arange(3), n)
    return np.concatenate(out).astype(np.float32), labels


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Texture-safe augmentation: flips and 90° turns (square images), a per-image brightness shift."""
    y = x.copy()
    if rng.random() < 0.5:
        y = y[..., ::-1]
    if rng.random() < 0.5:
        y = y[..., ::-1, :]
    if y.shape[-1] == y.shape[-2]:
        y = np.rot90(y, int(rng.integers(4)), axes=(-2, -1))
    y = y + rng.uniform(-0.1, 0.1, (len(y), 1, 1, 1))
    return np.ascontiguousarray(y, dtype=np.float32)


def pretrain_cutpaste(
    x: np.ndarray, cfg: SslConfig | None = None, *, progress: ProgressFn | None = None
) -> tuple[Any, dict[str, Any]]:
    """Train the backbone on the CutPaste pretext (3-way: normal / cutpaste / scar) on good images ``x``.

    Args:
        x: Normalised good images ``(N, 3, H, W)`` float32.
        cfg: Settings.
        progress: ``progress(task, done, total)`` per epoch.

    Returns:
        The backbone (eval mode, CPU) and figures: pretext accuracy of the last epoch, seconds.
    """
    import torch
    from torch.nn import functional as F

    from jangin.training._loop import train_epochs

    cfg = cfg or SslConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = build_backbone(cfg.width)

    def step(xb: np.ndarray) -> tuple[Any, dict[str, float]]:
        batch, labels = cutpaste_batch(xb, rng)
        logits = net(torch.from_numpy(batch))
        target = torch.from_numpy(labels)
        hits = int((logits.argmax(1) == target).sum())
        return F.cross_entropy(logits, target), {"hits": hits, "total": len(labels)}

    sums, _, seconds = train_epochs(
        net, x, step, cfg, rng=rng, weight_decay=1e-5, task="cutpaste pretext", progress=progress
    )
    acc = sums.get("hits", 0.0) / max(sums.get("total", 0.0), 1.0)
    return net, {"pretext_accuracy": round(acc, 4), "pretrain_seconds": round(seconds, 2)}


def patchcore_on(
    backbone: Any, x: np.ndarray, cfg: SslConfig | None = None, *, batch: int = 64
) -> tuple[Any, dict[str, Any]]:
    """A PatchCore scorer on ``backbone``'s features of the good images ``x`` (coreset memory bank)."""
    import torch

    from jangin.training._anomaly import k_center_greedy

    cfg = cfg or SslConfig()
    t0 = time.perf_counter()
    backbone.eval()
    feats = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            f = backbone.features(torch.from_numpy(np.ascontiguousarray(x[i : i + batch])))
            feats.append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]))
    emb = torch.cat(feats)
    if len(emb) > cfg.max_bank:
        g = torch.Generator().manual_seed(cfg.seed)
        emb = emb[torch.randperm(len(emb), generator=g)[: cfg.max_bank]]
    bank = emb[k_center_greedy(emb, cfg.coreset_ratio, cfg.seed)].contiguous()
    scorer = _modules()["PatchScorer"](backbone, bank).eval()
    return scorer, {
        "bank": len(bank),
        "patches": len(emb),
        "bank_seconds": round(time.perf_counter() - t0, 2),
    }


def fit_cutpaste(
    x: np.ndarray, cfg: SslConfig | None = None, *, backbone: Any = None, progress: ProgressFn | None = None
) -> tuple[Any, dict[str, Any]]:
    """CutPaste-pretrain a backbone on good images ``x`` (unless one is given), then build PatchCore on it.

    Returns:
        The ``anomaly_v1`` scorer module (CPU, eval) and the training figures.
    """
    info: dict[str, Any] = {}
    if backbone is None:
        backbone, info = pretrain_cutpaste(x, cfg, progress=progress)
    scorer, bank_info = patchcore_on(backbone, x, cfg)
    return scorer, {**info, **bank_info}


def save_backbone(backbone: Any, path: Path) -> str:
    """Write the backbone's state dict (plus its width) to ``path``; its sha256."""
    import torch

    torch.save({"state_dict": backbone.state_dict(), "width": torch.tensor(backbone.width)}, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_backbone(path: Path) -> Any:
    """A CutPaste backbone from a file written by :func:`save_backbone` (tensors only, nothing unpickled).

    Raises:
        TrainingError: Missing, unreadable, or not a CutPaste backbone.
    """
    import torch

    if not Path(path).is_file():
        raise TrainingError(f"backbone weights {path} not found; Jangin never downloads weights")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = build_backbone(int(blob["width"]))
        net.load_state_dict(blob["state_dict"])
    except Exception as exc:  # pickle, key, size and runtime errors alike
        raise TrainingError(
            f"{path} is not a CutPaste backbone: {exc}",
            hint="give a file written by `jangin train anomaly --method cutpaste` (backbone.pt)",
        ) from exc
    return net.eval()


def fit_scratch(
    cfg: Any, x: np.ndarray, work_dir: Path, progress: ProgressFn | None = None, *, source: str = ""
) -> tuple[Any, str, dict[str, Any]]:
    """``--method cutpaste|draem|texture`` for :func:`jangin.training.train_anomaly` on good images ``x``.

    Args:
        cfg: The :class:`~jangin.training.AnomalyConfig` (``algorithm``, ``epochs``, ``seed``,
            ``coreset_ratio``, ``weights``: a CutPaste backbone file to reuse instead of pretraining).
        x: Normalised good training images ``(N, 3, H, W)``.
        work_dir: Where ``backbone.pt`` is written (cutpaste).
        progress: ``progress(task, done, total)``.
        source: What the images are (dataset and snapshot), for the weights registry entry.

    A CutPaste backbone pretrained here is registered in the site's weights registry
    (:func:`jangin.core.weights.default_registry`) as ``<name>-cutpaste`` (framework ``jangin``), so a
    later run can reuse it by name: ``--weights <name>-cutpaste``.

    Returns:
        The scorer, how its backbone was initialised (for the manifest), and the fit figures
        (``backbone_file`` / ``backbone_sha256`` / ``backbone_weights`` for cutpaste).
    """
    if len(x) < 2:
        raise TrainingError(f"{cfg.algorithm} needs at least 2 good training images, got {len(x)}")
    if cfg.algorithm == "draem":
        from jangin.training._draem import DraemConfig, fit_draem

        net, info = fit_draem(x, DraemConfig(epochs=cfg.epochs, seed=cfg.seed), progress=progress)
        return net, "random (trained from scratch on synthetic anomalies)", info
    if cfg.algorithm == "texture":
        from jangin.training._texture import TextureConfig, fit_texture

        net, info = fit_texture(x, TextureConfig(seed=cfg.seed), progress=progress)
        return net, "none (fixed Gabor filter bank and grey-level statistics; no learned weights)", info
    if cfg.algorithm != "cutpaste":
        raise ValueError(f"not a from-scratch method: {cfg.algorithm}")
    scfg = SslConfig(epochs=cfg.epochs, seed=cfg.seed, coreset_ratio=cfg.coreset_ratio)
    from jangin.core.weights import default_registry

    weights = default_registry()
    record: dict[str, Any] = {}
    if cfg.weights is not None:
        given = Path(cfg.weights)
        if not given.is_file() and str(given) in weights:  # a registered name
            entry = weights.get(str(given))
            given, record = entry.file, entry.record()
        backbone, info = load_backbone(given), {"pretrained_from": str(cfg.weights)}
        init = f"weights:{cfg.weights}" if record else f"file:{Path(cfg.weights).name}"
    else:
        backbone, info = pretrain_cutpaste(x, scfg, progress=progress)
        init = "cutpaste self-supervised on the train images"
    scorer, bank = patchcore_on(backbone, x, scfg)
    path = Path(work_dir) / "backbone.pt"
    sha = save_backbone(backbone, path)
    if not record:
        entry = weights.add(
            f"{cfg.name}-cutpaste"[:64],
            path,
            architecture=f"jangin-cutpaste-cnn-w{backbone.width}",
            framework="jangin",
            licence="Apache-2.0 (trained on site from the plant's own images)",
            source=f"CutPaste self-supervised on {len(x)} good images {source}".strip(),
            replace=True,
        )
        record = entry.record()
    return scorer, init, {**info, **bank, "backbone_file": str(path), "backbone_sha256": sha, **record}
