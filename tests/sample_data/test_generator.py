"""Tests for the deterministic sample-data generator (sample_data/generate.py).

Two groups:
* the generator itself, on a reduced set in temp dirs (determinism, --check);
* physical plausibility of the committed data set in sample_data/.
"""

from __future__ import annotations

import csv
import functools
import gzip
import importlib.util
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "sample_data"
SESSIONS = sorted(p for p in (DATA / "sessions").glob("weld-*") if p.is_dir())


def _load_generator():
    spec = importlib.util.spec_from_file_location("jangin_sample_generate", DATA / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()

REDUCED = dict(seed=7, sessions=2, duration_scale=0.2, n_inspection=8, n_good=4)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    a = tmp_path_factory.mktemp("gen_a")
    b = tmp_path_factory.mktemp("gen_b")
    sa = gen.generate(a, **REDUCED)
    sb = gen.generate(b, **REDUCED)
    return a, b, sa, sb


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        out.append(fr)
    cap.release()
    return out


# --------------------------------------------------------------------------------------
# generator: determinism and --check
# --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_reduced_generation_is_deterministic(two_runs):
    a, b, sa, _sb = two_runs
    files = _files(a)
    assert files == _files(b)
    assert set(sa["files"]) == set(files)
    kinds = {f.rsplit(".", 1)[-1] for f in files}
    assert {"gz", "csv", "yaml", "json", "mp4", "jpg"} <= kinds
    n_sessions = len([f for f in files if f.endswith("session.yaml")])
    assert n_sessions == REDUCED["sessions"]
    assert len([f for f in files if f.startswith("inspection/images/")]) == REDUCED["n_inspection"]
    assert len([f for f in files if f.startswith("inspection/good/")]) == REDUCED["n_good"]
    for f in files:
        pa, pb = a / f, b / f
        if f.endswith((".csv", ".gz", ".yaml", ".json")):
            assert pa.read_bytes() == pb.read_bytes(), f
        elif f.endswith(".jpg"):
            ia, ib = cv2.imread(str(pa)), cv2.imread(str(pb))
            assert ia is not None and ia.shape == ib.shape and np.array_equal(ia, ib), f
        elif f.endswith(".mp4"):
            fa, fb = _frames(pa), _frames(pb)
            assert len(fa) == len(fb) > 10, f
            diff = max(
                float(np.mean(np.abs(x.astype(int) - y.astype(int)))) for x, y in zip(fa, fb, strict=True)
            )
            assert diff < 1.0, f
        else:
            pytest.fail(f"unexpected file type {f}")


@pytest.mark.slow
def test_different_seed_changes_data(tmp_path):
    gen.generate(tmp_path, seed=8, sessions=1, duration_scale=0.2, n_inspection=1, n_good=0)
    ref = tmp_path.parent / (tmp_path.name + "_ref")
    gen.generate(ref, seed=7, sessions=1, duration_scale=0.2, n_inspection=1, n_good=0)
    f = "sessions/weld-01/sensors/power_source.csv.gz"
    assert (tmp_path / f).read_bytes() != (ref / f).read_bytes()
    shutil.rmtree(ref)


@pytest.mark.slow
def test_check_passes_then_detects_tampering(tmp_path, capsys):
    gen.generate(tmp_path, seed=7, sessions=1, duration_scale=0.2, n_inspection=2, n_good=1)
    assert gen.check(tmp_path) == 0
    ev = tmp_path / "sessions/weld-01/events.csv"
    ev.write_text(ev.read_text().replace("OK", "NG:porosity", 1))
    (tmp_path / "inspection/good/stale.jpg").write_bytes(b"x")
    assert gen.check(tmp_path) == 1
    out = capsys.readouterr().out
    assert "events.csv" in out and "stale.jpg" in out


# --------------------------------------------------------------------------------------
# committed data: helpers
# --------------------------------------------------------------------------------------
@functools.cache
def meta(key: str) -> dict:
    return yaml.safe_load((DATA / "sessions" / key / "session.yaml").read_text())


@functools.cache
def truth(key: str) -> dict:
    return json.loads((DATA / "sessions" / key / "truth.json").read_text())


@functools.cache
def events(key: str) -> tuple:
    with open(DATA / "sessions" / key / "events.csv", newline="") as fh:
        return tuple(csv.DictReader(fh))


@functools.cache
def device(key: str, name: str):
    """(reference-clock timestamps, {column: values}, raw timestamp strings) of one device."""
    d = next(x for x in meta(key)["devices"] if x["name"] == name)
    with gzip.open(DATA / "sessions" / key / d["file"], "rt") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    arr = np.array(body, dtype=np.float64)
    ts_raw = [r[0] for r in body[:50]]
    cols = {h: arr[:, i] for i, h in enumerate(header)}
    return arr[:, 0] + d["clock_offset_s"], cols, ts_raw, arr[:, 0]


def sync_ts(key: str) -> float:
    return float(next(e["timestamp"] for e in events(key) if e["kind"] == "sync"))


def window(t, v, t0, t1):
    m = (t >= t0) & (t < t1)
    assert m.sum() > 0, (t0, t1)
    return v[m]


def steps(key: str) -> dict:
    out = {}
    for e in events(key):
        if e["kind"] == "step_start":
            out.setdefault(e["name"], [None, None])[0] = float(e["timestamp"])
        elif e["kind"] == "step_end":
            out.setdefault(e["name"], [None, None])[1] = float(e["timestamp"])
    return out


def by_profile(profile: str) -> list[str]:
    return [p.name for p in SESSIONS if truth(p.name)["profile"] == profile]


def test_committed_set_is_complete_and_small():
    assert len(SESSIONS) == 5
    manifest = json.loads((DATA / "manifest.json").read_text())
    on_disk = [f for f in _files(DATA) if f.startswith(("sessions/", "inspection/"))]
    assert sorted(manifest["files"]) == on_disk
    total = sum((DATA / f).stat().st_size for f in on_disk) + (DATA / "manifest.json").stat().st_size
    assert total <= 10_000_000, total
    for s in SESSIONS:
        assert (s / "video.mp4").stat().st_size < 1_500_000
    skills = sorted(meta(s.name)["skill_level"] for s in SESSIONS)
    assert skills == ["expert"] * 3 + ["novice"] * 2


# --------------------------------------------------------------------------------------
# committed data: session metadata and clocks
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [p.name for p in SESSIONS])
def test_session_metadata_and_offsets(key):
    m = meta(key)
    for field in (
        "session_key",
        "technician",
        "skill_level",
        "site",
        "line",
        "station",
        "process",
        "task",
        "started_at",
        "cameras",
        "devices",
    ):
        assert field in m, field
    assert m["session_key"] == key
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+-[a-z]+", m["technician"])
    offsets = [d["clock_offset_s"] for d in m["devices"]] + [c["clock_offset_s"] for c in m["cameras"]]
    assert len(set(offsets)) == len(offsets)
    assert all(abs(o) >= 0.1 for o in offsets)
    assert {d["name"]: d["clock_offset_s"] for d in m["devices"]}.items() <= truth(key)[
        "clock_offsets_s"
    ].items()
    # the technician's real name lives only in session.yaml
    name = m["technician"]
    for f in (DATA / "sessions" / key).rglob("*"):
        if f.is_file() and f.name != "session.yaml" and f.suffix not in (".mp4",):
            data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
            assert name.encode() not in data, f
            assert name.split()[0].encode() + b" " not in data, f


