"""A real Label Studio server for the labeling tests, started once per test run.

The server lives in its own virtual environment (``scripts/label-studio.sh install``; CI runs it
before pytest, and this fixture runs it too when the server is missing, so a plain ``pytest`` works on
a fresh machine). A fresh database takes about a minute to migrate, so the first run keeps a migrated
data directory as a template under ``~/.cache/jangin``; later runs copy it and start in seconds.
The server listens on a free loopback port (checked first: Label Studio silently moves to port+1).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "label-studio.sh"
LS_VERSION = "1.23.2"
USER = "labeller@jangin.local"
PASSWORD = "jangin-test-password"
TOKEN = "jangin-test-token-0001"
# Fixed at import: other test folders point XDG_CACHE_HOME at tmp during the run, and the server's
# 1 GB venv must not be reinstalled there.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jangin"
VENV = Path(os.environ.get("JANGIN_LS_VENV") or CACHE / "label-studio-venv")


@dataclass(frozen=True)
class Server:
    """A running Label Studio: its URL, token, document root and data dir."""

    url: str
    token: str
    root: Path
    data: Path
    start_s: float
    outbound: list[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OutboundRecorder:
    """A loopback "proxy" that records every connection made to it and answers nothing.

    The test server gets it as HTTP(S)_PROXY (loopback excluded), so an outbound call the settings
    failed to switch off (version check, analytics, Sentry) is recorded here instead of leaving the
    machine. Checked at the end of the run and by a test.
    """

    def __init__(self) -> None:
        import threading

        self.attempts: list[bytes] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.attempts.append(conn.recv(300).split(b"\r\n", 1)[0])
                except OSError:
                    self.attempts.append(b"(connection without a request line)")

    def env(self) -> dict[str, str]:
        local = "127.0.0.1,localhost,::1"
        return {
            "HTTP_PROXY": self.url,
            "HTTPS_PROXY": self.url,
            "http_proxy": self.url,
            "https_proxy": self.url,
            "NO_PROXY": local,
            "no_proxy": local,
        }

    def close(self) -> None:
        self._sock.close()


def _script(*args: str, timeout: float, extra_env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "JANGIN_LS_VENV": str(VENV), **(extra_env or {})}
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/label-studio.sh {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def _start(data: Path, root: Path, extra_env: dict[str, str] | None = None) -> tuple[str, float]:
    port = _free_port()
    t = time.perf_counter()
    _script(
        "start",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--root",
        str(root),
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--token",
        TOKEN,
        "--wait",
        "600",
        timeout=900,
        extra_env=extra_env,
    )
    return f"http://127.0.0.1:{port}", time.perf_counter() - t


def _template() -> Path:
    """A migrated data dir with the test user and token (made once per machine and version)."""
    template = CACHE / f"label-studio-template-{LS_VERSION}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "label-studio-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs on one machine build it once
        if (template / "label_studio.sqlite3").is_file():
            return template
        partial = template.with_name(template.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            _, secs = _start(partial, partial / "root")
            print(f"\nLabel Studio: migrated a fresh database in {secs:.0f} s", file=sys.stderr)
        finally:
            _script("stop", "--data-dir", str(partial), timeout=120)
        for sub in ("root", "tmp", "label-studio.log"):
            p = partial / sub
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        partial.rename(template)
        return template


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Label Studio server for this test run (installed and migrated first if needed)."""
    t = time.perf_counter()
    _script("install", timeout=1800)  # a no-op when installed; never skipped
    install_s = time.perf_counter() - t
    template = _template()
    base = tmp_path_factory.mktemp("label-studio")
    data = base / "data"
    shutil.copytree(template, data)
    root = base / "label-studio-root"  # = Settings(home=base)'s default document root
    root.mkdir()
    outbound = OutboundRecorder()
    url, secs = _start(data, root, extra_env=outbound.env())
    print(
        f"\nLabel Studio {LS_VERSION} at {url}: install check {install_s:.1f} s, start {secs:.1f} s",
        file=sys.stderr,
    )
    try:
        yield Server(url=url, token=TOKEN, root=root, data=data, start_s=secs, outbound=outbound.attempts)
    finally:
        _script("stop", "--data-dir", str(data), timeout=120)
        outbound.close()
    # Also checked at the end of the run, after every test has used the server.
    assert not outbound.attempts, f"Label Studio tried to reach the network: {outbound.attempts}"


@pytest.fixture
def ls_client(ls_server: Server) -> Any:
    """A Jangin Label Studio client for the test server."""
    from jangin.labeling import LabelStudioClient

    return LabelStudioClient(ls_server.url, ls_server.token)


@pytest.fixture
def project_name(request: pytest.FixtureRequest) -> str:
    """A project title unique to this test (the server is shared by the whole run)."""
    return f"{request.node.name.removeprefix('test_')[:30]}-{os.getpid()}-{time.monotonic_ns() % 10**6}"


@pytest.fixture
def make_ds(tmp_path: Path) -> Callable[..., Any]:
    """``make_ds(n_frames=4, seconds=6.0)``: a dataset with stills and a sensor session (see factories)."""
    from factories import make_dataset

    counter = iter(range(1000))

    def make(**kwargs: Any) -> Any:
        return make_dataset(tmp_path / f"ds{next(counter)}", **kwargs)

    return make
