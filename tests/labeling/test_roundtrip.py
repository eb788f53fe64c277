"""Round trips against a real Label Studio server: push, pre-annotate, annotate as a labeller, pull."""

from __future__ import annotations

import urllib.request
from datetime import timedelta
from typing import Any

import pytest
from factories import HEIGHT, STILLS, T0, WELD, WIDTH, model_box

FRAME_SCHEMA = {
    "target": "frame",
    "labels": [
        {"kind": "box", "names": ["porosity", "undercut", "crack"]},
        {"kind": "class", "name": "quality", "names": ["OK", "NG"]},
    ],
}
SENSOR_SCHEMA = {
    "target": "session",
    "labels": [
        {"kind": "span", "names": ["unstable_arc", "too_fast"]},
        {"kind": "class", "name": "grade", "names": ["expert", "novice"]},
    ],
    "channels": ["arc_current_A", "plate_temp_C"],
    "window_s": 4,
    "max_points": 500,
}


def box(x: float, y: float, w: float, h: float, name: str = "porosity", rid: str = "b1") -> dict[str, Any]:
    """A rectangle as Label Studio's editor stores it: percentages of the original image."""
    return {
        "id": rid,
        "from_name": "box",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": WIDTH,
        "original_height": HEIGHT,
        "image_rotation": 0,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [name]},
    }


def tasks_by_key(client: Any, project: str) -> dict[str, dict[str, Any]]:
    pid = client.project(project)["id"]
    return {t["data"]["jangin_key"]: t for t in client.iter_tasks(pid)}


def labeller_rows(ds: Any, current: bool = True) -> list[dict[str, Any]]:
    table = "current_labels" if current else "labels"
    return ds.query(f"SELECT * FROM {table} WHERE source = 'labeller' ORDER BY external_id").to_pylist()


