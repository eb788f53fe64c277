"""demo_serve: the demo's serving step, end to end on the tiny detector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onnx_models import solid

from jangin.core import Dataset, ModelRegistry
from jangin.demo._inference import demo_serve


def test_demo_serve(tmp_path: Path, onnx_models: Any) -> None:
    ds = Dataset.create(tmp_path / "ds")
    reg = ModelRegistry(ds.models_dir)
    onnx_models.publish_detector(reg, tmp=tmp_path)
    colours = [(0, 0, 255), (0, 255, 0), (0, 0, 100), (0, 255, 0)] * 4
    images = [(f"img-{i}.jpg", solid(c)) for i, c in enumerate(colours)]
    out = demo_serve(ds, "colors", images, tmp_path / "serve")
    assert out["images"] == 16 and out["counts"] == {
        "NG": 12,
        "DOUBTFUL": 4,
    }  # demo rules: every class is a defect
    assert out["overrides"] == 1 and len(out["reviews"]) == 5 and all(r["label_id"] for r in out["reviews"])
    assert out["latency_ms"]["server_p50"] > 0 and out["urls"]["review_page"].endswith("/review")
    charts = out["paths"]["charts"]
    assert set(charts) == {"line-A/p", "line-A/xbar", "line-B/p", "line-B/xbar"}
    assert all(Path(p).read_text().startswith("<svg") for p in charts.values())
    assert ds.query("SELECT count(*) AS n FROM inspections").column("n")[0].as_py() == 16  # flushed on stop
    assert ds.query("SELECT count(*) AS n FROM labels WHERE source = 'review'").column("n")[0].as_py() == 5
