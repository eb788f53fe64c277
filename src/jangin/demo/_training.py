"""Demo step: the anomaly model (good weld-bead stills) and the process-quality model (sensor windows)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from jangin.core import Dataset, ModelRegistry, TrainingError
from jangin.core.progress import ProgressFn, null_progress

__all__ = ["demo_training"]

log = logging.getLogger(__name__)


def demo_training(
    ds: Dataset, out_dir: Path, *, fast: bool = False, progress: ProgressFn = null_progress
) -> dict[str, Any]:
    """Train and publish ``weld-anomaly`` and ``weld-process`` on the demo dataset; return held-out figures.

    The anomaly model learns from the good stills (``source_uri`` starting with ``good/``) of the
    inspection session and is tested on held-out good and defective stills; the process model is
    evaluated leave-one-session-out on the experts' OK/NG judgments of seam segments.

    Args:
        ds: The demo dataset (sessions, stills, judgments and box labels imported).
        out_dir: Scratch directory for the runs.
        fast: Smaller images and fewer defective test images (for CI and a quick look).
        progress: ``progress(task, done, total)``.

    Returns:
        ``{"anomaly": {...}, "process": {...}}``: model reference, metric, baseline, seconds; or
        ``{"error": ...}`` for a model that could not be trained on this dataset.
    """
    from jangin.training import AnomalyConfig, ProcessConfig, train_anomaly, train_process

    registry = ModelRegistry(ds.models_dir)
    out: dict[str, Any] = {}
    sid = ds.query("SELECT DISTINCT session_id FROM frames WHERE source_uri LIKE 'good/%' LIMIT 1")
    t = time.perf_counter()
    if sid.num_rows:
        s = sid.column(0)[0].as_py()
        cfg = AnomalyConfig(
            name="weld-anomaly",
            where=f"f.session_id = '{s}'",
            good_where="f.source_uri LIKE 'good/%'",
            imgsz=96 if fast else 128,
            max_defective=24 if fast else 40,
            device="cpu",
            allow_random_init=True,  # no pretrained weights in the demo: trained from scratch, said below
        )
        try:
            mv = train_anomaly(ds, cfg, registry=registry, work_dir=out_dir / "anomaly", progress=progress)
            m = mv.manifest.metrics
            out["anomaly"] = {
                "model": f"{mv.name}:{mv.version}",
                "test_images": m["images"],
                "defective": m["defective"],
                "auroc": m["auroc"],
                "f1": m["f1"],
                "baseline_auroc": m["baseline_intensity_auroc"],
                "baseline": "distance of the mean grey level from the good images' (chance = 0.5)",
                "parity_max_score_diff": mv.manifest.parity["max_norm_score_diff"],
                "report": str(mv.path / "report" / "index.html"),
                "backbone": "random-init (--allow-random-init: the demo has no pretrained weights)",
            }
        except TrainingError as exc:
            out["anomaly"] = {"error": str(exc)}
    else:
        out["anomaly"] = {"error": "no good stills (source_uri good/…) in the dataset"}
    out.setdefault("anomaly", {})["seconds"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    try:
        mv = train_process(
            ds,
            ProcessConfig(name="weld-process", question="judgment"),
            registry=registry,
            work_dir=out_dir / "process",
            progress=progress,
        )
        m = mv.manifest.metrics
        out["process"] = {
            "model": f"{mv.name}:{mv.version}",
            "evaluation": m["evaluation"],
            "windows": m["windows"],
            "ng": m["ng"],
            "auroc": m["auroc"],
            "baseline_auroc": m["baseline_auroc"],
            "baseline": f"best single-channel threshold ({m['baseline_best_channel']}, chosen inside each fold)",
            "parity_max_proba_diff": mv.manifest.parity["max_proba_diff"],
            "report": str(mv.path / "report" / "index.html"),
        }
    except TrainingError as exc:
        out["process"] = {"error": str(exc)}
    out["process"]["seconds"] = round(time.perf_counter() - t, 1)
    log.info("demo training: %s", out)
    return out
