"""The demo end to end: the full `jangin demo` chain, offline, with every outbound connection blocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jangin.core import ConfigError, Dataset, ModelRegistry


@pytest.mark.slow
def test_demo_runs_offline_and_beats_chance(tmp_path: Path, network_guard: list[tuple[str, object]]) -> None:
    from jangin.demo._run import DemoConfig, run_demo

    lines: list[str] = []
    res = run_demo(DemoConfig(out=tmp_path / "demo"), say=lines.append)

    assert network_guard == [], f"the demo tried to reach the network: {network_guard}"
    # A trained model's held-out metric, better than the trivial baseline by a clear margin.
    m = res.metrics
    assert m["test_images"] >= 20
    assert m["onnx_mAP50"] > m["baseline_mAP50"] + 0.2, m
    assert m["parity"]["passed"] and m["parity"]["raw_max_score_diff"] <= 0.02
    assert set(m["onnx_per_class_AP50"]) == {"porosity", "undercut", "spatter", "crack"}
    # The anomaly and process models beat their trivial baselines on held-out data.
    an, pr = m["other_models"]["anomaly"], m["other_models"]["process"]
    assert an["auroc"] > an["baseline_auroc"] and pr["auroc"] > pr["baseline_auroc"], (an, pr)
    # One session came in over HTTP as a recording app sends it, and was processed.
    assert (
        m["ingest"]["state"] == "processed"
        and m["ingest"]["stored_samples"] == m["ingest"]["samples"] > 50_000
    )
    # Labeling went through the committed Label Studio export (no server configured here).
    assert m["label_studio"]["mode"] == "export" and m["label_studio"]["labels_added"] > 0
    # The model was served over HTTP, every held-out image inspected, reviews recorded (one override).
    assert sum(m["serve"]["counts"].values()) == m["test_images"] and m["serve"]["overrides"] == 1
    # Every stage wrote its tables.
    ds = Dataset.open(res.dataset)
    counts = ds.counts()
    assert counts["sessions"] >= 6 and counts["sensor_samples"] > 300_000 and counts["frames"] > 200
    assert counts["labels"] > 100 and counts["inspections"] == m["test_images"]
    assert ModelRegistry(ds.models_dir).active("weld-defects") == "v1"
    # The report shows the metric, at least one plot and example images with boxes.
    html = res.report.read_text()
    assert f"{m['onnx_mAP50']:.3f}" in html
    for img in ("signals_expert.png", "signals_novice.png", "examples.jpg", "training_curves.png"):
        assert (res.report.parent / img).stat().st_size > 5_000, img
        assert img in html
    summary = json.loads((res.out / "summary.json").read_text())
    assert summary["metrics"]["onnx_mAP50"] == pytest.approx(m["onnx_mAP50"])
    assert any("mAP50" in line for line in lines)
    # Skill profile: built from the three expert sessions, novices coached, reports linked.
    sk = m["skill"]
    assert "error" not in sk, sk
    assert len(sk["experts"]) == 3 and ModelRegistry(ds.models_dir).active("weld-skill") == "v1"
    novices = [r for r in sk["sessions"] if r["skill_level"] == "novice"]
    experts = [r for r in sk["sessions"] if r["skill_level"] == "expert"]
    assert len(novices) == 2 and len(experts) == 3
    assert max(r["score"] for r in novices) < min(r["score"] for r in experts), sk["sessions"]
    for r in novices:
        page = res.report.parent / "coaching" / r["report"]
        assert page.is_file() and "data:image/png;base64," in page.read_text()
        assert f"href='coaching/{r['report']}'" in html
    assert any("undercut" in t for t in sk["outcomes"])
    assert any("skill profile" in line for line in lines)


def test_demo_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    from jangin.demo._run import DemoConfig, run_demo

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not made by `jangin demo`"):
        run_demo(DemoConfig(out=tmp_path / "mine"))
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"
