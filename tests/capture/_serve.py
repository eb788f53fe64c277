"""A real uvicorn subprocess for the ingest tests (they kill it with SIGKILL and restart it).

As a script: ``python _serve.py PORT [all]`` serves the Jangin app on 127.0.0.1:PORT with the capture
router (``all``: every installed router), settings from ``JANGIN_*``. As a module: :class:`Server`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

KEY, LABELLER, ENGINEER, ADMIN = "rec-key-123", "lab-key-456", "eng-key-789", "adm-key-000"
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A uvicorn subprocess serving the capture router (or every router) for one dataset.

    Args:
        ds_root: The dataset directory.
        max_body_mb: ``JANGIN_MAX_BODY_MB``.
        all_routers: Mount every installed router, not only capture.
        env: More environment variables (settings, ``JANGIN_TEST_CRASH_AT``); change ``self.env``
            between restarts to change them.
    """

    def __init__(
        self,
        ds_root: Path,
        max_body_mb: int = 2,
        *,
        all_routers: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        import httpx  # noqa: F401  (fail early, in the test process, if the client is missing)

        self.ds_root = ds_root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.all_routers = all_routers
        keys = {KEY: "recorder", LABELLER: "labeller", ENGINEER: "engineer", ADMIN: "admin"}
        self.env = {
            **os.environ,
            "JANGIN_DATASET": str(ds_root),
            "JANGIN_MAX_BODY_MB": str(max_body_mb),
            "JANGIN_API_KEYS": json.dumps(keys),
            "PYTHONPATH": os.pathsep.join(sys.path),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Server:
        import httpx

        argv = [sys.executable, str(HERE / "_serve.py"), str(self.port)] + (
            ["all"] if self.all_routers else []
        )
        self.proc = subprocess.Popen(argv, env=self.env)
        if not wait:
            return self
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, "server exited at start"
            time.sleep(0.1)
        raise AssertionError("server did not start in 60 s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory (``VmHWM``), MiB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM in /proc")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit by itself (a test crash point); returns its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


if __name__ == "__main__":
    import uvicorn

    from jangin.capture.server import register
    from jangin.core.server import create_app
    from jangin.core.settings import get_settings

    if sys.argv[2:3] == ["all"]:
        app = create_app(get_settings())
    else:
        app = create_app(get_settings(), routers=[], extra=[register])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
