"""Verdict rules, Western Electric rules and control charts, image checks, the micro-batcher."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jangin.core import ConfigError, Detections, InferenceError
from jangin.inference._anomaly import normalise
from jangin.inference._batcher import MicroBatcher, Overloaded
from jangin.inference._images import ImageTooLarge, UnsupportedMedia, decode_checked, image_size
from jangin.inference._rules import RulesConfig, StationRules, decide_anomaly, decide_detections, load_rules
from jangin.inference._spc import p_chart, render_svg, western_electric, xbar_chart

CLASSES = ("crack", "spatter")


def dets(*items: tuple[str, float, float]) -> Detections:
    """(class, score, side) boxes at the origin; area = side²."""
    return Detections(
        np.array([[0, 0, s, s] for _, _, s in items]).reshape(-1, 4),
        np.array([c for _, c, _ in items]),
        np.array([CLASSES.index(n) for n, _, _ in items]),
        CLASSES,
    )


@pytest.mark.parametrize(
    ("rules", "found", "verdict"),
    [
        ({}, [("crack", 0.9, 0.5)], "NG"),
        ({}, [], "OK"),
        ({"ng_classes": ["crack"]}, [("spatter", 0.9, 0.5)], "OK"),
        ({"min_conf": 0.5}, [("crack", 0.4, 0.5)], "OK"),
        ({"min_conf": 0.5, "doubtful": [0.3, 0.5]}, [("crack", 0.4, 0.5)], "DOUBTFUL"),
        ({"min_conf": 0.5, "doubtful": [0.3, 0.6]}, [("crack", 0.55, 0.5)], "DOUBTFUL"),
        ({"min_conf": 0.5, "min_area": 0.01}, [("crack", 0.9, 0.05)], "OK"),  # 0.0025 < min_area
        ({"min_conf": 0.5, "min_area": 0.01}, [("crack", 0.9, 0.05), ("crack", 0.6, 0.2)], "NG"),
    ],
)
def test_detection_rules(rules: dict, found: list, verdict: str) -> None:
    assert decide_detections(dets(*found), StationRules(**rules))[0] == verdict


def test_anomaly_rules_and_normalisation() -> None:
    assert normalise(0.7, 0.7, 0.2, 1.2) == pytest.approx(0.5)
    assert normalise([0.0, 5.0], 0.7, 0.2, 1.2).tolist() == [0.0, 1.0]
    assert decide_anomaly(0.6, StationRules())[0] == "NG"
    assert decide_anomaly(0.6, StationRules(anomaly_threshold=0.7))[0] == "OK"
    assert decide_anomaly(0.52, StationRules(anomaly_doubtful=(0.45, 0.55)))[0] == "DOUBTFUL"


def test_rules_file_per_station(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text("default: {ng_classes: [crack], min_conf: 0.4}\nstations:\n  st-2: {min_conf: 0.8}\n")
    cfg = load_rules(p)
    assert cfg.for_station("st-2").min_conf == 0.8 and cfg.for_station("st-2").ng_classes == ["crack"]
    assert cfg.for_station("other") == cfg.default and RulesConfig().for_station(None).min_conf == 0.25
    p.write_text("default: {min_conf: 2}\n")
    with pytest.raises(ConfigError, match="min_conf"):
        load_rules(p)
    p.write_text("stations: {a: {doubtful: [0.6, 0.2]}}\n")
    with pytest.raises(ConfigError, match="doubtful"):
        load_rules(p)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 0.5, -0.5, 3.5], [(3, 1)]),
        ([0, 2.5, 0.1, 2.5], [(3, 2)]),
        ([0, 2.5, -2.5, 0.1, 2.5], []),  # opposite sides, or too far apart
        ([1.5, 1.5, 0, 1.5, 1.5], [(4, 3)]),
        ([0.2] * 7, []),
        ([0.2] * 8, [(7, 4)]),
        ([0.2] * 7 + [-0.2], []),
        ([-3.2] + [0.0] * 5, [(0, 1)]),
    ],
)
def test_western_electric_rules(values: list[float], expected: list[tuple[int, int]]) -> None:
    assert western_electric(values, 0.0, 1.0) == expected


def test_p_chart_limits_and_drift() -> None:
    ng = [2, 1, 2, 3, 2, 9]
    n = [100] * 6
    ch = p_chart(ng, n)
    pbar = sum(ng) / 600
    assert ch.center == pytest.approx(pbar)
    assert ch.ucl[0] == pytest.approx(pbar + 3 * np.sqrt(pbar * (1 - pbar) / 100))
    assert ch.lcl[0] == 0.0  # clipped
    assert (5, 1) in ch.violations and ch.to_dict()["drift"]
    svg = render_svg(ch, title="NG <rate>")
    assert svg.startswith("<svg") and "NG &lt;rate&gt;" in svg and "drift" in svg
    with pytest.raises(ValueError):
        p_chart([1], [0])


def test_xbar_chart() -> None:
    groups = [[0.1, 0.2, 0.3]] * 5 + [[0.9, 1.0, 0.95]]
    ch = xbar_chart(groups)
    assert ch.values[0] == pytest.approx(0.2) and ch.n == [3] * 6
    assert any(i == 5 for i, _ in ch.violations)
    assert xbar_chart([[0.5]]).violations == []


def test_image_checks() -> None:
    import cv2

    img = np.zeros((30, 50, 3), np.uint8)
    jpg = cv2.imencode(".jpg", img)[1].tobytes()
    png = cv2.imencode(".png", img)[1].tobytes()
    assert image_size(jpg) == image_size(png) == (50, 30)
    assert decode_checked(jpg).shape == (30, 50, 3)
    with pytest.raises(ImageTooLarge):
        decode_checked(png, max_pixels=1000)
    with pytest.raises(UnsupportedMedia):
        decode_checked(b"GIF89a....")
    with pytest.raises(InferenceError, match="truncated"):
        decode_checked(jpg[: len(jpg) // 2])


def test_micro_batcher_batches_and_bounds_its_queue() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        gate.wait(5)
        sizes.append(len(items))
        return [i * 2 for i in items]

    b = MicroBatcher(run, max_batch=4, max_queue=5)
    b.start()
    try:
        first = b.submit(0)
        time.sleep(0.05)  # the worker holds item 0 at the gate
        futs = [b.submit(i) for i in range(1, 6)]
        with pytest.raises(Overloaded):
            b.submit(99)
        gate.set()
        assert [f.result(5) for f in [first, *futs]] == [0, 2, 4, 6, 8, 10]
        assert sizes == [1, 4, 1]
    finally:
        b.stop()
    failing = MicroBatcher(lambda items: 1 / 0, max_batch=2)
    failing.start()
    with pytest.raises(ZeroDivisionError):
        failing.submit(1).result(5)
    failing.stop()


def test_classifier_and_process_rules() -> None:
    from jangin.inference._rules import StationRules, decide_classes, decide_process, ng_classes_of

    classes = ("Good", "scratch", "dent")
    plain = StationRules()
    assert ng_classes_of(classes, {}, plain) == {"scratch", "dent"}  # "good" by name, any case
    assert ng_classes_of(classes, {"ng_classes": ["dent"]}, plain) == {"dent"}
    assert ng_classes_of(classes, {"ok_classes": ["scratch"]}, plain) == {"Good", "dent"}
    assert ng_classes_of(classes, {"ng_classes": ["dent"]}, StationRules(ng_classes=["scratch"])) == {
        "scratch"
    }
    v, s, _ = decide_classes(classes, [0.5, 0.3, 0.2], {"scratch", "dent"}, plain)
    assert (v, round(s, 6)) == ("NG", 0.5)
    band = StationRules(classify_threshold=0.6, classify_doubtful=(0.4, 0.6))
    assert decide_classes(classes, [0.5, 0.3, 0.2], {"scratch", "dent"}, band)[0] == "DOUBTFUL"
    assert decide_classes(classes, [0.9, 0.05, 0.05], {"scratch", "dent"}, band)[0] == "OK"
    assert decide_process(0.55, 0.5, plain)[0] == "NG"
    assert decide_process(0.55, 0.7, plain)[0] == "OK"  # the manifest's threshold
    assert decide_process(0.55, 0.7, StationRules(process_threshold=0.5))[0] == "NG"
    assert decide_process(0.45, 0.5, StationRules(process_doubtful=(0.4, 0.5)))[0] == "DOUBTFUL"
