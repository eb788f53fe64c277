"""Process models that do not fool their users: confound check, inside-fold baseline, group bootstrap,
small-sample warning, out-of-fold file, refusals (unknown channels, mixed questions, below baseline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import ModelRegistry, TrainingError

_RUNS: dict[str, Any] = {}


def _cfg(**kw: Any) -> Any:
    from jangin.training import ProcessConfig

    return ProcessConfig(**{"ok_name": "unworn", "n_estimators": 10, "n_bootstrap": 200, **kw})


@pytest.fixture
def offset_run(adata: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """20 worn/unworn runs where worn runs get +0.2 on x_pos's level (a set-up offset), trained once."""
    if not _RUNS:
        from jangin.training import train_process

        base = tmp_path_factory.mktemp("offset")
        ds = adata.make_runs_dataset(base / "ds", offset=0.2)
        mv = train_process(
            ds, _cfg(name="wear", features="all"), registry=ModelRegistry(ds.models_dir), work_dir=base / "w"
        )
        _RUNS.update(ds=ds, mv=mv)
    return _RUNS


def test_confound_check_fires_on_a_constant_offset(offset_run: dict[str, Any]) -> None:
    m = offset_run["mv"].manifest.metrics
    conf = m["confounds"]
    assert conf["channels"] == ["x_pos"], conf
    assert {f["feature"] for f in conf["features"]} >= {"x_pos:mean", "x_pos:q50"}
    assert all(f["direction"] == "higher" and f["gap_sd"] >= 3 for f in conf["features"])
    # the metric with the confounded channel removed is reported beside the full one
    assert m["auroc"] >= 0.9 and m["auroc_without_confounds"] is not None
    assert m["auroc_without_confounds"] < 0.8, m["auroc_without_confounds"]
    assert any(w.startswith("possible confound: x_pos:") for w in m["warnings"])
    html = (offset_run["mv"].path / "report" / "index.html").read_text()
    assert "Confound check" in html and "x_pos:mean" in html and "possible confound" in html
    # stations and recipe alternate in pairs, not with the label: no attribute fires
    assert conf["attributes"] == [], conf["attributes"]


def test_small_sample_warning_and_group_bootstrap(offset_run: dict[str, Any]) -> None:
    m = offset_run["mv"].manifest.metrics
    assert m["groups"] == 20 and m["group_by"] == "session" and m["target"] == "session"
    assert any(w.startswith("small sample: 20 groups (< 30)") for w in m["warnings"]), m["warnings"]
    lo, hi = m["accuracy_ci95"]
    assert 0 <= lo <= m["accuracy"] <= hi <= 1
    assert m["bootstrap"]["resamples"] == 200 and m["bootstrap"]["unit"] == "20 groups"
    assert m["question"] == "tool_condition"


