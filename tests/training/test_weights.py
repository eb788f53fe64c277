"""The weights registry (core.weights) and ``jangin weights``: real files, a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jangin.core import WeightsError
from jangin.core.weights import WeightsEntry, WeightsRegistry, fetch

PAYLOAD = b"not really a state dict, but bytes with a known checksum\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _add(reg: WeightsRegistry, name: str, path: Path, **kw: Any) -> WeightsEntry:
    return reg.add(
        name,
        path,
        architecture="resnet18",
        framework="torchvision",
        licence="BSD-3-Clause",
        source="test",
        **kw,
    )


@pytest.fixture
def wfile(tmp_path: Path) -> Path:
    p = tmp_path / "resnet18.pth"
    p.write_bytes(PAYLOAD)
    return p


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "resnet18.pth").write_bytes(PAYLOAD)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_add_get_ls_remove(tmp_path: Path, wfile: Path) -> None:
    reg = WeightsRegistry(tmp_path / "home" / "weights")
    entry = _add(reg, "r18", wfile, sha256=SHA.upper())
    assert entry.sha256 == SHA and entry.size == len(PAYLOAD)
    assert entry.file.parent == reg.root / "files" and entry.file.name == SHA + ".pth"
    assert reg.get("r18").file.read_bytes() == PAYLOAD
    # the same bytes under a second name share one file; the same name again is idempotent
    _add(reg, "r18-copy", wfile)
    assert _add(reg, "r18", wfile).added_at == entry.added_at
    assert [e.name for e in reg.ls()] == ["r18", "r18-copy"]
    assert len(list((reg.root / "files").iterdir())) == 1
    index = json.loads((reg.root / "index.json").read_text())
    assert index["entries"]["r18"]["file"] == f"files/{SHA}.pth"
    reg.remove("r18")
    assert reg.get("r18-copy").file.is_file()  # still used by r18-copy
    reg.remove("r18-copy")
    assert reg.ls() == [] and not list((reg.root / "files").iterdir())
    with pytest.raises(WeightsError, match="no weights named 'r18'"):
        reg.get("r18")


def test_refusals(tmp_path: Path, wfile: Path) -> None:
    reg = WeightsRegistry(tmp_path / "weights")
    with pytest.raises(WeightsError, match="does not match the expected"):
        _add(reg, "r18", wfile, sha256="0" * 64)
    assert reg.ls() == [] and not [p for p in (reg.root / "files").iterdir()]  # nothing left behind
    with pytest.raises(ValueError, match="invalid weights name"):
        _add(reg, "../evil", wfile)
    with pytest.raises(ValueError, match="unknown framework"):
        reg.add("x", wfile, architecture="a", framework="keras", licence="l", source="s")
    with pytest.raises(WeightsError, match="no such weights file"):
        _add(reg, "x", tmp_path / "missing.pth")
    _add(reg, "r18", wfile)
    other = tmp_path / "other.pth"
    other.write_bytes(b"other")
    with pytest.raises(WeightsError, match="already exist with other bytes"):
        _add(reg, "r18", other)
    assert _add(reg, "r18", other, replace=True).sha256 == hashlib.sha256(b"other").hexdigest()
    assert [p.name for p in (reg.root / "files").iterdir()] == [hashlib.sha256(b"other").hexdigest() + ".pth"]


def test_get_detects_a_changed_or_missing_file(tmp_path: Path, wfile: Path) -> None:
    reg = WeightsRegistry(tmp_path / "weights")
    entry = _add(reg, "r18", wfile)
    entry.file.write_bytes(PAYLOAD + b"tampered")
    with pytest.raises(WeightsError, match="changed after they were added"):
        reg.get("r18")
    entry.file.unlink()
    with pytest.raises(WeightsError, match="is missing"):
        reg.get("r18")


def _fetch(reg: WeightsRegistry, url: str, sha: str, *, offline: bool = False) -> WeightsEntry:
    return fetch(
        url,
        sha256=sha,
        name="r18",
        architecture="resnet18",
        framework="torchvision",
        licence="BSD-3-Clause",
        registry=reg,
        offline=offline,
    )


def test_fetch_from_a_local_server(tmp_path: Path, server: str) -> None:
    reg = WeightsRegistry(tmp_path / "weights")
    with pytest.raises(WeightsError, match="offline"):
        _fetch(reg, f"{server}/resnet18.pth", SHA, offline=True)
    with pytest.raises(WeightsError, match="without a sha256"):
        _fetch(reg, f"{server}/resnet18.pth", "")
    with pytest.raises(WeightsError, match="does not match the expected"):
        _fetch(reg, f"{server}/resnet18.pth", "ab" * 32)
    with pytest.raises(WeightsError, match="download failed"):
        _fetch(reg, f"{server}/nope.pth", SHA)
    assert reg.ls() == []
    entry = _fetch(reg, f"{server}/resnet18.pth", SHA)
    assert entry.source == f"{server}/resnet18.pth"
    assert reg.get("r18").sha256 == SHA
    assert not [p for p in reg.root.iterdir() if p.name.startswith(".fetch-")]


def _jangin(home: Path, *args: str, offline: str = "1") -> subprocess.CompletedProcess[str]:
    env = {
        "JANGIN_HOME": str(home),
        "JANGIN_OFFLINE": offline,
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "COLUMNS": "400",
    }
    return subprocess.run(
        [sys.executable, "-m", "jangin.core.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_add_ls_rm_fetch(tmp_path: Path, wfile: Path, server: str) -> None:
    home = tmp_path / "home"
    meta = ["--architecture", "resnet18", "--licence", "BSD-3-Clause"]
    r = _jangin(home, "weights", "add", "r18", str(wfile), *meta, "--source", "test", "--sha256", "1" * 64)
    assert r.returncode == 1 and "does not match" in r.stderr, r.stderr
    r = _jangin(home, "weights", "add", "r18", str(wfile), *meta, "--source", "test", "--sha256", SHA)
    assert r.returncode == 0, r.stderr
    r = _jangin(home, "weights", "ls", "--json", "--verify")
    assert r.returncode == 0, r.stderr
    assert [e["sha256"] for e in json.loads(r.stdout)] == [SHA]
    url = f"{server}/resnet18.pth"
    r = _jangin(home, "weights", "fetch", url, "--name", "f18", "--sha256", SHA, *meta)
    assert r.returncode == 1 and "offline" in r.stderr and "hint" in r.stderr, r.stderr
    r = _jangin(home, "weights", "fetch", url, "--name", "f18", "--sha256", SHA, *meta, offline="0")
    assert r.returncode == 0, r.stderr
    r = _jangin(home, "weights", "rm", "r18")
    assert r.returncode == 0, r.stderr
    r = _jangin(home, "weights", "ls", "--json")
    assert [e["name"] for e in json.loads(r.stdout)] == ["f18"]
