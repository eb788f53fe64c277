"""Ingest API: sustained sensor batches/s from N concurrent recording clients (real uvicorn
subprocess on loopback), with the server's memory sampled over the run; against the same batches
staged directly (no HTTP) in the same run.

    python bench/bench_capture_api.py --seconds 120 --clients 8 --batch 1000

Memory is "flat" when the server's RSS in the last tenth of the run is within 15 % of the RSS
after the first tenth.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

KEY = "bench-recorder-key"
SERVE = Path(__file__).resolve().parents[1] / "tests" / "capture" / "_serve.py"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1000, help="samples per batch (1 kHz: 1 s of one channel)")
    a = ap.parse_args()

    import httpx

    from jangin.capture._client import IngestClient
    from jangin.capture._staging import Staging

    meta = {
        "site": "bench",
        "started_at": "2026-03-02T08:00:00Z",
        "devices": [
            {
                "name": "power_source",
                "clock_offset_s": 0.0,
                "channels": [{"name": "arc_current_A", "unit": "A"}],
            }
        ],
    }
    t = 1.7e9 + np.arange(a.batch) / 1000.0
    v = np.random.default_rng(0).normal(160, 5, a.batch)
    with tempfile.TemporaryDirectory() as tmp:
        # baseline: staging the same batches in-process (validation + Arrow IPC + fsync), one thread
        st = Staging(Path(tmp) / "direct")
        st.create("ses-direct", {**meta, "session_id": "ses-direct"})
        import pyarrow as pa

        table = pa.table({"t": t, "arc_current_A": v})
        n0, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < min(10.0, a.seconds / 4):
            st.append_sensors("ses-direct", "power_source", n0, table)
            n0 += 1
        direct = n0 / (time.perf_counter() - t0)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "JANGIN_DATASET": str(Path(tmp) / "ds"),
            "JANGIN_API_KEYS": json.dumps({KEY: "recorder"}),
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
        proc = subprocess.Popen([sys.executable, str(SERVE), str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)
            counts = [0] * a.clients
            errors = [0] * a.clients
            stop = threading.Event()

            def client(i: int) -> None:
                with IngestClient(url, KEY) as c:
                    sid = c.create_session(session_key=f"bench-{i}", **meta)
                    seq = 0
                    while not stop.is_set():
                        try:
                            c.send_sensors(
                                sid, "power_source", seq, t + seq * a.batch / 1000.0, {"arc_current_A": v}
                            )
                            counts[i] += 1
                        except Exception:
                            errors[i] += 1
                        seq += 1

            threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.clients)]
            start = time.perf_counter()
            for th in threads:
                th.start()
            rss: list[tuple[float, float]] = []
            while time.perf_counter() - start < a.seconds:
                time.sleep(min(1.0, a.seconds / 20))
                rss.append((time.perf_counter() - start, _rss_mb(proc.pid)))
            stop.set()
            for th in threads:
                th.join(30)
            elapsed = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(30)
    total = sum(counts)
    early = [m for s, m in rss if s <= a.seconds * 0.2] or [rss[0][1]]
    late = [m for s, m in rss if s >= a.seconds * 0.9] or [rss[-1][1]]
    growth = np.median(late) / np.median(early) - 1
    print(
        f"{a.clients} clients x {a.seconds:.0f} s, {a.batch} samples/batch (Arrow IPC), errors: {sum(errors)}"
    )
    print(
        f"HTTP ingest : {total / elapsed:8.1f} batches/s  ({total * a.batch / elapsed / 1e6:.2f} M samples/s)"
    )
    print(f"direct stage: {direct:8.1f} batches/s  (same validation + fsync, no HTTP, 1 thread)")
    print(f"ratio HTTP/direct: {total / elapsed / direct:.2f}x")
    print(
        f"server RSS: {np.median(early):.0f} MiB early -> {np.median(late):.0f} MiB late ({growth:+.1%}; flat = within 15 %: {'yes' if abs(growth) < 0.15 else 'NO'})"
    )


if __name__ == "__main__":
    main()
