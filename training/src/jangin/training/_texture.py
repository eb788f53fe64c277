"""Texture descriptors + nearest neighbours: an anomaly method with no learned weights at all.

For surfaces that are textures (rolled steel, cast, machined, fabric), a fixed filter bank describes a
good part better than a CNN that could not be pretrained: each image becomes a 37-number descriptor
(grey-level mean, spread, 1/5/25/50/75/95/99th percentiles, mean and spread of the horizontal and
vertical gradients, and the mean and spread of the energy of 12 Gabor filters at 3 wavelengths × 4
orientations), standardised on the good training images; the image score is the mean distance to its
``k`` nearest good training descriptors. The anomaly map applies the same idea locally: per position,
windowed grey mean / spread / gradient and Gabor energies, scored by the distance to the nearest local
descriptor of the good training images (a PatchCore memory bank on filter-bank features).

Everything is one torch module exported to ONNX under the ``anomaly_v1`` contract (``pred_score``,
``anomaly_map``); fitting is feature extraction only (seconds on a CPU, no epochs, nothing downloaded).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from jangin.core.progress import ProgressFn, null_progress

__all__ = ["TextureConfig", "fit_texture", "gabor_bank"]

PERCENTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class TextureConfig:
    """Texture descriptor settings.

    Attributes:
        wavelengths: Gabor wavelengths in pixels (at the model's input size).
        orientations: Gabor orientations (evenly spread over 180°).
        kernel: Side of the Gabor kernels.
        k: Nearest good descriptors averaged into the image score.
        window: Side of the local window of the anomaly map's descriptors.
        stride: Step of the anomaly map's descriptors (the map is upsampled to the input size).
        max_bank: Local descriptors kept (a seeded subsample) in the map's memory bank.
        seed: Seed of the subsample.
    """

    wavelengths: tuple[float, ...] = (4.0, 8.0, 16.0)
    orientations: int = 4
    kernel: int = 21
    k: int = 5
    window: int = 15
    stride: int = 4
    max_bank: int = 20000
    seed: int = 0


def gabor_bank(cfg: TextureConfig) -> np.ndarray:
    """Zero-mean Gabor kernels ``(len(wavelengths) * orientations, 1, kernel, kernel)`` (sigma 0.56 λ, γ 0.5)."""
    half = cfg.kernel // 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    out = []
    for lam in cfg.wavelengths:
        sigma = 0.56 * lam
        for i in range(cfg.orientations):
            th = np.pi * i / cfg.orientations
            xr = xx * np.cos(th) + yy * np.sin(th)
            yr = -xx * np.sin(th) + yy * np.cos(th)
            k = np.exp(-(xr**2 + 0.25 * yr**2) / (2 * sigma**2)) * np.cos(2 * np.pi * xr / lam)
            out.append(k - k.mean())
    return np.stack(out)[:, None].astype(np.float32)


def _modules() -> dict[str, Any]:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class TextureFeatures(nn.Module):
        """Normalised images → grey, global descriptors ``(N, D)`` and local descriptors ``(N, L, h, w)``."""

        def __init__(self, cfg: TextureConfig, mean: np.ndarray, std: np.ndarray) -> None:
            super().__init__()
            self.pad = cfg.kernel // 2
            self.window = cfg.window
            self.stride = cfg.stride
            self.register_buffer("gabor", torch.from_numpy(gabor_bank(cfg)))
            self.register_buffer("mean", torch.tensor(np.asarray(mean, np.float32).reshape(1, 3, 1, 1)))
            self.register_buffer("std", torch.tensor(np.asarray(std, np.float32).reshape(1, 3, 1, 1)))
            self.register_buffer("quantiles", torch.tensor(PERCENTILES, dtype=torch.float32))
            self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1))

        def _pool(self, t: Any) -> Any:
            return F.avg_pool2d(
                t, self.window, stride=self.stride, padding=self.window // 2, count_include_pad=False
            )

        def forward(self, images: Any) -> tuple[Any, Any]:
            g = ((images * self.std + self.mean) * self.luma).sum(1, keepdim=True)  # grey in [0, 1]
            n = g.shape[0]
            flat = g.reshape(n, -1)
            mu = flat.mean(1, keepdim=True)
            sd = torch.sqrt(((flat - mu) ** 2).mean(1) + 1e-12)
            srt = torch.sort(flat, 1).values
            idx = torch.round(self.quantiles * (flat.shape[1] - 1)).long()
            pct = srt.index_select(1, idx)
            gx = (g[..., 1:] - g[..., :-1]).abs()
            gy = (g[..., 1:, :] - g[..., :-1, :]).abs()
            resp = F.conv2d(F.pad(g, [self.pad] * 4, mode="reflect"), self.gabor).abs()
            parts = [mu, sd[:, None], pct]
            for t in (gx, gy, resp):
                m = t.mean((2, 3), keepdim=True)
                parts += [m.reshape(n, -1), torch.sqrt(((t - m) ** 2).mean((2, 3)) + 1e-12)]
            desc = torch.cat(parts, 1)
            lm = self._pool(g)
            lsd = torch.sqrt(torch.clamp(self._pool(g * g) - lm * lm, min=0.0) + 1e-12)
            lgx = self._pool(F.pad(gx, [0, 1, 0, 0], mode="replicate"))
            lgy = self._pool(F.pad(gy, [0, 0, 0, 1], mode="replicate"))
            local = torch.cat([lm, lsd, lgx, lgy, self._pool(resp)], 1)
            return desc, local

    class TextureScorer(nn.Module):
        """``images`` → ``pred_score (N,)`` (mean distance to the ``k`` nearest good descriptors),
        ``anomaly_map (N,1,H,W)`` (distance of the local descriptors to the nearest good one)."""

        def __init__(self, features: Any, stats: dict[str, Any], k: int) -> None:
            super().__init__()
            self.features = features
            self.k = k
            for name, value in stats.items():
                self.register_buffer(name, value)

        @staticmethod
        def _dist(q: Any, bank: Any, bank_sq: Any) -> Any:
            d2 = (q * q).sum(1, keepdim=True) - 2 * q @ bank.t() + bank_sq[None, :]
            return torch.clamp(d2, min=0.0)

        def forward(self, images: Any) -> tuple[Any, Any]:
            desc, local = self.features(images)
            z = (desc - self.g_mu) / self.g_sd
            d = self._dist(z, self.g_bank, self.g_bank_sq)
            score = torch.sqrt(torch.topk(d, self.k, 1, largest=False).values + 1e-12).mean(1)
            n, c, h, w = local.shape
            q = (local.permute(0, 2, 3, 1).reshape(-1, c) - self.l_mu) / self.l_sd
            dl = torch.sqrt(self._dist(q, self.l_bank, self.l_bank_sq).min(1).values + 1e-12)
            amap = F.interpolate(
                dl.reshape(n, 1, h, w), size=images.shape[-2:], mode="bilinear", align_corners=False
            )
            return score, amap

    return {"TextureFeatures": TextureFeatures, "TextureScorer": TextureScorer}


def fit_texture(
    x: np.ndarray,
    cfg: TextureConfig | None = None,
    *,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    batch: int = 128,
) -> tuple[Any, dict[str, Any]]:
    """Describe the good images ``x`` and build the texture scorer on them.

    Args:
        x: Normalised good training images ``(N, 3, H, W)`` float32 (``(x/255 - mean) / std``).
        cfg: Settings.
        mean: Per-channel normalisation mean of ``x`` (default: ImageNet's, as Jangin's models use).
        std: Per-channel normalisation std of ``x``.
        progress: ``progress(task, done, total)`` per batch.
        batch: Images per feature batch.

    Returns:
        The ``anomaly_v1`` scorer module (CPU, eval) and the fit figures.
    """
    import torch

    from jangin.training._anomaly import MEAN, STD

    cfg = cfg or TextureConfig()
    progress = progress or null_progress
    if len(x) <= cfg.k:
        raise ValueError(f"texture needs more than k={cfg.k} good training images, got {len(x)}")
    t0 = time.perf_counter()
    mods = _modules()
    feats = mods["TextureFeatures"](cfg, MEAN if mean is None else mean, STD if std is None else std).eval()
    descs, locs = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            d, loc = feats(torch.from_numpy(np.ascontiguousarray(x[i : i + batch])))
            descs.append(d)
            locs.append(loc.permute(0, 2, 3, 1).reshape(-1, loc.shape[1]))
            progress("texture descriptors", min(i + batch, len(x)), len(x))
    desc, local = torch.cat(descs), torch.cat(locs)
    if len(local) > cfg.max_bank:
        g = torch.Generator().manual_seed(cfg.seed)
        local = local[torch.randperm(len(local), generator=g)[: cfg.max_bank]]
    g_mu, g_sd = desc.mean(0), desc.std(0) + 1e-6
    l_mu, l_sd = local.mean(0), local.std(0) + 1e-6
    g_bank, l_bank = (desc - g_mu) / g_sd, (local - l_mu) / l_sd
    stats = {
        "g_mu": g_mu,
        "g_sd": g_sd,
        "g_bank": g_bank.contiguous(),
        "g_bank_sq": (g_bank * g_bank).sum(1),
        "l_mu": l_mu,
        "l_sd": l_sd,
        "l_bank": l_bank.contiguous(),
        "l_bank_sq": (l_bank * l_bank).sum(1),
    }
    scorer = mods["TextureScorer"](feats, stats, cfg.k).eval()
    return scorer, {
        "descriptor": int(desc.shape[1]),
        "local_descriptor": int(local.shape[1]),
        "bank": len(g_bank),
        "local_bank": len(l_bank),
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
