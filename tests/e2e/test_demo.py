"""The demo end to end: the full `jangin demo` chain, offline, with every outbound connection blocked."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import jangin.capture
from jangin.core import ConfigError, Dataset, ModelRegistry
from jangin.core.process_definition import get_process
from jangin.core.settings import get_settings

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
needs_import_runs = pytest.mark.skipif(
    not hasattr(jangin.capture, "import_runs"),
    reason="jangin.capture.import_runs (generic run-table import) lands with the capture import branch",
)


#: Loaded by every Python process of the demo (sitecustomize): records each non-loopback connection
#: or DNS lookup to the file named by JANGIN_TEST_NET_LOG. Together with the network namespace (no
#: route out at all, for non-Python children too) it proves the demo makes no outbound connection.
_RECORDER = """
import ipaddress, os, socket
_LOG = os.environ.get("JANGIN_TEST_NET_LOG")
def _loopback(a):
    if isinstance(a, (str, bytes)):
        return True
    try:
        h = str(a[0])
    except Exception:
        return False
    if h in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(h.split("%")[0]).is_loopback
    except ValueError:
        return False
def _note(what, a):
    with open(_LOG, "a") as f:
        f.write(f"{os.getpid()} {what} {a!r}\\n")
if _LOG:
    _connect, _connect_ex, _gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    def connect(self, a):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(a):
            _note("connect", a)
        return _connect(self, a)
    def connect_ex(self, a):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(a):
            _note("connect_ex", a)
        return _connect_ex(self, a)
    def getaddrinfo(host, *args, **kw):
        if host is not None and not _loopback((host,)):
            _note("getaddrinfo", host)
        return _gai(host, *args, **kw)
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
"""


def _netns_available() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30, check=False
    )
    return probe.returncode == 0


@dataclass
class _Demo:
    out: Path
    dataset: Path
    report: Path
    metrics: dict[str, Any]


def _run_demo_isolated(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Any, list[str], list[str]]:
    """``jangin demo`` as a user runs it, in a process of its own inside a network namespace with only
    loopback (where the kernel supports it; else in this process behind the socket guard). Returns
    the result, the lines it printed and the outbound attempts recorded."""
    out = tmp_path / "demo"
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_RECORDER)
    net_log = tmp_path / "net.log"
    net_log.touch()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(guard), os.environ.get("PYTHONPATH")])),
        "JANGIN_TEST_NET_LOG": str(net_log),
        "COLUMNS": "400",  # rich does not wrap the lines the test reads
    }
    cmd = [sys.executable, "-c", "from jangin.core.cli import main; main()", "demo", "--out", str(out)]
    if not _netns_available():  # e.g. a container without CAP_SYS_ADMIN: this process, socket guard only
        from jangin.demo._run import DemoConfig, run_demo

        guard_list = request.getfixturevalue("network_guard")
        lines: list[str] = []
        demo = run_demo(DemoConfig(out=out), say=lines.append)
        return demo, lines, [repr(a) for a in guard_list]
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [ln.strip().removeprefix("✓").strip() for ln in (done.stdout + done.stderr).splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    res = _Demo(
        out=out, dataset=out / "dataset", report=out / "report" / "index.html", metrics=summary["metrics"]
    )
    return res, lines, net_log.read_text().splitlines()


@pytest.mark.slow
def test_demo_runs_offline_and_beats_chance(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    res, lines, attempts = _run_demo_isolated(tmp_path, request)

    assert attempts == [], f"the demo tried to reach the network: {attempts}"
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
    # The second sample process: the etch runs imported from raw logs, profiled per recipe, in the report.
    etch = m["etch"]
    assert etch["runs"] == 10 and etch["samples"] > 300_000
    assert set(etch["skill"]) == {"oxide_via", "nitride_spacer"}
    for recipe, prof in etch["skill"].items():
        assert "error" not in prof, (recipe, prof)
        assert ModelRegistry(ds.models_dir).active(f"etch-skill-{recipe}") == "v1"
        # every run that is not a (leave-one-out) expert gets a coaching page, linked from the report
        coached = [r for r in prof["sessions"] if r["report"]]
        assert coached and {r["session_id"] for r in coached} == {
            r["session_id"] for r in prof["sessions"] if r["session_id"] not in prof["experts"]
        }
        assert all(f"href='coaching/{r['report']}'" in html for r in coached)
    assert "Second process" in html and "main_etch" in html
    for img in ("etch_signals_expert.png", "etch_signals_novice.png"):
        assert (res.report.parent / img).stat().st_size > 5_000 and img in html
    assert any(line.startswith("etch: 10 runs") for line in lines)


def test_demo_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    from jangin.demo._run import DemoConfig, run_demo

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not made by `jangin demo`"):
        run_demo(DemoConfig(out=tmp_path / "mine"))
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def _etch_runs() -> list[dict[str, str]]:
    with open(SAMPLE_DATA / "etch" / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


@needs_import_runs
def test_demo_etch_imports_the_raw_runs_with_steps_parameters_and_labels(
    tmp_path: Path, network_guard: list[tuple[str, object]]
) -> None:
    from jangin.demo._etch import demo_etch, etch_report_sections, register_sample_processes
    from jangin.demo._report import write_report

    ds = Dataset.create(tmp_path / "ds")
    versions = register_sample_processes(ds, SAMPLE_DATA)
    assert versions == {"plasma_etch": 1, "mig_butt_weld": 1}
    assert register_sample_processes(ds, SAMPLE_DATA) == versions  # registering again adds nothing
    assert get_process(ds, "plasma_etch").steps.column == "recipe_step"
    etch = demo_etch(
        ds, SAMPLE_DATA, tmp_path / "coaching", settings=get_settings(dataset=ds.root), skill=False
    )
    runs = _etch_runs()
    assert etch["runs"] == len(runs) == len(etch["sessions"]) and etch["skill"] == {}
    # every channel of every row became a sample; the phase column became 7 steps per run
    assert all(s["steps"] == 7 for s in etch["sessions"])
    assert all(s["samples"] % 33 == 0 and s["samples"] > 30_000 for s in etch["sessions"])
    occ = {(r["step"], r["occurrence"]): r["runs"] for r in etch["steps"]}
    assert occ[("main_etch", 1)] == occ[("main_etch", 2)] == len(runs)  # a repeated phase: two occurrences
    assert ("main_etch", 3) not in occ and occ[("purge", 1)] == len(runs)
    # recipes as session parameters, run labels with their questions, from the run table
    recipes = {p["recipe"]: p for p in etch["parameters"]}
    assert set(recipes) == {r["recipe"] for r in runs}
    assert recipes["oxide_via"]["rf_power_setpoint_W"] == "800.0" and recipes["oxide_via"]["runs"] == 5
    got = {(x["question"], x["answer"]): x["runs"] for x in etch["labels"]}
    for q in ("outcome", "etch_depth_ok"):
        for answer in {r[f"label.{q}"] for r in runs}:
            assert got[(q, answer)] == sum(r[f"label.{q}"] == answer for r in runs)
    by_run = {s["run"]: s for s in etch["sessions"]}
    for r in runs:
        s = by_run[Path(r["file"]).name.removesuffix(".csv.gz")]
        assert (s["skill_level"], s["recipe"], s["outcome"]) == (
            r["skill_level"],
            r["recipe"],
            r["label.outcome"],
        )
        assert s["technician"] != r["technician"] and s["technician"].startswith("tech-")  # pseudonymised
    linked = ds.query("SELECT DISTINCT process, process_definition FROM current_sessions").to_pylist()
    assert linked == [{"process": "plasma_etch", "process_definition": "plasma_etch"}]
    # the report sections: both signal plots drawn with the definition's channels, the tables filled
    sections = etch_report_sections(ds, etch, tmp_path)
    titles = [s["title"] for s in sections]
    assert any("recipe steps" in t for t in titles) and any("run labels" in t for t in titles)
    for level in ("expert", "novice"):
        assert (tmp_path / f"etch_signals_{level}.png").stat().st_size > 5_000
    html = write_report(tmp_path, sections, title="etch", summary=[]).read_text()
    assert "etch_signals_novice.png" in html and "<td>main_etch</td>" in html and "etch_depth_ok" in html
    assert network_guard == []


@pytest.mark.slow
@needs_import_runs
def test_demo_etch_builds_a_profile_per_recipe_and_coaches_every_novice(tmp_path: Path) -> None:
    from jangin.demo._etch import demo_etch, etch_report_sections, register_sample_processes
    from jangin.demo._report import write_report

    ds = Dataset.create(tmp_path / "ds")
    register_sample_processes(ds, SAMPLE_DATA)
    etch = demo_etch(ds, SAMPLE_DATA, tmp_path / "coaching", settings=get_settings(dataset=ds.root))
    runs = _etch_runs()
    for recipe, prof in etch["skill"].items():
        assert "error" not in prof, prof
        mine = [r for r in runs if r["recipe"] == recipe]
        assert len(prof["experts"]) == sum(r["skill_level"] == "expert" for r in mine)
        assert len(prof["sessions"]) == len(mine)
        lowest = min(prof["sessions"], key=lambda r: r["score"])
        assert lowest["skill_level"] == "novice" and lowest["report"], prof["sessions"]
        page = (tmp_path / "coaching" / lowest["report"]).read_text()
        assert "data:image/png;base64," in page
    html = write_report(
        tmp_path, etch_report_sections(ds, etch, tmp_path), title="etch", summary=[]
    ).read_text()
    for prof in etch["skill"].values():
        novices = [r for r in prof["sessions"] if r["session_id"] not in prof["experts"]]
        assert novices and all(r["report"] and f"href='coaching/{r['report']}'" in html for r in novices)
