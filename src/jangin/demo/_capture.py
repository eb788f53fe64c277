"""The demo's HTTP ingest: one sample session sent through the ingest API as a recording app would."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["demo_http_ingest"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_http_ingest(
    ds_root: Path, session_dir: Path, settings: Any, *, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Start the API on a free loopback port (uvicorn in a thread), upload ``session_dir`` (create,
    sensor batches, events, chunked video, finish), wait for processing and stop the server.

    The session is sent without its clock offsets for the power source and camera, so the server
    estimates them from the sync event, as it would for an app that does not know them.

    Args:
        ds_root: Dataset directory the server writes to.
        session_dir: A recorded session folder (``session.yaml`` + files).
        settings: Site settings (pseudonym key, limits); a one-off recorder API key is added.

    Returns:
        ``session_id``, ``state``, counts (batches, samples, events, video_bytes, frames), the
        estimated offsets and timings (``upload_s``, ``processing_s``, ``total_s``).

    Raises:
        jangin.core.CaptureError: The upload or processing failed.
    """
    import uvicorn

    from jangin.capture._client import IngestClient, upload_session
    from jangin.capture.server import register
    from jangin.core import CaptureError
    from jangin.core.server import create_app

    key = secrets.token_hex(16)
    cfg = settings.model_copy(
        update={"api_keys": {**settings.api_keys, key: "recorder"}, "dataset": Path(ds_root)}
    )
    app = create_app(cfg, routers=[], extra=[register])
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="jangin-demo-ingest", daemon=True)
    t0 = time.perf_counter()
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise CaptureError("demo ingest server did not start")
            time.sleep(0.05)
        with IngestClient(f"http://127.0.0.1:{port}", key) as client:
            t1 = time.perf_counter()
            sid, counts = upload_session(
                client,
                Path(session_dir),
                batch_s=1.0,
                chunk_size=256 * 1024,
                estimate=("power_source", "torch_cam"),
            )
            t2 = time.perf_counter()
            status = client.wait(sid, timeout_s=timeout_s)
            t3 = time.perf_counter()
    finally:
        server.should_exit = True
        thread.join(30)
    if status.get("state") != "processed":
        raise CaptureError(f"demo ingest of {session_dir.name} failed: {status.get('error')}")
    return {
        "session_id": sid,
        "session_key": Path(session_dir).name,
        "state": status["state"],
        **counts,
        "frames": status.get("frames", 0),
        "stored_samples": status.get("samples", 0),
        "offsets": status.get("offsets", {}),
        "upload_s": round(t2 - t1, 3),
        "processing_s": round(t3 - t2, 3),
        "total_s": round(t3 - t0, 3),
    }
