"""Inspection server benchmark: HTTP vs raw ONNX Runtime, same model, same images, same run.

Measures
  1. latency at batch 1: p50 / p99 of ``POST /v1/inspect`` (keep-alive client) against raw
     ``InferenceSession.run`` on the preprocessed input, and against ``OnnxDetector.predict`` (pre + run +
     post); the goal is an HTTP p99 overhead of at most 3 ms over raw ``run``;
  2. throughput with 1, 8 and 32 concurrent clients, micro-batching on (max_batch 8) and off
     (max_batch 1), against raw ``run`` at batch 1 and batch 8;
  3. server memory (RSS) over a sustained run of ``--duration`` seconds.

The server runs in a subprocess (its own interpreter, as in production), so the client does not share
its GIL. Usage::

    python bench/bench_inference_latency.py --registry DATASET/models --model NAME [--duration 60]
    python bench/bench_inference_latency.py --train          # trains a tiny YOLO first (imgsz 128)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


sys.path.insert(0, str(HERE.parent))
from serving_common import Server, images, load, rss_mb  # noqa: E402

HEADERS = {"X-API-Key": "bench", "Content-Type": "image/jpeg"}


def http_latency(url: str, bodies: list[bytes], n: int) -> tuple[list[float], list[float]]:
    """Sequential requests on one keep-alive connection (stdlib ``http.client``: a lean client, so the
    numbers are the server's, not the client library's)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    wall, server = [], []
    for i in range(n + 10):
        t = time.perf_counter()
        conn.request("POST", "/v1/inspect", body=bodies[i % len(bodies)], headers=HEADERS)
        r = conn.getresponse()
        data = r.read()
        dt = (time.perf_counter() - t) * 1e3
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
        if i >= 10:
            wall.append(dt)
            server.append(json.loads(data)["latency_ms"])
    conn.close()
    return wall, server


