"""build_detection_set: grouping, determinism, the content-addressed cache, snapshot pinning, layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jangin.core import DatasetError, TrainingError
from jangin.training import build_detection_set


@pytest.fixture
def ds(tmp_path: Path, synth: Any) -> Any:
    return synth.make_detection_dataset(tmp_path / "ds", n_sessions=5, frames_per_session=3)


def _session(fid: str) -> str:
    return fid.rsplit("-f", 1)[0]


def test_no_group_on_two_sides_and_every_split_filled(ds: Any, tmp_path: Path) -> None:
    data = build_detection_set(ds, cache_dir=tmp_path / "cache")
    sessions = {s: {_session(f) for f in data.splits[s]} for s in ("train", "val", "test")}
    assert all(sessions.values()), sessions
    assert not (
        sessions["train"] & sessions["val"]
        or sessions["train"] & sessions["test"]
        or sessions["val"] & sessions["test"]
    )
    assert sum(len(v) for v in data.splits.values()) == 15
    for split in ("train", "val", "test"):
        assert data.counts[split]["_frames"] == len(data.splits[split]) == len(data.images(split))


def test_split_is_deterministic_given_the_seed(ds: Any, tmp_path: Path) -> None:
    a = build_detection_set(ds, cache_dir=tmp_path / "a")
    b = build_detection_set(ds, cache_dir=tmp_path / "b")
    assert a.splits == b.splits
    others = [build_detection_set(ds, seed=s, cache_dir=tmp_path / f"s{s}").splits for s in range(1, 6)]
    assert any(o != a.splits for o in others), "the seed changes nothing"


def test_cache_hit_returns_the_same_directory_without_writing(ds: Any, tmp_path: Path) -> None:
    first = build_detection_set(ds, cache_dir=tmp_path / "cache")
    stamps = {p: p.stat().st_mtime_ns for p in first.path.rglob("*")}
    second = build_detection_set(ds, cache_dir=tmp_path / "cache")
    assert second.path == first.path
    assert {p: p.stat().st_mtime_ns for p in second.path.rglob("*")} == stamps
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.path.name]  # no staging left behind
    assert second == first


def test_snapshot_pins_the_data(ds: Any, tmp_path: Path) -> None:
    snap = ds.snapshot()
    before = build_detection_set(ds, cache_dir=tmp_path / "cache")
    frame = before.splits["train"][0]
    ds.append(
        "labels",
        [
            {
                "label_id": "late-1",
                "target": "frame",
                "frame_id": frame,
                "session_id": _session(frame),
                "kind": "box",
                "name": "blue",
                "bbox_xyxy_norm": [0.1, 0.1, 0.2, 0.2],
                "source": "labeller",
                "created_at": "2026-11-03T00:00:00+00:00",
            }
        ],
    )
    pinned = build_detection_set(ds, cache_dir=tmp_path / "cache", snapshot=snap)
    assert pinned.path == before.path and pinned.classes == ("green", "red")
    latest = build_detection_set(ds, cache_dir=tmp_path / "cache")
    assert latest.path != before.path
    assert latest.classes == ("blue", "green", "red") and latest.counts["train"]["blue"] == 1


def test_yolo_layout_fixed_class_order_and_normalised_boxes(ds: Any, tmp_path: Path) -> None:
    data = build_detection_set(ds, classes=["red", "green"], cache_dir=tmp_path / "cache")
    assert data.classes == ("red", "green")
    yaml_text = data.yaml_path.read_text()
    assert '0: "red"' in yaml_text and '1: "green"' in yaml_text and "test: images/test" in yaml_text
    fid = data.splits["val"][0]
    boxes = {
        r["name"]: r["bbox_xyxy_norm"]
        for r in ds.query(f"SELECT name, bbox_xyxy_norm FROM labels WHERE frame_id = '{fid}'").to_pylist()
    }
    rows = np.loadtxt(data.path / "labels" / "val" / f"{fid}.txt", ndmin=2)
    for cls, cx, cy, w, h in rows:
        x1, y1, x2, y2 = boxes[data.classes[int(cls)]]
        assert (cx, cy, w, h) == pytest.approx(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), abs=1e-6)
    assert (data.path / "images" / "val" / f"{fid}.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_classes_argument_drops_other_boxes(ds: Any, tmp_path: Path) -> None:
    data = build_detection_set(ds, classes=["red"], cache_dir=tmp_path / "cache")
    assert all(set(np.loadtxt(p, ndmin=2)[:, 0]) == {0.0} for p in (data.path / "labels").rglob("*.txt"))
    assert sum(data.counts[s]["red"] for s in ("train", "val", "test")) == 15


def test_where_selects_frames_and_too_few_groups_is_an_error(ds: Any, tmp_path: Path) -> None:
    # sessions 0, 2, 4 are at st-00: three groups fill three splits
    data = build_detection_set(ds, where="f.station = 'st-00'", cache_dir=tmp_path / "cache")
    assert {_session(f) for s in data.splits.values() for f in s} == {"sess-00", "sess-02", "sess-04"}
    with pytest.raises(TrainingError, match="2 group"):
        build_detection_set(
            ds, where="f.station = 'st-00' AND f.session_id <> 'sess-04'", cache_dir=tmp_path / "c2"
        )
    two = build_detection_set(
        ds, where="f.station = 'st-01'", fractions=(0.5, 0.5, 0.0), cache_dir=tmp_path / "c3"
    )
    assert len(two.splits["test"]) == 0 and two.splits["train"] and two.splits["val"]


def test_group_by_frame_id_splits_still_images(ds: Any, tmp_path: Path) -> None:
    data = build_detection_set(ds, group_by="frame_id", cache_dir=tmp_path / "cache")
    sizes = [len(data.splits[s]) for s in ("train", "val", "test")]
    assert sum(sizes) == 15 and min(sizes) >= 2 and sizes[0] >= 9


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"fractions": (0.5, 0.5, 0.5)}, ValueError),
        ({"fractions": (0.0, 0.5, 0.5)}, ValueError),
        ({"group_by": "session_id; DROP TABLE x"}, ValueError),
        ({"where": "f.no_such_column = 1"}, DatasetError),
        ({"classes": ["nothing-like-this"]}, TrainingError),
    ],
)
def test_bad_arguments(ds: Any, tmp_path: Path, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        build_detection_set(ds, cache_dir=tmp_path / "cache", **kwargs)


def test_few_boxes_draw_a_warning(ds: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build_detection_set(ds, where="f.frame_id < 'sess-03'", cache_dir=tmp_path / "cache")
    assert "only 9 box" in caplog.text