def test_out_of_fold_file_has_one_row_per_session(offset_run: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    mv = offset_run["mv"]
    assert "oof.parquet" in mv.manifest.files
    t = pq.read_table(mv.path / "oof.parquet").to_pylist()
    assert len(t) == 20 and len({r["session_id"] for r in t}) == 20
    assert len({r["fold"] for r in t}) == 20  # each session scored by the model fitted without it
    assert all(r["y"] == (r["label"] == "worn") and 0 <= r["p_ng"] <= 1 for r in t)
    html = (mv.path / "report" / "index.html").read_text()
    assert "Out-of-fold predictions per session" in html and "run-07" in html


def test_no_confound_without_the_offset_and_label_recipe_correlation_fires(
    adata: Any, tmp_path: Path
) -> None:
    """Without the planted offset no feature fires; the label equal to a recipe bin does. The model,
    on noise, is below its baseline: not published without --force, and the run's figures are kept."""
    from jangin.training import train_process

    ds = adata.make_runs_dataset(tmp_path / "ds", offset=0.0, recipe_is_label=True, seed=3)
    with pytest.raises(TrainingError, match="not published") as err:
        train_process(ds, _cfg(name="noise"), registry=ModelRegistry(ds.models_dir), work_dir=tmp_path / "w")
    assert "--force" in (err.value.hint or "")
    assert ModelRegistry(ds.models_dir).list() == []
    (metrics_file,) = (tmp_path / "w").glob("noise-*/metrics.json")
    m = json.loads(metrics_file.read_text())
    assert m["confounds"]["features"] == [] and m["confounds"]["channels"] == []
    assert not any(w.startswith("possible confound") for w in m["warnings"])
    (fired,) = m["confounds"]["attributes"]
    assert fired["attribute"] == "param:feed_rate_mm_min" and fired["cramers_v"] == 1.0
    assert any("param:feed_rate_mm_min" in w for w in m["warnings"])
    # --force publishes, and says so
    mv = train_process(
        ds, _cfg(name="noise", force=True), registry=ModelRegistry(ds.models_dir), work_dir=tmp_path / "w"
    )
    assert any(w.startswith("published with --force") for w in mv.manifest.metrics["warnings"])


def test_unknown_channel_is_refused_naming_the_known_ones(adata: Any, tmp_path: Path) -> None:
    from jangin.training import train_process

    ds = adata.make_runs_dataset(tmp_path / "ds", n_runs=4)
    with pytest.raises(TrainingError, match="unknown channel") as err:
        train_process(
            ds,
            _cfg(channels=("x_pos", "z_pos")),
            registry=ModelRegistry(ds.models_dir),
            work_dir=tmp_path / "w",
        )
    assert (
        "z_pos" in err.value.message
        and "known: coolant_flow, feed_act, spindle_load, x_pos" in err.value.message
    )
    assert ModelRegistry(ds.models_dir).list() == []


def test_mixed_questions_are_refused_and_per_step_windows(adata: Any, tmp_path: Path) -> None:
    from jangin.training import train_process
    from jangin.training._process_data import load_labelled_windows

    ds = adata.make_runs_dataset(tmp_path / "ds", n_runs=4, extra_question="outcome", steps=True)
    with pytest.raises(TrainingError, match="answer 2 questions") as err:
        train_process(ds, _cfg(), registry=ModelRegistry(ds.models_dir), work_dir=tmp_path / "w")
    assert "outcome (4 labels)" in err.value.message and "tool_condition (4 labels)" in err.value.message
    assert "--question" in (err.value.hint or "")
    snap = ds.snapshot().to_dict()
    w, _, target = load_labelled_windows(ds, snapshot=snap, question="tool_condition")
    assert target == "session" and len(w) == 4 and {x["question"] for x in w} == {"tool_condition"}
    w, _, _ = load_labelled_windows(ds, snapshot=snap, question="tool_condition", per_step=True)
    # a step seen twice is two windows (rough #1, rough #2), never merged
    assert [(x["step"], x["occurrence"]) for x in w[:3]] == [("rough", 1), ("finish", 1), ("rough", 2)]
    assert len(w) == 12 and all(
        len(x["samples"]["x_pos"][1]) == 10 * (x["ts_end"] - x["ts_start"]) // 10**6 for x in w
    )


def test_group_by_must_be_a_session_attribute(adata: Any, tmp_path: Path) -> None:
    from jangin.training import train_process

    ds = adata.make_runs_dataset(tmp_path / "ds", n_runs=4)
    with pytest.raises(TrainingError, match="--group-by operator") as err:
        train_process(
            ds, _cfg(group_by="operator"), registry=ModelRegistry(ds.models_dir), work_dir=tmp_path / "w"
        )
    assert "station" in err.value.message and "param:feed_rate_mm_min" in err.value.message


# -- the statistics on arrays -------------------------------------------------------------------------


def test_inside_fold_baseline_differs_from_the_hindsight_one() -> None:
    """200 noise candidates, 10 groups of 4 windows: the best candidate on all data looks good by chance
    (hindsight); chosen inside each fold, it does not carry over to the held-out group."""
    from jangin.training._confound import hindsight_baseline, inside_fold_baseline

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(10), 4)
    y = np.tile([False, True], 20)
    S = rng.normal(size=(40, 200))
    names = [f"ch{k}" for k in range(200)]
    hind = hindsight_baseline(S, y, names)
    inside = inside_fold_baseline(S, y, groups, names)
    assert hind["auroc"] >= 0.7, hind["auroc"]
    assert inside["auroc"] < hind["auroc"] - 0.2, (inside["auroc"], hind["auroc"])
    assert inside["accuracy"] <= 0.6 and len(inside["chosen"]) == 10
    assert len(set(inside["chosen"].values())) > 1
    # a real signal in one channel is found inside every fold
    S[:, 7] += 3 * y
    inside = inside_fold_baseline(S, y, groups, names)
    assert set(inside["chosen"].values()) == {"ch7"} and inside["auroc"] >= 0.95