@pytest.mark.parametrize("key", [p.name for p in SESSIONS])
def test_device_sample_rates(key):
    for d in meta(key)["devices"]:
        _t_ref, cols, ts_raw, t_dev = device(key, d["name"])
        assert all(re.fullmatch(r"\d{10}\.\d{3}", s) for s in ts_raw)
        dt = np.diff(t_dev)
        assert np.all(dt > 0)
        rate = (len(t_dev) - 1) / (t_dev[-1] - t_dev[0])
        for ch in d["channels"]:
            assert ch["column"] in cols
            assert abs(rate - ch["rate_hz"]) / ch["rate_hz"] < 0.01, (d["name"], rate)
        # 20 s or more of data on every device
        assert t_dev[-1] - t_dev[0] > 20


@pytest.mark.parametrize("key", [p.name for p in SESSIONS])
def test_current_steps_up_at_sync_after_applying_offset(key):
    t, cols, _, t_dev = device(key, "power_source")
    cur, volt = cols["arc_current_A"], cols["arc_voltage_V"]
    s = sync_ts(key)
    assert window(t, cur, s - 0.5, s - 0.01).mean() < 5.0
    assert 140 < window(t, cur, s + 0.2, s + 1.0).mean() < 190
    first = t[np.argmax(cur > 60)]
    assert abs(first - s) < 0.005
    # without the offset the step is clearly elsewhere: the offset matters
    first_raw = t_dev[np.argmax(cur > 60)]
    assert abs(first_raw - s) > 0.1
    # open-circuit voltage just before the strike, arc voltage after
    assert window(t, volt, s - 0.2, s - 0.01).mean() > 50
    assert 17 < np.median(window(t, volt, s + 0.5, s + 2.0)) < 25
    # travel starts after the strike, wire feed is at run-in before it
    tt, tc, _, _ = device(key, "travel")
    assert np.all(window(tt, tc["travel_speed_mm_s"], s - 2.0, s) == 0)
    tw, wc, _, _ = device(key, "wire_feeder")
    assert window(tw, wc["wire_feed_m_min"], s + 0.3, s + 1.0).mean() > 6.0
    assert window(tw, wc["wire_feed_m_min"], s - 1.5, s - 0.5).max() < 0.01


