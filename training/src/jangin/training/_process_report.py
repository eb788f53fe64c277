"""The HTML report of a process model: warnings first, then the figures with their intervals, the
baselines, the confound check, the out-of-fold prediction of every session, and the plots."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from jangin.training._report import _confusion, _curves, _page

__all__ = ["process_report"]


def _e(v: Any) -> str:
    return html.escape(str(v))


def process_report(
    out: Path,
    name: str,
    metrics: dict[str, Any],
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    windows: list[dict[str, Any]],
    groups: list[str],
) -> list[Path]:
    """Write ``index.html`` (+ PNG plots) into ``out``; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if y.any() and (~y).any():
        files += _curves(out, y, scores, threshold, name)
    files.append(_confusion(out, metrics, ("OK", "NG")))
    warn = "".join(f"<li>{_e(w)}</li>" for w in metrics.get("warnings", []))
    notes = (
        f'<div style="background:#fff3cd;padding:6px 12px"><b>Warnings</b><ul>{warn}</ul></div>'
        if warn
        else ""
    )
    notes += (
        f"<p><b>{_e(metrics['evaluation'])}</b>: AUROC {_e(metrics['auroc'])} "
        f"(95 % interval over groups {_e(metrics.get('auroc_ci95'))}), accuracy {_e(metrics['accuracy'])} "
        f"({_e(metrics.get('accuracy_ci95'))}). Single-channel threshold chosen inside each fold: AUROC "
        f"{_e(metrics['baseline_auroc'])}, accuracy {_e(metrics['baseline_accuracy'])}; chosen on all data "
        f"(hindsight, optimistic): {_e(metrics['baseline_hindsight_auroc'])} "
        f"({_e(metrics['baseline_hindsight_channel'])}).</p>"
    )
    conf = metrics.get("confounds", {})
    rows = "".join(
        f"<tr><td>{_e(f['feature'])}</td><td>{_e(f['auroc'])}</td><td>{_e(f['gap_sd'])}</td>"
        f"<td>{_e(f['direction'])}</td></tr>"
        for f in conf.get("features", [])
    )
    notes += "<h2>Confound check</h2>"
    notes += (
        "<p>Features that alone separate the classes by a constant offset:</p>"
        f"<table><tr><th>feature</th><th>AUROC</th><th>gap / within-class SD</th><th>NG is</th></tr>{rows}</table>"
        f"<p>AUROC without the channels {_e(', '.join(conf.get('channels', [])))}: "
        f"{_e(metrics.get('auroc_without_confounds'))}</p>"
        if rows
        else "<p>No feature separates the classes by a constant offset.</p>"
    )
    arows = "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v.get('levels'))}</td><td>{_e(v.get('cramers_v'))}</td>"
        f"<td>{_e(v.get('auroc'))}</td></tr>"
        for k, v in conf.get("attribute_figures", {}).items()
    )
    if arows:
        notes += (
            "<p>Session attributes against the label (per group; fires at Cramér's V ≥ 0.8 or AUROC ≥ 0.9):</p>"
            f"<table><tr><th>attribute</th><th>levels</th><th>Cramér's V</th><th>AUROC</th></tr>{arows}</table>"
        )
    # Out-of-fold prediction per session (mean over its windows).
    per: dict[str, list[int]] = {}
    for i, w in enumerate(windows):
        per.setdefault(w["session_id"], []).append(i)
    srows = "".join(
        f"<tr><td>{_e(s)}</td><td>{_e(groups[idx[0]])}</td><td>{len(idx)}</td>"
        f"<td>{int(y[idx].sum())}</td><td>{float(np.mean(scores[idx])):.3f}</td></tr>"
        for s, idx in sorted(per.items())
    )
    notes += (
        "<h2>Out-of-fold predictions per session</h2><p>Every score comes from a model fitted without the "
        "session's group (also in <code>oof.parquet</code>, one row per window).</p>"
        "<table><tr><th>session</th><th>group</th><th>windows</th><th>NG windows</th><th>mean P(NG)</th></tr>"
        f"{srows}</table><h2>All figures</h2>"
    )
    shown = {
        k: v
        for k, v in metrics.items()
        if k not in ("warnings", "confounds", "baseline_chosen", "bootstrap", "baseline_note")
    }
    files.append(_page(out, f"process model {name}", shown, files, notes))
    return files
