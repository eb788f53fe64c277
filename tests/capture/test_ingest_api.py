"""The ingest API against a real uvicorn subprocess on loopback: crash safety, resumable uploads,
idempotent retries, bad inputs, auth."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from _serve import KEY, LABELLER, Server

from jangin.capture._client import IngestClient, upload_session
from jangin.core import Dataset


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(**kw: object) -> Server:
        s = Server(tmp_path / "ds", **kw)  # type: ignore[arg-type]
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("shared") / "ds").start()
    yield s
    s.stop()


META = {
    "session_key": "k1",
    "technician": "Park Ji-hoon",
    "skill_level": "expert",
    "site": "plant-a",
    "started_at": "2026-03-02T08:00:00Z",
    "devices": [
        {"name": "power_source", "clock_offset_s": 0.25, "channels": [{"name": "arc_current_A", "unit": "A"}]}
    ],
    "cameras": [{"name": "torch_cam", "clock_offset_s": 0.1}],
}
T0 = 1_772_438_400.0


def _batch(seq: int, n: int = 100) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    t = T0 + (seq * n + np.arange(n)) / 1000.0
    return t, {"arc_current_A": 100.0 + np.arange(n) + seq}


def _new_session(c: IngestClient, key: str, **kw: object) -> str:
    return c.create_session(**{**META, "session_key": key, **kw})


# -- crash safety -------------------------------------------------------------------------------------


#: What the code writes while a file is half done: staging's ``.{name}.{uuid8}.tmp`` and the stored
#: video's ``.{stem}.tmp{suffix}`` (checked against real names in the test, so the check can fail).
STRAY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$|^\..+\.tmp(\.[A-Za-z0-9]+)?$")
#: Where processing may be cut between its per-table appends (``JANGIN_TEST_CRASH_AT``).
CRASH_POINTS = ["after:sensor_samples", "after:events", "after:frames", "after:media", "before:sessions"]
N_BATCHES = 40


def _stray(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and STRAY.match(p.name)]


def test_stray_pattern_matches_what_the_code_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jangin.capture import _staging

    def crash(*a: object, **k: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(_staging.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        _staging.write_atomic(tmp_path / "000000000007.arrow", b"x")
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and STRAY.match(left[0]), left
    assert STRAY.match(".torch_cam.tmp.mp4") and not STRAY.match("000000000007.arrow")
    st = _staging.Staging(tmp_path)
    assert st.clean_tmp() == 1 and not _stray(tmp_path)


def _send_until_killed(url: str, sid: str, seqs: list[int], acked: set[int], lock: threading.Lock) -> None:
    c = IngestClient(url, KEY, retries=1, timeout_s=10)
    for seq in seqs:
        try:
            c.send_sensors(sid, "power_source", seq, *_batch(seq))
        except Exception:
            return  # the server is gone: this batch was not acknowledged
        with lock:
            acked.add(seq)


@pytest.mark.slow  # six kills and restarts of a real server: about two minutes on 2 busy cores
def test_kill9_during_ingest_loses_nothing_and_duplicates_nothing(
    server: Callable[..., Server], make_session: Callable[..., Path]
) -> None:
    """Kill -9 while batches are in flight (two senders, random moments) and between the per-table
    appends of processing (random crash points), then count every acknowledged sample exactly once."""
    seed = int(os.environ.get("JANGIN_TEST_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    print(f"JANGIN_TEST_SEED={seed}")
    d = make_session("crash", seconds=3)
    srv = server()
    sid = _new_session(IngestClient(srv.url, KEY, retries=3), "crash")
    acked: set[int] = set()
    lock = threading.Lock()
    kills = 0
    # 1. kills while batches are in flight
    for _ in range(3):
        todo = [s for s in range(N_BATCHES) if s not in acked]
        senders = [
            threading.Thread(target=_send_until_killed, args=(srv.url, sid, todo[k::2], acked, lock))
            for k in range(2)
        ]
        for t in senders:
            t.start()
        time.sleep(rng.uniform(0.05, 0.5))
        srv.kill9()
        kills += 1
        for t in senders:
            t.join(30)
        before = _stray(srv.ds_root)
        srv.start()
        assert not _stray(srv.ds_root), f"temp files left after restart (before: {before})"
    c = IngestClient(srv.url, KEY, retries=3)
    partial = c.upload_video(sid, "torch_cam", d / "video.mp4", chunk_size=1024, max_chunks=3)
    assert partial == 3 * 1024
    srv.kill9()
    kills += 1
    srv.start()
    c = IngestClient(srv.url, KEY, retries=3)
    assert c.video_offset(sid, "torch_cam") == 3 * 1024
    # A client unsure what arrived re-sends everything: what was acknowledged is there, never twice.
    for seq in range(N_BATCHES):
        r = c.send_sensors(sid, "power_source", seq, *_batch(seq))
        assert r["duplicate"] or seq not in acked, f"acknowledged batch {seq} was lost"
    c.upload_video(sid, "torch_cam", d / "video.mp4", chunk_size=1024)
    c.send_events(sid, 0, [{"ts": T0 + 1.0, "kind": "sync", "name": "arc_start", "author": "app"}])
    # 2. kills between the per-table appends of processing (the process exits at a random point)
    points = sorted(rng.sample(CRASH_POINTS, 2), key=CRASH_POINTS.index)
    srv.kill9()
    srv.env["JANGIN_TEST_CRASH_AT"] = points[0]
    srv.start()
    IngestClient(srv.url, KEY, retries=1).finish(sid, frame_interval_s=1.0)
    assert srv.wait_exit(120) == 137, f"processing did not reach {points[0]}"
    for point in points[1:]:  # the finish was acknowledged: processing resumes after each restart
        srv.env["JANGIN_TEST_CRASH_AT"] = point
        srv.start(wait=False)
        assert srv.wait_exit(120) == 137, f"processing did not reach {point}"
    kills += len(points)
    srv.env.pop("JANGIN_TEST_CRASH_AT")
    srv.start()
    assert kills >= 5
    c = IngestClient(srv.url, KEY, retries=3)
    st = c.wait(sid, timeout_s=120)
    assert st["state"] == "processed", st
    assert not _stray(srv.ds_root)
    ds = Dataset.open(srv.ds_root)
    n = ds.query(
        f"SELECT count(*) n, count(DISTINCT ts) d FROM sensor_samples WHERE session_id = '{sid}'"
    ).to_pylist()[0]
    assert n == {"n": N_BATCHES * 100, "d": N_BATCHES * 100}, (n, points)
    assert (
        ds.query("SELECT count(*) n FROM current_sessions WHERE status = 'processed'").column("n")[0].as_py()
        == 1
    )
    assert ds.query("SELECT count(*) n FROM media").column("n")[0].as_py() == 1
    assert ds.query("SELECT count(*) n FROM events").column("n")[0].as_py() == 1
    frames = ds.query("SELECT count(*) n, count(DISTINCT frame_id) d FROM frames").to_pylist()[0]
    assert frames["n"] == frames["d"] == st["frames"] > 0
    # the value at reference time T0 + 0.25 (device time T0) is batch 0's first sample
    v = (
        ds.query(f"SELECT value FROM sensor_samples WHERE ts = to_timestamp({T0 + 0.25})")
        .column("value")
        .to_pylist()
    )
    assert v == [100.0]


def test_recorded_session_over_http_matches_file_import(
    server: Callable[..., Server], make_session: Callable[..., Path]
) -> None:
    d = make_session("http1", seconds=3, technician="Park Ji-hoon")
    srv = server()
    with IngestClient(srv.url, KEY) as c:
        sid, counts = upload_session(c, d, batch_s=0.5, chunk_size=8192)
        st = c.wait(sid, timeout_s=120)
    assert st["state"] == "processed" and st["samples"] == counts["samples"] == 6030
    assert st["offsets"]["power_source"] == {"offset_s": 0.25, "method": "given"}
    ds = Dataset.open(srv.ds_root)
    s = ds.query("SELECT * FROM current_sessions").to_pylist()[0]
    assert s["technician"].startswith("tech-") and s["status"] == "processed" and s["source"] == "api"
    row = ds.query(
        "SELECT value FROM sensor_samples WHERE channel = 'arc_current_A' AND ts = TIMESTAMPTZ '2026-03-02 08:00:02+00'"
    )
    assert row.column("value").to_pylist() == [pytest.approx(120.0)]
    media = ds.read("media").to_pylist()[0]
    assert media["deidentified"] and (ds.root / media["uri"]).is_file()
    # the real name is nowhere on disk: not in tables, not in what is left of the staging area
    for p in srv.ds_root.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".parquet", ".arrow"):
            assert b"park" not in p.read_bytes().lower(), p


# -- resumable upload, retries, bad inputs, auth (one shared server) --------------------------------------


def test_interrupted_upload_resumes_where_it_stopped(
    shared: Server, make_session: Callable[..., Path]
) -> None:
    video = make_session("up", seconds=2) / "video.mp4"
    data = video.read_bytes()
    c = IngestClient(shared.url, KEY)
    sid = _new_session(c, "upload-1")
    h = httpx.Client(base_url=shared.url, headers={"X-API-Key": KEY})
    url = f"/v1/sessions/{sid}/video/torch_cam"
    assert c.upload_video(sid, "torch_cam", video, chunk_size=1000, max_chunks=2) == 2000
    assert h.head(url).headers["Upload-Offset"] == "2000"
    import hashlib

    # a chunk past the offset is refused with the offset to resume at
    r = h.patch(url, content=data[3000:4000], headers={"Upload-Offset": "3000"})
    assert r.status_code == 409 and r.json()["offset"] == 2000
    # a chunk corrupted in transit is refused and changes nothing
    r = h.patch(
        url,
        content=b"x" * 1000,
        headers={"Upload-Offset": "2000", "X-Chunk-Sha256": hashlib.sha256(data[2000:3000]).hexdigest()},
    )
    assert r.status_code == 422 and h.get(url).json()["offset"] == 2000
    # a retried chunk whose answer was lost (overlapping the acknowledged part) is accepted
    r = h.patch(url, content=data[1000:3000], headers={"Upload-Offset": "1000"})
    assert r.status_code == 200 and r.json()["offset"] == 3000
    c.upload_video(sid, "torch_cam", video, chunk_size=1000)
    assert h.get(url).json() == {"offset": len(data), "complete": True}
    staged = shared.ds_root / "staging" / sid / "video" / "torch_cam.mp4"  # renamed once complete
    assert staged.read_bytes() == data
    assert not list(staged.parent.glob("*.part"))


def test_retried_batch_is_acknowledged_once_and_conflicts_are_refused(shared: Server) -> None:
    c = IngestClient(shared.url, KEY)
    sid = _new_session(c, "retry-1")
    assert c.send_sensors(sid, "power_source", 0, *_batch(0))["duplicate"] is False
    assert (
        c.send_sensors(sid, "power_source", 0, *_batch(0), arrow=False)["duplicate"] is True
    )  # JSON retry of an Arrow batch
    h = httpx.Client(base_url=shared.url, headers={"X-API-Key": KEY})
    r = h.post(
        f"/v1/sessions/{sid}/sensors/power_source",
        params={"seq": 0},
        json={"t": [T0 + 9], "channels": {"arc_current_A": [1.0]}},
    )
    assert r.status_code == 409
    assert (
        c.send_events(sid, 0, [{"ts": T0, "kind": "note", "name": "x", "author": "Kim Min-jun"}])["duplicate"]
        is False
    )
    assert (
        c.send_events(sid, 0, [{"ts": T0, "kind": "note", "name": "x", "author": "Kim Min-jun"}])["duplicate"]
        is True
    )
    staged = (shared.ds_root / "staging" / sid / "events" / "000000000000.json").read_text()
    assert "Kim" not in staged and "tech-" in staged
    assert c.status(sid)["sensor_batches"] == {"power_source": 1}
    # creating again with the same metadata is a retry; with other metadata a conflict
    assert _new_session(c, "retry-1") == sid
    assert (
        h.post("/v1/sessions", json={**META, "session_key": "retry-1", "skill_level": "novice"}).status_code
        == 409
    )
    c.finish(sid)
    assert (
        h.post(
            f"/v1/sessions/{sid}/sensors/power_source",
            params={"seq": 1},
            json={"t": [T0 + 5], "channels": {"arc_current_A": [1.0]}},
        ).status_code
        == 409
    )


BAD = [
    (
        "unknown device",
        "post",
        "/sensors/welder?seq=0",
        {"json": {"t": [T0 + 1], "channels": {"arc_current_A": [1.0]}}},
        422,
        "unknown device",
    ),
    (
        "unknown channel",
        "post",
        "/sensors/power_source?seq=0",
        {"json": {"t": [T0 + 1], "channels": {"volts": [1.0]}}},
        422,
        "unknown channel",
    ),
    (
        "backwards time",
        "post",
        "/sensors/power_source?seq=0",
        {"json": {"t": [T0 + 2, T0 + 1], "channels": {"arc_current_A": [1.0, 2.0]}}},
        422,
        "row 1: time goes backwards",
    ),
    (
        "duplicated time",
        "post",
        "/sensors/power_source?seq=0",
        {"json": {"t": [T0 + 1, T0 + 1], "channels": {"arc_current_A": [1.0, 2.0]}}},
        422,
        "duplicated",
    ),
    (
        "length mismatch",
        "post",
        "/sensors/power_source?seq=0",
        {"json": {"t": [T0 + 1, T0 + 2], "channels": {"arc_current_A": [1.0]}}},
        422,
        "as long as",
    ),
    (
        "strings",
        "post",
        "/sensors/power_source?seq=0",
        {"json": {"t": [T0 + 1], "channels": {"arc_current_A": ["high"]}}},
        422,
        "numbers",
    ),
    (
        "empty batch",
        "post",
        "/sensors/power_source?seq=0",
        {"json": {"t": [], "channels": {}}},
        422,
        "empty batch",
    ),
    ("not json", "post", "/sensors/power_source?seq=0", {"content": b"\x00\x01garbage"}, 422, "not JSON"),
    (
        "bad arrow",
        "post",
        "/sensors/power_source?seq=0",
        {"content": b"ARROW?", "headers": {"Content-Type": "application/vnd.apache.arrow.stream"}},
        422,
        "Arrow IPC",
    ),
    (
        "negative seq",
        "post",
        "/sensors/power_source?seq=-1",
        {"json": {"t": [T0 + 1], "channels": {}}},
        422,
        "",
    ),
    (
        "bad event kind",
        "post",
        "/events?seq=0",
        {"json": {"events": [{"ts": T0, "kind": "party"}]}},
        422,
        "unknown kind",
    ),
    (
        "naive event time",
        "post",
        "/events?seq=0",
        {"json": {"events": [{"ts": "2026-03-02T08:00:00", "kind": "note"}]}},
        422,
        "no timezone",
    ),
    (
        "unknown camera",
        "patch",
        "/video/..cam",
        {"content": b"x", "headers": {"Upload-Offset": "0"}},
        422,
        "invalid camera",
    ),
    ("no offset header", "patch", "/video/torch_cam", {"content": b"x"}, 422, "Upload-Offset"),
    ("too large", "post", "/sensors/power_source?seq=0", {"content": b"0" * (3 * 1024 * 1024)}, 413, "MiB"),
]


@pytest.mark.parametrize(("name", "method", "path", "kw", "code", "text"), BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_are_refused_and_stage_nothing(
    shared: Server, name: str, method: str, path: str, kw: dict, code: int, text: str
) -> None:  # type: ignore[type-arg]
    c = IngestClient(shared.url, KEY)
    sid = _new_session(c, f"bad-{abs(hash(name)) % 10**8}")
    h = httpx.Client(base_url=shared.url, headers={"X-API-Key": KEY})
    r = getattr(h, method)(f"/v1/sessions/{sid}{path}", **kw)
    assert r.status_code == code, r.text
    assert text in r.text
    st = c.status(sid)
    assert st["sensor_batches"] == {} and st["video"]["torch_cam"]["offset"] == 0
    assert not list((shared.ds_root / "staging" / sid / "events").glob("*.json"))


@pytest.mark.parametrize("sid", ["..", ".hidden", "a%2F..%2Fb", "x" * 200, "a b"])
def test_path_traversal_names_are_refused(shared: Server, sid: str) -> None:
    h = httpx.Client(base_url=shared.url, headers={"X-API-Key": KEY})
    r = h.post(
        f"/v1/sessions/{sid}/sensors/power_source", params={"seq": 0}, json={"t": [1.0], "channels": {}}
    )
    assert r.status_code in (404, 422)
    assert sorted(p.name for p in shared.ds_root.parent.iterdir()) == [
        "ds"
    ]  # nothing written outside the dataset
    r = h.post("/v1/sessions", json={**META, "session_key": "../../etc"})
    assert r.status_code == 422


def test_auth(shared: Server) -> None:
    assert httpx.post(f"{shared.url}/v1/sessions", json=META).status_code == 401
    assert (
        httpx.post(f"{shared.url}/v1/sessions", json=META, headers={"X-API-Key": "wrong"}).status_code == 401
    )
    assert (
        httpx.post(f"{shared.url}/v1/sessions", json=META, headers={"X-API-Key": LABELLER}).status_code == 403
    )
    assert httpx.post(
        f"{shared.url}/v1/sessions", json=META, headers={"Authorization": f"Bearer {KEY}"}
    ).status_code in (200, 201)
