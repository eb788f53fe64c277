"""The demo's labeling step on the real sample data: the committed export offline, a live server otherwise."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"
EXPORT = SAMPLE / "label-studio" / "export.json"


@pytest.fixture(scope="module")
def sample_ds(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The first four stills and session weld-02, imported as the demo imports them."""
    from jangin.capture import import_session, import_stills
    from jangin.core import Dataset

    ds = Dataset.create(tmp_path_factory.mktemp("demo-labeling") / "ds")
    stills = import_stills(ds, SAMPLE / "inspection", session_key="inspection", limit=4)
    import_session(ds, SAMPLE / "sessions" / "weld-02", frame_interval_s=5.0)
    ds.stills_session_id = stills.session_id  # type: ignore[attr-defined]
    return ds


def test_committed_export_is_a_real_label_studio_export() -> None:
    tasks = json.loads(EXPORT.read_text())
    assert len(tasks) == 5
    for t in tasks:
        assert t["data"]["jangin_key"] and t["annotations"]
        for a in t["annotations"]:
            assert {"id", "updated_at", "completed_by", "lead_time", "result", "unique_id"} <= set(
                a
            )  # server-made


def test_demo_imports_the_committed_export_without_a_server(sample_ds, tmp_path: Path) -> None:
    from jangin.core import get_settings
    from jangin.demo._labeling import demo_labeling

    settings = get_settings(label_studio_url="", home=tmp_path)
    out = demo_labeling(sample_ds, SAMPLE, settings)
    assert out["mode"] == "export" and out["annotations"] == 5 and out["labels_skipped"] == 0
    assert out["labels_added"] == 9 + 4 + 2  # boxes, per-image verdicts, span + grade
    # The boxes match boxes.csv (drawn from it in pixels, stored by Label Studio in percent).
    frames = {
        r["source_uri"]: r
        for r in sample_ds.query("SELECT frame_id, source_uri, width, height FROM frames").to_pylist()
    }
    got = sorted(
        (r["frame_id"], r["name"], tuple(round(v, 9) for v in r["bbox_xyxy_norm"]))
        for r in sample_ds.query("SELECT * FROM current_labels WHERE kind = 'box'").to_pylist()
    )
    want = []
    with open(SAMPLE / "inspection" / "boxes.csv", newline="") as f:
        for b in csv.DictReader(f):
            if b["image"] in frames:
                fr = frames[b["image"]]
                box = (
                    int(b["xmin"]) / fr["width"],
                    int(b["ymin"]) / fr["height"],
                    int(b["xmax"]) / fr["width"],
                    int(b["ymax"]) / fr["height"],
                )
                want.append((fr["frame_id"], b["class"], tuple(round(v, 9) for v in box)))
    assert got == sorted(want)
    (span,) = sample_ds.query("SELECT * FROM current_labels WHERE kind = 'span'").to_pylist()
    (seg,) = sample_ds.query(
        "SELECT segment_start, segment_end FROM events WHERE kind = 'judgment' AND value LIKE 'NG%'"
    ).to_pylist()
    assert (span["name"], span["ts_start"], span["ts_end"]) == (
        "travel_too_fast",
        seg["segment_start"],
        seg["segment_end"],
    )
    again = demo_labeling(sample_ds, SAMPLE, settings)
    assert again["labels_added"] == 0


def test_demo_skips_labels_of_what_was_not_imported(tmp_path: Path) -> None:
    from jangin.capture import import_stills
    from jangin.core import Dataset, get_settings
    from jangin.demo._labeling import demo_labeling

    ds = Dataset.create(tmp_path / "ds")
    import_stills(ds, SAMPLE / "inspection", session_key="inspection", limit=2)
    out = demo_labeling(ds, SAMPLE, get_settings(label_studio_url="", home=tmp_path))
    with open(SAMPLE / "inspection" / "boxes.csv", newline="") as f:
        n_boxes = sum(
            1 for b in csv.DictReader(f) if b["image"] in ("images/img_0001.jpg", "images/img_0002.jpg")
        )
    assert out["labels_added"] == n_boxes + 2  # their boxes and verdicts
    assert out["labels_added"] + out["labels_skipped"] == 15


def test_demo_pushes_and_pulls_with_a_server(sample_ds, ls_server) -> None:
    from jangin.core import get_settings
    from jangin.demo._labeling import demo_labeling

    settings = get_settings(
        label_studio_url=ls_server.url, label_studio_token=ls_server.token, home=ls_server.root.parent
    )
    out = demo_labeling(sample_ds, SAMPLE, settings, stills_session_id=sample_ds.stills_session_id)
    assert out["mode"] == "server" and out["tasks_created"] == 4 + 1
    again = demo_labeling(sample_ds, SAMPLE, settings, stills_session_id=sample_ds.stills_session_id)
    assert (again["tasks_created"], again["tasks_existing"], again["labels_added"]) == (0, 5, 0)
