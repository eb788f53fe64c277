"""Runtimes benchmark: every runtime x precision against fp32 ONNX Runtime, same model, same inputs, one run.

Per model and runtime x precision (the artifact built by ``jangin.training._export.export_runtime``, so
through the parity gate; a refused one is listed with its figures):

* latency p50 / p99 at batch 1 (one caller; OpenVINO compiled with its LATENCY hint for this part);
* throughput at batch 8 (images/s, the best of 1 and 2 calling threads: OpenVINO's THROUGHPUT hint
  runs one stream per request);
* the task metric on the held-out inputs (detector mAP50, anomaly AUROC) and its drop vs fp32, and the
  share of verdicts (detectors also boxes, F1) agreeing with fp32 at the model's thresholds;
* CPU-seconds per image over the throughput run (``resource.getrusage``), and joules per image where
  ``/sys/class/powercap`` RAPL is readable (said when it is not);
* the ratio of throughput to fp32 ONNX Runtime measured in the same run;
* detectors also end to end: ``OnnxDetector.predict`` at batch 8 (letterbox + run + decode / NMS, the
  server's work per decoded image) opened as a server opens it, img/s, CPU-s per image and the same
  ratios (``e2e_*``): the model-only ratio is what the runtime gains, the end-to-end one what a line gets.

Models:
  --detector: a YOLO11n at ``--imgsz`` on the sample stills (the demo detector's architecture).
      With ``--registry DIR --model NAME`` an already trained detector is used (check set read from
      its dataset); else the bench exports an UNTRAINED YOLO11n (random init, no training run): its
      speed is the demo detector's, its mAP50 is 0 for every runtime (the metric gate is then idle).
  --anomaly: PatchCore on a random-init resnet18 at 128 px, fitted on sample_data/inspection/good and
      checked on held-out good + defective stills (as bench_training_anomaly.py).
  --neu-det DIR with --neu-registry/--neu-model: a NEU-DET detector trained elsewhere (bench_neu_det.py).

Run: ``nice -n 10 python bench/bench_runtimes.py [--threads 2] [--seconds 3] [--out runtimes.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COMBOS = [
    ("onnxruntime", "fp32"),
    ("openvino", "fp32"),
    ("openvino", "fp16"),
    ("onnxruntime", "int8"),
    ("openvino", "int8"),
]


# -- energy ------------------------------------------------------------------------------------------


def rapl_files() -> list[Path]:
    base = Path("/sys/class/powercap")
    out = []
    for d in sorted(base.glob("intel-rapl:*")) if base.is_dir() else []:
        f = d / "energy_uj"
        if ":" in d.name and d.name.count(":") == 1 and f.is_file():
            try:
                int(f.read_text())
                out.append(f)
            except (OSError, ValueError):
                pass
    return out


def energy_uj(files: list[Path]) -> int:
    return sum(int(f.read_text()) for f in files)


# -- measuring ---------------------------------------------------------------------------------------


def latency(rt: Any, x1: np.ndarray, seconds: float) -> tuple[float, float]:
    feed = {rt.input_names[0]: x1}
    rt.run(feed)
    times = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(times) < 10:
        t = time.perf_counter()
        rt.run(feed)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(rt: Any, x8: np.ndarray, seconds: float, callers: int, rapl: list[Path]) -> dict[str, float]:
    feed = {rt.input_names[0]: x8}
    rt.run(feed)
    done = [0] * callers
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < stop:
            rt.run(feed)
            done[i] += len(x8)

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    e0 = energy_uj(rapl) if rapl else 0
    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    n = sum(done)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    out = {"img_s": n / wall, "cpu_s_per_img": cpu / max(n, 1), "callers": callers}
    if rapl:
        out["joules_per_img"] = (energy_uj(rapl) - e0) / 1e6 / max(n, 1)
    return out


def end_to_end(
    mv: Any, runtime: str, precision: str, images: list[np.ndarray], seconds: float
) -> dict[str, Any]:
    """A detector's ``predict`` (letterbox + run + decode and NMS, what the server does per image after
    JPEG decoding) at batch 8 on decoded check images, opened as the server opens it (``open_artifact``)."""
    from jangin.inference import OnnxDetector

    det = OnnxDetector.from_version(mv, prefer=[f"{runtime}:{precision}"])
    if det.runtime != f"{runtime}:{precision}":
        return {}
    batch = [images[i % len(images)] for i in range(8)]
    det.predict(batch)
    n = 0
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        det.predict(batch)
        n += len(batch)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"e2e_img_s": round(n / wall, 2), "e2e_cpu_s_per_img": round(cpu / n, 5)}


def bench_model(
    label: str, mv: Any, check: Any, args: argparse.Namespace, rapl: list[Path]
) -> list[dict[str, Any]]:
    from jangin.core import TrainingError
    from jangin.core.runtimes import open_runtime
    from jangin.core.runtimes._openvino import OpenVinoRuntime
    from jangin.training._export import _tensors, evaluate_runtime, export_runtime

    m = mv.manifest
    xs, _ = _tensors(m, check.inputs[:8])
    x8 = np.stack([xs[i % len(xs)] for i in range(8)])
    rows: list[dict[str, Any]] = []
    base_rt = None
    for runtime, precision in COMBOS:
        row: dict[str, Any] = {"model": label, "runtime": runtime, "precision": precision}
        print(f"[{label}] {runtime} {precision} ...", file=sys.stderr, flush=True)
        try:
            if (runtime, precision) == ("onnxruntime", "fp32"):
                path = mv.path / "model.onnx"
                rt = base_rt = open_runtime(path, threads=args.threads)
                metric, value, _ = evaluate_runtime(rt, m, check)
                row.update(metric=metric, value=round(value, 4), drop=0.0, gate="reference")
            else:
                t = time.perf_counter()
                art = export_runtime(
                    mv,
                    check,
                    runtime=runtime,
                    precision=precision,
                    measure=False,
                    calibration_method=args.calibration_method,
                )
                row["export_s"] = round(time.perf_counter() - t, 1)
                p = art.parity
                row.update(
                    metric=p["metric"],
                    value=p["value"],
                    drop=p["drop"],
                    gate="passed",
                    max_rel_output_diff=float(f"{p['max_rel_output_diff']:.3g}"),
                    verdicts_agree=p["agreement"]["verdicts"],
                    boxes_agree=p["agreement"].get("boxes", ""),
                )
                path = mv.path / art.files[0]
                rt = open_runtime(path, runtime=runtime, precision=precision, threads=args.threads)
        except TrainingError as exc:
            row.update(gate="refused", error=str(exc).split(" (hint")[0])
            rows.append(row)
            print(f"  refused: {row['error']}", file=sys.stderr)
            continue
        if runtime == "openvino":
            blob = path.read_bytes()
            lat_rt = OpenVinoRuntime(
                blob,
                precision=precision,
                threads=args.threads,
                hint="LATENCY",
                weights=path.with_suffix(".bin").read_bytes() if path.suffix == ".xml" else None,
            )
        else:
            lat_rt = rt
        row["p50_ms"], row["p99_ms"] = (round(v, 2) for v in latency(lat_rt, x8[:1], args.seconds))
        best = max((throughput(rt, x8, args.seconds, c, rapl) for c in (1, 2)), key=lambda r: r["img_s"])
        row.update({k: round(v, 4) if isinstance(v, float) else v for k, v in best.items()})
        if m.task == "detect":
            row.update(end_to_end(mv, runtime, precision, check.inputs, args.seconds))
        rows.append(row)
        print(f"  {row}", file=sys.stderr)
    base = next((r for r in rows if (r["runtime"], r["precision"]) == ("onnxruntime", "fp32")), None)
    if base is not None and base_rt is not None and "img_s" in base:
        # fp32 ONNX Runtime again at the end, averaged with the first: the box's load drifts meanwhile
        again = max(
            (throughput(base_rt, x8, args.seconds, c, rapl) for c in (1, 2)), key=lambda r: r["img_s"]
        )
        base["img_s_first_last"] = [base["img_s"], round(again["img_s"], 4)]
        base["img_s"] = round((base["img_s"] + again["img_s"]) / 2, 4)
        base["cpu_s_per_img"] = round((base["cpu_s_per_img"] + again["cpu_s_per_img"]) / 2, 4)
    for r in rows:
        if base and "img_s" in r:
            r["ratio_vs_fp32_ort"] = round(r["img_s"] / base["img_s"], 2)
            # CPU-seconds per image, fp32 ONNX Runtime / this: robust to other load on the box
            r["cpu_ratio_vs_fp32_ort"] = round(base["cpu_s_per_img"] / r["cpu_s_per_img"], 2)
        if base and "e2e_img_s" in r and "e2e_img_s" in base:
            r["e2e_ratio_vs_fp32_ort"] = round(r["e2e_img_s"] / base["e2e_img_s"], 2)
            r["e2e_cpu_ratio_vs_fp32_ort"] = round(base["e2e_cpu_s_per_img"] / r["e2e_cpu_s_per_img"], 2)
    return rows


# -- models ------------------------------------------------------------------------------------------


def untrained_yolo(tmp: Path, imgsz: int) -> tuple[Any, Any]:
    """An untrained YOLO11n exported to ONNX and published; check set: the sample stills with boxes."""
    import csv

    import cv2

    from jangin.core import ModelManifest, ModelRegistry
    from jangin.core.artifacts import InputSpec
    from jangin.training._detect import OPSET
    from jangin.training._export import CheckSet
    from jangin.training._ultralytics_env import ultralytics_offline

    ultralytics_offline(tmp / "ultralytics")
    from ultralytics import YOLO

    insp = ROOT / "sample_data" / "inspection"
    rows = list(csv.DictReader((insp / "boxes.csv").open()))
    classes = sorted({r.get("class") or r.get("label") or r.get("name") or "defect" for r in rows})
    os.chdir(tmp)  # Ultralytics writes the export beside the (YAML) model: keep it out of the repo
    y = YOLO("yolo11n.yaml")
    onnx_path = Path(y.export(format="onnx", imgsz=imgsz, opset=OPSET, dynamic=True, simplify=False))
    import onnx

    nc_out = onnx.load(str(onnx_path)).graph.output[0].type.tensor_type.shape.dim[1].dim_value - 4
    if nc_out <= 0:  # a symbolic dimension (dynamic export): run it once to learn it
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        zeros = np.zeros((1, 3, imgsz, imgsz), np.float32)
        nc_out = sess.run(None, {sess.get_inputs()[0].name: zeros})[0].shape[1] - 4
    classes = [f"c{i}" for i in range(nc_out)] if nc_out != len(classes) else classes
    reg = ModelRegistry(tmp / "models")
    mv = reg.add(
        ModelManifest(
            name="yolo11n-untrained",
            task="detect",
            classes=classes,
            input=InputSpec(width=imgsz, height=imgsz),
            outputs={"format": "yolo_v8", "nms": False},
            thresholds={"conf": 0.25, "iou": 0.45},
        ),
        {"model.onnx": onnx_path},
    )
    imgs = sorted((insp / "images").glob("*.jpg"))
    held, cal = imgs[:40], imgs[40:104]
    truths = [(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)) for _ in held]
    truths[0] = (np.array([[0.1, 0.1, 0.3, 0.3]], np.float32), np.array([0]))  # one box: mAP is defined
    read = lambda p: cv2.imread(str(p), cv2.IMREAD_COLOR)  # noqa: E731
    return mv, CheckSet([read(p) for p in held], truths, [read(p) for p in cal], "sample stills (untrained)")


def patchcore(tmp: Path, size: int = 128) -> tuple[Any, Any]:
    import cv2
    import torch

    from jangin.core import ModelManifest, ModelRegistry
    from jangin.core.artifacts import InputSpec
    from jangin.training._anomaly import (
        MEAN,
        STD,
        AnomalyConfig,
        _build,
        _Scorer,
        export_anomaly_onnx,
        k_center_greedy,
    )
    from jangin.training._export import CheckSet, _tensors

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    insp = ROOT / "sample_data" / "inspection"
    good = sorted((insp / "good").glob("*.jpg"))
    bad = sorted((insp / "images").glob("*.jpg"))[:60]
    train, test_good = good[:60], good[60:]
    read = lambda p: cv2.imread(str(p), cv2.IMREAD_COLOR)  # noqa: E731
    spec = InputSpec(width=size, height=size, resize="stretch", mean=MEAN, std=STD)
    man = ModelManifest(
        name="patchcore",
        task="anomaly",
        classes=["good", "anomalous"],
        input=spec,
        outputs={"format": "anomaly_v1"},
    )
    torch.manual_seed(0)
    model, _ = _build(AnomalyConfig(imgsz=size), torch)
    model.train()
    xs, _ = _tensors(man, [read(p) for p in train])
    with torch.no_grad():
        for i in range(0, len(xs), 16):
            model(torch.from_numpy(np.stack(xs[i : i + 16])))
    emb = torch.vstack(model.embedding_store)
    model.embedding_store.clear()
    model.memory_bank = emb[k_center_greedy(emb, 0.1)]
    model.eval()
    onnx_path = export_anomaly_onnx(_Scorer(model).eval(), tmp / "patchcore.onnx", size)
    mv = ModelRegistry(tmp / "models").add(man, {"model.onnx": onnx_path})
    held = test_good + bad
    labels = [False] * len(test_good) + [True] * len(bad)
    return mv, CheckSet([read(p) for p in held], labels, [read(p) for p in train[:32]], "sample stills")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--calibration-method", default="minmax")
    ap.add_argument("--calibration", type=int, default=256, help="INT8: training images to calibrate on")
    ap.add_argument("--registry", type=Path, help="registry of a trained detector")
    ap.add_argument("--model", help="its name[:version]")
    ap.add_argument("--dataset", type=Path, help="its dataset (default: the manifest's)")
    ap.add_argument("--no-detector", action="store_true")
    ap.add_argument("--no-anomaly", action="store_true")
    ap.add_argument("--neu-det", type=Path, help="NEU-DET data (needs --neu-registry/--neu-model)")
    ap.add_argument("--neu-registry", type=Path)
    ap.add_argument("--neu-model")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from jangin.core import ModelRegistry
    from jangin.training._export_data import check_set_for

    rapl = rapl_files()
    print(
        f"cores: {os.cpu_count()}, threads {args.threads}; RAPL: "
        + ("readable" if rapl else "not readable here (/sys/class/powercap): no joules"),
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-runtimes-") as d:
        tmp = Path(d)
        if not args.no_detector:
            if args.registry and args.model:
                mv = ModelRegistry(args.registry).get(args.model)
                rows += bench_model(
                    mv.name,
                    mv,
                    check_set_for(mv, dataset=args.dataset, calibration=args.calibration),
                    args,
                    rapl,
                )
            else:
                mv, check = untrained_yolo(tmp, args.imgsz)
                rows += bench_model(f"yolo11n@{args.imgsz} (untrained)", mv, check, args, rapl)
        if not args.no_anomaly:
            mv, check = patchcore(tmp)
            rows += bench_model("patchcore r18@128", mv, check, args, rapl)
        if args.neu_det:
            if args.neu_registry and args.neu_model:
                mv = ModelRegistry(args.neu_registry).get(args.neu_model)
                rows += bench_model(
                    f"NEU-DET {mv.name}", mv, check_set_for(mv, calibration=args.calibration), args, rapl
                )
            else:
                print(
                    "NEU-DET: no trained detector given (--neu-registry/--neu-model): not run",
                    file=sys.stderr,
                )
    cols = [
        "model",
        "runtime",
        "precision",
        "gate",
        "metric",
        "value",
        "drop",
        "max_rel_output_diff",
        "verdicts_agree",
        "boxes_agree",
        "p50_ms",
        "p99_ms",
        "img_s",
        "ratio_vs_fp32_ort",
        "cpu_s_per_img",
        "cpu_ratio_vs_fp32_ort",
        "joules_per_img",
        "e2e_img_s",
        "e2e_ratio_vs_fp32_ort",
        "e2e_cpu_s_per_img",
        "e2e_cpu_ratio_vs_fp32_ort",
    ]
    print(f"load average at the end: {os.getloadavg()}")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "rapl": bool(rapl), "threads": args.threads}, indent=2))


if __name__ == "__main__":
    main()
