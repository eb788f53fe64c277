"""The epoch loop the from-scratch anomaly methods share (CutPaste pretext, DRAEM).

Adam with cosine-annealed learning rate over shuffled mini-batches of the good images; the method
gives one ``step`` that turns a batch into a loss and the figures to sum over the epoch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jangin.core.progress import ProgressFn, null_progress

__all__ = ["train_epochs"]

log = logging.getLogger(__name__)

Step = Callable[[np.ndarray], tuple[Any, dict[str, float]]]


def train_epochs(
    net: Any,
    x: np.ndarray,
    step: Step,
    cfg: Any,
    *,
    rng: np.random.Generator,
    weight_decay: float = 0.0,
    task: str = "train",
    progress: ProgressFn | None = None,
) -> tuple[dict[str, float], int, float]:
    """Train ``net`` on ``x`` for ``epochs``; ``step(batch) -> (loss, figures)`` is called per batch.

    Args:
        net: The torch module (left in eval mode on return).
        x: Good training images ``(N, C, H, W)``, shuffled per epoch with ``rng``.
        step: Loss of one batch (a tensor) and figures (floats) summed over the epoch.
        cfg: The method's settings: ``epochs`` (passes over ``x``), ``batch`` (images per step), ``lr``
            (Adam, cosine-annealed to 0 over the epochs), ``threads`` (torch threads while training,
            0 = leave as is).
        rng: The method's generator (shuffling; the step may draw from it too).
        weight_decay: Adam weight decay.
        task: Name for progress and the log.
        progress: ``progress(task, done, total)`` per epoch.

    Returns:
        The last epoch's summed figures, its number of steps and the seconds taken.
    """
    import torch

    progress = progress or null_progress
    epochs, batch = cfg.epochs, cfg.batch
    before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    t0 = time.perf_counter()
    sums: dict[str, float] = {}
    steps = 0
    try:
        net.train()
        for ep in range(epochs):
            order = rng.permutation(len(x))
            sums, steps = {}, 0
            for i in range(0, len(x), batch):
                loss, figures = step(np.ascontiguousarray(x[order[i : i + batch]]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                for k, v in figures.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                steps += 1
            sched.step()
            progress(task, ep + 1, epochs)
            log.debug("%s epoch %d: %s over %d steps", task, ep + 1, sums, steps)
    finally:
        torch.set_num_threads(before)
    net.eval()
    return sums, steps, time.perf_counter() - t0
