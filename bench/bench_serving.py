"""Serving benchmark: the HTTP server vs the raw runtime, overload at the door, CPU-seconds per verdict.

For each model given (a detector and/or an anomaly model), in one run:

1. raw runtime throughput: ``model.predict`` (pre-processing + runtime + post-processing, the work the
   server does per image minus HTTP and JPEG decoding) on decoded images at batch ``min(clients, 8)``;
2. HTTP throughput of ``POST /v1/inspect`` (server in a subprocess, default settings: micro-batching,
   the door, durable verdicts through the write-ahead log) at 1 / 8 / 32 / 128 keep-alive clients; a
   refused request (503) is retried at once, the worst case for the door; the ratio HTTP / raw;
3. overload: throughput at 4x the saturating concurrency (128 vs 32 clients) over the saturated one;
4. CPU-seconds per verdict: the server process's CPU time (user + system, from /proc) over the 2xx
   verdicts; raw: this process's CPU time over the images.

Usage::

    python bench/bench_serving.py --registry DATASET/models --detector NAME [--anomaly NAME] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
CLIENTS = (1, 8, 32, 128)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def images(n: int, size: int, seed: int = 0) -> list[bytes]:
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.full((size, size, 3), 90, np.uint8)
        for _ in range(3):
            x, y = rng.integers(0, size - size // 4, 2)
            img[y : y + size // 6, x : x + size // 6] = rng.integers(0, 255, 3)
        out.append(cv2.imencode(".jpg", img)[1].tobytes())
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from jangin.core import Dataset
    from jangin.core.server import create_app
    from jangin.core.settings import Settings
    from jangin.inference.inspection import InferenceConfig
    from jangin.inference.server import make_register

    ds = Dataset.open(args.dataset)
    cfg = InferenceConfig(model=args.serve_model, ok_sample_every=20)
    settings = Settings(dataset=ds.root, api_keys={"bench": "engineer"})
    app = create_app(settings, routers=[], extra=[make_register(cfg, dataset=ds)])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


class Server:
    def __init__(self, dataset: Path, model: str) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, str(HERE), "--serve", "--dataset", str(dataset), "--serve-model", model]
        self.proc = subprocess.Popen([*cmd, "--port", str(self.port)])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("bench server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


async def _load(url: str, bodies: list[bytes], clients: int, seconds: float) -> tuple[int, int]:
    """``clients`` keep-alive connections posting back to back (a minimal asyncio HTTP/1.1 client)."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    reqs = [
        (
            f"POST /v1/inspect HTTP/1.1\r\nHost: {u.netloc}\r\nX-API-Key: bench\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(b)}\r\n\r\n"
        ).encode()
        + b
        for b in bodies
    ]
    done = shed = 0
    stop = time.monotonic() + seconds

    async def worker(k: int) -> None:
        nonlocal done, shed
        reader = writer = None
        i = k
        while time.monotonic() < stop:
            if writer is None:
                reader, writer = await asyncio.open_connection(u.hostname, u.port)
            writer.write(reqs[i % len(reqs)])
            i += 1
            try:
                head = await reader.readuntil(b"\r\n\r\n")  # type: ignore[union-attr]
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)  # type: ignore[union-attr]
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                writer = None
                continue
            if head.startswith(b"HTTP/1.1 200"):
                done += 1
            else:
                shed += 1
                if b"connection: close" in head.lower():
                    writer.close()
                    writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker(k) for k in range(clients)))
    return done, shed


def http_point(srv: Server, bodies: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    c0, t0 = cpu_seconds(srv.proc.pid), time.perf_counter()
    done, shed = asyncio.run(_load(srv.url, bodies, clients, seconds))
    wall, cpu = time.perf_counter() - t0, cpu_seconds(srv.proc.pid) - c0
    return {"ips": done / wall, "shed": shed, "cpu_s_per_verdict": cpu / max(done, 1), "verdicts": done}


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


def bench_model(ds_root: Path, kind: str, seconds: float) -> dict[str, Any]:
    from jangin.core import ModelRegistry
    from jangin.inference._images import decode_checked
    from jangin.inference.inspection import ServedModel

    mv = ModelRegistry(ds_root / "models").get(kind)
    served = ServedModel.load(mv, providers=None, min_conf=0.25)
    m = mv.manifest
    bodies = images(16, max(m.input.width, 64) if m.input else 256)
    imgs = [decode_checked(b) for b in bodies]
    artifact = getattr(served.impl.session, "artifact", "onnxruntime:fp32")
    print(f"\n{kind}: {m.name} ({m.task}, {m.framework}, {m.input.width if m.input else '?'} px), {artifact}")
    out: dict[str, Any] = {"model": f"{m.task} {m.input.width if m.input else '?'}px", "artifact": artifact}
    srv = Server(ds_root, kind)
    try:
        asyncio.run(_load(srv.url, bodies, 8, 1.0))  # warm-up
        raw_point(served, imgs, 8, 1.0)
        print(" clients  raw img/s  HTTP img/s  HTTP/raw  503s  CPU-s/verdict raw  HTTP")
        for c in CLIENTS:
            r = raw_point(served, imgs, c, seconds)
            h = http_point(srv, bodies, c, seconds)
            out[str(c)] = {"raw": r, "http": h, "ratio": h["ips"] / r["ips"]}
            print(
                f" {c:7d} {r['ips']:10.1f} {h['ips']:11.1f} {h['ips'] / r['ips']:9.2f} {h['shed']:5d}"
                f" {r['cpu_s_per_verdict']:18.4f} {h['cpu_s_per_verdict']:6.4f}",
                flush=True,
            )
    finally:
        srv.stop()
    sat = max(out[str(c)]["http"]["ips"] for c in (8, 32))
    out["overload_ratio"] = out["128"]["http"]["ips"] / sat
    print(
        f" overload: 128 clients {out['128']['http']['ips']:.1f} img/s = {out['overload_ratio']:.2f}x saturated"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", type=Path, help="model registry (a dataset's models/)")
    ap.add_argument("--detector", help="detector name[:version]")
    ap.add_argument("--anomaly", help="anomaly model name[:version]")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per point")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--serve-model", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return
    if args.registry is None or not (args.detector or args.anomaly):
        ap.error("give --registry and --detector and/or --anomaly")
    from jangin.core import Dataset, ModelRegistry

    res: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
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
