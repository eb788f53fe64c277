"""The demo's HTML report: plain HTML + PNG plots made with matplotlib (Agg, bundled fonts only)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["draw_boxes", "plot_sensor_session", "plot_training_curves", "write_report"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sensor_session(
    samples: Any, events: Any, out: Path, title: str, *, channels: list[str] | None = None
) -> Path:
    """Plot each channel of a session on its own axis, with event markers. ``samples`` and
    ``events`` are Arrow tables from the dataset; ``channels`` picks and orders the channels shown
    (default: all, by name)."""
    plt = _plt()
    present = set(samples.column("channel").to_pylist())
    channels = [c for c in channels if c in present] if channels else sorted(present)
    fig, axes = plt.subplots(len(channels), 1, figsize=(11, 1.6 * len(channels) + 0.6), sharex=True)
    axes = np.atleast_1d(axes)
    t0 = None
    ch_col = np.array(samples.column("channel").to_pylist())
    ts = samples.column("ts").cast("int64").to_numpy() / 1e6
    vals = samples.column("value").to_numpy()
    units = dict(zip(samples.column("channel").to_pylist(), samples.column("unit").to_pylist(), strict=True))
    t0 = float(ts.min()) if len(ts) else 0.0
    ev_t = events.column("ts").cast("int64").to_numpy() / 1e6 - t0 if events.num_rows else np.array([])
    ev_kind = events.column("kind").to_pylist() if events.num_rows else []
    ev_name = events.column("name").to_pylist() if events.num_rows else []
    ev_value = events.column("value").to_pylist() if events.num_rows else []
    colours = {
        "adjustment": "tab:orange",
        "judgment": "tab:red",
        "sync": "tab:green",
        "step_start": "0.6",
        "step_end": "0.8",
    }
    for ax, ch in zip(axes, channels, strict=True):
        m = ch_col == ch
        order = np.argsort(ts[m])
        x, y = ts[m][order] - t0, vals[m][order]
        if len(x) > 4000:  # keep the plot light: min/max envelope of the 1 kHz channels
            step = len(x) // 2000
            xs = x[: len(x) // step * step : step]  # one x per full window of _roll
            ax.fill_between(
                xs, _roll(y, step, np.min), _roll(y, step, np.max), lw=0, color="tab:blue", alpha=0.35
            )
            ax.plot(xs, _roll(y, step, np.mean), lw=0.7, color="tab:blue")
        else:
            ax.plot(x, y, lw=0.9, color="tab:blue")
        ax.set_ylabel(f"{ch}\n[{units.get(ch) or '-'}]", fontsize=8)
        for t, k in zip(ev_t, ev_kind, strict=True):
            if k in colours:
                ax.axvline(t, color=colours[k], lw=0.8, alpha=0.8)
        ax.grid(alpha=0.3)
    for t, k, n, v in zip(ev_t, ev_kind, ev_name, ev_value, strict=True):
        if k in ("adjustment", "judgment"):
            axes[0].annotate(
                f"{n or ''} {v or ''}".strip(),
                (t, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                rotation=30,
                color=colours[k],
                va="bottom",
            )
    axes[-1].set_xlabel("session time [s]")
    fig.suptitle(title, fontsize=10, y=1.0)
    fig.tight_layout()
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out


def _roll(y: np.ndarray, step: int, fn: Any) -> np.ndarray:
    n = len(y) // step
    return fn(y[: n * step].reshape(n, step), axis=1) if n else y[:0]


def plot_training_curves(results_csv: Path, out: Path) -> Path | None:
    """Loss and mAP per epoch from Ultralytics' ``results.csv``."""
    if not results_csv.is_file():
        return None
    import csv

    with open(results_csv, newline="") as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    if not rows:
        return None
    plt = _plt()
    ep = [float(r["epoch"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    for key in ("train/box_loss", "train/cls_loss", "val/box_loss", "val/cls_loss"):
        if key in rows[0]:
            a.plot(ep, [float(r[key]) for r in rows], label=key)
    a.set_xlabel("epoch")
    a.set_title("losses")
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    for key in ("metrics/mAP50(B)", "metrics/mAP50-95(B)"):
        if key in rows[0]:
            b.plot(ep, [float(r[key]) for r in rows], label=key.replace("metrics/", ""))
    b.set_xlabel("epoch")
    b.set_title("validation mAP")
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def draw_boxes(
    image: np.ndarray,
    truths: Sequence[tuple[str, Sequence[float]]],
    preds: Sequence[tuple[str, float, Sequence[float]]],
) -> np.ndarray:
    """Ground truth in green, predictions in red (with scores), boxes as fractions of the image."""
    import cv2

    img = image.copy()
    h, w = img.shape[:2]
    for _name, b in truths:
        x1, y1, x2, y2 = (int(round(v * s)) for v, s in zip(b, (w, h, w, h), strict=True))
        cv2.rectangle(img, (x1, y1), (x2, y2), (60, 200, 60), 1)
    for name, score, b in preds:
        x1, y1, x2, y2 = (int(round(v * s)) for v, s in zip(b, (w, h, w, h), strict=True))
        cv2.rectangle(img, (x1, y1), (x2, y2), (40, 40, 230), 2)
        cv2.putText(
            img,
            f"{name} {score:.2f}",
            (x1, max(10, y1 - 3)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.38,
            (40, 40, 230),
            1,
            cv2.LINE_AA,
        )
    return img


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def write_report(
    out_dir: Path, sections: Sequence[dict[str, Any]], *, title: str, summary: Sequence[str]
) -> Path:
    """Write ``index.html``. Each section: ``title``, optional ``text``, ``table`` (rows), ``images``
    (paths relative to ``out_dir``), ``links`` ((label, href))."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}"
        "table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
        "th{background:#f4f4f4}img{max-width:100%;border:1px solid #ddd;margin:.4em 0}.summary li{margin:.2em 0}"
        "code{background:#f4f4f4;padding:0 .3em}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul class='summary'>",
        *(f"<li>{html.escape(s)}</li>" for s in summary),
        "</ul>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s['title'])}</h2>")
        if s.get("text"):
            parts.append(f"<p>{html.escape(s['text'])}</p>")
        if s.get("table") is not None:
            parts.append(_table(s["table"]))
        for img in s.get("images", []):
            parts.append(f"<img src='{html.escape(str(img))}' alt='{html.escape(str(img))}'>")
        if s.get("links"):
            parts.append(
                "<ul>"
                + "".join(
                    f"<li><a href='{html.escape(h)}'>{html.escape(lbl)}</a></li>" for lbl, h in s["links"]
                )
                + "</ul>"
            )
        if s.get("code"):
            parts.append("<pre><code>" + html.escape(s["code"]) + "</code></pre>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts))
    return path
