"""The demo chain: sample data → capture → labels → training → ONNX inference → report.

Every step calls the same library functions that the stage commands call; nothing here is a
placeholder. The umbrella package may import every stage: it is what composes them.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from jangin.core import ConfigError, Dataset
from jangin.core.progress import ProgressFn, null_progress
from jangin.demo._live import demo_live, live_report_section

__all__ = ["DemoConfig", "DemoResult", "find_sample_data", "run_demo"]

log = logging.getLogger(__name__)

MARKER = ".jangin-demo"


class DemoConfig(BaseModel):
    """Settings of one demo run (the defaults are the full demo: < 10 min on 2 CPU cores)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out: Path = Path("jangin-demo")
    sample_data: Path | None = None
    epochs: int = 35
    imgsz: int = 256
    batch: int = 16
    device: str = "auto"
    max_stills: int | None = None
    max_sessions: int | None = None
    frame_interval_s: float = 1.0
    seed: int = 0


@dataclass
class DemoResult:
    """What the demo produced."""

    out: Path
    dataset: Path
    report: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def find_sample_data(explicit: Path | None = None) -> Path:
    """The sample data folder: ``explicit``, else ``./sample_data``, else the one in the source tree.

    Raises:
        ConfigError: None of them exists.
    """
    candidates = (
        [explicit]
        if explicit
        else [Path.cwd() / "sample_data", Path(__file__).resolve().parents[3] / "sample_data"]
    )
    for c in candidates:
        if c is not None and (c / "sessions").is_dir():
            return c.resolve()
    raise ConfigError(
        f"no sample data found (looked in {', '.join(str(c) for c in candidates)})",
        hint="run from the repository root, or pass --data PATH/TO/sample_data",
    )


