"""Tests for the plasma-etch sample generator (sample_data/generate_etch.py) and its committed files.

Three groups: the committed files (determinism through ``--check``, shape of the run files and the run
table), the in-memory ``generate_run`` used by the held-out skill benchmark (planted deviations land
where asked), and the physics the README promises (reflected power, endpoint, lags, throttle valve).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jangin.core.process_definition import load_process_definition

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "sample_data"
ETCH = DATA / "etch"


def _load_generator():
    spec = importlib.util.spec_from_file_location("jangin_sample_generate_etch", DATA / "generate_etch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


def _runs() -> list[dict[str, str]]:
    with open(ETCH / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _read_run(rel: str) -> tuple[list[str], list[list[str]]]:
    with gzip.open(ETCH / rel, "rt", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _phases(steps: list[str]) -> list[str]:
    """The sequence of phases (consecutive equal values collapsed)."""
    return [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s]


# -- committed files ---------------------------------------------------------------------------------
def test_check_mode_matches_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--check", "--out", str(ETCH)]) == 0
    assert "check OK" in capsys.readouterr().out


def test_check_mode_catches_a_changed_and_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "etch"
    shutil.copytree(ETCH, copy)
    text = gzip.decompress((copy / "etch-03.csv.gz").read_bytes()).decode()
    (copy / "etch-03.csv.gz").write_bytes(gzip.compress(text.replace("main_etch", "main-etch", 1).encode()))
    (copy / "etch-99.csv.gz").write_bytes(b"")
    assert gen.check(copy) == 1
    out = capsys.readouterr().out
    assert "etch-03.csv.gz: content differs" in out and "etch-99.csv.gz: not produced" in out


def test_two_generations_are_byte_identical(tmp_path: Path) -> None:
    a, b = gen.generate(tmp_path / "a"), gen.generate(tmp_path / "b")
    assert a["files"] == b["files"]
    for rel in a["files"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_run_files_have_30_plus_channels_a_repeated_phase_and_no_time_column() -> None:
    runs = _runs()
    assert 8 <= len(runs) <= 12
    for r in runs:
        header, rows = _read_run(r["file"])
        assert header[-1] == "recipe_step"
        channels = header[:-1]
        assert len(channels) >= 30, r["file"]
        assert not {"time", "timestamp", "ts", "t"} & {h.lower() for h in header}
        values = np.array([[float(x) for x in row[:-1]] for row in rows])
        assert np.isfinite(values).all() and values.shape == (len(rows), len(channels))
        assert all(len(x.split(".")[-1]) <= 3 for x in rows[len(rows) // 2][:-1] if "." in x)
        phases = _phases([row[-1] for row in rows])
        assert phases.count("main_etch") == 2, (r["file"], phases)
        assert phases[phases.index("main_etch") + 1] == "purge"
        assert phases[0] == "stabilize" and phases[-1] == "pump_out"
        assert len(rows) == pytest.approx(100 * float(r["rate_hz"]), rel=0.15)  # about 100 s at 10 Hz


def test_run_table_names_only_existing_files_and_carries_recipes_and_labels() -> None:
    runs = _runs()
    files = sorted(p.name for p in ETCH.glob("*.csv.gz"))
    assert sorted(r["file"] for r in runs) == files
    for r in runs:
        assert (ETCH / r["file"]).is_file()
        assert r["skill_level"] in ("expert", "novice") and r["rate_hz"] == "10"
        assert r["started_at"].endswith("Z") and r["station"].startswith("etch-pm")
        assert r["label.outcome"] in ("good", "marginal", "scrap")
        assert r["label.etch_depth_ok"] in ("yes", "no")
        assert float(r["rf_power_setpoint_W"]) > 0 and float(r["pressure_setpoint_mTorr"]) > 0
    assert {r["skill_level"] for r in runs} == {"expert", "novice"}
    assert len({r["recipe"] for r in runs}) >= 2
    for recipe in {r["recipe"] for r in runs}:  # a profile per recipe needs at least two experts each
        assert sum(r["recipe"] == recipe and r["skill_level"] == "expert" for r in runs) >= 2
    # experts' runs come out good; every novice run has something wrong with it
    assert all(r["label.outcome"] == "good" for r in runs if r["skill_level"] == "expert")
    assert all(r["label.outcome"] != "good" for r in runs if r["skill_level"] == "novice")
    assert "scrap" in {r["label.outcome"] for r in runs}


def test_truth_records_steps_adjustments_and_planted_deviations() -> None:
    truth = json.loads((ETCH / "truth.json").read_text())
    runs = {Path(r["file"]).name.split(".")[0]: r for r in _runs()}
    assert set(truth["runs"]) == set(runs)
    for key, t in truth["runs"].items():
        _, rows = _read_run(t["file"])
        steps = [row[-1] for row in rows]
        assert t["samples"] == len(rows)
        for iv in t["steps"]:  # the intervals are where the recipe_step column says
            k0, k1 = round(iv["start_s"] * 10), round(iv["end_s"] * 10)
            assert set(steps[k0:k1]) == {iv["step"]}, (key, iv)
        if t["skill_level"] == "expert":
            assert {a["channel"] for a in t["adjustments"]} == {
                "rf_forward_setpoint_W",
                "pressure_setpoint_mTorr",
            }
            assert t["deviations"] == []
        else:
            assert t["deviations"], key
            assert all(d["step"] in gen.STEP_NAMES for d in t["deviations"])


def test_process_definitions_load_and_name_every_etch_channel() -> None:
    etch = load_process_definition(DATA / "processes" / "plasma_etch.yaml")
    header, _ = _read_run(_runs()[0]["file"])
    assert [c.name for c in etch.channels] == header[:-1]
    assert etch.steps.source == "phase_column" and etch.steps.column == "recipe_step"
    assert {lbl.question for lbl in etch.labels} == {"outcome", "etch_depth_ok"}
    assert {p.name for p in etch.parameters} <= set(_runs()[0])
    for c in etch.channels:  # an actual value with a set point is scored once, through the set point
        if c.name in gen.SETPOINT_OF and c.name != "electrode_temp_C":
            assert c.duplicate_of == gen.SETPOINT_OF[c.name], c.name
        if c.role == "operator":
            assert c.higher and c.lower, c.name
    weld = load_process_definition(DATA / "processes" / "welding_tig.yaml")
    session = (DATA / "sessions" / "weld-01" / "session.yaml").read_text()
    assert f"process: {weld.name}\n" in session
    names = {c.name for c in weld.channels}
    for ch in ("arc_current_A", "arc_voltage_V", "wire_feed_m_min", "travel_speed_mm_s", "torch_angle_deg"):
        assert ch in names and f"channel: {ch}" in session
    assert weld.channel("torch_angle_deg").quantity == "interval"
    assert weld.channel("plate_temp_C").role == "machine"
    assert weld.steps.template and weld.steps.template["activity_channel"] == "arc_current_A"


# -- generate_run: in memory, with planted deviations ------------------------------------------------
def _mean(ch: dict[str, np.ndarray], steps: list[str], name: str, step: str, occ: int = 1) -> float:
    idx = [i for i, s in enumerate(steps) if s == step and (i == 0 or steps[i - 1] != s or True)]
    runs = np.split(np.array(idx), np.flatnonzero(np.diff(idx) > 1) + 1)
    sel = runs[occ - 1][20:]  # without the first 2 s (ignition, settling)
    return float(np.mean(ch[name][sel]))


def test_generate_run_is_deterministic_and_shaped_like_the_files() -> None:
    a_ch, a_steps, a_p = gen.generate_run(501, "expert", "oxide_via", [])
    b_ch, b_steps, _ = gen.generate_run(501, "expert", "oxide_via", [])
    c_ch, _, _ = gen.generate_run(502, "expert", "oxide_via", [])
    assert a_steps == b_steps and all(np.array_equal(a_ch[k], b_ch[k]) for k in a_ch)
    assert not np.array_equal(a_ch["rf_reflected_W"][:500], c_ch["rf_reflected_W"][:500])
    assert list(a_ch) == list(gen.CHANNELS) and len(a_ch) >= 30
    assert all(len(v) == len(a_steps) for v in a_ch.values())
    assert a_p["recipe"] == "oxide_via" and a_p["rf_power_setpoint_W"] == 800.0
    assert a_p["outcome"]["label.outcome"] == "good"


def test_planted_offsets_move_the_set_point_and_the_chamber_follows() -> None:
    base_ch, base_steps, _ = gen.generate_run(77, "expert", "oxide_via", [])
    devs = [
        {
            "channel": "rf_forward_W",
            "step": "main_etch",
            "occurrence": 2,
            "kind": "offset_rel",
            "amount": 0.12,
        },
        {
            "channel": "rf_forward_setpoint_W",
            "step": "main_etch",
            "occurrence": 2,
            "kind": "offset_rel",
            "amount": 0.12,
        },
        {"channel": "electrode_temp_C", "step": "over_etch", "kind": "offset_abs", "amount": 8.0},
        {
            "channel": "cf4_flow_sccm",
            "step": "main_etch",
            "occurrence": 1,
            "kind": "offset_rel",
            "amount": -0.25,
        },
    ]
    ch, steps, _ = gen.generate_run(77, "expert", "oxide_via", devs)
    # planted once even though the actual and its set point were both named
    rel = _mean(ch, steps, "rf_forward_W", "main_etch", 2) / _mean(
        base_ch, base_steps, "rf_forward_W", "main_etch", 2
    )
    assert rel == pytest.approx(1.12, abs=0.01)
    assert _mean(ch, steps, "rf_forward_setpoint_W", "main_etch", 2) == pytest.approx(800 * 1.12)
    assert _mean(ch, steps, "cf4_flow_sccm", "main_etch", 1) == pytest.approx(30.0, rel=0.02)
    assert _mean(ch, steps, "cf4_flow_sccm", "main_etch", 2) == pytest.approx(40.0, rel=0.02)
    assert _mean(ch, steps, "electrode_temp_setpoint_C", "over_etch") == pytest.approx(28.0)
    # the electrode follows its set point with a thermal lag: most of the way by the step's end
    k_end = max(i for i, s in enumerate(steps) if s == "over_etch")
    base_end = max(i for i, s in enumerate(base_steps) if s == "over_etch")
    assert ch["electrode_temp_C"][k_end] - base_ch["electrode_temp_C"][base_end] > 5.0


def test_planted_duration_stretches_the_step() -> None:
    _, base, _ = gen.generate_run(78, "expert", "nitride_spacer", [])
    _, longer, _ = gen.generate_run(
        78,
        "expert",
        "nitride_spacer",
        [{"channel": None, "step": "main_etch", "kind": "duration_rel", "amount": 0.5}],
    )
    b = [len(list(g)) for g in _groups(base) if g[0] == "main_etch"]
    s = [len(list(g)) for g in _groups(longer) if g[0] == "main_etch"]
    assert len(b) == len(s) == 2
    assert s[0] == pytest.approx(1.5 * b[0], abs=1) and s[1] == pytest.approx(1.5 * b[1], abs=2)


def _groups(steps: list[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for s in steps:
        if out and out[-1][0] == s:
            out[-1].append(s)
        else:
            out.append([s])
    return out


@pytest.mark.parametrize(
    ("dev", "match"),
    [
        (
            {"channel": "no_such_channel", "step": "main_etch", "kind": "offset_rel", "amount": 0.1},
            "unknown channel",
        ),
        (
            {"channel": "rf_forward_W", "step": "etch", "kind": "offset_rel", "amount": 0.1},
            "step must be one of",
        ),
        ({"channel": "rf_forward_W", "step": "main_etch", "kind": "scale", "amount": 0.1}, "kind must be"),
    ],
)
def test_bad_deviations_are_refused(dev: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gen.generate_run(1, "expert", "oxide_via", [dev])


def test_bad_recipe_or_skill_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown recipe"):
        gen.generate_run(1, "expert", "metal_etch", [])
    with pytest.raises(ValueError, match="skill_level"):
        gen.generate_run(1, "master", "oxide_via", [])


# -- physics -----------------------------------------------------------------------------------------
def test_expert_nudges_rf_power_after_reflected_power_rises_novice_does_not() -> None:
    ex, _, ex_p = gen.generate_run(90, "expert", "oxide_via", [])
    no, _, no_p = gen.generate_run(90, "novice", "oxide_via", [], profile="no_rf_nudge")
    dist = ex_p["outcome"]["disturbance"]["t_s"]
    k = int(dist * 10)
    refl = ex["rf_reflected_W"]
    assert np.median(refl[k - 50 : k]) < 10 and np.median(refl[k + 50 : k + 80]) > 30  # match at its limit
    nudge = ex_p["adjustments"][0]
    assert nudge["channel"] == "rf_forward_setpoint_W" and nudge["t_s"] > dist
    k_n = int(nudge["t_s"] * 10)
    assert ex["rf_forward_setpoint_W"][k_n + 5] > 800 and no["rf_forward_setpoint_W"][k_n + 5] == 800
    # the nudge restores the delivered power (forward minus reflected)
    deliv_ex = ex["rf_forward_W"][k_n + 20 : k_n + 40] - refl[k_n + 20 : k_n + 40]
    deliv_no = no["rf_forward_W"][k_n + 20 : k_n + 40] - no["rf_reflected_W"][k_n + 20 : k_n + 40]
    assert abs(np.mean(deliv_ex) / 800 - 1) < 0.02 < abs(np.mean(deliv_no) / 800 - 1)
    assert not [a for a in no_p["adjustments"] if a["channel"] == "rf_forward_setpoint_W"]


def test_endpoint_signal_drops_when_the_film_clears_and_late_calls_etch_longer() -> None:
    ex, steps, p = gen.generate_run(91, "expert", "oxide_via", [])
    _, late_steps, lp = gen.generate_run(91, "novice", "oxide_via", [], profile="late_endpoint")
    clear = p["outcome"]["film_cleared_s"]
    k = int(clear * 10)
    ep = ex["endpoint_signal"]
    assert np.mean(ep[k - 80 : k - 30]) > 0.9 and np.mean(ep[k + 20 : k + 40]) < 0.3
    assert ex["oes_co_483nm"][k + 30] < 0.3 * ex["oes_co_483nm"][k - 50]
    assert steps[k + 20] == "over_etch"  # the expert called the endpoint within a second or two
    assert late_steps[k + 20] == "main_etch"
    assert lp["outcome"]["over_etch_pct"] > p["outcome"]["over_etch_pct"] + 8


def test_flows_lag_their_set_points_and_the_throttle_valve_answers_the_pressure_set_point() -> None:
    ch, _, p = gen.generate_run(92, "expert", "oxide_via", [])
    purge = next(iv for iv in p["intervals"] if iv["step"] == "purge")
    k = int(purge["start_s"] * 10)
    sp, act = ch["ar_flow_setpoint_sccm"], ch["ar_flow_sccm"]
    assert sp[k] == 200 and sp[k - 1] == 100
    assert 100 < act[k + 2] < 190 and act[k + 30] == pytest.approx(200, rel=0.03)  # lags, then settles
    # purge: pressure set point up 45 -> 80 mTorr; the valve closes to raise it, opens again after
    tv = ch["throttle_valve_pct"]
    assert np.mean(tv[k + 40 : k + 70]) < np.mean(tv[k - 40 : k - 10]) - 3
    assert ch["chamber_pressure_mTorr"][k + 60] == pytest.approx(80, rel=0.05)
    # over etch: the expert trims the pressure; the reflected power blips while the match follows
    trim = next(a for a in p["adjustments"] if a["channel"] == "pressure_setpoint_mTorr")
    kt = int(trim["t_s"] * 10)
    assert ch["pressure_setpoint_mTorr"][kt + 1] == pytest.approx(45 * 0.9, rel=0.02)
    assert ch["chamber_pressure_mTorr"][kt + 40] < 43
