"""Every task servable: classification and process-signal scoring over HTTP and from ``jangin inspect``,
through the one Inspector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from onnx_models import solid

from jangin.core import Dataset, ModelRegistry
from jangin.inference.inspection import InferenceConfig

RED, GREEN = (0, 0, 255), (0, 255, 0)


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A dataset with a classifier (``finish``, ACTIVE), a process model (``pressure-judge``, ACTIVE) and
    the tiny detector, and a live server on it."""
    import live
    import onnx_models

    base = tmp_path_factory.mktemp("tasks")
    ds = Dataset.create(base / "ds")
    reg = ModelRegistry(ds.models_dir)
    for mv in (
        onnx_models.publish_classifier(reg, tmp=base),
        onnx_models.publish_process(reg, tmp=base),
    ):
        reg.promote(mv.name, mv.version)
    onnx_models.publish_detector(reg, tmp=base)
    srv = live.start(ds.root, InferenceConfig(flush_s=0.2))
    srv.ds = ds  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def _window(pressure: float, flow: float = 3.0, n: int = 50) -> dict[str, Any]:
    t = (np.arange(n) * 1000).tolist()
    return {
        "channels": {
            "pressure": {"t_us": t, "values": [pressure] * n},
            "flow": {"t_us": t, "values": [flow] * n},
        }
    }


def test_classifier_over_http_top_k_and_verdict(tasks: Any) -> None:
    h = {**tasks.headers(), "Content-Type": "image/jpeg"}
    models = httpx.get(f"{tasks.url}/v1/models", headers=tasks.headers()).json()
    assert models["serving"]["task"] == "classify" and models["serving_process"]["name"] == "pressure-judge"
    red = httpx.post(f"{tasks.url}/v1/inspect", content=solid(RED, size=48), headers=h).json()
    green = httpx.post(f"{tasks.url}/v1/inspect", content=solid(GREEN, size=80), headers=h).json()
    assert red["task"] == "classify" and red["verdict"] == "NG" and red["score"] > 0.99
    assert [c["name"] for c in red["classes"]] == ["scratch", "good"] and red["classes"][0]["ng"] is True
    assert green["verdict"] == "OK" and green["score"] < 0.01 and green["classes"][0]["name"] == "good"
    assert red["scores"]["p_scratch"] == pytest.approx(red["score"]) and red["durable"] is True
    row = httpx.get(f"{tasks.url}/v1/inspections/{red['inspection_id']}", headers=tasks.headers()).json()
    assert row["verdict"] == "NG" and row["model"] == "finish"


def test_process_window_json_and_arrow(tasks: Any) -> None:
    import pyarrow as pa

    url = f"{tasks.url}/v1/process/score"
    ng = httpx.post(url, json=_window(0.9), headers=tasks.headers(), params={"station": "press-1"}).json()
    assert ng["task"] == "process" and ng["verdict"] == "NG" and ng["p_ng"] == pytest.approx(0.9, abs=1e-5)
    assert ng["samples"] == {"pressure": 50, "flow": 50} and ng["model"] == "pressure-judge"
    long = pa.table(
        {
            "channel": ["pressure"] * 20 + ["flow"] * 20,
            "t_us": list(range(0, 20_000, 1000)) * 2,
            "value": [0.2] * 20 + [5.0] * 20,
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, long.schema) as w:
        w.write_table(long)
    ok = httpx.post(
        url,
        content=sink.getvalue().to_pybytes(),
        headers={**tasks.headers(), "Content-Type": "application/vnd.apache.arrow.stream"},
        params={"session_id": "s-42"},
    ).json()
    assert ok["verdict"] == "OK" and ok["p_ng"] == pytest.approx(0.2, abs=1e-5)
    row = httpx.get(f"{tasks.url}/v1/inspections/{ok['inspection_id']}", headers=tasks.headers()).json()
    assert row["source_uri"] == "session:s-42" and row["scores"][0]["name"] == "p_ng"


def test_process_refusals_name_the_problem(tasks: Any) -> None:
    url = f"{tasks.url}/v1/process/score"
    body = _window(0.9)
    del body["channels"]["flow"]
    r = httpx.post(url, json=body, headers=tasks.headers())
    assert r.status_code == 422 and "flow" in r.json()["detail"], r.text
    assert httpx.post(url, json={"x": 1}, headers=tasks.headers()).status_code == 422
    r = httpx.post(url, content=b"a,b", headers={**tasks.headers(), "Content-Type": "text/csv"})
    assert r.status_code == 415
    r = httpx.post(url, json=_window(0.9), headers=tasks.headers(), params={"model": "finish"})
    assert r.status_code == 422 and "not a process model" in r.json()["detail"]
    assert httpx.post(url, json=_window(0.9), headers=tasks.headers("labeller")).status_code == 403


def test_hot_swap_to_detector_and_back(tasks: Any) -> None:
    h = {**tasks.headers(), "Content-Type": "image/jpeg"}
    act = lambda name: httpx.post(  # noqa: E731
        f"{tasks.url}/v1/models/{name}/activate", headers=tasks.headers("admin"), timeout=60
    )
    try:
        assert act("colors").json()["serving"]["task"] == "detect"
        r = httpx.post(f"{tasks.url}/v1/inspect", content=solid(RED), headers=h).json()
        assert r["task"] == "detect" and r["detections"]
    finally:
        assert act("finish").status_code == 200


def test_jangin_inspect_serves_every_task(tasks: Any, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from jangin.inference.cli import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)

    ds = tasks.ds
    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    (imgs / "a.jpg").write_bytes(solid(RED))
    (imgs / "sub" / "b.png").write_bytes(solid(GREEN, fmt=".png"))
    (imgs / "notes.txt").write_text("not an image")
    csv = tmp_path / "w.csv"
    csv.write_text("t_s,pressure,flow\n" + "".join(f"{i / 100},0.7,2.0\n" for i in range(30)))
    run = CliRunner().invoke
    r = run(app, ["inspect", str(imgs), "-m", "finish", "--dataset", str(ds.root), "--station", "cli-cls"])
    assert r.exit_code == 0, r.output
    lines = [ln.split("\t") for ln in r.output.splitlines() if "\t" in ln]
    assert [(Path(s).name, v) for s, v, *_ in lines] == [("a.jpg", "NG"), ("b.png", "OK")]
    assert "scratch" in lines[0][2]
    r = run(
        app, ["inspect", "-m", "pressure-judge", "--csv", str(csv), "--dataset", str(ds.root), "--no-log"]
    )
    assert r.exit_code == 0 and "\tNG\tP(NG) 0.700" in r.output, r.output
    r = run(app, ["inspect", str(imgs), "-m", "pressure-judge", "--dataset", str(ds.root)])
    assert r.exit_code != 0 and "process model" in str(r.exception or r.output)
    tasks.service.log.flush()
    n = ds.query("SELECT count(*) AS n FROM inspections WHERE station = 'cli-cls'").column("n")[0].as_py()
    assert n == 2