def throughput(url: str, bodies: list[bytes], clients: int, seconds: float) -> tuple[float, int]:
    r = load(url, bodies, clients, seconds)
    return r.done / r.wall_s, r.shed + r.errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=Path, help="model registry (a dataset's models/)")
    ap.add_argument("--model", default=None, help="model name[:version]")
    ap.add_argument("--train", action="store_true", help="train a tiny YOLO (needs jangin-training) instead")
    ap.add_argument("--imgsz", type=int, default=128, help="input size when training (--train)")
    ap.add_argument("--requests", type=int, default=300, help="sequential requests for the latency test")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per throughput configuration")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the sustained memory run")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    import shutil

    from jangin.core import Dataset, ModelRegistry
    from jangin.inference import OnnxDetector
    from jangin.inference._detector import decode_image

    work = Path(tempfile.mkdtemp(prefix="jangin-bench-"))
    ds = Dataset.create(work / "ds")
    if args.train:
        sys.path.insert(0, str(HERE.parents[1] / "tests" / "training"))
        import synthetic  # type: ignore[import-not-found]

        from jangin.training import build_detection_set, train_detector

        src = synthetic.make_detection_dataset(work / "train-ds")
        data = build_detection_set(src, cache_dir=work / "cache")
        mv = train_detector(
            data,
            registry=ModelRegistry(ds.models_dir),
            name="bench",
            epochs=1,
            imgsz=args.imgsz,
            batch=8,
            work_dir=work / "work",
            allow_random_init=True,
        )
    else:
        if args.registry is None or args.model is None:
            ap.error("give --registry and --model, or --train")
        src_mv = ModelRegistry(args.registry).get(args.model)
        shutil.copytree(src_mv.path, ds.models_dir / "bench" / src_mv.version)
        mv = ModelRegistry(ds.models_dir).get("bench", verify=False)
        mv.manifest.name = "bench"
        (mv.path / "manifest.json").write_text(mv.manifest.model_dump_json(indent=2))
    size = mv.manifest.input.width
    bodies = images(16, max(size, 64))
    det = OnnxDetector.from_version(ModelRegistry(ds.models_dir).get("bench"))
    sess = det.session
    name = sess.get_inputs()[0].name
    x1 = [det._prepare(decode_image(b), 0)[0][None] for b in bodies]
    res: dict[str, Any] = {
        "model": f"{mv.manifest.framework} {size}px",
        "provider": sess.get_providers()[0],
        "cpus": os.cpu_count(),
    }

    def timed(fn: Any, n: int) -> list[float]:
        out = []
        for i in range(n + 10):
            t = time.perf_counter()
            fn(i)
            if i >= 10:
                out.append((time.perf_counter() - t) * 1e3)
        return out

    imgs = [decode_image(b) for b in bodies]
    print(f"model {res['model']}, provider {res['provider']}, {res['cpus']} CPUs", flush=True)
    raw = timed(lambda i: sess.run(None, {name: x1[i % len(x1)]}), args.requests)
    full = timed(lambda i: det.predict([imgs[i % len(imgs)]]), args.requests)
    servers = {b: Server(ds.root, "bench", max_batch=b, max_queue=256, ok_sample_every=0) for b in (8, 1)}
    try:
        wall, server_ms = http_latency(servers[8].url, bodies, args.requests)
        lat = {"raw_run": raw, "predict": full, "http": wall, "http_server_side": server_ms}
        res["latency_ms"] = {
            k: {"p50": pct(v, 50), "p99": pct(v, 99), "mean": statistics.fmean(v)} for k, v in lat.items()
        }
        print("\nlatency at batch 1 (ms)           p50      p99")
        for k, v in res["latency_ms"].items():
            print(f"  {k:<28} {v['p50']:8.2f} {v['p99']:8.2f}")
        ov50 = res["latency_ms"]["http"]["p50"] - res["latency_ms"]["raw_run"]["p50"]
        ov99 = res["latency_ms"]["http"]["p99"] - res["latency_ms"]["raw_run"]["p99"]
        pv50 = res["latency_ms"]["http"]["p50"] - res["latency_ms"]["predict"]["p50"]
        pv99 = res["latency_ms"]["http"]["p99"] - res["latency_ms"]["predict"]["p99"]
        res["http_overhead_ms"] = {
            "p50": ov50,
            "p99": ov99,
            "over_predict_p50": pv50,
            "over_predict_p99": pv99,
        }
        print(
            f"  HTTP overhead over predict (same pre/post as the server): p50 {pv50:+.2f} ms, p99 {pv99:+.2f} ms"
        )
        print(
            f"  HTTP overhead over raw run: p50 {ov50:+.2f} ms, p99 {ov99:+.2f} ms (goal p99 <= 3 ms); "
            f"ratio p50 {res['latency_ms']['http']['p50'] / res['latency_ms']['raw_run']['p50']:.2f}x",
            flush=True,
        )

        def raw_rate(batch: int, seconds: float) -> float:
            xb = np.concatenate([x1[i % len(x1)] for i in range(batch)])
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < seconds:
                sess.run(None, {name: xb})
                n += batch
            return n / (time.perf_counter() - t)

        res["raw_ips"] = {"batch1": raw_rate(1, args.seconds), "batch8": raw_rate(8, args.seconds)}
        res["throughput_ips"] = {}
        print(
            f"\nthroughput (images/s)   raw ORT: batch 1 {res['raw_ips']['batch1']:.0f}, batch 8 {res['raw_ips']['batch8']:.0f}"
        )
        print("  clients  batching-on  batching-off  on/raw1  errors")
        for clients in (1, 8, 32):
            on, e1 = throughput(servers[8].url, bodies, clients, args.seconds)
            off, e2 = throughput(servers[1].url, bodies, clients, args.seconds)
            res["throughput_ips"][clients] = {"batching": on, "no_batching": off, "errors": e1 + e2}
            print(
                f"  {clients:>7}  {on:11.0f}  {off:12.0f}  {on / res['raw_ips']['batch1']:7.2f}  {e1 + e2:6d}",
                flush=True,
            )

        pid = servers[8].proc.pid
        samples = [(0.0, rss_mb(pid))]
        t0 = time.monotonic()
        step = max(1.0, args.duration / 12)
        total = 0
        while time.monotonic() - t0 < args.duration:
            total += load(servers[8].url, bodies, 8, min(step, args.duration - (time.monotonic() - t0))).done
            samples.append((time.monotonic() - t0, rss_mb(pid)))
        half = [m for t, m in samples if t >= args.duration / 2]
        res["memory_mb"] = {
            "start": samples[1][1] if len(samples) > 1 else samples[0][1],
            "end": samples[-1][1],
            "max": max(m for _, m in samples),
            "second_half_growth": (half[-1] - half[0]) if half else 0.0,
            "requests": total,
            "seconds": args.duration,
        }
        m = res["memory_mb"]
        print(
            f"\nmemory over {args.duration:.0f} s sustained ({total} requests, 8 clients): RSS start {m['start']:.0f} MB, "
            f"end {m['end']:.0f} MB, max {m['max']:.0f} MB, growth over the second half {m['second_half_growth']:+.1f} MB"
        )
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
