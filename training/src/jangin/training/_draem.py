"""DRAEM-style anomaly model from scratch: reconstruction + discrimination, trained on synthetic anomalies.

After Zavrtanik et al., "DRAEM: A discriminatively trained reconstruction embedding for surface anomaly
detection", ICCV 2021 (anomalib ships the original as ``Draem``): good images get Perlin-noise shaped
regions replaced by texture from other good images; a reconstruction network learns to give back the
clean image, a discriminative U-Net learns, from the image and its reconstruction, where the planted
region is. No pretrained weights anywhere. The networks here are small (widths 16-32, ~0.5 M parameters)
so that a few minutes of CPU train them at 64-128 px; the scorer exports to ONNX under ``anomaly_v1``:
``anomaly_map`` = the discriminator's anomaly probability, ``pred_score`` = max of its locally averaged
map.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from jangin.core.progress import ProgressFn

__all__ = ["DraemConfig", "fit_draem", "perlin_mask", "synth_anomalies"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DraemConfig:
    """DRAEM training settings.

    Attributes:
        epochs: Passes over the good training images.
        batch: Images per step.
        lr: Adam learning rate.
        width: Base channels of both networks.
        p_anomaly: Share of training images that get a synthetic anomaly.
        smooth: Side of the mean filter over the map before its max is taken (image score).
        seed: Seed of init and augmentation.
        threads: torch threads while training (0 = leave as is).
    """

    epochs: int = 20
    batch: int = 16
    lr: float = 1e-3
    width: int = 16
    p_anomaly: float = 0.7
    smooth: int = 9
    seed: int = 0
    threads: int = 0


def perlin_noise(h: int, w: int, res_y: int, res_x: int, rng: np.random.Generator) -> np.ndarray:
    """2-D Perlin noise ``(h, w)`` in about [-1, 1]; ``h`` / ``w`` multiples of ``res_y`` / ``res_x``."""
    dy, dx = h // res_y, w // res_x
    gy, gx = np.meshgrid(np.arange(h) / dy % 1, np.arange(w) / dx % 1, indexing="ij")
    ang = 2 * np.pi * rng.random((res_y + 1, res_x + 1))
    grads = np.stack([np.cos(ang), np.sin(ang)], -1)

    def tile(a: slice, b: slice) -> np.ndarray:
        return np.repeat(np.repeat(grads[a, b], dy, 0), dx, 1)[:h, :w]

    def dot(g: np.ndarray, sy: float, sx: float) -> np.ndarray:
        return (gy + sy) * g[..., 0] + (gx + sx) * g[..., 1]

    n00 = dot(tile(slice(0, -1), slice(0, -1)), 0, 0)
    n10 = dot(tile(slice(1, None), slice(0, -1)), -1, 0)
    n01 = dot(tile(slice(0, -1), slice(1, None)), 0, -1)
    n11 = dot(tile(slice(1, None), slice(1, None)), -1, -1)

    def fade(t: np.ndarray) -> np.ndarray:
        return 6 * t**5 - 15 * t**4 + 10 * t**3

    ty, tx = fade(gy), fade(gx)
    return np.sqrt(2) * ((n00 * (1 - ty) + n10 * ty) * (1 - tx) + (n01 * (1 - ty) + n11 * ty) * tx)


def perlin_mask(h: int, w: int, rng: np.random.Generator, threshold: float = 0.5) -> np.ndarray:
    """A bool blob mask from thresholded Perlin noise at random scales (never empty)."""
    scales = [s for s in (1, 2, 4, 8, 16) if h % s == 0 and w % s == 0 and h // s >= 4 and w // s >= 4]
    for _ in range(10):
        m = perlin_noise(h, w, int(rng.choice(scales)), int(rng.choice(scales)), rng) > threshold
        if m.mean() > 0.005:
            return m
    m = np.zeros((h, w), bool)
    y, x = rng.integers(0, h - h // 8), rng.integers(0, w - w // 8)
    m[y : y + h // 8, x : x + w // 8] = True
    return m


def synth_anomalies(x: np.ndarray, rng: np.random.Generator, p: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Plant anomalies in ``x (N,C,H,W)``: Perlin regions filled with texture from other images of ``x``.

    The source is another image, flipped / turned, contrast-stretched and shifted, blended with weight
    ``1 - beta`` (beta uniform in 0..0.8). Returns the images and the masks ``(N,1,H,W)`` float32.
    """
    n, _, h, w = x.shape
    out = x.copy()
    masks = np.zeros((n, 1, h, w), np.float32)
    for i in range(n):
        if rng.random() >= p:
            continue
        m = perlin_mask(h, w, rng)
        src = x[int(rng.integers(n))]
        src = np.rot90(src, int(rng.integers(4)), axes=(-2, -1)) if h == w else src
        if rng.random() < 0.5:
            src = src[..., ::-1]
        src = src * rng.uniform(0.5, 2.0) + rng.uniform(-1.0, 1.0)
        beta = rng.uniform(0, 0.8)
        out[i] = np.where(m[None], beta * x[i] + (1 - beta) * src, x[i])
        masks[i, 0] = m
    return out.astype(np.float32), masks


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

    class UNet(nn.Module):
        """Three-level encoder/decoder; ``skips=False`` makes it a plain autoencoder (the reconstructor)."""

        def __init__(self, cin: int, cout: int, width: int, skips: bool) -> None:
            super().__init__()
            w = width
            self.skips = skips
            self.e1, self.e2, self.e3 = block(cin, w), block(w, 2 * w), block(2 * w, 4 * w)
            self.mid = block(4 * w, 4 * w)
            k = 2 if skips else 1
            self.d3, self.d2, self.d1 = block(4 * w * k, 2 * w), block(2 * w * k, w), block(w * k, w)
            self.out = nn.Conv2d(w, cout, 1)

        def forward(self, x: Any) -> Any:
            e1 = self.e1(x)
            e2 = self.e2(F.max_pool2d(e1, 2))
            e3 = self.e3(F.max_pool2d(e2, 2))
            m = self.mid(F.max_pool2d(e3, 2))

            def up(a: Any, skip: Any) -> Any:
                a = F.interpolate(a, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                return torch.cat([a, skip], 1) if self.skips else a

            d3 = self.d3(up(m, e3))
            d2 = self.d2(up(d3, e2))
            d1 = self.d1(up(d2, e1))
            return self.out(d1)

    class Draem(nn.Module):
        """``images`` → ``pred_score (N,)``, ``anomaly_map (N,1,H,W)`` (anomaly probability)."""

        def __init__(self, width: int = 16, smooth: int = 9) -> None:
            super().__init__()
            self.recon = UNet(3, 3, width, skips=False)
            self.disc = UNet(6, 2, width, skips=True)
            self.smooth = smooth

        def train_forward(self, x: Any) -> tuple[Any, Any]:
            r = self.recon(x)
            return r, self.disc(torch.cat([x, r], 1))

        def forward(self, images: Any) -> tuple[Any, Any]:
            _, logits = self.train_forward(images)
            amap = torch.softmax(logits, 1)[:, 1:2]
            k = self.smooth
            pooled = F.avg_pool2d(amap, k, stride=1, padding=k // 2, count_include_pad=False)
            return pooled.flatten(1).max(1).values, amap

    return {"Draem": Draem}


def _ssim_loss(a: Any, b: Any, k: int = 7) -> Any:
    """1 - mean local SSIM (uniform window), the structural half of DRAEM's reconstruction loss."""
    from torch.nn import functional as F

    def mu(t: Any) -> Any:
        return F.avg_pool2d(t, k, stride=1, padding=k // 2, count_include_pad=False)

    ma, mb = mu(a), mu(b)
    va, vb, cov = mu(a * a) - ma * ma, mu(b * b) - mb * mb, mu(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return 1 - s.mean()


def _focal(logits: Any, target: Any, gamma: float = 2.0) -> Any:
    from torch.nn import functional as F

    logp = F.log_softmax(logits, 1)
    t = target.long()[:, 0]
    lp = logp.gather(1, t[:, None])[:, 0]
    return (-((1 - lp.exp()) ** gamma) * lp).mean()


def fit_draem(
    x: np.ndarray, cfg: DraemConfig | None = None, *, progress: ProgressFn | None = None
) -> tuple[Any, dict[str, Any]]:
    """Train the DRAEM-style model on good images ``x (N,3,H,W)`` (normalised float32).

    Returns:
        The ``anomaly_v1`` scorer (CPU, eval) and figures (last epoch's losses, seconds).
    """
    import torch
    from torch.nn import functional as F

    from jangin.training._loop import train_epochs

    cfg = cfg or DraemConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = _modules()["Draem"](cfg.width, cfg.smooth)

    def step(clean: np.ndarray) -> tuple[Any, dict[str, float]]:
        aug, m = synth_anomalies(clean, rng, cfg.p_anomaly)
        xa, xc, tm = (torch.from_numpy(a) for a in (aug, clean, m))
        r, logits = net.train_forward(xa)
        l_rec = F.mse_loss(r, xc) + _ssim_loss(r, xc)
        l_seg = _focal(logits, tm)
        return l_rec + l_seg, {"recon": l_rec.item(), "seg": l_seg.item()}

    sums, steps, seconds = train_epochs(net, x, step, cfg, rng=rng, task="draem", progress=progress)
    last = {k: round(v / max(steps, 1), 4) for k, v in sums.items()}
    return net, {"loss": last, "train_seconds": round(seconds, 2)}
