"""Evaluation reports: an ``index.html`` with PNG plots, written into a model version's ``report/``."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from jangin.training._metrics import pr_curve, roc_curve

__all__ = ["anomaly_report"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _curves(out: Path, y: np.ndarray, s: np.ndarray, thr: float | None, title: str) -> list[Path]:
    plt = _plt()
    files = []
    fpr, tpr = roc_curve(y, s)
    p, r, _ = pr_curve(y, s)
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))
    ax[0].plot(fpr, tpr)
    ax[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    ax[0].set(xlabel="false-positive rate", ylabel="true-positive rate", title=f"ROC ({title})")
    ax[1].plot(r, p)
    ax[1].set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.05))
    bins = np.linspace(float(s.min()), float(s.max()) + 1e-9, 25)
    ax[2].hist(s[~y], bins=bins, alpha=0.6, label="OK / good")
    ax[2].hist(s[y], bins=bins, alpha=0.6, label="NG / defective")
    if thr is not None:
        ax[2].axvline(thr, color="k", ls="--", label="threshold")
    ax[2].set(xlabel="score", title="score distribution")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    files.append(out / "curves.png")
    fig.savefig(files[-1], dpi=80)
    plt.close(fig)
    return files


def _confusion(out: Path, m: dict[str, Any], labels: tuple[str, str]) -> Path:
    plt = _plt()
    cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
    fig, ax = plt.subplots(figsize=(3.4, 3))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix",
    )
    fig.tight_layout()
    path = out / "confusion_matrix.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _page(out: Path, title: str, metrics: dict[str, Any], images: list[Path], notes: str = "") -> Path:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v) if isinstance(v, dict) else str(v))}</td></tr>"
        for k, v in metrics.items()
    )
    imgs = "".join(f'<p><img src="{p.name}" alt="{p.stem}"></p>' for p in images)
    path = out / "index.html"
    path.write_text(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left;"
        "border-bottom:1px solid #ddd;font-size:13px}</style>"
        f"<h1>{html.escape(title)}</h1>{notes}<table>{rows}</table>{imgs}\n"
    )
    return path


def anomaly_report(
    out: Path,
    name: str,
    metrics: dict[str, Any],
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    rows: list[dict[str, Any]],
    maps: np.ndarray,
    norm: dict[str, float],
    imgsz: int,
) -> list[Path]:
    """ROC / PR / histogram, confusion matrix, per-station table and the worst examples with their maps."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if y.any() and (~y).any():
        files += _curves(out, y, scores, threshold, name)
    files.append(_confusion(out, metrics, ("good", "anom.")))
    # Worst examples: defective with the lowest scores, good with the highest.
    plt = _plt()
    worst = [i for i in np.argsort(scores) if y[i]][:3] + [i for i in np.argsort(-scores) if not y[i]][:3]
    if worst:
        fig, axes = plt.subplots(2, len(worst), figsize=(2.4 * len(worst), 5), squeeze=False)
        for k, i in enumerate(worst):
            img = cv2.imdecode(np.frombuffer(rows[i]["image"], np.uint8), cv2.IMREAD_COLOR)
            img = cv2.resize(img, (imgsz, imgsz))[:, :, ::-1]
            m = np.clip((maps[i, 0] - threshold) / (norm["map_max"] - norm["map_min"]) + 0.5, 0, 1)
            axes[0, k].imshow(img)
            axes[0, k].set_title(f"{'NG' if y[i] else 'OK'} s={scores[i]:.3g}", fontsize=8)
            axes[1, k].imshow(img)
            axes[1, k].imshow(m, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            for a in axes[:, k]:
                a.axis("off")
        fig.suptitle("worst examples: missed defects (left), false alarms (right); anomaly maps below")
        fig.tight_layout()
        files.append(out / "worst_examples.png")
        fig.savefig(files[-1], dpi=70)
        plt.close(fig)
    files.append(_page(out, f"anomaly model {name}", metrics, files))
    return files