def test_box_and_class_round_trip_is_exact(ls_server, ls_client, make_ds, project_name) -> None:
    from jangin.labeling import pull, push

    ds = make_ds(n_frames=4)
    ds.append(
        "labels",
        [
            model_box("frm-000001", "crack", [0.25, 0.5, 0.75, 1.0], 0.8),
            model_box("frm-000001", "porosity", [0.1, 0.1, 0.2, 0.3], 0.6),
        ],
    )
    r = push(
        ds,
        project_name,
        client=ls_client,
        root=ls_server.root,
        where=f"f.session_id = '{STILLS}'",
        schema=FRAME_SCHEMA,
        model="det",
    )
    assert (r.created, r.existing, r.predictions, r.model_version) == (4, 0, 1, "det:3")
    proj = ls_client.project(project_name)
    assert proj["model_version"] == "det:3"
    tasks = tasks_by_key(ls_client, project_name)
    assert sorted(tasks) == [f"frame:frm-{i:06d}" for i in range(4)]
    (pred,) = tasks["frame:frm-000001"]["predictions"]
    assert pred["model_version"] == "det:3" and pred["score"] == pytest.approx(0.7)
    values = sorted(
        (p["value"]["rectanglelabels"][0], p["value"]["x"], p["value"]["width"]) for p in pred["result"]
    )
    assert values == [("crack", 25.0, 50.0), ("porosity", 10.0, 10.0)]
    assert tasks["frame:frm-000000"]["predictions"] == []

    # The image is served by Label Studio from the document root (local files), byte for byte.
    t0 = tasks["frame:frm-000000"]
    req = urllib.request.Request(
        ls_server.url + t0["data"]["image"], headers={"Authorization": f"Token {ls_server.token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        served = resp.read()
    assert served == ds.query("SELECT image FROM frames WHERE frame_id = 'frm-000000'").column(0)[0].as_py()

    # A labeller draws two boxes and picks a class; one box in pixel terms: (32, 20)-(96, 80) of 320x200.
    ls_client.annotate(
        t0["id"],
        [
            box(12.5, 25.0, 50.0, 37.5, "undercut", "b1"),
            box(32 / WIDTH * 100, 20 / HEIGHT * 100, 64 / WIDTH * 100, 60 / HEIGHT * 100, "porosity", "b2"),
            {
                "id": "c1",
                "from_name": "quality",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": ["NG"]},
            },
        ],
        lead_time=4.5,
    )
    res = pull(ds, project_name, client=ls_client)
    assert (res.annotations, res.added, res.superseding, res.retracted) == (1, 3, 0, 0)
    rows = {r["name"]: r for r in labeller_rows(ds)}
    assert rows["undercut"]["bbox_xyxy_norm"] == [0.125, 0.25, 0.625, 0.625]
    assert rows["porosity"]["bbox_xyxy_norm"] == [0.1, 0.1, 0.3, 0.4]
    assert [
        round(v * s, 9) for v, s in zip(rows["porosity"]["bbox_xyxy_norm"], (WIDTH, HEIGHT) * 2, strict=True)
    ] == [
        32,
        20,
        96,
        80,
    ]
    assert (
        rows["NG"]["kind"] == "class"
        and rows["NG"]["target"] == "frame"
        and rows["NG"]["bbox_xyxy_norm"] is None
    )
    for r in rows.values():
        assert r["frame_id"] == "frm-000000" and r["session_id"] == STILLS
        assert r["source"] == "labeller" and r["lead_time_s"] == 4.5
        assert r["author"].startswith("labelstudio-user:") and "@" not in r["author"]
        assert r["external_id"].startswith(f"ls:{proj['id']}:")


def test_span_round_trip_is_exact_in_session_time(ls_server, ls_client, make_ds, project_name) -> None:
    from jangin.labeling import pull, push

    ds = make_ds(n_frames=1, seconds=6.0)
    r = push(
        ds,
        project_name,
        client=ls_client,
        root=ls_server.root,
        where=f"s.session_id = '{WELD}'",
        schema=SENSOR_SCHEMA,
    )
    assert (r.created, r.existing) == (2, 0)  # 6 s in 4 s windows
    tasks = tasks_by_key(ls_client, project_name)
    key = "window:ses-weld:4000000:6000000"
    assert sorted(tasks) == ["window:ses-weld:0:4000000", key]
    # The window CSV: time = seconds since the session start, downsampled, values on the signal.
    csv_path = ls_server.root / tasks[key]["data"]["csv"].split("?d=", 1)[1]
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "t,arc_current_A,plate_temp_C"
    assert len(lines) - 1 <= 500
    t, cur, _ = lines[1].split(",")
    assert float(t) == 4.0 and float(cur) == pytest.approx(140.0)
    t, cur, _ = lines[100].split(",")
    assert float(cur) == pytest.approx(100 + 10 * float(t), abs=1e-3)

    ls_client.annotate(
        tasks[key]["id"],
        [
            {
                "id": "s1",
                "from_name": "span",
                "to_name": "series",
                "type": "timeserieslabels",
                "value": {
                    "start": 4.25,
                    "end": 5.123457,
                    "instant": False,
                    "timeserieslabels": ["unstable_arc"],
                },
            },
            {
                "id": "g1",
                "from_name": "grade",
                "to_name": "series",
                "type": "choices",
                "value": {"choices": ["novice"]},
            },
        ],
        lead_time=2.0,
    )
    res = pull(ds, project_name, client=ls_client)
    assert (res.added, res.superseding) == (2, 0)
    rows = {r["name"]: r for r in labeller_rows(ds)}
    span = rows["unstable_arc"]
    assert span["target"] == "span" and span["kind"] == "span" and span["session_id"] == WELD
    assert span["ts_start"] == T0 + timedelta(seconds=4.25)
    assert span["ts_end"] == T0 + timedelta(seconds=5, microseconds=123457)
    grade = rows["novice"]
    assert grade["target"] == "session" and grade["kind"] == "class" and grade["ts_start"] is None


def test_span_pre_annotations_come_from_model_rows(ls_server, ls_client, make_ds, project_name) -> None:
    from datetime import UTC, datetime

    from jangin.labeling import push

    ds = make_ds(n_frames=1, seconds=6.0)
    ds.append(
        "labels",
        [
            {
                "label_id": "lbl-m-span",
                "target": "span",
                "session_id": WELD,
                "kind": "span",
                "name": "too_fast",
                "ts_start": T0 + timedelta(seconds=1.5),
                "ts_end": T0 + timedelta(seconds=2),
                "score": 0.9,
                "source": "model",
                "author": "profile:7",
                "created_at": datetime.now(UTC),
            }
        ],
    )
    r = push(
        ds,
        project_name,
        client=ls_client,
        root=ls_server.root,
        schema=SENSOR_SCHEMA,
        where=f"s.session_id = '{WELD}'",
        model="profile:7",
    )
    assert r.predictions == 1
    tasks = tasks_by_key(ls_client, project_name)
    (pred,) = tasks["window:ses-weld:0:4000000"]["predictions"]
    (res,) = pred["result"]
    assert (
        res["value"]["start"] == 1.5
        and res["value"]["end"] == 2.0
        and res["value"]["timeserieslabels"] == ["too_fast"]
    )
    assert tasks["window:ses-weld:4000000:6000000"]["predictions"] == []


def test_push_twice_adds_no_tasks_and_adds_late_predictions(
    ls_server, ls_client, make_ds, project_name
) -> None:
    from jangin.labeling import push

    ds = make_ds(n_frames=5)
    kw = dict(client=ls_client, root=ls_server.root, where=f"f.session_id = '{STILLS}'", schema=FRAME_SCHEMA)
    first = push(ds, project_name, **kw)
    second = push(ds, project_name, **kw)
    assert (first.created, first.existing) == (5, 0)
    assert (second.created, second.existing) == (0, 5)
    assert len(tasks_by_key(ls_client, project_name)) == 5
    # Predictions written after the first push are attached to the existing tasks, once.
    ds.append("labels", [model_box("frm-000003", "crack", [0.5, 0.5, 0.75, 0.75], 0.5, author="det:4")])
    third = push(ds, project_name, model="det:4", **kw)
    fourth = push(ds, project_name, model="det:4", **kw)
    assert (third.created, third.predictions, fourth.predictions) == (0, 1, 0)
    assert len(tasks_by_key(ls_client, project_name)["frame:frm-000003"]["predictions"]) == 1
    assert ls_client.project(project_name)["model_version"] == "det:4"


def test_pull_twice_adds_nothing_and_corrections_supersede(
    ls_server, ls_client, make_ds, project_name
) -> None:
    from jangin.labeling import pull, push

    ds = make_ds(n_frames=2)
    push(
        ds,
        project_name,
        client=ls_client,
        root=ls_server.root,
        where=f"f.session_id = '{STILLS}'",
        schema=FRAME_SCHEMA,
    )
    task = tasks_by_key(ls_client, project_name)["frame:frm-000000"]
    ann = ls_client.annotate(
        task["id"], [box(10, 10, 20, 20, "crack", "b1"), box(50, 50, 25, 25, "porosity", "b2")]
    )
    assert pull(ds, project_name, client=ls_client).added == 2
    again = pull(ds, project_name, client=ls_client)
    assert (again.written, again.unchanged) == (0, 2)
    n_rows = ds.counts()["labels"]

    # The labeller moves one box and deletes the other: b1 superseded, b2 retracted.
    ls_client.update_annotation(ann["id"], [box(12.5, 10, 20, 20, "crack", "b1")])
    res = pull(ds, project_name, client=ls_client)
    assert (res.added, res.superseding, res.retracted) == (0, 1, 1)
    (cur,) = labeller_rows(ds)
    assert cur["name"] == "crack" and cur["bbox_xyxy_norm"] == [0.125, 0.1, 0.325, 0.3]
    all_rows = labeller_rows(ds, current=False)
    assert len(all_rows) == 4 and ds.counts()["labels"] == n_rows + 2
    old = next(r for r in all_rows if r["bbox_xyxy_norm"] == [0.1, 0.1, 0.3, 0.3])
    assert cur["supersedes"] == old["label_id"]  # the old row is kept, superseded, never overwritten
    assert any(r["deleted"] and r["name"] == "porosity" for r in all_rows)
    assert pull(ds, project_name, client=ls_client).written == 0

    # Deleting the annotation in Label Studio retracts what is left.
    ls_client.delete_annotation(ann["id"])
    res = pull(ds, project_name, client=ls_client)
    assert res.retracted == 1 and labeller_rows(ds) == []
    assert pull(ds, project_name, client=ls_client).written == 0