@pytest.mark.parametrize("key", [p.name for p in SESSIONS])
def test_video_brightness_jumps_at_sync(key):
    m = meta(key)
    cam = m["cameras"][0]
    frames = _frames(DATA / "sessions" / key / cam["file"])
    assert frames[0].shape == (360, 640, 3)
    means = np.array([f[::4, ::4].mean() for f in frames])
    t0 = truth(key)["sync"]["video_first_frame_ts"]
    t0_from_yaml = truth(key)["started_at"] + cam["clock_offset_s"]
    assert abs(t0 - t0_from_yaml) < 0.002
    jump = int(np.argmax(np.diff(means))) + 1
    expected = int(np.ceil((sync_ts(key) - t0) * 15 - 1e-9))
    assert abs(jump - expected) <= 1
    assert means[jump] - means[jump - 1] > 30
    assert means[:jump].max() < 35
    # the video covers the whole session
    assert abs(len(frames) / 15.0 - (truth(key)["ended_at"] - t0)) < 0.2


# --------------------------------------------------------------------------------------
# committed data: skills and planted deviations
# --------------------------------------------------------------------------------------
def _segment_speed(key, seg):
    st = steps(key)[seg]
    t, c, _, _ = device(key, "travel")
    t0 = st[0] + (1.0 if seg == "segment_1" else 0.0)
    return float(window(t, c["travel_speed_mm_s"], t0, st[1]).mean())


def test_novice_fast_travel_exceeds_expert_band():
    experts = by_profile("expert")
    (novice,) = by_profile("novice_fast_travel")
    lo, hi = truth(experts[0])["expert_bands"]["travel_speed_mm_s"]
    for key in experts:
        for j in range(1, 5):
            assert lo <= _segment_speed(key, f"segment_{j}") <= hi
    dev = next(d for d in truth(novice)["deviations"] if d["kind"] == "travel_speed_high")
    assert dev["step"] == "segment_3" and dev["channel"] == "travel_speed_mm_s"
    t, c, _, _ = device(novice, "travel")
    planted = float(window(t, c["travel_speed_mm_s"], dev["start"] + 0.5, dev["end"]).mean())
    assert planted > hi + 1.5
    assert _segment_speed(novice, "segment_2") < hi + 0.5


