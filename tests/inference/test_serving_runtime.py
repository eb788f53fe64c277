"""Hot swap under load, shedding, the anomaly runtime over HTTP, shutdown flush, camera workers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from onnx_models import solid

from jangin.core import Dataset, ModelRegistry
from jangin.inference.inspection import InferenceConfig

RED = (0, 0, 255)


def _dataset(tmp_path: Path, onnx_models: Any) -> Dataset:
    ds = Dataset.create(tmp_path / "ds")
    reg = ModelRegistry(ds.models_dir)
    mv = onnx_models.publish_detector(reg, tmp=tmp_path)
    reg.promote(mv.name, mv.version)
    onnx_models.publish_detector(reg, tmp=tmp_path)  # colors:v2
    onnx_models.publish_anomaly(reg, tmp=tmp_path)
    return ds


def _swaps_under_load(
    srv: Any, swaps: list[dict[str, str]], *, clients: int = 6, pause: float = 0.4
) -> tuple[list[tuple[float, int, dict[str, Any]]], list[float]]:
    """``clients`` keep-alive clients post inspections while each of ``swaps`` (activate: ``ref`` and
    query parameters) is made in turn; returns every answer ``(time, status, JSON)`` and when each swap
    returned. Stops the server."""
    stop = threading.Event()
    seen: list[tuple[float, int, dict[str, Any]]] = []
    done: list[float] = []
    body = solid(RED)

    def client() -> None:
        with httpx.Client(headers={**srv.headers(), "Content-Type": "image/jpeg"}, timeout=30) as c:
            while not stop.is_set():
                r = c.post(f"{srv.url}/v1/inspect", content=body, params={"station": "swap"})
                seen.append((time.monotonic(), r.status_code, r.json()))

    def answered_after(t0: float, n: int = 3, timeout: float = 60.0) -> None:
        """Wait until ``n`` answers came after ``t0``, then ``pause`` more (a slow box answers late: a
        fixed sleep alone left no answer before the first swap once)."""
        deadline = time.monotonic() + timeout
        while sum(1 for t, _, _ in list(seen) if t > t0) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(pause)

    try:
        with ThreadPoolExecutor(clients) as pool:
            futs = [pool.submit(client) for _ in range(clients)]
            answered_after(0.0)
            for swap in swaps:
                params = {k: v for k, v in swap.items() if k != "ref"}
                r = httpx.post(
                    f"{srv.url}/v1/models/{swap['ref']}/activate",
                    params=params,
                    headers=srv.headers("admin"),
                    timeout=60,
                )
                assert r.status_code == 200, r.text
                if "runtime" in swap:
                    assert r.json()["serving"]["runtime"].startswith(swap["runtime"])
                done.append(time.monotonic())
                answered_after(done[-1] + 0.2)
            stop.set()
            for f in futs:
                f.result()
    finally:
        stop.set()
        srv.stop()
    return seen, done


def test_hot_swap_under_concurrent_requests(tmp_path: Path, onnx_models: Any, live: Any) -> None:
    srv = live.start(_dataset(tmp_path, onnx_models).root, InferenceConfig(flush_s=0.2))
    swaps = [{"ref": "colors", "version": "v2"}, {"ref": "bright"}, {"ref": "colors", "version": "v1"}]
    seen, _ = _swaps_under_load(srv, swaps)
    assert {c for _, c, _ in seen} == {200}, [s for s in seen if s[1] != 200][:5]
    assert {"colors:v1", "colors:v2", "bright:v1"} <= {
        f"{j['model']}:{j['model_version']}" for _, _, j in seen
    }
    assert len(seen) > 20


def test_overload_sheds_with_503_and_retry_after(tmp_path: Path, onnx_models: Any, live: Any) -> None:
    srv = live.start(_dataset(tmp_path, onnx_models).root, InferenceConfig(max_queue=2, max_batch=1))
    batcher = srv.service.batcher
    real = batcher.run
    batcher.run = lambda items: (time.sleep(0.25), real(items))[1]
    try:
        with ThreadPoolExecutor(10) as pool:
            rs = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{srv.url}/v1/inspect",
                        content=solid(RED),
                        timeout=30,
                        headers={**srv.headers(), "Content-Type": "image/jpeg"},
                    ),
                    range(10),
                )
            )
        codes = [r.status_code for r in rs]
        assert set(codes) == {200, 503} and codes.count(200) >= 2
        shed = next(r for r in rs if r.status_code == 503)
        assert shed.headers["Retry-After"] == "1" and "waiting" in shed.json()["detail"]
        batcher.run = real
        assert (
            httpx.post(
                f"{srv.url}/v1/inspect",
                content=solid(RED),
                headers={**srv.headers(), "Content-Type": "image/jpeg"},
            ).status_code
            == 200
        )
    finally:
        srv.stop()


def test_anomaly_model_over_http_and_shutdown_flush(tmp_path: Path, onnx_models: Any, live: Any) -> None:
    ds = _dataset(tmp_path, onnx_models)
    rules = tmp_path / "rules.yaml"
    rules.write_text("default:\n  anomaly_doubtful: [0.45, 0.55]\n")
    srv = live.start(ds.root, InferenceConfig(model="bright", rules=rules, flush_s=60))
    try:
        h = {**srv.headers(), "Content-Type": "image/png"}
        got = {
            name: httpx.post(
                f"{srv.url}/v1/inspect", content=solid(bgr, fmt=".png"), headers=h, params={"station": "an"}
            ).json()
            for name, bgr in (("white", (255, 255, 255)), ("grey", (128, 128, 128)), ("dark", (20, 20, 20)))
        }
        assert [got[k]["verdict"] for k in ("white", "grey", "dark")] == ["NG", "DOUBTFUL", "OK"]
        assert got["white"]["scores"]["anomaly"] == pytest.approx(1.0) and got["white"]["task"] == "anomaly"
        png = httpx.get(f"{srv.url}{got['white']['anomaly_map_url']}", headers=srv.headers())
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert srv.service.log.pending == 3  # flush_s is 60: still buffered
    finally:
        srv.stop()  # the shutdown hook commits the buffer
    rows = ds.query("SELECT verdict, image_uri FROM inspections WHERE station = 'an' ORDER BY ts").to_pylist()
    assert [r["verdict"] for r in rows] == ["NG", "DOUBTFUL", "OK"]
    heat = (ds.root / rows[0]["image_uri"]).with_name(
        rows[0]["image_uri"].rsplit("/", 1)[1].split(".")[0] + ".heat.png"
    )
    assert heat.is_file()


def _video(path: Path, n: int = 20, fps: float = 20.0) -> Path:
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 64))
    for i in range(n):
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[:] = (0, 0, 255) if i % 2 else (0, 255, 0)
        w.write(frame)
    w.release()
    return path


def test_camera_workers_drop_frames_reconnect_and_log(tmp_path: Path, onnx_models: Any, live: Any) -> None:
    ds = _dataset(tmp_path, onnx_models)
    video = _video(tmp_path / "line.avi")
    srv = live.start(
        ds.root,
        InferenceConfig(camera_interval_s=0.15, flush_s=0.2),
        cameras={"cam1": str(video), "gone": str(tmp_path / "missing.avi")},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stats = {
                c["camera"]: c
                for c in httpx.get(f"{srv.url}/v1/cameras", headers=srv.headers()).json()["cameras"]
            }
            if stats["cam1"]["reconnects"] >= 1 and stats["cam1"]["inspected"] >= 3:
                break
            time.sleep(0.2)
        cam = stats["cam1"]
        assert cam["alive"] and cam["inspected"] >= 3 and cam["dropped"] > 0 and cam["reconnects"] >= 1, cam
        assert cam["grabbed"] >= cam["inspected"] + cam["dropped"] - 1
        assert stats["gone"]["alive"] and stats["gone"]["reconnects"] >= 1 and stats["gone"]["inspected"] == 0
        assert httpx.get(f"{srv.url}/healthz").status_code == 200
    finally:
        srv.stop()
    rows = ds.query(
        "SELECT camera, station, source_uri, verdict FROM inspections WHERE camera = 'cam1'"
    ).to_pylist()
    assert (
        len(rows) >= 3
        and {r["station"] for r in rows} == {"cam1"}
        and {r["source_uri"] for r in rows} == {"camera:cam1"}
    )


def test_log_maintenance_keeps_rows(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from jangin.inference._log import InspectionLog

    ds = Dataset.create(tmp_path / "ds")
    log = InspectionLog(ds, flush_s=60)
    for i in range(5):
        log.add(
            {
                "inspection_id": f"insp-{i:020x}",
                "ts": datetime.now(UTC),
                "model": "m",
                "model_version": "v1",
                "verdict": "OK",
                "score": 0.0,
            }
        )
        log.flush()
    log.maintain(force=True)
    assert ds.read("inspections").num_rows == 5
    assert list(ds.table_path("inspections").glob("_delta_log/*.checkpoint.parquet"))


@pytest.mark.slow  # trains the shared detector when no other test has (about a minute on 2 cores)
def test_trained_yolo_over_http_matches_the_runtime(
    trained: dict[str, Any], tmp_path: Path, live: Any
) -> None:
    """The detector trained by the training tests (Ultralytics, imgsz 64), served: HTTP answers what
    OnnxDetector answers for the same bytes, micro-batched or not."""
    import shutil

    from jangin.inference import OnnxDetector

    ds = Dataset.create(tmp_path / "ds")
    shutil.copytree(trained["mv"].path, ds.models_dir / "squares" / trained["mv"].version)
    rules = tmp_path / "rules.yaml"
    rules.write_text("default: {min_conf: 0.05}\n")
    srv = live.start(ds.root, InferenceConfig(model="squares", rules=rules))
    try:
        paths = trained["data"].images("test")[:6]
        det = OnnxDetector.from_version(trained["mv"], conf=0.05)
        h = {**srv.headers(), "Content-Type": "image/jpeg"}
        with ThreadPoolExecutor(6) as pool:  # concurrently, so some run as one micro-batch
            got = list(
                pool.map(
                    lambda p: httpx.post(
                        f"{srv.url}/v1/inspect", content=p.read_bytes(), headers=h, timeout=60
                    ).json(),
                    paths,
                )
            )
        for p, r in zip(paths, got, strict=True):
            want = det.predict_bytes(p.read_bytes())
            assert [d["name"] for d in r["detections"]] == want.names
            np.testing.assert_allclose([d["score"] for d in r["detections"]], want.scores, atol=1e-4)
            assert r["model"] == "squares" and r["verdict"] == ("NG" if len(want) else "OK")
    finally:
        srv.stop()


def _add_openvino(mv: Any) -> None:
    """Give ``mv`` an OpenVINO fp32 artifact (IR beside the model, recorded with its checksums)."""
    from jangin.core.artifacts import ModelVersion, RuntimeArtifact, sha256_file
    from jangin.core.runtimes._openvino import save_ir

    files = save_ir(mv.file("model.onnx"), mv.path / "runtimes" / "openvino-fp32" / "model.xml", fp16=False)
    rel = [str(f.relative_to(mv.path)) for f in files]
    art = RuntimeArtifact(
        runtime="openvino",
        precision="fp32",
        device_hint="CPU",
        files=rel,
        sha256={r: sha256_file(mv.path / r) for r in rel},
        parity={"metric": "mAP50", "passed": True},
    )
    ModelVersion.load(mv.path).add_runtime(art)


def test_hot_swap_between_runtimes_loses_no_request(tmp_path: Path, onnx_models: Any, live: Any) -> None:
    """Serving on ONNX Runtime fp32 under load, swap the slot to the same version on OpenVINO and back:
    no request fails, every acknowledged verdict is in the log, verdicts after each swap name the new runtime."""
    from jangin.core.runtimes import available_runtimes

    if ("openvino", "CPU") not in available_runtimes():
        pytest.skip("install the openvino extra")
    ds = Dataset.create(tmp_path / "ds")
    reg = ModelRegistry(ds.models_dir)
    mv = onnx_models.publish_detector(reg, tmp=tmp_path)
    reg.promote(mv.name, mv.version)
    _add_openvino(mv)  # no throughput measured: served only when asked for
    srv = live.start(ds.root, InferenceConfig(flush_s=0.2))
    swaps = [{"ref": "colors", "runtime": "openvino"}, {"ref": "colors", "runtime": "onnxruntime"}]
    seen, (to_ov, back) = _swaps_under_load(srv, swaps, clients=4, pause=0.6)
    assert {s for _, s, _ in seen} == {200}, [x for x in seen if x[1] != 200][:5]
    before = [j["runtime"] for t, _, j in seen if t < to_ov - 0.2]
    on_ov = [j["runtime"] for t, _, j in seen if to_ov + 0.2 < t < back - 0.2]
    after = [j["runtime"] for t, _, j in seen if t > back + 0.2]
    assert before and on_ov and after
    assert set(before) == {"onnxruntime:fp32"} and set(after) == {"onnxruntime:fp32"}, (before, after)
    assert set(on_ov) == {"openvino:fp32"}, on_ov
    logged = {r["inspection_id"] for r in Dataset.open(ds.root).read("inspections").to_pylist()}
    acked = {j["inspection_id"] for _, _, j in seen}
    assert acked <= logged, f"{len(acked - logged)} acknowledged verdicts missing from the log"
