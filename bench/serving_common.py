"""What the serving benchmarks share: test images, the inspection server in a subprocess, a lean
asyncio HTTP/1.1 load client (immediate retry or honouring ``Retry-After``), CPU and memory of a process.

Used by ``bench_serving.py`` and ``bench_inference_latency.py``. Run as a script it is the server:
``python bench/serving_common.py --serve --dataset DS --model NAME --port P [--max-batch 8] [--max-queue N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def images(n: int, size: int, seed: int = 0) -> list[bytes]:
    """``n`` JPEGs of ``size`` px: grey with three coloured squares."""
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
    """User + system CPU seconds of process ``pid`` (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the server ------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from jangin.core import Dataset
    from jangin.core.server import create_app
    from jangin.core.settings import Settings
    from jangin.inference.inspection import InferenceConfig
    from jangin.inference.server import make_register

    ds = Dataset.open(args.dataset)
    extra = {"max_queue": args.max_queue} if args.max_queue else {}
    cfg = InferenceConfig(
        model=args.model, max_batch=args.max_batch, ok_sample_every=args.ok_sample_every, **extra
    )
    settings = Settings(dataset=ds.root, api_keys={"bench": "engineer"})
    app = create_app(settings, routers=[], extra=[make_register(cfg, dataset=ds)])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


class Server:
    """The inspection server on ``dataset`` serving ``model``, in its own interpreter (as in production)."""

    def __init__(
        self, dataset: Path, model: str, *, max_batch: int = 8, max_queue: int = 0, ok_sample_every: int = 20
    ) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, str(HERE), "--serve", "--dataset", str(dataset), "--model", model]
        cmd += ["--max-batch", str(max_batch), "--max-queue", str(max_queue), "--port", str(self.port)]
        cmd += ["--ok-sample-every", str(ok_sample_every)]
        self.proc = subprocess.Popen(cmd)
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


# -- the load client -------------------------------------------------------------------------------


@dataclass
class Load:
    """What a load run got: verdicts (2xx), refusals (503), other answers, client CPU seconds."""

    done: int = 0
    shed: int = 0
    errors: int = 0
    client_cpu_s: float = 0.0
    wall_s: float = 0.0


async def _load(
    url: str, bodies: list[bytes], clients: int, seconds: float, *, honour_retry_after: bool
) -> Load:
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
    res = Load()
    stop = time.monotonic() + seconds

    async def worker(k: int) -> None:
        reader = writer = None
        i = k
        while time.monotonic() < stop:
            if writer is None:
                reader, writer = await asyncio.open_connection(u.hostname, u.port)
            writer.write(reqs[i % len(reqs)])
            i += 1
            try:
                head = await reader.readuntil(b"\r\n\r\n")  # type: ignore[union-attr]
                lines = head.lower().split(b"\r\n")
                length = next(int(h.split(b":")[1]) for h in lines if h.startswith(b"content-length"))
                await reader.readexactly(length)  # type: ignore[union-attr]
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                writer = None
                continue
            if head.startswith(b"HTTP/1.1 2"):
                res.done += 1
                continue
            if head.startswith(b"HTTP/1.1 503"):
                res.shed += 1
            else:
                res.errors += 1
            if b"connection: close" in lines:
                writer.close()
                writer = None
            if honour_retry_after:
                wait = next((float(h.split(b":")[1]) for h in lines if h.startswith(b"retry-after")), 1.0)
                await asyncio.sleep(min(wait, max(0.0, stop - time.monotonic())))
        if writer is not None:
            writer.close()

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    res.client_cpu_s, res.wall_s = time.process_time() - c0, time.perf_counter() - t0
    return res


def load(
    url: str, bodies: list[bytes], clients: int, seconds: float, *, honour_retry_after: bool = False
) -> Load:
    """``clients`` keep-alive connections posting ``bodies`` back to back for ``seconds``.

    A 503 is retried at once (the worst case for the door) or, with ``honour_retry_after``, after the
    ``Retry-After`` the server sent (how well-behaved clients and the camera workers act).
    """
    return asyncio.run(_load(url, bodies, clients, seconds, honour_retry_after=honour_retry_after))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--serve", action="store_true", required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-queue", type=int, default=0, help="0: the server's default")
    ap.add_argument("--ok-sample-every", type=int, default=20)
    serve(ap.parse_args())


if __name__ == "__main__":
    main()
