"""A real Jangin server on a free loopback port, in a thread (uvicorn), for the HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEYS = {"k-admin": "admin", "k-eng": "engineer", "k-lab": "labeller", "k-rec": "recorder"}


@dataclass
class Live:
    url: str
    app: Any
    server: Any
    thread: threading.Thread
    keys: dict[str, str] = field(default_factory=lambda: dict(KEYS))

    def headers(self, role: str = "engineer") -> dict[str, str]:
        key = next(k for k, r in self.keys.items() if r == role)
        return {"X-API-Key": key}

    @property
    def service(self) -> Any:
        return self.app.state.inspection

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        assert not self.thread.is_alive(), "server did not stop"


def start(
    dataset: Path,
    config: Any = None,
    *,
    cameras: dict[str, str] | None = None,
    keys: dict[str, str] | None = None,
    access_log: bool = False,
) -> Live:
    import uvicorn

    from jangin.core.server import create_app
    from jangin.core.settings import Settings
    from jangin.inference.server import make_register

    settings = Settings(
        dataset=dataset, api_keys=keys or KEYS, cameras=cameras or {}, home=dataset.parent / "home"
    )
    app = create_app(settings, routers=[], extra=[make_register(config)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="info" if access_log else "warning",
            access_log=access_log,
            log_config=None if access_log else uvicorn.config.LOGGING_CONFIG,
            lifespan="on",
        )
    )
    if access_log:  # an earlier server's dictConfig may have detached the access log from the root logger
        import logging

        logging.getLogger("uvicorn.access").propagate = True
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return Live(f"http://127.0.0.1:{port}", app, server, thread, dict(keys or KEYS))
