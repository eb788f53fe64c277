"""Evaluation reports: an ``index.html`` with PNG plots, written into a model version's ``report/``."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from jangin.training._image_set import decode_mask
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


def guard_html(guard: dict[str, Any] | None) -> str:
    """The warnings (first, in red) and the metric-vs-baseline table of a model's guard rails."""
    if not guard:
        return ""
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in guard.get("warnings", []))
    parts = []
    if warn:
        parts.append(f'<div class="warn"><b>Warnings</b><ul>{warn}</ul></div>')
    if guard.get("refuse_promotion"):
        parts.append('<p class="warn"><b>This version will not be promoted</b> (see the warnings).</p>')
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_fmt(r['model'])}</td><td>{html.escape(r['name'])}</td>"
        f"<td>{_fmt(r['baseline'])}</td><td>{'yes' if r['beats'] else 'NO' if r['beats'] is False else '-'}</td></tr>"
        for k, r in guard.get("baselines", {}).items()
    )
    if rows:
        parts.append(
            "<h2>Against the trivial baselines</h2><table><tr><th>metric</th><th>model</th>"
            f"<th>baseline</th><th>baseline value</th><th>beats it</th></tr>{rows}</table>"
        )
    recall = guard.get("per_class_recall")
    if recall:
        cells = "".join(f"<tr><th>{html.escape(c)}</th><td>{_fmt(v)}</td></tr>" for c, v in recall.items())
        parts.append(f"<h2>Recall per class</h2><table>{cells}</table>")
    return "".join(parts)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))


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
        "border-bottom:1px solid #ddd;font-size:13px}.warn{color:#b00020}</style>"
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
    guard: dict[str, Any] | None = None,
) -> list[Path]:
    """Warnings and baselines first, then ROC / PR / histogram, confusion matrix, per-station table, the
    worst examples with their maps, and heat maps (anomaly map overlays, mask outlines in white)."""
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
    files += _heat_maps(out, y, scores, rows, maps, norm, imgsz, threshold)
    files.append(_page(out, f"anomaly model {name}", metrics, files, notes=guard_html(guard)))
    return files


def _heat_maps(
    out: Path,
    y: np.ndarray,
    scores: np.ndarray,
    rows: list[dict[str, Any]],
    maps: np.ndarray,
    norm: dict[str, float],
    imgsz: int,
    threshold: float,
    n: int = 8,
) -> list[Path]:
    """One PNG per shown test image (the highest-scoring defective ones first): the image with its
    normalised anomaly map blended in (JET colours), and the ground-truth mask outlined when there is one."""
    import cv2

    order = [int(i) for i in np.argsort(-scores) if y[i]][: n // 2]
    order += [int(i) for i in np.argsort(-scores) if not y[i]][: n - len(order)]
    files = []
    for k, i in enumerate(order):
        img = cv2.resize(
            cv2.imdecode(np.frombuffer(rows[i]["image"], np.uint8), cv2.IMREAD_COLOR), (imgsz, imgsz)
        )
        m = np.clip((maps[i, 0] - threshold) / (norm["map_max"] - norm["map_min"]) + 0.5, 0, 1)
        heat = cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)
        over = cv2.addWeighted(img, 0.55, heat, 0.45, 0)
        if rows[i].get("masks"):
            gt = decode_mask(rows[i]["masks"], imgsz).astype(np.uint8)
            contours, _ = cv2.findContours(gt, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(over, contours, -1, (255, 255, 255), 1)
        p = out / f"heatmap-{k:02d}-{'NG' if y[i] else 'OK'}.png"
        cv2.imwrite(str(p), np.hstack([img, over]))
        files.append(p)
    return files