def _prepare_out(out: Path) -> Path:
    out = out.resolve()
    if out.exists():
        if not (out / MARKER).exists():
            raise ConfigError(
                f"{out} exists and was not made by `jangin demo`; refusing to overwrite it",
                hint="remove it or pass --out with another directory",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by jangin demo; safe to delete\n")
    return out


def run_demo(cfg: DemoConfig, *, progress: ProgressFn = null_progress, say: Any = print) -> DemoResult:
    """Run the whole chain into ``cfg.out`` and return where everything is."""
    from jangin.capture import import_sessions, import_stills
    from jangin.labeling import import_box_csv, labels_from_judgments

    data = find_sample_data(cfg.sample_data)
    out = _prepare_out(cfg.out)
    timings: dict[str, float] = {}
    t = time.perf_counter()

    # 1. capture: files for all sessions but the last, which a "recording app" uploads over HTTP ----
    from jangin.core.settings import ensure_site_key, get_settings
    from jangin.demo._capture import demo_http_ingest

    ds = Dataset.create(out / "dataset")
    settings = get_settings(dataset=ds.root)
    if (key_file := ensure_site_key(settings)) is not None:  # a fresh machine: as `jangin init` would
        say(f"wrote a new site key (pseudonyms) to {key_file}")
    sessions = sorted(p.parent for p in (data / "sessions").glob("*/session.yaml"))
    if cfg.max_sessions is not None:
        sessions = sessions[: cfg.max_sessions]
    if len(sessions) < 2:
        raise ConfigError(f"{data / 'sessions'}: the demo needs at least 2 sessions")
    # processes are data: both sample processes' definitions are registered in the dataset first
    from jangin.demo._etch import register_sample_processes

    processes = register_sample_processes(ds, data)
    say("processes: " + ", ".join(f"{n} v{v}" for n, v in sorted(processes.items())) + " registered")
    file_dir = _subset_sessions(sessions[:-1], out / "work" / "sessions")
    results = import_sessions(
        ds, file_dir, settings=settings, frame_interval_s=cfg.frame_interval_s, progress=progress
    )
    failed = [r for r in results if r.error]
    if failed:
        raise ConfigError(f"sample session {failed[0].session_key} failed to import: {failed[0].error}")
    stills = import_stills(
        ds,
        data / "inspection",
        session_key="inspection",
        settings=settings,
        limit=cfg.max_stills,
        progress=progress,
    )
    say(
        f"capture: {len(results)} sessions from files ({sum(r.samples for r in results):,} sensor samples, "
        f"{sum(r.frames for r in results)} frames) and {stills.frames} still images"
    )
    ingest = demo_http_ingest(ds.root, sessions[-1], settings)
    timings["capture_s"] = time.perf_counter() - t
    say(
        f"capture: session {sessions[-1].name} uploaded over HTTP as a recording app would "
        f"({ingest.get('samples', 0):,} samples, state {ingest.get('state')}, {ingest.get('total_s', 0):.1f} s)"
    )

    # 2. labels: a Label Studio round trip (a live server when JANGIN_LABEL_STUDIO_URL is set, else
    #    the committed export of a real one), expert judgments as labels, boxes.csv for the rest ----
    from jangin.demo._labeling import demo_labeling

    t = time.perf_counter()
    studio = demo_labeling(ds, data, settings, stills_session_id=stills.session_id, progress=progress)
    n_judg = labels_from_judgments(ds)
    boxed = {
        r["source_uri"]
        for r in ds.query(
            "SELECT DISTINCT f.source_uri FROM current_labels l JOIN frames f USING (frame_id) "
            f"WHERE l.kind = 'box' AND f.session_id = '{stills.session_id}'"
        ).to_pylist()
    }
    rest = _boxes_without(data / "inspection" / "boxes.csv", boxed, out / "work" / "boxes-rest.csv")
    n_box = import_box_csv(ds, rest, session_id=stills.session_id, missing="skip")
    timings["labels_s"] = time.perf_counter() - t
    say(
        f"labels: {studio.get('labels_added', 0)} from Label Studio ({studio['mode']}), "
        f"{n_judg} expert judgments, {n_box} defect boxes from boxes.csv"
    )

    # 3. training ------------------------------------------------------------------------------
    from jangin.core import ModelRegistry
    from jangin.training import build_detection_set, train_detector

    t = time.perf_counter()
    det_set = build_detection_set(
        ds,
        where=f"f.session_id = '{stills.session_id}'",
        group_by="frame_id",
        seed=cfg.seed,
        cache_dir=out / "work" / "cache",
    )
    registry = ModelRegistry(ds.models_dir)
    mv = train_detector(
        det_set,
        registry=registry,
        name="weld-defects",
        epochs=cfg.epochs,
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        device=cfg.device,
        seed=cfg.seed,
        work_dir=out / "work" / "train",
        progress=progress,
        allow_random_init=True,  # the demo trains from scratch on synthetic images (its report says so)
    )
    registry.promote(mv.name, mv.version)
    timings["train_s"] = time.perf_counter() - t
    say(
        f"training: {mv.name}:{mv.version} test mAP50 {mv.manifest.metrics.get('mAP50', float('nan')):.3f} "
        f"({timings['train_s']:.0f} s)"
    )
    from jangin.demo._runtimes import demo_runtimes

    runtimes = demo_runtimes(mv, det_set, say=say)
    from jangin.demo._training import demo_training

    t = time.perf_counter()
    other_models = demo_training(ds, out / "work" / "models", progress=progress)
    timings["train_other_s"] = time.perf_counter() - t
    an, pr = other_models.get("anomaly", {}), other_models.get("process", {})
    if "auroc" in an:
        say(
            f"training: {an['model']} image AUROC {an['auroc']:.3f} (baseline {an['baseline_auroc']:.3f}; "
            "random-init backbone, --allow-random-init)"
        )
    if "auroc" in pr:
        say(
            f"training: {pr['model']} OK/NG from process signals AUROC {pr['auroc']:.3f} (best threshold {pr['baseline_auroc']:.3f})"
        )

    from jangin.demo._skill import demo_skill

    t = time.perf_counter()
    weld_process = (
        ds.query(f"SELECT process FROM current_sessions WHERE session_id = '{results[0].session_id}'")
        .column(0)[0]
        .as_py()
    )
    skill = demo_skill(ds, out / "report" / "coaching", process=weld_process, progress=progress)
    timings["skill_s"] = time.perf_counter() - t
    if "error" in skill:
        say(f"skill profile: {skill['error']}")
    else:
        novices = ", ".join(f"{r['score']:.0f}" for r in skill["sessions"] if not r["loso"])
        experts = ", ".join(f"{r['score']:.0f}" for r in skill["sessions"] if r["loso"])
        say(
            f"skill profile {skill['profile']} from {len(skill['experts'])} experts: novice scores {novices} "
            f"(experts, leave one out: {experts}); coaching reports in {out / 'report' / 'coaching'}"
        )

    # the second sample process (plasma etch): raw tool logs imported through the generic path, one
    # skill profile per recipe, every run scored and coached -----------------------------------
    from jangin.demo._etch import demo_etch

    t = time.perf_counter()
    etch = demo_etch(ds, data, out / "report" / "coaching", settings=settings, progress=progress)
    timings["etch_s"] = time.perf_counter() - t
    say(
        f"etch: {etch['runs']} runs of {etch['display_name']} imported from raw logs "
        f"({etch['samples']:,} samples, {len(etch['steps'])} step occurrences, {len(etch['parameters'])} recipes)"
    )
    for recipe, sk in etch["skill"].items():
        if "error" in sk:
            say(f"etch skill profile {recipe}: {sk['error']}")
            continue
        nov = ", ".join(f"{r['score']:.0f}" for r in sk["sessions"] if not r["loso"])
        exp = ", ".join(f"{r['score']:.0f}" for r in sk["sessions"] if r["loso"])
        say(f"etch skill profile {sk['profile']}: novice scores {nov} (experts, leave one out: {exp})")

    t, oxide = time.perf_counter(), etch["skill"].get("oxide_via", {})
    live = demo_live(ds.root, data, settings, out / "work" / "live", profile=oxide.get("profile"), say=say)
    timings["live_s"] = time.perf_counter() - t

    # 4. inference: ONNX Runtime scored in-process on the held-out test split, then served over HTTP,
    #    every verdict logged, a few reviewed (one override), control charts drawn --------------
    from jangin.demo._inference import demo_serve

    t = time.perf_counter()
    metrics, examples, test_images = _evaluate_test_split(ds, mv, det_set, seed=cfg.seed)
    say(
        f"inference (ONNX Runtime) on {metrics['test_images']} held-out images: mAP50 {metrics['onnx_mAP50']:.3f} "
        f"vs {metrics['baseline_mAP50']:.3f} for random boxes"
    )
    serve = demo_serve(ds, f"{mv.name}:{mv.version}", test_images, out / "serve")
    timings["inference_s"] = time.perf_counter() - t
    metrics["serve"] = serve
    metrics["other_models"] = other_models
    metrics["runtimes"] = runtimes
    metrics["ingest"] = ingest
    metrics["live"] = live
    metrics["label_studio"] = studio
    metrics["skill"] = skill
    metrics["etch"] = etch
    from jangin.demo._physical import demo_physical

    metrics["physical"] = demo_physical(ds, out, say=say)
    say(
        f"serve: {sum(serve.get('counts', {}).values())} inspections over HTTP, verdicts {serve.get('counts')}, "
        f"{len(serve.get('reviews', []))} reviews ({serve.get('overrides', 0)} override)"
    )

    # 5. report --------------------------------------------------------------------------------
    t = time.perf_counter()
    report = _write_report(out, ds, mv, metrics, examples, results, timings)
    timings["report_s"] = time.perf_counter() - t
    res = DemoResult(
        out=out, dataset=ds.root, report=report, metrics=metrics, timings=timings, counts=ds.counts()
    )
    (out / "summary.json").write_text(
        json.dumps(
            {
                "metrics": metrics,
                "timings": timings,
                "counts": res.counts,
                "model": f"{mv.name}:{mv.version}",
            },
            indent=2,
            default=str,
        )
    )
    return res


def _boxes_without(src: Path, images: set[str], dst: Path) -> Path:
    """``src`` (a boxes CSV) without the rows of ``images`` (already labelled in Label Studio)."""
    import csv

    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, newline="") as f, open(dst, "w", newline="") as g:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(g, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        writer.writerows(r for r in reader if r["image"] not in images)
    return dst


def _subset_sessions(dirs: list[Path], dst: Path) -> Path:
    """A folder of symlinks to the given session folders (what a batch import reads)."""
    dst.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        (dst / d.name).symlink_to(d.resolve(), target_is_directory=True)
    return dst


def _evaluate_test_split(
    ds: Dataset, mv: Any, det_set: Any, *, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import cv2

    from jangin.inference import OnnxDetector
    from jangin.training import detection_map

    test_ids = list(det_set.splits["test"])
    con = ds.connect(det_set.snapshot)
    try:
        frames = (
            con.sql(
                "SELECT frame_id, station, image FROM frames WHERE frame_id IN (SELECT unnest($1)) ORDER BY frame_id",
                params=[test_ids],
            )
            .to_arrow_table()
            .to_pylist()
        )
        labels = (
            con.sql(
                "SELECT frame_id, name, bbox_xyxy_norm FROM current_labels WHERE kind = 'box' AND frame_id IN (SELECT unnest($1))",
                params=[test_ids],
            )
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        con.close()
    classes = list(mv.manifest.classes)
    truth: dict[str, list[tuple[str, list[float]]]] = {f["frame_id"]: [] for f in frames}
    for lbl in labels:
        truth[lbl["frame_id"]].append((lbl["name"], lbl["bbox_xyxy_norm"]))
    images = [
        (f["frame_id"], cv2.imdecode(np.frombuffer(f["image"], np.uint8), cv2.IMREAD_COLOR)) for f in frames
    ]

    # mAP integrates precision over all recall levels: score every box down to conf 0.001 (as
    # Ultralytics' val does); the examples show what the line sees, boxes above the served conf.
    detector = OnnxDetector.from_version(mv, conf=0.001)
    served_conf = float(mv.manifest.thresholds.get("conf", 0.25))
    preds = [detector.predict([img])[0] for _, img in images]
    gts = [
        (
            np.array([b for _, b in truth[fid]], np.float64).reshape(-1, 4),
            np.array([classes.index(n) for n, _ in truth[fid]], np.int64),
        )
        for fid, _ in images
    ]
    onnx = detection_map(preds, gts, classes)
    baseline = detection_map(_random_boxes(gts, classes, seed), gts, classes)
    metrics = {
        "test_images": len(images),
        "onnx_mAP50": float(onnx["mAP50"]),
        "onnx_per_class_AP50": onnx.get("per_class_ap", {}),
        "baseline_mAP50": float(baseline["mAP50"]),
        "ultralytics_test": mv.manifest.metrics,
        "parity": mv.manifest.parity,
    }
    examples = [
        {
            "frame_id": fid,
            "image": img,
            "truth": truth[fid],
            "preds": [
                (n, float(s), list(map(float, b))) for n, s, b in zip(p.names, p.scores, p.xyxy, strict=True)
            ],
        }
        for (fid, img), p in [
            (x, q.filter(q.scores >= served_conf)) for x, q in zip(images, preds, strict=True)
        ][:12]
    ]
    raw = [(f["frame_id"], f["image"]) for f in frames]
    return metrics, examples, raw


def _p50_p99(lat: dict[str, Any]) -> str:
    p50, p99 = lat.get("client_p50"), lat.get("client_p99")
    return "–" if p50 is None or p99 is None else f"{p50:.1f} / {p99:.1f}"


def _random_boxes(gts: list[tuple[np.ndarray, np.ndarray]], classes: list[str], seed: int) -> list[Any]:
    """The trivial baseline: as many random boxes per image as a detector would report, with sizes
    like the real ones, random classes and random scores."""
    from jangin.core.detections import Detections

    rng = np.random.default_rng(seed)
    all_boxes = (
        np.concatenate([b for b, _ in gts if len(b)])
        if any(len(b) for b, _ in gts)
        else np.array([[0.4, 0.4, 0.6, 0.6]])
    )
    wh = all_boxes[:, 2:] - all_boxes[:, :2]
    out = []
    for _ in gts:
        n = 5
        size = wh[rng.integers(0, len(wh), n)]
        xy = rng.uniform(0, 1, (n, 2)) * (1 - size)
        out.append(
            Detections(
                np.hstack([xy, xy + size]),
                rng.uniform(0.05, 1, n),
                rng.integers(0, len(classes), n),
                tuple(classes),
            )
        )
    return out


def _write_report(
    out: Path,
    ds: Dataset,
    mv: Any,
    metrics: dict[str, Any],
    examples: list[dict[str, Any]],
    results: list[Any],
    timings: dict[str, float],
) -> Path:
    import cv2

    from jangin.demo._report import draw_boxes, plot_sensor_session, plot_training_curves, write_report

    rdir = out / "report"
    rdir.mkdir(exist_ok=True)  # report/coaching/ is written by the skill step
    sections: list[dict[str, Any]] = []
    sess = ds.query(
        "SELECT s.session_id, s.technician, s.skill_level, s.station, s.process, "
        "(SELECT count(*) FROM sensor_samples x WHERE x.session_id = s.session_id) AS samples, "
        "(SELECT count(*) FROM frames f WHERE f.session_id = s.session_id) AS frames, "
        "(SELECT count(*) FROM events e WHERE e.session_id = s.session_id) AS events, "
        "(SELECT string_agg(p.name || '=' || p.value, ', ' ORDER BY p.name) FROM session_parameters p "
        " WHERE p.session_id = s.session_id) AS parameters, "
        "(SELECT string_agg(name, ', ') FROM current_labels l WHERE l.session_id = s.session_id AND l.kind = 'class' AND l.name <> 'OK') AS ng_judgments "
        "FROM current_sessions s WHERE s.process IS DISTINCT FROM 'plasma_etch' "
        "ORDER BY s.skill_level, s.session_id"
    ).to_pylist()
    sections.append(
        {
            "title": "Captured sessions",
            "table": sess,
            "text": "Technicians appear only as keyed pseudonyms. Each sensor channel keeps its own rate; clock offsets are applied.",
        }
    )
    plots = []
    for skill in ("expert", "novice"):
        row = next((s for s in sess if s["skill_level"] == skill and s["samples"]), None)
        if row is None:
            continue
        sid = row["session_id"]
        samples = ds.read("sensor_samples", filters=[("session_id", "=", sid)])
        events = ds.read("events", filters=[("session_id", "=", sid)])
        p = plot_sensor_session(
            samples, events, rdir / f"signals_{skill}.png", f"{skill} session {sid} ({row['technician']})"
        )
        plots.append(p.name)
    sections.append(
        {
            "title": "Process signals",
            "images": plots,
            "text": "Orange lines: expert adjustments; red: OK/NG judgments; green: arc-start sync.",
        }
    )

    m = mv.manifest.metrics
    sections.append(
        {
            "title": f"Defect detector {mv.name}:{mv.version}",
            "text": "YOLO trained from scratch (no pretrained weights) on the still inspection images; metrics on the held-out test split.",
            "table": [
                {"metric": "mAP50 (ONNX Runtime, our evaluator)", "value": metrics["onnx_mAP50"]},
                {"metric": "mAP50 random-box baseline", "value": metrics["baseline_mAP50"]},
                {"metric": "mAP50 (Ultralytics val, test split)", "value": m.get("mAP50")},
                {"metric": "mAP50-95 (Ultralytics val, test split)", "value": m.get("mAP50-95")},
                {
                    "metric": "ONNX vs PyTorch max score difference",
                    "value": mv.manifest.parity.get("raw_max_score_diff"),
                },
                {
                    "metric": "HTTP round trip p50 / p99 [ms]",
                    "value": _p50_p99(metrics["serve"].get("latency_ms", {})),
                },
            ],
        }
    )
    per_class = [{"class": k, "AP50 (ONNX)": v} for k, v in metrics["onnx_per_class_AP50"].items()]
    sections.append({"title": "Per-class AP50 on the test split", "table": per_class})
    imgs = []
    curves = plot_training_curves(mv.path / "plots" / "results.csv", rdir / "training_curves.png")
    if curves:
        imgs.append(curves.name)
    for name in ("PR_curve.png", "BoxPR_curve.png"):
        if (mv.path / name).is_file():
            shutil.copy(mv.path / name, rdir / name)
            imgs.append(name)
            break
    sections.append({"title": "Training", "images": imgs})
    tiles = [draw_boxes(e["image"], e["truth"], e["preds"]) for e in examples]
    if tiles:
        size = 256
        tiles = [cv2.resize(t, (size, size)) for t in tiles]
        while len(tiles) % 4:
            tiles.append(np.full((size, size, 3), 255, np.uint8))
        grid = np.vstack([np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)])
        cv2.imwrite(str(rdir / "examples.jpg"), grid, [cv2.IMWRITE_JPEG_QUALITY, 88])
        sections.append(
            {
                "title": "Held-out examples",
                "images": ["examples.jpg"],
                "text": "Green: ground truth boxes; red: predictions of the exported ONNX model with scores.",
            }
        )
    serve = metrics["serve"]
    charts = []
    for _key, path in sorted(serve.get("paths", {}).get("charts", {}).items()):
        dst = rdir / Path(path).name
        shutil.copy(path, dst)
        charts.append(dst.name)
    sections.append(
        {
            "title": "Inspection beside the line (HTTP, ONNX Runtime)",
            "text": (
                "The held-out images were inspected through POST /v1/inspect; every verdict is in the inspections "
                "table. A quality engineer's reviews (one override) became labels for the next training run. "
                f"Review page while the demo served: {serve.get('urls', {}).get('review_page')}; to serve again: "
                f"{serve.get('serve_command', '')}"
            ),
            "table": [{"verdict": k, "count": v} for k, v in sorted(serve.get("counts", {}).items())]
            + [
                {
                    "verdict": "reviews (overrides)",
                    "count": f"{len(serve.get('reviews', []))} ({serve.get('overrides', 0)})",
                }
            ],
            "images": charts,
        }
    )
    other = metrics.get("other_models", {})
    rows = []
    an, pr = other.get("anomaly", {}), other.get("process", {})
    if "auroc" in an:
        rows.append(
            {
                "model": an["model"],
                "task": "anomaly (good images only)",
                "metric": "image AUROC",
                "value": an["auroc"],
                "baseline": an["baseline_auroc"],
                "baseline is": an["baseline"],
            }
        )
    if "auroc" in pr:
        rows.append(
            {
                "model": pr["model"],
                "task": "OK/NG from process signals",
                "metric": f"AUROC ({pr['evaluation']})",
                "value": pr["auroc"],
                "baseline": pr["baseline_auroc"],
                "baseline is": pr["baseline"],
            }
        )
    errors = [f"{k}: {v['error']}" for k, v in other.items() if isinstance(v, dict) and v.get("error")]
    sections.append(
        {"title": "Anomaly and process-signal models", "table": rows, "text": "; ".join(errors) or None}
    )
    skill = metrics.get("skill", {})
    if skill:
        sections.append(
            {
                "title": "Skill profile",
                "text": skill.get("error")
                or (
                    f"Profile {skill['profile']} ({skill['process']}) from {len(skill['experts'])} expert sessions; "
                    f"adjustments the experts make: {'; '.join(skill.get('adjustments', [])) or 'none found'}. "
                    "Experts are scored against a profile built without them (leave one out). "
                    + (" ".join(skill.get("outcomes", [])[:3]))
                ),
                "table": [
                    {
                        k: r[k]
                        for k in (
                            "session_id",
                            "skill_level",
                            "score",
                            "deviations_major",
                            "missed_adjustments",
                        )
                    }
                    for r in skill.get("sessions", [])
                ],
                "links": [
                    (
                        f"coaching report {r['session_id']} ({r['skill_level']}, score {r['score']:.0f})",
                        f"coaching/{r['report']}",
                    )
                    for r in skill.get("sessions", [])
                    if r.get("report")
                ],
            }
        )
    if metrics.get("etch"):
        from jangin.demo._etch import etch_report_sections

        sections.extend(etch_report_sections(ds, metrics["etch"], rdir))
    if metrics.get("physical"):
        sections.append(metrics["physical"].pop("section"))
    ing = metrics.get("ingest", {})
    sections.append(
        {
            "title": "HTTP ingest of one session (as a recording app)",
            "table": [{k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in ing.items()}]
            if ing
            else [],
        }
    )
    sections.append(live_report_section(metrics.get("live", {})))
    sections.append(
        {
            "title": "Explore the data",
            "code": "\n".join(
                [
                    f"jangin info -d {ds.root}",
                    f'jangin query -d {ds.root} "SELECT skill_level, count(*) FROM current_sessions GROUP BY 1"',
                    f'jangin query -d {ds.root} "SELECT channel, count(*) AS n, min(ts), max(ts) FROM sensor_samples GROUP BY 1"',
                    f"jangin models ls -d {ds.root}",
                ]
            ),
        }
    )
    summary = [
        f"dataset: {ds.root}",
        f"model: {mv.path}",
        f"held-out mAP50 {metrics['onnx_mAP50']:.3f} (random boxes: {metrics['baseline_mAP50']:.3f})",
        "timings: " + ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in timings.items()),
    ]
    return write_report(rdir, sections, title="Jangin demo report", summary=summary)