def _temp_crossing(key, thr=180.0):
    t, c, _, _ = device(key, "thermocouple")
    temp = c["plate_temp_C"]
    i = int(np.argmax(temp >= thr))
    assert temp[i] >= thr
    return float(t[i])


def test_expert_lowers_current_after_plate_gets_hot():
    for key in by_profile("expert"):
        adj = [e for e in events(key) if e["kind"] == "adjustment"]
        assert len(adj) == 1 and adj[0]["name"] == "arc_current_A" and adj[0]["value"] == "-8%"
        ta = float(adj[0]["timestamp"])
        tc = _temp_crossing(key)
        assert tc < ta < tc + 2.0
        t, c, _, _ = device(key, "power_source")
        cur = c["arc_current_A"]
        before = np.median(window(t, cur, ta - 2.0, ta - 0.1))
        after = np.median(window(t, cur, ta + 0.6, ta + 2.5))
        assert 0.88 < after / before < 0.96, (key, before, after)
        tw, wc, _, _ = device(key, "wire_feeder")
        wb = window(tw, wc["wire_feed_m_min"], ta - 2.0, ta - 0.1).mean()
        wa = window(tw, wc["wire_feed_m_min"], ta + 0.6, ta + 2.5).mean()
        assert 0.9 < wa / wb < 0.94


def test_fast_novice_keeps_current_when_hot():
    (key,) = by_profile("novice_fast_travel")
    assert not [e for e in events(key) if e["kind"] == "adjustment"]
    tc = _temp_crossing(key)
    st = steps(key)
    assert tc + 3.0 < st["segment_4"][1]
    t, c, _, _ = device(key, "power_source")
    cur = c["arc_current_A"]
    before = np.median(window(t, cur, tc - 2.0, tc))
    after = np.median(window(t, cur, tc + 2.0, st["segment_4"][1] - 0.2))
    assert abs(after / before - 1) < 0.03
    assert any(d["kind"] == "missing_current_reduction" for d in truth(key)["deviations"])


def _smoothed_voltage(t, v, t0, t1, win=50):
    seg = window(t, v, t0, t1)
    n = len(seg) // win
    return np.median(seg[: n * win].reshape(n, win), axis=1)


def test_unstable_arc_novice_voltage_swings_and_current_drift():
    (key,) = by_profile("novice_unstable_arc")
    st = steps(key)
    t, c, _, _ = device(key, "power_source")
    v, i = c["arc_voltage_V"], c["arc_current_A"]
    s1 = np.std(_smoothed_voltage(t, v, st["segment_1"][0] + 0.5, st["segment_1"][1]))
    s2 = np.std(_smoothed_voltage(t, v, *st["segment_2"]))
    assert s2 > 3 * s1 and s2 > 1.0
    for expert in by_profile("expert"):
        te, ce, _, _ = device(expert, "power_source")
        se = np.std(_smoothed_voltage(te, ce["arc_voltage_V"], *steps(expert)["segment_2"]))
        assert s2 > 3 * se
    i1 = np.median(window(t, i, st["segment_1"][0] + 0.5, st["segment_1"][1]))
    i2 = _smoothed_voltage(t, i, *st["segment_2"], win=200)  # 0.2 s medians of the current
    assert i2.min() < 0.92 * i1
    ta, ca, _, _ = device(key, "torch_imu")
    a1 = np.std(window(ta, ca["torch_angle_deg"], *st["segment_1"]))
    a2 = np.std(window(ta, ca["torch_angle_deg"], *st["segment_2"]))
    assert a2 > 2 * a1


