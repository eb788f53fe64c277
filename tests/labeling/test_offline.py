"""Without a server: label schemas, importing a Label Studio JSON export, YOLO / COCO / HF exports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import HEIGHT, STILLS, T0, WELD, WIDTH
from test_roundtrip import FRAME_SCHEMA, SENSOR_SCHEMA, box

from jangin.core import ConfigError, LabelStudioError, SchemaError

# -- schemas ------------------------------------------------------------------------------------------


def test_frame_schema_makes_rectangles_and_choices_on_an_image() -> None:
    from jangin.labeling import load_schema

    root = ET.fromstring(load_schema(FRAME_SCHEMA).label_config())
    (img,) = root.iter("Image")
    assert img.get("value") == "$image"
    (rect,) = root.iter("RectangleLabels")
    assert rect.get("toName") == "image" and [lab.get("value") for lab in rect] == [
        "porosity",
        "undercut",
        "crack",
    ]
    assert all(lab.get("background", "").startswith("#") for lab in rect)
    (ch,) = root.iter("Choices")
    assert ch.get("name") == "quality" and [c.get("value") for c in ch] == ["OK", "NG"]


def test_session_schema_makes_time_series_spans_and_session_choices() -> None:
    from jangin.labeling import load_schema

    root = ET.fromstring(load_schema(SENSOR_SCHEMA).label_config())
    (ts,) = root.iter("TimeSeries")
    assert ts.get("value") == "$csv" and ts.get("timeColumn") == "t" and ts.get("valueType") == "url"
    assert [c.get("column") for c in ts] == ["arc_current_A", "plate_temp_C"]
    (spans,) = root.iter("TimeSeriesLabels")
    assert spans.get("toName") == "series" and [lab.get("value") for lab in spans] == [
        "unstable_arc",
        "too_fast",
    ]
    (grade,) = root.iter("Choices")
    assert grade.get("toName") == "series"


def test_schema_from_yaml_file(tmp_path: Path) -> None:
    from jangin.labeling import load_schema

    p = tmp_path / "s.yaml"
    p.write_text("labels:\n  - kind: box\n    names: [a, b]\n    colors: {a: '#123456'}\n")
    sch = load_schema(p)
    assert sch.names("box") == ["a", "b"] and sch.labels[0].color("a") == "#123456"
    assert 'value="a" background="#123456"' in sch.label_config()


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"target": "session", "labels": [{"kind": "box", "names": ["a"]}]}, "box labels need target: frame"),
        ({"labels": [{"kind": "span", "names": ["a"]}]}, "span labels need target: session"),
        ({"labels": [{"kind": "box", "names": ["a", "a"]}]}, "repeat"),
        ({"labels": [{"kind": "box", "names": []}]}, "names"),
        (
            {"labels": [{"kind": "box", "names": ["a"]}, {"kind": "box", "names": ["b"]}]},
            "control names must be unique",
        ),
        ({"labels": [{"kind": "polygon", "names": ["a"]}]}, "kind"),
        ("just text", "a mapping"),
    ],
)
def test_bad_schemas_are_config_errors(schema: Any, message: str) -> None:
    from jangin.labeling import load_schema

    with pytest.raises(ConfigError, match=message):
        load_schema(schema)


def test_session_schema_needs_channels() -> None:
    from jangin.labeling import load_schema

    with pytest.raises(ConfigError, match="needs channels"):
        load_schema({"target": "session", "labels": [{"kind": "span", "names": ["a"]}]}).label_config()


# -- import of a Label Studio JSON export ----------------------------------------------------------


def _frame_task(frame: str, anns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": 7,
        "project": 3,
        "data": {
            "image": f"/data/local-files/?d=jangin/frames/{STILLS}/{frame}.jpg",
            "jangin_key": f"frame:{frame}",
            "jangin": {
                "target": "frame",
                "frame_id": frame,
                "session_id": STILLS,
                "width": WIDTH,
                "height": HEIGHT,
            },
        },
        "annotations": anns,
        "predictions": [],
    }


def _ann(ann_id: int, updated: str, result: list[dict[str, Any]], by: Any = 1) -> dict[str, Any]:
    return {
        "id": ann_id,
        "completed_by": by,
        "result": result,
        "was_cancelled": False,
        "lead_time": 3.25,
        "created_at": "2026-11-01T10:00:00.000000Z",
        "updated_at": updated,
        "project": 3,
    }


def _window_task(anns: list[dict[str, Any]]) -> dict[str, Any]:
    start_us = int(T0.timestamp()) * 1_000_000 + T0.microsecond
    return {
        "id": 8,
        "project": 3,
        "data": {
            "csv": "/data/local-files/?d=x.csv",
            "jangin_key": "window:w",
            "jangin": {
                "target": "session",
                "session_id": WELD,
                "started_at_us": start_us,
                "window_start_us": 0,
                "window_end_us": 6_000_000,
            },
        },
        "annotations": anns,
    }


def test_import_export_file_exact_and_idempotent(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import import_export

    ds = make_ds(n_frames=2)
    export = [
        _frame_task(
            "frm-000001",
            [
                _ann(
                    11,
                    "2026-11-01T10:00:05.123456Z",
                    [box(25, 50, 50, 25, "crack")],
                    by={"id": 4, "email": "someone@plant.example"},
                )
            ],
        ),
        _window_task(
            [
                _ann(
                    12,
                    "2026-11-01T10:01:00Z",
                    [
                        {
                            "id": "s1",
                            "from_name": "span",
                            "to_name": "series",
                            "type": "timeserieslabels",
                            "value": {"start": 0.5, "end": 2.000001, "timeserieslabels": ["too_fast"]},
                        }
                    ],
                )
            ]
        ),
        {"id": 9, "data": {"image": "foreign.jpg"}, "annotations": [_ann(13, "2026-11-01T10:00:00Z", [])]},
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    res = import_export(ds, path)
    assert (res.annotations, res.added) == (2, 2)
    rows = {r["name"]: r for r in ds.query("SELECT * FROM current_labels").to_pylist()}
    assert rows["crack"]["bbox_xyxy_norm"] == [0.25, 0.5, 0.75, 0.75]
    assert rows["crack"]["author"] == "labelstudio-user:4"  # an id, never the e-mail
    assert (
        rows["crack"]["lead_time_s"] == 3.25
        and rows["crack"]["external_id"] == "ls:3:11@2026-11-01T10:00:05.123456Z#b1"
    )
    assert rows["too_fast"]["ts_start"] == T0 + timedelta(seconds=0.5)
    assert rows["too_fast"]["ts_end"] == T0 + timedelta(seconds=2, microseconds=1)
    assert import_export(ds, path).written == 0

    # A later export of the same annotation, changed: the new row supersedes the old one.
    export[0]["annotations"][0].update(
        updated_at="2026-11-02T08:00:00Z", result=[box(25, 50, 50, 12.5, "crack")]
    )
    path.write_text(json.dumps(export))
    res = import_export(ds, path)
    assert (res.added, res.superseding, res.retracted, res.unchanged) == (0, 1, 0, 1)
    cur = ds.query("SELECT * FROM current_labels WHERE name = 'crack'").to_pylist()
    assert [c["bbox_xyxy_norm"] for c in cur] == [[0.25, 0.5, 0.75, 0.625]]
    assert cur[0]["supersedes"] == rows["crack"]["label_id"]


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (
            lambda t: t["data"]["jangin"].update(frame_id="frm-999999"),
            SchemaError,
            "frame frm-999999 is not in the dataset",
        ),
        (
            lambda t: t["annotations"][0]["result"][0]["value"].update(rectanglelabels=["slag"]),
            LabelStudioError,
            "uses label 'slag'",
        ),
    ],
)
def test_import_rejects_unknown_frames_and_labels(
    make_ds, tmp_path: Path, mutate: Any, error: type, message: str
) -> None:
    from jangin.labeling import import_export, load_schema

    ds = make_ds(n_frames=1)
    task = _frame_task("frm-000000", [_ann(1, "2026-11-01T10:00:00Z", [box(1, 1, 5, 5, "crack")])])
    mutate(task)
    path = tmp_path / "e.json"
    path.write_text(json.dumps([task]))
    with pytest.raises(error, match=message):
        import_export(ds, path, label_config=load_schema(FRAME_SCHEMA).label_config())
    assert ds.counts()["labels"] == 0


def test_import_rejects_what_is_not_an_export(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import import_export

    p = tmp_path / "x.json"
    p.write_text('{"tasks": []}')
    with pytest.raises(SchemaError, match="a list of tasks"):
        import_export(make_ds(), p)


# -- exports ----------------------------------------------------------------------------------------


@pytest.fixture
def labelled(make_ds) -> Any:
    from datetime import UTC, datetime

    ds = make_ds(n_frames=3)
    now = datetime.now(UTC)
    rows = [
        ("l1", "frm-000000", "porosity", [0.125, 0.25, 0.375, 0.5], "labeller"),
        ("l2", "frm-000000", "crack", [0.5, 0.5, 1.0, 1.0], "labeller"),
        ("l3", "frm-000002", "porosity", [0.0, 0.0, 0.25, 0.25], "expert"),
        ("l4", "frm-000001", "crack", [0.1, 0.1, 0.2, 0.2], "model"),  # predictions are not ground truth
    ]
    ds.append(
        "labels",
        [
            {
                "label_id": i,
                "target": "frame",
                "frame_id": f,
                "session_id": STILLS,
                "kind": "box",
                "name": n,
                "bbox_xyxy_norm": b,
                "source": s,
                "created_at": now,
                "score": 0.5 if s == "model" else None,
            }
            for i, f, n, b, s in rows
        ],
    )
    return ds


def test_export_yolo_fixed_class_order(labelled, tmp_path: Path) -> None:
    from jangin.labeling import export_labels

    s = export_labels(labelled, tmp_path / "y", fmt="yolo")
    assert (s["images"], s["boxes"], s["classes"]) == (2, 3, ["crack", "porosity"])  # alphabetical by default
    out = tmp_path / "y"
    assert (out / "classes.txt").read_text() == "crack\nporosity\n"
    lines = sorted((out / "labels" / "frm-000000.txt").read_text().splitlines())
    assert lines == [
        "0 0.75000000 0.75000000 0.50000000 0.50000000",
        "1 0.25000000 0.37500000 0.25000000 0.25000000",
    ]
    assert (out / "images" / "frm-000000.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert not (out / "labels" / "frm-000001.txt").exists()  # only the model labelled it
    # A given order (e.g. a schema's) wins, and is written down.
    export_labels(labelled, tmp_path / "y2", fmt="yolo", classes=["porosity", "crack", "undercut"])
    assert (tmp_path / "y2" / "classes.txt").read_text() == "porosity\ncrack\nundercut\n"
    assert (tmp_path / "y2" / "labels" / "frm-000002.txt").read_text().startswith("0 ")
    with pytest.raises(ConfigError, match="crack are not in the class list"):
        export_labels(labelled, tmp_path / "y3", fmt="yolo", classes=["porosity"])


def test_export_coco(labelled, tmp_path: Path) -> None:
    from jangin.labeling import export_labels

    export_labels(labelled, tmp_path / "c", fmt="coco")
    doc = json.loads((tmp_path / "c" / "annotations.json").read_text())
    assert [c["name"] for c in doc["categories"]] == ["crack", "porosity"]
    img = {i["jangin_frame_id"]: i for i in doc["images"]}
    assert img["frm-000000"]["width"] == WIDTH and (tmp_path / "c" / img["frm-000000"]["file_name"]).is_file()
    por = next(a for a in doc["annotations"] if a["jangin_label_id"] == "l1")
    assert por["bbox"] == [40.0, 50.0, 80.0, 50.0] and por["category_id"] == 2 and por["area"] == 4000.0


def test_export_hf_parquet_layout(labelled, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from jangin.labeling import export_labels

    export_labels(labelled, tmp_path / "h", fmt="hf")
    files = sorted((tmp_path / "h" / "data").glob("*.parquet"))
    assert [f.name for f in files] == ["train-00000-of-00001.parquet"]
    t = pq.read_table(files[0])
    assert t.schema.field("image").type.names == ["bytes", "path"]  # what datasets' Image feature stores
    features = json.loads(t.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"}
    assert features["objects"]["category"] == [{"names": ["crack", "porosity"], "_type": "ClassLabel"}]
    assert set(features) == set(t.column_names)
    rows = {r["frame_id"]: r for r in t.to_pylist()}
    assert rows["frm-000000"]["image"]["bytes"][:2] == b"\xff\xd8"
    assert sorted(
        zip(rows["frm-000000"]["objects"]["category"], rows["frm-000000"]["objects"]["bbox"], strict=True)
    ) == [(0, [160.0, 100.0, 160.0, 100.0]), (1, [40.0, 50.0, 80.0, 50.0])]
    assert "data/*.parquet" in (tmp_path / "h" / "README.md").read_text()
