"""Ingest hardening (issue 12, items 1-6) against a real uvicorn subprocess: no bad input costs data,
a refused request changes nothing, limits hold while a body streams in, a failed session is retried."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from _serve import ADMIN, ENGINEER, KEY, Server

from jangin.capture._client import IngestClient
from jangin.core import Dataset

T0 = 1_772_438_400.0  # 2026-03-02T08:00:00Z
MiB = 1 << 20
META = {
    "session_key": "k",
    "technician": "Kim Min-jun",
    "skill_level": "expert",
    "site": "plant-h",
    "started_at": "2026-03-02T08:00:00Z",
    "devices": [{"name": "spindle", "clock_offset_s": 0.0, "channels": [{"name": "load_pct", "unit": "%"}]}],
    "cameras": [{"name": "cam", "clock_offset_s": 0.0}],
}
LIMITS = {
    "JANGIN_MAX_VIDEO_CHUNK_MB": "4",
    "JANGIN_MAX_VIDEO_MB": "5",
    "JANGIN_MAX_BATCH_MB": "8",
    "JANGIN_MAX_BATCH_ROWS": "200000",
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("hard") / "ds", max_body_mb=2, env=LIMITS).start()
    yield s
    s.stop()


@pytest.fixture
def h(srv: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, headers={"X-API-Key": KEY}, timeout=30) as c:
        yield c


_n = iter(range(10**6))


def _session(srv: Server, **kw: object) -> str:
    c = IngestClient(srv.url, KEY)
    return c.create_session(**{**META, "session_key": f"h-{next(_n)}", **kw})


def _staged(srv: Server, sid: str) -> list[str]:
    """Every staged file of a session but its metadata (what a refused request must not add to)."""
    d = srv.ds_root / "staging" / sid
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.name != "session.json")


def _batch(n: int = 300, t0: float = T0) -> dict[str, object]:
    return {"t": (t0 + np.arange(n) / 100).tolist(), "channels": {"load_pct": np.linspace(0, 1, n).tolist()}}


# -- 1. events validated at the door ------------------------------------------------------------------

BAD_EVENTS = [
    ({"ts": 1e15, "kind": "note"}, "events[1].ts", "outside the accepted range"),
    ({"ts": -1e11, "kind": "note"}, "events[1].ts", "outside the accepted range"),
    ({"ts": 1.0, "kind": "note"}, "events[1].ts", "outside the accepted range"),
    ({"ts": "2150-01-01T00:00:00Z", "kind": "note"}, "events[1].ts", "outside the accepted range"),
    ({"kind": "note"}, "events[1].ts", "missing"),
    ({"ts": T0, "kind": "party"}, "events[1].kind", "unknown kind"),
    ({"ts": T0, "kind": "note", "name": "n" * 201}, "events[1].name", "at most 200"),
    ({"ts": T0, "kind": "note", "author": "a" * 10_000}, "events[1].author", "at most 200"),
    ({"ts": T0, "kind": "note", "value": "v" * 2001}, "events[1].value", "at most 2000"),
    ({"ts": T0, "kind": "note", "value": {"x": 1}}, "events[1].value", "expected text"),
    ({"ts": T0, "kind": "note", "segment_end": 1e300}, "events[1].segment_end", "outside"),
]


@pytest.mark.parametrize(("event", "field", "text"), BAD_EVENTS, ids=[b[1] + ":" + b[2] for b in BAD_EVENTS])
def test_a_bad_event_is_refused_naming_field_and_index(
    srv: Server, h: httpx.Client, event: dict, field: str, text: str
) -> None:  # type: ignore[type-arg]
    sid = _session(srv)
    good = {"ts": T0 + 1, "kind": "note", "name": "ok"}
    r = h.post(f"/v1/sessions/{sid}/events", params={"seq": 0}, json={"events": [good, event]})
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"] and text in r.json()["detail"], r.text
    assert _staged(srv, sid) == []


def test_nan_event_time_is_refused(srv: Server, h: httpx.Client) -> None:
    sid = _session(srv)
    r = h.post(
        f"/v1/sessions/{sid}/events",
        params={"seq": 0},
        content=b'{"events": [{"ts": NaN, "kind": "note"}]}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "events[0].ts" in r.text
    assert _staged(srv, sid) == []


# -- 2. the accepted time range for sensor samples ------------------------------------------------------

BAD_TIMES = [([1e300, 2e300], 0), ([1e13], 0), ([-1.0], 0), ([T0, T0 + 1, 5e9], 2), ([T0, 946_684_799.0], 1)]


@pytest.mark.parametrize(("t", "row"), BAD_TIMES, ids=[str(b[0][-1]) for b in BAD_TIMES])
def test_sensor_times_outside_the_range_are_refused(
    srv: Server, h: httpx.Client, t: list[float], row: int
) -> None:
    sid = _session(srv)
    r = h.post(
        f"/v1/sessions/{sid}/sensors/spindle",
        params={"seq": 0},
        json={"t": t, "channels": {"load_pct": [1.0] * len(t)}},
    )
    assert r.status_code == 422, r.text
    assert f"column t row {row}" in r.text and "outside the accepted range" in r.text
    assert _staged(srv, sid) == []


def test_a_clock_offset_that_moves_samples_out_of_range_is_refused(srv: Server, h: httpx.Client) -> None:
    dev = {"name": "spindle", "clock_offset_s": 3.0e9, "channels": [{"name": "load_pct"}]}
    sid = _session(srv, devices=[dev])
    r = h.post(f"/v1/sessions/{sid}/sensors/spindle", params={"seq": 0}, json=_batch(3))
    assert r.status_code == 422 and "outside the accepted range" in r.text
    assert _staged(srv, sid) == []


# -- 3. body limits while streaming ----------------------------------------------------------------------


class Feed:
    """A chunked request body (no Content-Length) of ``total`` bytes."""

    def __init__(self, total: int, chunk: int = MiB) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b" " * self.chunk


ROUTES = [
    ("/v1/sessions", None),
    ("/v1/sessions/{sid}/events?seq=0", None),
    ("/v1/sessions/{sid}/sensors/spindle?seq=0", None),
    ("/v1/sessions/{sid}/finish", None),
    ("/v1/sessions/{sid}/video/cam/complete", None),
    ("/v1/sessions/{sid}/sensors/spindle?seq=0", "application/vnd.apache.arrow.stream"),
]


@pytest.mark.parametrize(("path", "ctype"), ROUTES, ids=[f"{p}:{c}" for p, c in ROUTES])
def test_a_chunked_body_is_stopped_at_the_limit(srv: Server, path: str, ctype: str | None) -> None:
    sid = _session(srv)
    peak = srv.peak_rss_mb()
    headers = {"X-API-Key": KEY, "Content-Type": ctype or "application/json"}
    try:  # the server answers 413 at 2 MiB and drains the rest without keeping it
        r = httpx.post(srv.url + path.format(sid=sid), content=Feed(96 * MiB), headers=headers, timeout=60)
        assert r.status_code == 413, r.text
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # or closes the connection while the client is still writing
    grown = srv.peak_rss_mb() - peak
    assert grown < 40, f"the server's peak memory grew by {grown:.0f} MiB for a 96 MiB body (limit 2 MiB)"
    assert srv.alive()
    st = IngestClient(srv.url, KEY).status(sid)
    assert st["state"] == "recording" and st["sensor_batches"] == {} and _staged(srv, sid) == []


def test_a_declared_length_over_the_limit_is_refused_before_reading(srv: Server, h: httpx.Client) -> None:
    sid = _session(srv)
    r = h.post(f"/v1/sessions/{sid}/events?seq=0", content=b"[" * (3 * MiB))
    assert r.status_code == 413 and "MiB" in r.text
    assert _staged(srv, sid) == []


def test_video_chunks_have_their_own_limit_and_an_upload_is_capped(srv: Server, h: httpx.Client) -> None:
    sid = _session(srv)
    url = f"/v1/sessions/{sid}/video/cam"
    data = np.random.default_rng(1).integers(0, 256, 6 * MiB, dtype=np.uint8).tobytes()
    r = h.patch(url, content=data[: 3 * MiB], headers={"Upload-Offset": "0"})  # 3 MiB: over 2, under 4
    assert r.status_code == 200 and r.json()["offset"] == 3 * MiB, r.text
    r = h.patch(url, content=data[3 * MiB : 8 * MiB], headers={"Upload-Offset": str(3 * MiB)})
    assert r.status_code == 413  # 5 MiB chunk: over the chunk limit
    r = h.patch(url, content=data[3 * MiB : 6 * MiB], headers={"Upload-Offset": str(3 * MiB)})
    assert r.status_code == 413 and "max_video_mb" in r.text  # 6 MiB in all: over the 5 MiB cap
    assert h.get(url).json() == {"offset": 3 * MiB, "complete": False}
    r = h.post(f"/v1/sessions/{sid}/events?seq=0", content=b" " * (3 * MiB))
    assert r.status_code == 413  # other routes keep the 2 MiB limit


# -- 4. Arrow IPC: session first, bounded decoding -------------------------------------------------------


def _arrow(n_batches: int, rows: int, *, bomb: bool = False, t0: float = T0) -> bytes:
    schema = pa.schema([("t", pa.float64()), ("load_pct", pa.float64())])
    sink = pa.BufferOutputStream()
    opts = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, schema, options=opts) as w:
        for k in range(n_batches):
            t = np.zeros(rows) if bomb else t0 + (k * rows + np.arange(rows)) / 1000
            w.write_batch(pa.record_batch([pa.array(t), pa.array(np.zeros(rows))], schema=schema))
    return sink.getvalue().to_pybytes()


def test_an_arrow_decompression_bomb_is_refused_without_decoding_it(srv: Server, h: httpx.Client) -> None:
    bomb = _arrow(64, 500_000, bomb=True)  # 64 x 8 MB decoded = 512 MB, compressed to a few kB
    assert len(bomb) < 2 * MiB
    arrow = {"Content-Type": "application/vnd.apache.arrow.stream"}
    sid = _session(srv)
    r = h.post(f"/v1/sessions/{sid}/sensors/welder", params={"seq": 0}, content=bomb, headers=arrow)
    assert r.status_code == 422 and "unknown device" in r.text
    r = h.post("/v1/sessions/ses-00000000000000000000/sensors/spindle?seq=0", content=bomb, headers=arrow)
    assert r.status_code == 404
    r = h.post(f"/v1/sessions/{sid}/sensors/spindle", params={"seq": 0}, content=bomb, headers=arrow)
    assert r.status_code == 413 and "max_batch" in r.text, r.text
    assert srv.peak_rss_mb() < 400, f"server peaked at {srv.peak_rss_mb():.0f} MiB: the bomb was decoded"
    # a real compressed batch under the limits is accepted
    r = h.post(
        f"/v1/sessions/{sid}/sensors/spindle", params={"seq": 0}, content=_arrow(3, 1000), headers=arrow
    )
    assert r.status_code == 200 and r.json()["rows"] == 3000, r.text


# -- 5. a refused request changes nothing ----------------------------------------------------------------


def test_finish_with_a_naive_end_time_leaves_the_session_open(srv: Server, h: httpx.Client) -> None:
    sid = _session(srv)
    r = h.post(f"/v1/sessions/{sid}/finish", json={"ended_at": "2026-03-02T08:10:00"})
    assert r.status_code == 422 and "timezone" in r.text
    assert h.get(f"/v1/sessions/{sid}").json()["state"] == "recording"
    assert h.post(f"/v1/sessions/{sid}/sensors/spindle?seq=0", json=_batch(10)).status_code == 200


@pytest.mark.parametrize("offset", ["NaN", "Infinity", "-Infinity", "1e300", "-1e300"])
def test_create_with_a_bad_clock_offset_stages_nothing(srv: Server, h: httpx.Client, offset: str) -> None:
    key = f"offset-{offset}"
    body = json.dumps(
        {**META, "session_key": key, "devices": [{**META["devices"][0], "clock_offset_s": 7.5}]}
    )
    body = body.replace('"clock_offset_s": 7.5', f'"clock_offset_s": {offset}')
    r = h.post("/v1/sessions", content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert not any(p.is_dir() for p in (srv.ds_root / "staging").glob("*") if _key_of(p) == key)
    r = h.post("/v1/sessions", json={**META, "session_key": key})  # the corrected retry
    assert r.status_code == 201 and r.json()["created"] is True, r.text


def _key_of(d: Path) -> str | None:
    try:
        return json.loads((d / "session.json").read_text()).get("session_key")  # type: ignore[no-any-return]
    except OSError:
        return None


# -- 6. 4xx where a 5xx was -----------------------------------------------------------------------------


@pytest.mark.parametrize(("seq", "code"), [(10**300, 422), (2**63, 422), (-1, 422), (2**63 - 1, 200)])
def test_sequence_numbers_are_capped(srv: Server, h: httpx.Client, seq: int, code: int) -> None:
    sid = _session(srv)
    r = h.post(f"/v1/sessions/{sid}/sensors/spindle?seq={seq}", json=_batch(5))
    assert r.status_code == code, r.text
    r = h.post(f"/v1/sessions/{sid}/events?seq={seq}", json={"events": [{"ts": T0, "kind": "note"}]})
    assert r.status_code == code, r.text


@pytest.mark.parametrize(
    "path", ["/v1/sessions", "/v1/sessions/{sid}/events?seq=0", "/v1/sessions/{sid}/sensors/spindle?seq=0",
             "/v1/sessions/{sid}/finish", "/v1/sessions/{sid}/video/cam/complete"]
)  # fmt: skip
def test_deeply_nested_json_is_refused(srv: Server, h: httpx.Client, path: str) -> None:
    sid = _session(srv)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = h.post(path.format(sid=sid), content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "nested deeper" in r.text, r.text
    assert _staged(srv, sid) == [] and h.get(f"/v1/sessions/{sid}").json()["state"] == "recording"


def test_complete_before_any_chunk_is_a_conflict(srv: Server, h: httpx.Client) -> None:
    sid = _session(srv)
    r = h.post(f"/v1/sessions/{sid}/video/cam/complete", json={"size": 10, "sha256": "0" * 64})
    assert r.status_code == 409 and "nothing uploaded" in r.text
    r = h.post(f"/v1/sessions/{sid}/video/cam/complete", json={"size": 0, "sha256": "0" * 64})
    assert r.status_code == 422


def test_free_text_is_bounded(srv: Server, h: httpx.Client) -> None:
    for field in ("station", "line", "technician", "process", "task"):
        r = h.post("/v1/sessions", json={**META, "session_key": f"long-{field}", field: "x" * 100_000})
        assert r.status_code == 422 and field in r.text
        assert not any(_key_of(p) == f"long-{field}" for p in (srv.ds_root / "staging").iterdir())
    assert (
        h.post("/v1/sessions", json={**META, "session_key": "ok-200", "station": "x" * 200}).status_code
        == 201
    )


def test_overlapping_video_bytes_must_match(srv: Server, h: httpx.Client, tmp_path: Path) -> None:
    import cv2

    video = tmp_path / "v.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(20):
        vw.write(np.full((48, 64, 3), i * 10, np.uint8))
    vw.release()
    data = video.read_bytes()
    sid = _session(srv)
    url = f"/v1/sessions/{sid}/video/cam"
    assert h.patch(url, content=data[:1000], headers={"Upload-Offset": "0"}).json()["offset"] == 1000
    changed = bytes(b ^ 0xFF for b in data[500:1500])
    r = h.patch(url, content=changed, headers={"Upload-Offset": "500"})
    assert r.status_code == 409 and "different data" in r.text
    assert h.get(url).json()["offset"] == 1000
    r = h.patch(url, content=data[500:1000], headers={"Upload-Offset": "500"})  # the same bytes again
    assert r.status_code == 200 and r.json()["offset"] == 1000
    r = h.patch(url, content=data[500:], headers={"Upload-Offset": "500"})
    assert r.status_code == 200 and r.json()["offset"] == len(data)
    r = h.post(f"{url}/complete", json={"size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 200, r.text
    staged = srv.ds_root / "staging" / sid / "video"
    assert (staged / "cam.mp4").read_bytes() == data and not list(staged.glob("*.part"))
    # a recorder cannot turn de-identification off (site policy): the video is stored blurred, as .mp4
    h.post(f"/v1/sessions/{sid}/events?seq=0", json={"events": [{"ts": T0, "kind": "note"}]})
    assert h.post(f"/v1/sessions/{sid}/finish", json={"deidentify": False}).status_code == 422
    assert h.post(f"/v1/sessions/{sid}/finish", json={}).status_code == 202
    st = IngestClient(srv.url, KEY).wait(sid, timeout_s=120)
    assert st["state"] == "processed", st
    uri = Dataset.open(srv.ds_root).query(f"SELECT uri FROM media WHERE session_id = '{sid}'").to_pylist()
    assert [Path(u["uri"]).suffix for u in uri] == [".mp4"]


# -- 1. a failed session keeps its data and is retried -------------------------------------------------------


def test_a_failed_session_keeps_its_data_and_is_retried(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jangin.capture.cli import app

    srv = Server(tmp_path / "ds").start()
    try:
        c = IngestClient(srv.url, KEY)
        sids = []
        for k in range(2):
            sid = c.create_session(
                **{**META, "session_key": f"fail-{k}", "cameras": [], "devices": META["devices"]}
            )
            for seq in range(3):
                c.send_sensors(sid, "spindle", seq, np.asarray(_batch(100, T0 + seq * 10)["t"]),
                               {"load_pct": np.arange(100.0)})  # fmt: skip
            c.send_events(sid, 0, [{"ts": T0, "kind": "note", "name": "start"}])
            sids.append(sid)
        # fail the way a full or broken disk would: the dataset's sensor table cannot be written
        tables = srv.ds_root / "tables" / "sensor_samples"
        moved = tables.with_name("moved")
        assert tables.is_dir(), sorted(p.name for p in (srv.ds_root / "tables").iterdir())
        tables.rename(moved)
        tables.write_text("not a table")
        for sid in sids:
            c.finish(sid)
            st = c.wait(sid, timeout_s=120)
            assert st["state"] == "failed", st
            assert len(list((srv.ds_root / "staging" / sid / "sensors" / "spindle").glob("*.arrow"))) == 3
        srv.stop()
        tables.unlink()  # the disk is repaired
        moved.rename(tables)
        srv.start()  # a failed session is not retried by a restart (an admin decides)
        assert all(c.status(sid)["state"] == "failed" for sid in sids)
        sid = sids[0]
        assert httpx.post(f"{srv.url}/v1/sessions/{sid}/retry", headers={"X-API-Key": KEY}).status_code == 403
        r = httpx.post(f"{srv.url}/v1/sessions/{sid}/retry", headers={"X-API-Key": ADMIN})
        assert r.status_code == 202, r.text
        st = c.wait(sid, timeout_s=120)
        assert st["state"] == "processed" and st["retries"] == 1 and st["samples"] == 300, st
        r = httpx.post(f"{srv.url}/v1/sessions/{sid}/retry", headers={"X-API-Key": ADMIN})
        assert r.status_code == 409 and "processed" in r.text
    finally:
        srv.stop()
    res = CliRunner().invoke(app, ["sessions", "retry", sids[1], "--dataset", str(srv.ds_root)], env=srv.env)
    assert res.exit_code == 0, res.output
    ds = Dataset.open(srv.ds_root)
    counts = ds.query("SELECT session_id, count(*) n, count(DISTINCT ts) d FROM sensor_samples GROUP BY 1")
    assert sorted((r["n"], r["d"]) for r in counts.to_pylist()) == [(300, 300), (300, 300)]
    assert ds.query("SELECT count(*) n FROM events").column("n")[0].as_py() == 2
    assert (
        ds.query("SELECT count(*) n FROM current_sessions WHERE status = 'processed'").column("n")[0].as_py()
        == 2
    )


# -- unit checks of the pieces the server relies on -------------------------------------------------------


def test_json_depth_is_counted_across_chunks_strings_and_escapes() -> None:
    from jangin.core._limits import JsonDepth, json_depth_ok

    doc = json.dumps({"a": [[["x[[[{{{", '\\"[[[', "\\\\"], {"b": [1, 2, {"c": "]]]}}}"}]}]]}).encode()
    assert json_depth_ok(doc, 6) and not json_depth_ok(doc, 5)  # { [ [ [ ] { [ { } ] } ] ] }: depth 6
    for cut in range(len(doc)):  # every split of the text into two chunks gives the same answer
        d = JsonDepth(6)
        assert d.feed(doc[:cut]) and d.feed(doc[cut:]), cut
        d = JsonDepth(5)
        assert not (d.feed(doc[:cut]) and d.feed(doc[cut:])), cut
    assert not json_depth_ok(b"[" * 100_000, 64)


def _jpeg(seed: int = 0, progressive: int = 0) -> bytes:
    import cv2

    img = cv2.GaussianBlur(
        np.random.default_rng(seed).integers(0, 255, (240, 320, 3), dtype=np.uint8), (9, 9), 0
    )
    params = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, progressive]
    return bytes(cv2.imencode(".jpg", img, params)[1].tobytes())


@pytest.mark.parametrize("progressive", [0, 1])
def test_jpeg_completeness_is_checked_by_decoding(progressive: int) -> None:
    from jangin.core import InferenceError
    from jangin.inference._images import decode_checked

    data = _jpeg(progressive=progressive)
    full = decode_checked(data)
    assert full.shape == (240, 320, 3)
    trailing = decode_checked(data + b"camera metadata after the end marker" * 10)
    assert np.array_equal(trailing, full)
    for cut in (len(data) // 2, len(data) - 200):
        with pytest.raises(InferenceError, match="truncated"):
            decode_checked(data[:cut] + b"\xff\xd9")  # cut off, with an end marker appended
        with pytest.raises(InferenceError, match="truncated"):
            decode_checked(data[:cut])


def test_offset_and_skill_and_model_routes_answer_4xx(tmp_path: Path) -> None:
    """The inference routes of item 6: a huge offset, a skill event without ``ts``, a process model."""
    from jangin.core import ModelRegistry
    from jangin.core.artifacts import ModelManifest

    ds = Dataset.open_or_create(tmp_path / "ds")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not used")
    ModelRegistry(ds.models_dir).add(ModelManifest(name="proc", task="process"), {"model.onnx": onnx})
    srv = Server(tmp_path / "ds", all_routers=True).start()
    try:
        eng = {"X-API-Key": ENGINEER}
        r = httpx.get(f"{srv.url}/v1/inspections", params={"offset": 10**20}, headers=eng)
        assert r.status_code == 422, r.text
        up = {"channels": {"x": {"t": [T0, T0 + 1], "values": [1.0, 2.0]}}, "events": [{"kind": "note"}]}
        r = httpx.post(f"{srv.url}/v1/skill/score", json={"session": up}, headers=eng, timeout=60)
        assert r.status_code == 422 and "events[0].ts" in r.text, r.text
        up["events"] = [{"ts": math.inf, "kind": "note"}]
        r = httpx.post(
            f"{srv.url}/v1/skill/score",
            content=json.dumps({"session": up}).encode(),
            headers={**eng, "Content-Type": "application/json"},
            timeout=60,
        )
        assert r.status_code == 422, r.text
        r = httpx.post(f"{srv.url}/v1/models/proc/activate", headers={"X-API-Key": ADMIN}, timeout=60)
        assert r.status_code == 422 and "process model" in r.text, r.text
        assert srv.alive()
    finally:
        srv.stop()