def test_feature_confounds_need_near_perfect_separation_and_a_large_gap() -> None:
    from jangin.training._confound import feature_confounds

    rng = np.random.default_rng(1)
    y = np.tile([False, True], 15)
    offset = 100 + rng.normal(0, 0.02, 30) + 0.2 * y  # gap 10 within-class SD
    real = rng.normal(0, 1, 30) + 1.5 * y  # a real but imperfect effect
    noise = rng.normal(0, 1, 30)
    X = np.stack([offset, real, noise], 1)
    fired = feature_confounds(X, ["x_pos:mean", "load:mean", "flow:mean"], y)
    assert [f["feature"] for f in fired] == ["x_pos:mean"] and fired[0]["gap_sd"] > 5
    assert feature_confounds(X[:, 1:], ["load:mean", "flow:mean"], y) == []
    # with 4 windows in a class, some feature separates them by chance: not judged
    few = np.flatnonzero(~y)[:4].tolist() + np.flatnonzero(y).tolist()
    assert feature_confounds(X[few], ["x_pos:mean", "load:mean", "flow:mean"], y[few]) == []


def test_attribute_confounds_and_cramers_v() -> None:
    from jangin.training._confound import attribute_confounds, cramers_v

    assert cramers_v(["a", "a", "b", "b"], [0, 0, 1, 1]) == 1.0
    assert cramers_v(["a", "b", "a", "b"], [0, 0, 1, 1]) == 0.0
    groups = [f"s{i}" for i in range(12)]
    y = np.array([i % 2 == 1 for i in range(12)])
    attrs = {
        "param:feed": ["800" if v else "600" for v in y],  # the label's recipe bin
        "station": [f"st-{(i // 2) % 2}" for i in range(12)],  # alternates in pairs
        "technician": [f"t{i}" for i in range(12)],  # an id: cannot be judged by V
    }
    fired, figures = attribute_confounds(attrs, y, groups)
    assert [f["attribute"] for f in fired] == ["param:feed"]
    assert figures["param:feed"]["auroc"] == 1.0 and "cramers_v" not in figures["technician"]


def test_bootstrap_resamples_groups() -> None:
    from jangin.training._confound import bootstrap_ci

    y = np.tile([False, True], 10)
    score = y + np.random.default_rng(2).normal(0, 0.8, 20)
    ci = bootstrap_ci(y, score, score >= 0.5, np.repeat(np.arange(10), 2), n=300)
    lo, hi = ci["auroc_ci"]
    assert 0 <= lo < hi <= 1 and ci["unit"] == "10 groups"
    # one group only: every resample is that group, the interval collapses
    one = bootstrap_ci(y, score, score >= 0.5, ["g"] * 20, n=50)
    assert one["auroc_ci"][0] == one["auroc_ci"][1]


def test_train_process_command_prints_warnings_intervals_and_baselines(adata: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jangin.training.cli import train_app

    ds = adata.make_runs_dataset(tmp_path / "ds", n_runs=10, extra_question="outcome")
    args = ["process", "--dataset", str(ds.root), "--work-dir", str(tmp_path / "w"), "--name", "wear"]
    r = CliRunner().invoke(train_app, args)
    assert r.exit_code != 0 and isinstance(r.exception, TrainingError), r.output
    assert "2 questions" in r.exception.message
    r = CliRunner().invoke(
        train_app,
        [*args, "--question", "tool_condition", "--ok-name", "unworn", "--target", "session", "--force"],
    )
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "warning: small sample: 10 groups (< 30)" in out
    assert "possible confound: x_pos:" in out and "without confounded channels" in out
    assert (
        "95 % CI [" in out
        and "single-channel threshold chosen inside each fold" in out
        and "oof.parquet" in out
    )
    mv = ModelRegistry(ds.models_dir).get("wear")
    assert mv.manifest.train_config["question"] == "tool_condition" and mv.manifest.train_config["force"]