def test_judgments_match_planted_defects():
    expected = {
        "expert": {},
        "novice_fast_travel": {"segment_3": "NG:undercut"},
        "novice_unstable_arc": {"segment_2": "NG:porosity"},
    }
    for s in SESSIONS:
        key = s.name
        prof = truth(key)["profile"]
        judg = {e["name"]: e for e in events(key) if e["kind"] == "judgment"}
        assert sorted(judg) == [f"segment_{j}" for j in range(1, 5)]
        st = steps(key)
        for name, e in judg.items():
            assert e["author"] == "inspector-1"
            assert e["value"] == expected[prof].get(name, "OK")
            assert (float(e["segment_start"]), float(e["segment_end"])) == tuple(st[name])
            tseg = next(x for x in truth(key)["seam"]["segments"] if x["name"] == name)
            assert tseg["judgment"] == e["value"]
        kinds = {e["kind"] for e in events(key)}
        assert kinds <= {"sync", "step_start", "step_end", "adjustment", "judgment", "note"}
        for e in events(key):
            if e["kind"] != "judgment":
                assert e["segment_start"] == e["segment_end"] == ""
        # event times are ordered
        ts = [float(e["timestamp"]) for e in events(key)]
        assert ts == sorted(ts)
        # steps in truth == step markers
        assert {x["name"]: [x["start"], x["end"]] for x in truth(key)["steps"]} == st


# --------------------------------------------------------------------------------------
# committed data: inspection images
# --------------------------------------------------------------------------------------
def test_inspection_images_and_boxes():
    idir = DATA / "inspection"
    with open(idir / "images.csv", newline="") as fh:
        imgs = list(csv.DictReader(fh))
    with open(idir / "boxes.csv", newline="") as fh:
        boxes = list(csv.DictReader(fh))
    listed = {r["image"] for r in imgs}
    on_disk = {p.relative_to(idir).as_posix() for p in idir.glob("*/*.jpg")}
    assert listed == on_disk
    assert 150 <= sum(f.startswith("images/") for f in listed) <= 200
    assert 60 <= sum(f.startswith("good/") for f in listed) <= 100
    assert {r["station"] for r in imgs} <= {"st-01", "st-02", "st-03"} and len(
        {r["station"] for r in imgs}
    ) >= 2
    for r in imgs[::17]:
        im = cv2.imread(str(idir / r["image"]))
        assert im.shape[1] == int(r["width"]) and im.shape[0] == int(r["height"])
    per_image: dict[str, int] = {}
    counts: dict[str, int] = {}
    for b in boxes:
        assert b["image"].startswith("images/") and b["image"] in listed
        x0, y0, x1, y1 = (int(b[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        assert x1 - x0 >= 16 and y1 - y0 >= 16
        per_image[b["image"]] = per_image.get(b["image"], 0) + 1
        counts[b["class"]] = counts.get(b["class"], 0) + 1
    assert set(counts) == {"porosity", "undercut", "spatter", "crack"}
    assert min(counts.values()) >= 0.6 * max(counts.values())
    defect_images = {f for f in listed if f.startswith("images/")}
    assert set(per_image) == defect_images
    assert all(1 <= n <= 4 for n in per_image.values())


def test_defects_are_visible_in_their_boxes():
    """Each box is darker (pores, grooves, cracks) or has more contrast than its surroundings."""
    idir = DATA / "inspection"
    with open(idir / "boxes.csv", newline="") as fh:
        boxes = list(csv.DictReader(fh))
    ok = 0
    for b in boxes[:80]:
        im = cv2.imread(str(idir / b["image"]), cv2.IMREAD_GRAYSCALE).astype(float)
        x0, y0, x1, y1 = (int(b[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        patch = im[y0:y1, x0:x1]
        if patch.min() < 60 or patch.std() > 25:
            ok += 1
    assert ok >= 0.9 * min(80, len(boxes))
