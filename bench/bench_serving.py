"""Serving benchmark: the HTTP server vs the raw runtime, overload at the door, CPU-seconds per verdict.

For each model given (a detector and/or an anomaly model), in one run:

1. raw runtime throughput: ``model.predict`` (pre-processing + runtime + post-processing, the work the
   server does per image minus HTTP and JPEG decoding) on decoded images at batch ``min(clients, 8)``,
   the better of ONNX Runtime with its pool threads spinning (its default) and without (the server's);
2. HTTP throughput of ``POST /v1/inspect`` (server in a subprocess, default settings: micro-batching,
   the door, durable verdicts through the write-ahead log) at 1 / 8 / 32 / 128 keep-alive clients; a
   refused request (503) is retried at once, the worst case for the door; the ratio HTTP / raw;
3. overload: throughput at 4x the saturating concurrency (128 vs 32 clients) over the saturated one,
   with immediate retries and again with clients that wait the ``Retry-After`` (how real clients and
   the camera workers behave); the load client's own CPU (it shares the cores) is printed beside.
   The door holds each 503 for ``refusal_delay_s`` (0.2 s) before sending it, so an immediate-retry
   client retries at most 5 times a second per connection;
4. CPU-seconds per verdict: the server process's CPU time (user + system, from /proc) over the 2xx
   verdicts; raw: this process's CPU time over the images.

Usage::

    python bench/bench_serving.py --registry DATASET/models --detector NAME [--anomaly NAME] [--seconds 5]
    python bench/bench_serving.py --untrained-yolo 256     # no registry: an untrained YOLO11n at 256 px

``--untrained-yolo`` exports a YOLO11n from its YAML (random init, nothing downloaded, as
``bench_runtimes.py`` does): the demo detector's architecture and input size, so its serving cost; its
verdicts are meaningless (it finds no boxes, so NMS never runs: a trained model on line images adds
little there).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CLIENTS = (1, 8, 32, 128)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_common import Server, cpu_seconds, images, load  # noqa: E402


def http_point(
    srv: Server, bodies: list[bytes], clients: int, seconds: float, *, honour_retry_after: bool = False
) -> dict[str, Any]:
    c0 = cpu_seconds(srv.proc.pid)
    r = load(srv.url, bodies, clients, seconds, honour_retry_after=honour_retry_after)
    cpu = cpu_seconds(srv.proc.pid) - c0
    return {
        "ips": r.done / r.wall_s,
        "shed": r.shed,
        "errors": r.errors,
        "cpu_s_per_verdict": cpu / max(r.done, 1),
        "server_cpu_share": cpu / r.wall_s,  # cores' worth the server used
        "client_cpu_share": r.client_cpu_s / r.wall_s,  # cores' worth the load client took from it
        "verdicts": r.done,
    }


def raw_point(model: Any, imgs: list[np.ndarray], clients: int, seconds: float) -> dict[str, Any]:
    batch = min(clients, 8)
    n, i = 0, 0
    c0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.run([imgs[(i + j) % len(imgs)] for j in range(batch)])
        n += batch
        i += batch
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"ips": n / wall, "cpu_s_per_verdict": cpu / max(n, 1), "batch": batch}


def _ips(point: dict[str, Any]) -> float:
    return float(point["ips"])


def bench_model(ds_root: Path, kind: str, seconds: float) -> dict[str, Any]:
    from jangin.core import ModelRegistry
    from jangin.inference._images import decode_checked
    from jangin.inference.inspection import ServedModel

    mv = ModelRegistry(ds_root / "models").get(kind)
    served = ServedModel.load(mv, providers=None, min_conf=0.25)
    # the raw baseline is the better of ONNX Runtime with and without its spinning threads (the server
    # turns spinning off: jangin.core.runtimes._ort), so the ratio is never flattered by a slow baseline
    os.environ["JANGIN_ORT_SPIN"] = "1"
    try:
        spinning = ServedModel.load(mv, providers=None, min_conf=0.25)
    finally:
        os.environ.pop("JANGIN_ORT_SPIN")
    m = mv.manifest
    bodies = images(16, max(m.input.width, 64) if m.input else 256)
    imgs = [decode_checked(b) for b in bodies]
    artifact = getattr(served.impl.session, "artifact", "onnxruntime:fp32")
    print(f"\n{kind}: {m.name} ({m.task}, {m.framework}, {m.input.width if m.input else '?'} px), {artifact}")
    out: dict[str, Any] = {"model": f"{m.task} {m.input.width if m.input else '?'}px", "artifact": artifact}
    srv = Server(ds_root, kind)
    try:
        load(srv.url, bodies, 8, 1.0)  # warm-up
        raw_point(served, imgs, 8, 1.0)
        raw_point(spinning, imgs, 8, 1.0)
        print(" clients  raw img/s  HTTP img/s  HTTP/raw  503s  CPU-s/verdict raw  HTTP  client cores")
        for c in CLIENTS:
            r = max(
                raw_point(served, imgs, c, seconds / 2), raw_point(spinning, imgs, c, seconds / 2), key=_ips
            )
            h = http_point(srv, bodies, c, seconds)
            out[str(c)] = {"raw": r, "http": h, "ratio": h["ips"] / r["ips"]}
            print(
                f" {c:7d} {r['ips']:10.1f} {h['ips']:11.1f} {h['ips'] / r['ips']:9.2f} {h['shed']:5d}"
                f" {r['cpu_s_per_verdict']:18.4f} {h['cpu_s_per_verdict']:6.4f} {h['client_cpu_share']:6.2f}",
                flush=True,
            )
        # overload again with clients that wait the Retry-After the door sends
        h = http_point(srv, bodies, 128, seconds, honour_retry_after=True)
        out["128_retry_after"] = {"http": h}
        print(
            f" {128:7d} {'':10} {h['ips']:11.1f} {'':9} {h['shed']:5d} {'':18} {h['cpu_s_per_verdict']:6.4f}"
            f" {h['client_cpu_share']:6.2f}  (clients honour Retry-After)",
            flush=True,
        )
    finally:
        srv.stop()
    sat = max(out[str(c)]["http"]["ips"] for c in (8, 32))
    out["overload_ratio"] = out["128"]["http"]["ips"] / sat
    out["overload_ratio_retry_after"] = out["128_retry_after"]["http"]["ips"] / sat
    print(
        f" overload: 128 clients {out['128']['http']['ips']:.1f} img/s = {out['overload_ratio']:.2f}x saturated"
        f" (immediate retry); {out['overload_ratio_retry_after']:.2f}x when clients honour Retry-After"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=Path, help="model registry (a dataset's models/)")
    ap.add_argument("--detector", help="detector name[:version]")
    ap.add_argument("--anomaly", help="anomaly model name[:version]")
    ap.add_argument(
        "--untrained-yolo", type=int, metavar="IMGSZ", help="serve an untrained YOLO11n at IMGSZ px"
    )
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per point")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    if not args.untrained_yolo and (args.registry is None or not (args.detector or args.anomaly)):
        ap.error("give --registry and --detector and/or --anomaly, or --untrained-yolo IMGSZ")
    from jangin.core import Dataset, ModelRegistry

    res: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        if args.untrained_yolo:
            from bench_runtimes import untrained_yolo

            cwd = os.getcwd()
            (Path(tmp) / "yolo").mkdir()
            mv, _ = untrained_yolo(Path(tmp) / "yolo", args.untrained_yolo)
            os.chdir(cwd)
            args.registry, args.detector = mv.path.parents[1], f"{mv.name}:{mv.version}"
        ds = Dataset.create(Path(tmp) / "ds")
        for kind, ref in (("detector", args.detector), ("anomaly", args.anomaly)):
            if ref:
                src = ModelRegistry(args.registry).get(ref)
                shutil.copytree(src.path, ds.models_dir / kind / src.version)
                man = json.loads((ds.models_dir / kind / src.version / "manifest.json").read_text())
                man["name"] = kind
                (ds.models_dir / kind / src.version / "manifest.json").write_text(json.dumps(man, indent=2))
        for kind, ref in (("detector", args.detector), ("anomaly", args.anomaly)):
            if ref:
                res[kind] = bench_model(ds.root, kind, args.seconds)
    res["loadavg_end"] = os.getloadavg()[0]
    print(f"\n{res['cpus']} CPUs; load average {res['loadavg_start']:.1f} -> {res['loadavg_end']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
