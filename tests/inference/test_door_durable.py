"""Overload at the door (503 before the body is read) and no acknowledged verdict lost (the write-ahead
log: group commit, replay on start, idempotent)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from onnx_models import solid

from jangin.core import Dataset, ModelRegistry
from jangin.inference.inspection import InferenceConfig, InspectionLog, WriteAheadLog
from jangin.inference.inspection._door import Door

RED = (0, 0, 255)


def _dataset(tmp_path: Path, onnx_models: Any) -> Dataset:
    ds = Dataset.create(tmp_path / "ds")
    reg = ModelRegistry(ds.models_dir)
    mv = onnx_models.publish_detector(reg, tmp=tmp_path)
    reg.promote(mv.name, mv.version)
    return ds


# -- the door ---------------------------------------------------------------------------------------


def test_door_refuses_without_reading_the_body() -> None:
    """ASGI level: a refused request's ``receive`` is never called; an admitted one's is."""
    release = asyncio.Event()
    received: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    door = Door(app, paths=frozenset({"/v1/inspect"}), max_inflight=1, max_per_client=0)

    def scope(key: bytes) -> dict[str, Any]:
        return {"type": "http", "method": "POST", "path": "/v1/inspect", "headers": [(b"x-api-key", key)]}

    def receiver(name: str) -> Any:
        async def receive() -> dict[str, Any]:
            received.append(name)
            return {"type": "http.request", "body": b"x" * 10, "more_body": False}

        return receive

    async def main() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        first = asyncio.create_task(door(scope(b"a"), receiver("first"), send))
        await asyncio.sleep(0.01)
        await door(scope(b"b"), receiver("second"), send)  # refused at once
        assert door.inflight == 1
        release.set()
        await first
        return sent

    sent = asyncio.run(main())
    assert received == ["first"]
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [503, 200]
    assert (b"retry-after", b"1") in starts[0]["headers"]
    assert door.inflight == 0 and door.per_client == {} and door.shed == 1


def _raw_headers(url: str, key: str, length: int = 100_000) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(
        f"POST /v1/inspect HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
    )
    return s


def _response(s: socket.socket) -> str:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
    while len(body) < n:
        body += s.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_refused_request_leaves_the_connection_open(tmp_path: Path, onnx_models: Any, live: Any) -> None:
    """A 503 at the door, its body unread, keeps the keep-alive connection: the client's retry on the
    same socket is answered (no reconnect per refusal)."""
    srv = live.start(_dataset(tmp_path, onnx_models).root, InferenceConfig(max_inflight=1, flush_s=0.2))
    eng = next(k for k, r in srv.keys.items() if r == "engineer")
    body = solid(RED)
    host, port = srv.url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/inspect HTTP/1.1\r\nHost: x\r\nX-API-Key: {eng}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    hold = _raw_headers(srv.url, eng)  # holds the only slot
    client = socket.create_connection((host, int(port)), timeout=10)
    try:
        time.sleep(0.3)
        client.sendall(request)
        head = _response(client)
        assert head.startswith("HTTP/1.1 503") and "connection: close" not in head.lower()
        hold.close()
        deadline = time.monotonic() + 10
        while True:  # retried on the same socket until the slot is free
            time.sleep(0.2)
            client.sendall(request)
            head = _response(client)
            if head.startswith("HTTP/1.1 200") or time.monotonic() > deadline:
                break
        assert head.startswith("HTTP/1.1 200"), head[:200]
    finally:
        client.close()
        hold.close()
        srv.stop()


def test_live_server_sheds_at_the_door_and_per_client(tmp_path: Path, onnx_models: Any, live: Any) -> None:
    """A request whose body is never sent holds the only slot; the next gets 503 at once (had the server
    waited for its body, it would hang); the per-client limit refuses a second request of one key only."""
    srv = live.start(
        _dataset(tmp_path, onnx_models).root, InferenceConfig(max_inflight=2, max_per_client=1, flush_s=0.2)
    )
    eng = next(k for k, r in srv.keys.items() if r == "engineer")
    adm = next(k for k, r in srv.keys.items() if r == "admin")
    socks: list[socket.socket] = []
    try:
        hold = _raw_headers(srv.url, eng)  # admitted: waits for a body that never comes
        socks.append(hold)
        time.sleep(0.3)
        again = _raw_headers(srv.url, eng)  # same key: refused without its body
        socks.append(again)
        head = _response(again)
        assert head.startswith("HTTP/1.1 503") and "retry-after: 1" in head.lower() and "this client" in head
        hold2 = _raw_headers(srv.url, adm)  # another key: admitted (now 2 in flight)
        socks.append(hold2)
        time.sleep(0.3)
        r = httpx.post(
            f"{srv.url}/v1/inspect",
            content=solid(RED),
            headers={**srv.headers(), "Content-Type": "image/jpeg"},
        )
        assert r.status_code == 503 and "limit 2" in r.json()["detail"] and r.headers["Retry-After"] == "1"
        hold.close()
        hold2.close()
        deadline = time.monotonic() + 10
        while True:  # the disconnects free the slots
            r = httpx.post(
                f"{srv.url}/v1/inspect",
                content=solid(RED),
                headers={**srv.headers(), "Content-Type": "image/jpeg"},
            )
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 200 and r.json()["durable"] is True
    finally:
        for s in socks:
            s.close()
        srv.stop()


# -- durability -------------------------------------------------------------------------------------


def _row(i: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "inspection_id": f"insp-{i:020x}",
        "ts": datetime.now(UTC),
        "model": "m",
        "model_version": "v1",
        "verdict": "NG",
        "score": 0.9,
        "image_uri": f"media/inspections/x/insp-{i:020x}.jpg",
    }


def test_wal_group_commit_replay_is_idempotent_and_survives_a_torn_tail(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "ds")
    wal = WriteAheadLog(tmp_path / "wal")
    log = InspectionLog(ds, flush_s=60, wal=wal)
    wal.start()
    for i in range(3):  # three rows committed, their records written after the flush sealed the segment
        log.add(_row(i))
    log.flush()
    futs = [wal.append({"row": _row(i)}, b"img%d" % i) for i in range(200)]
    for f in futs:
        f.result(10)
    assert wal.records == 200 and wal.groups < 200  # many records shared an fsync
    wal.stop()  # the crash: nothing else committed
    with open(wal.segments()[-1], "ab") as f:
        f.write(b"JWAL\x10\x00")  # a torn record: never acknowledged
    keep = tmp_path / "copy"
    shutil.copytree(tmp_path / "wal", keep)
    again = InspectionLog(ds, wal=WriteAheadLog(tmp_path / "wal"))
    assert again.replay() == 197
    shutil.rmtree(tmp_path / "wal")
    shutil.copytree(keep, tmp_path / "wal")  # the same log replayed twice adds nothing
    assert InspectionLog(ds, wal=WriteAheadLog(tmp_path / "wal")).replay() == 0
    ids = ds.query("SELECT inspection_id, count(*) AS n FROM inspections GROUP BY 1").to_pylist()
    assert len(ids) == 200 and {r["n"] for r in ids} == {1}
    assert (ds.root / _row(150)["image_uri"]).read_bytes() == b"img150"
    assert not WriteAheadLog(tmp_path / "wal").segments()


_SERVER = """
import sys, uvicorn
from jangin.core import Dataset
from jangin.core.server import create_app
from jangin.core.settings import Settings
from jangin.inference.inspection import InferenceConfig
from jangin.inference.server import make_register
ds = Dataset.open(sys.argv[1])
cfg = InferenceConfig(flush_s=float(sys.argv[3]), max_queue=256)
app = create_app(Settings(dataset=ds.root, api_keys={"k": "engineer"}), routers=[], extra=[make_register(cfg, dataset=ds)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _serve(ds: Dataset, flush_s: float) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(ds.root), str(port), str(flush_s)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return proc, url
        except httpx.HTTPError:
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.1)


@pytest.mark.slow  # two server processes and a few hundred requests: about 25 s on 2 cores
def test_kill_9_under_load_loses_no_acknowledged_verdict(tmp_path: Path, onnx_models: Any) -> None:
    ds = _dataset(tmp_path, onnx_models)
    proc, url = _serve(ds, flush_s=1.0)
    acked: list[str] = []
    stop = threading.Event()
    h = {"X-API-Key": "k", "Content-Type": "image/jpeg"}
    body = solid(RED)

    def client() -> None:
        with httpx.Client(headers=h, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post(f"{url}/v1/inspect", content=body)
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.append(r.json()["inspection_id"])

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 60 and time.monotonic() < deadline:  # flush_s 1.0: some committed, the rest
            time.sleep(0.05)  # only in the write-ahead log
        proc.send_signal(signal.SIGKILL)  # under load, mid-request
        proc.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        if proc.poll() is None:
            proc.kill()
    in_table = {r["inspection_id"] for r in Dataset.open(ds.root).read("inspections").to_pylist()}
    in_wal = {h["row"]["inspection_id"] for h, _ in WriteAheadLog(ds.root / "wal/inspections").read()}
    assert len(acked) >= 60 and set(acked) - in_table, "the kill left every acknowledged row committed"
    assert set(acked) <= in_table | in_wal
    proc, url = _serve(ds, flush_s=1.0)  # replays on start
    try:
        with httpx.Client(headers={"X-API-Key": "k"}, timeout=10) as c:
            missing = [i for i in acked if c.get(f"{url}/v1/inspections/{i}").status_code != 200]
            images = [c.get(f"{url}/v1/inspections/{i}/image").status_code for i in acked[-10:]]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert missing == [] and set(images) == {200}
    rows = (
        Dataset.open(ds.root)
        .query("SELECT inspection_id, count(*) AS n FROM inspections GROUP BY 1")
        .to_pylist()
    )
    assert {r["n"] for r in rows} == {1} and set(acked) <= {r["inspection_id"] for r in rows}
