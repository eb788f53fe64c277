"""Label tables (`jangin label import-table`) and the question a label answers, end to end offline:
real Delta tables, real CSV/Parquet files, the CLI as a subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import STILLS, T0, WELD
from test_roundtrip import tasks_by_key

REPO = Path(__file__).resolve().parents[2]
SAMPLE_EXPORT = REPO / "sample_data" / "label-studio" / "export.json"


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def current(ds: Any, question: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM current_labels"
    if question:
        sql += f" WHERE question = '{question}'"
    return ds.query(sql + " ORDER BY session_id, frame_id, ts_start").to_pylist()


def jangin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jangin.core.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )


# -- session, frame and span keys -------------------------------------------------------------------


def test_session_labels_by_id_session_key_and_run_file(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import import_label_table

    ds = make_ds(n_frames=1)
    # One row by session id, one by run file (its stem is the session key capture stored).
    by_id = write_csv(tmp_path / "a.csv", ["session_id", "tool_condition"], [[STILLS, "worn"]])
    by_file = write_csv(
        tmp_path / "b.csv", ["file", "label.tool_condition"], [["runs/weld-x.csv.gz", "unworn"]]
    )
    r1 = import_label_table(ds, by_id, key="session", question="tool_condition", author="insp-7")
    r2 = import_label_table(ds, by_file, key="session", question="tool_condition")
    assert (r1.added, r2.added) == (1, 1)
    rows = {r["session_id"]: r for r in current(ds)}
    assert rows[STILLS]["name"] == "worn" and rows[WELD]["name"] == "unworn"
    assert {r["question"] for r in rows.values()} == {"tool_condition"}
    assert rows[STILLS]["target"] == "session" and rows[STILLS]["kind"] == "class"
    assert (rows[STILLS]["source"], rows[STILLS]["author"]) == ("import", "insp-7")
    # By session key, a second question about the same sessions, from a named column.
    keyed = write_csv(tmp_path / "c.csv", ["session_key", "verdict"], [["stills", "NG"], ["weld-x", "OK"]])
    r3 = import_label_table(ds, keyed, key="session", question="visual_inspection", column="verdict")
    assert r3.added == 2
    vis = {r["session_id"]: r["name"] for r in current(ds, "visual_inspection")}
    assert vis == {STILLS: "NG", WELD: "OK"}
    assert len(current(ds, "tool_condition")) == 2  # the other question is untouched


def test_reimport_adds_nothing_and_a_changed_value_supersedes(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import import_label_table

    ds = make_ds(n_frames=1)
    path = tmp_path / "runs.csv"
    write_csv(path, ["session_key", "outcome"], [["stills", "good"], ["weld-x", "scrap"]])
    first = import_label_table(ds, path, key="session", question="outcome")
    assert (first.added, first.written) == (2, 2)
    again = import_label_table(ds, path, key="session", question="outcome")
    assert (again.written, again.unchanged) == (0, 2)
    assert ds.counts()["labels"] == 2

    old = {r["session_id"]: r for r in current(ds)}
    write_csv(path, ["session_key", "outcome"], [["stills", "good"], ["weld-x", "rework"]])
    fix = import_label_table(ds, path, key="session", question="outcome")
    assert (fix.added, fix.superseding, fix.unchanged) == (0, 1, 1)
    now = {r["session_id"]: r for r in current(ds)}
    assert now[WELD]["name"] == "rework" and now[WELD]["supersedes"] == old[WELD]["label_id"]
    assert now[STILLS]["label_id"] == old[STILLS]["label_id"]
    assert ds.counts()["labels"] == 3

    # Back to the first value: a new row again (not the old, superseded one), still one current label.
    write_csv(path, ["session_key", "outcome"], [["stills", "good"], ["weld-x", "scrap"]])
    back = import_label_table(ds, path, key="session", question="outcome")
    assert back.superseding == 1
    assert [r["name"] for r in current(ds) if r["session_id"] == WELD] == ["scrap"]
    assert import_label_table(ds, path, key="session", question="outcome").written == 0


def test_a_table_corrects_answers_that_came_from_elsewhere(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import import_label_table

    ds = make_ds(n_frames=1)
    now = datetime.now(UTC)
    base = {"target": "session", "kind": "class", "question": "outcome", "created_at": now}
    ds.append(
        "labels",
        [
            # From a capture run table, from Label Studio, and a model's guess.
            {**base, "label_id": "cap-1", "session_id": STILLS, "name": "good", "source": "import"},
            {**base, "label_id": "cap-2", "session_id": WELD, "name": "good", "source": "import"},
            {**base, "label_id": "ls-2", "session_id": WELD, "name": "rework", "source": "labeller"},
            {**base, "label_id": "m-2", "session_id": WELD, "name": "scrap", "source": "model"},
        ],
    )
    path = write_csv(tmp_path / "o.csv", ["session_id", "outcome"], [[STILLS, "good"], [WELD, "scrap"]])
    r = import_label_table(ds, path, key="session", question="outcome")
    assert (r.added, r.superseding, r.unchanged) == (0, 1, 1)  # STILLS already says good
    answers = {
        (x["session_id"], x["source"]): x["name"] for x in current(ds, "outcome") if x["source"] != "model"
    }
    assert answers == {(STILLS, "import"): "good", (WELD, "import"): "scrap"}
    assert {x["label_id"] for x in current(ds, "outcome")} >= {"cap-1", "m-2"}  # predictions stay
    assert import_label_table(ds, path, key="session", question="outcome").written == 0


def test_frame_labels_from_parquet_by_id_and_source_uri(make_ds, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jangin.labeling import import_label_table

    ds = make_ds(n_frames=3)
    path = tmp_path / "frames.parquet"
    pq.write_table(pa.table({"frame": ["frm-000000", "images/img_0002.jpg"], "porosity_level": [2, 0]}), path)
    r = import_label_table(ds, path, key="frame", question="porosity_level", frame_column="frame")
    assert r.added == 2
    rows = {x["frame_id"]: x for x in current(ds)}
    assert {k: v["name"] for k, v in rows.items()} == {"frm-000000": "2", "frm-000002": "0"}
    assert rows["frm-000002"]["session_id"] == STILLS and rows["frm-000002"]["target"] == "frame"


def test_span_labels_from_iso_times_and_seconds_are_exact(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import import_label_table

    ds = make_ds(n_frames=1)
    iso_start = (T0 + timedelta(seconds=4)).isoformat().replace("+00:00", "Z")
    path = write_csv(
        tmp_path / "spans.csv",
        ["session_id", "start", "end", "label"],
        [[WELD, "1.5", "3.000001", "chatter"], ["weld-x", iso_start, "2026-03-02T08:00:05.123456", "quiet"]],
    )
    r = import_label_table(ds, path, key="span", question="vibration")
    assert r.added == 2
    rows = {x["name"]: x for x in current(ds, "vibration")}
    assert rows["chatter"]["ts_start"] == T0 + timedelta(seconds=1.5)
    assert rows["chatter"]["ts_end"] == T0 + timedelta(seconds=3, microseconds=1)
    assert rows["quiet"]["ts_start"] == T0 + timedelta(seconds=4)
    assert rows["quiet"]["ts_end"] == datetime(2026, 3, 2, 8, 0, 5, 123456, tzinfo=UTC)  # no zone = UTC
    assert {(x["target"], x["kind"]) for x in rows.values()} == {("span", "span")}
    assert import_label_table(ds, path, key="span", question="vibration").written == 0


# -- bad input: every problem on one line, nothing written -----------------------------------------


@pytest.mark.parametrize(
    ("key", "header", "rows", "kwargs", "messages"),
    [
        ("session", ["session_id", "grade"], [[STILLS, "A"]], {}, ["no label value column"]),
        ("session", ["session_id", "outcome"], [[STILLS, "A"]], {"column": "nope"}, ["no column 'nope'"]),
        ("span", ["session_id", "outcome", "start"], [[WELD, "A", "1"]], {}, ["no span end column"]),
        (
            "session",
            ["session_id", "outcome"],
            [[STILLS, "A"], ["run-404", "B"], ["weld-x", ""]],
            {},
            [
                "row 3: column 'session_id': session 'run-404' is not in the dataset",
                "row 4: column 'outcome' is empty",
            ],
        ),
        (
            "session",
            ["session_key", "outcome"],
            [["stills", "A"], ["weld-x", "B"], ["stills", "A"], ["weld-x", "C"]],
            {},
            [f"row 5: session {WELD} already has outcome = 'B' ("],
        ),
        (
            "frame",
            ["frame_id", "outcome"],
            [["frm-000000", "A"], ["frm-424242", "B"]],
            {},
            ["row 3: column 'frame_id': frame 'frm-424242' is not a frame in the dataset"],
        ),
        (
            "span",
            ["session_id", "start", "end", "outcome"],
            [[WELD, "3", "1", "A"], [WELD, "soon", "2", "B"]],
            {},
            ["row 2: span ends", "row 3: column 'start': 'soon' is neither an ISO time nor seconds"],
        ),
    ],
    ids=[
        "no-value-column",
        "named-column-missing",
        "no-end-column",
        "unknown-session-and-empty",
        "conflict",
        "unknown-frame",
        "bad-span",
    ],
)
def test_bad_tables_name_each_problem_and_write_nothing(
    make_ds,
    tmp_path: Path,
    key: str,
    header: list[str],
    rows: list[list[Any]],
    kwargs: dict[str, Any],
    messages: list[str],
) -> None:
    from jangin.labeling import LabelTableError, import_label_table

    ds = make_ds(n_frames=1)
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(LabelTableError) as info:
        import_label_table(ds, path, key=key, question="outcome", **kwargs)  # type: ignore[arg-type]
    text = str(info.value)
    for m in messages:
        assert m in text
    assert len(info.value.problems) == len(messages)
    assert all(p.startswith(str(path)) for p in info.value.problems)
    assert ds.counts()["labels"] == 0


def test_one_problem_line_per_bad_row(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import LabelTableError, import_label_table

    ds = make_ds(n_frames=1)
    rows = [[STILLS, "A"]] + [[f"run-{i}", "B"] for i in range(3)] + [[WELD, ""]]
    path = write_csv(tmp_path / "bad.csv", ["session_id", "outcome"], rows)
    with pytest.raises(LabelTableError) as info:
        import_label_table(ds, path, key="session", question="outcome")
    assert [p.split(": ")[1] for p in info.value.problems] == ["row 3", "row 4", "row 5", "row 6"]
    assert ds.counts()["labels"] == 0  # the good first row is not written either


def test_ambiguous_session_key_and_repeated_rows(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import LabelTableError, import_label_table

    ds = make_ds(n_frames=1)
    ds.append(
        "sessions",
        [
            {
                "session_id": "ses-other-site",
                "status": "finished",
                "started_at": T0,
                "updated_at": datetime.now(UTC),
                "meta_json": '{"session_key": "stills"}',
            }
        ],
    )
    path = write_csv(tmp_path / "amb.csv", ["session_key", "outcome"], [["stills", "A"]])
    with pytest.raises(LabelTableError, match="names 2 sessions"):
        import_label_table(ds, path, key="session", question="outcome")
    # The same row twice with the same value is one label, counted as a repeat.
    path = write_csv(tmp_path / "rep.csv", ["session_id", "outcome"], [[WELD, "A"], [WELD, "A"]])
    r = import_label_table(ds, path, key="session", question="outcome")
    assert (r.added, r.duplicates) == (1, 1)


# -- the CLI ----------------------------------------------------------------------------------------


def test_import_table_cli(make_ds, tmp_path: Path) -> None:
    ds = make_ds(n_frames=1)
    path = write_csv(
        tmp_path / "runs.csv", ["file", "state"], [["stills.csv", "worn"], ["weld-x.csv", "new"]]
    )
    args = ["label", "import-table", str(path), "--key", "session", "--question", "tool_condition"]
    r = jangin(*args, "--column", "state", "--author", "lead-1", "-d", str(ds.root))
    assert r.returncode == 0, r.stderr
    assert "tool_condition (session): 2 row(s): 2 new, 0 superseding, 0 unchanged" in r.stdout + r.stderr
    assert {x["author"] for x in current(ds)} == {"lead-1"}
    r = jangin(*args, "--column", "state", "-d", str(ds.root))
    assert "0 new, 0 superseding, 2 unchanged" in r.stdout + r.stderr

    bad = write_csv(tmp_path / "bad.csv", ["file", "state"], [["nope.csv", "worn"], ["weld-x.csv", ""]])
    r = jangin(
        "label",
        "import-table",
        str(bad),
        "--key",
        "session",
        "--question",
        "q",
        "--column",
        "state",
        "-d",
        str(ds.root),
    )
    out = r.stdout + r.stderr
    assert r.returncode == 1
    assert "2 problem(s), nothing imported" in out and "Traceback" not in out
    assert "row 2: column 'file': session 'nope.csv' is not in the dataset" in out
    assert "row 3: column 'state' is empty" in out
    r = jangin("label", "import-table", str(path), "--key", "run", "--question", "q", "-d", str(ds.root))
    assert r.returncode == 1 and "--key must be session, frame or span" in r.stdout + r.stderr


# -- questions elsewhere: judgments, box CSVs, Label Studio exports, schemas, export filter ----------


def test_judgments_and_box_csv_carry_a_question(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import import_box_csv, labels_from_judgments

    ds = make_ds(n_frames=1)
    ds.append(
        "events",
        [
            {
                "event_id": "evt-1",
                "session_id": WELD,
                "ts": T0 + timedelta(seconds=5),
                "kind": "judgment",
                "value": "NG:undercut",
                "author": "expert-1",
                "segment_start": T0 + timedelta(seconds=1),
                "segment_end": T0 + timedelta(seconds=4),
            }
        ],
    )
    assert labels_from_judgments(ds) == 1
    (j,) = current(ds)
    assert (j["question"], j["name"], j["target"]) == ("judgment", "undercut", "span")

    # A session of a registered process: the process's span label spec names the question.
    from jangin.core.process_definition import LabelSpec, ProcessDefinition, register_process

    register_process(
        ds,
        ProcessDefinition(
            name="turning",
            labels=[
                LabelSpec(question="tool_condition", target="session", choices=["worn", "new"]),
                LabelSpec(question="surface_finish", target="span", choices=["OK", "chatter_marks"]),
                LabelSpec(question="operator_note", target="span"),
            ],
        ),
    )
    now = datetime.now(UTC)
    ds.append(
        "sessions",
        [
            {
                "session_id": "ses-lathe",
                "status": "finished",
                "started_at": T0,
                "updated_at": now,
                "process": "turning",
            }
        ],
    )
    ds.append(
        "events",
        [
            {
                "event_id": f"evt-{i}",
                "session_id": "ses-lathe",
                "ts": T0 + timedelta(seconds=i),
                "kind": "judgment",
                "value": v,
            }
            for i, v in ((2, "NG:chatter_marks"), (3, "OK"), (4, "NG:burr"))
        ],
    )
    assert labels_from_judgments(ds, session_ids=["ses-lathe"]) == 3
    got = {r["name"]: r["question"] for r in current(ds) if r["session_id"] == "ses-lathe"}
    assert got == {"chatter_marks": "surface_finish", "OK": "surface_finish", "burr": "operator_note"}
    boxes = write_csv(
        tmp_path / "boxes.csv",
        ["image", "class", "xmin", "ymin", "xmax", "ymax"],
        [["images/img_0000.jpg", "crack", 1, 2, 30, 40]],
    )
    assert import_box_csv(ds, boxes, session_id=STILLS) == 1
    assert [r["question"] for r in current(ds) if r["kind"] == "box"] == ["defect"]


def _dataset_for_export(root: Path, tasks: list[dict[str, Any]]) -> Any:
    """A dataset holding exactly the frames and sessions the committed export refers to."""
    from factories import jpeg

    from jangin.core import Dataset

    ds = Dataset.create(root)
    now = datetime.now(UTC)
    infos = [t["data"]["jangin"] for t in tasks]
    sessions = {}
    for i in infos:
        start = datetime.fromtimestamp(i["started_at_us"] / 1e6, UTC) if "started_at_us" in i else T0
        sessions.setdefault(i["session_id"], start)
    ds.append(
        "sessions",
        [
            {"session_id": s, "status": "finished", "started_at": t, "updated_at": now}
            for s, t in sessions.items()
        ],
    )
    ds.append(
        "frames",
        [
            {
                "frame_id": i["frame_id"],
                "session_id": i["session_id"],
                "camera": "still",
                "ts": T0,
                "width": i["width"],
                "height": i["height"],
                "deidentified": True,
                "image": jpeg(0, i["width"], i["height"]),
            }
            for i in infos
            if i["target"] == "frame"
        ],
    )
    return ds


def test_committed_label_studio_export_gets_questions_from_control_names(tmp_path: Path) -> None:
    from jangin.labeling import import_export

    tasks = json.loads(SAMPLE_EXPORT.read_text())
    ds = _dataset_for_export(tmp_path / "ds", tasks)
    res = import_export(ds, SAMPLE_EXPORT)
    assert res.added == 15 and res.skipped == 0
    controls = {
        (res_["type"], res_["from_name"]) for t in tasks for a in t["annotations"] for res_ in a["result"]
    }
    by_kind = {(r["kind"], r["question"]) for r in current(ds)}
    kinds = {"rectanglelabels": "box", "choices": "class", "timeserieslabels": "span"}
    assert by_kind == {(kinds[t], name) for t, name in controls}
    assert all(r["question"] for r in current(ds))


def test_schema_question_is_the_control_name() -> None:
    from jangin.core import ConfigError
    from jangin.labeling import load_schema

    sch = load_schema(
        {
            "target": "session",
            "channels": ["x"],
            "labels": [
                {"kind": "class", "question": "tool_condition", "names": ["worn", "new"]},
                {"kind": "class", "name": "outcome", "names": ["good", "scrap"]},
            ],
        }
    )
    assert [g.control for g in sch.labels] == ["tool_condition", "outcome"]
    assert '<Choices name="tool_condition" toName="series"' in sch.label_config()
    with pytest.raises(ConfigError, match="the control's name is its question"):
        load_schema({"labels": [{"kind": "class", "name": "a", "question": "b", "names": ["x"]}]})


def test_schema_from_a_process_definition_asks_its_questions() -> None:
    from jangin.core import ConfigError
    from jangin.core.process_definition import LabelSpec, ProcessDefinition
    from jangin.labeling import LabelSchema

    d = ProcessDefinition(
        name="turning",
        labels=[
            LabelSpec(question="tool_condition", target="session", choices=["worn", "new"]),
            LabelSpec(question="surface_finish", target="span", choices=["OK", "chatter_marks"]),
            LabelSpec(question="operator_note", target="span"),  # no choices: nothing to click
            LabelSpec(question="defect", target="frame", kind="box", choices=["burr"]),
        ],
    )
    sch = LabelSchema.from_process(d)
    assert [(g.kind, g.control, g.names) for g in sch.labels] == [
        ("class", "tool_condition", ["worn", "new"]),
        ("span", "surface_finish", ["OK", "chatter_marks"]),
    ]
    xml = sch.label_config(["spindle_load_pct"])
    assert '<Choices name="tool_condition"' in xml and '<TimeSeriesLabels name="surface_finish"' in xml
    frame = LabelSchema.from_process(d, "frame")
    assert [(g.kind, g.control) for g in frame.labels] == [("box", "defect")]
    with pytest.raises(ConfigError, match="defines no frame question"):
        LabelSchema.from_process(ProcessDefinition(name="empty"), "frame")


def test_export_filters_boxes_by_question(make_ds, tmp_path: Path) -> None:
    from jangin.labeling import export_labels

    ds = make_ds(n_frames=2)
    now = datetime.now(UTC)
    ds.append(
        "labels",
        [
            {
                "label_id": lid,
                "target": "frame",
                "frame_id": fid,
                "session_id": STILLS,
                "kind": "box",
                "name": name,
                "question": q,
                "bbox_xyxy_norm": [0.1, 0.1, 0.5, 0.5],
                "source": "labeller",
                "created_at": now,
            }
            for lid, fid, name, q in [
                ("l1", "frm-000000", "crack", "defect"),
                ("l2", "frm-000000", "clamp", "fixture"),
                ("l3", "frm-000001", "clamp", "fixture"),
            ]
        ],
    )
    s = export_labels(ds, tmp_path / "y", fmt="yolo", question="defect")
    assert (s["images"], s["boxes"], s["classes"]) == (1, 1, ["crack"])
    assert not (tmp_path / "y" / "labels" / "frm-000001.txt").exists()
    s = export_labels(ds, tmp_path / "c", fmt="coco", question=["defect", "fixture"])
    assert (s["images"], s["boxes"]) == (2, 3)
    s = export_labels(ds, tmp_path / "h", fmt="hf", question="fixture")
    assert (s["images"], s["classes"]) == (2, ["clamp"])


# -- Label Studio keeps the question (a real server) ------------------------------------------------

QUESTION_SCHEMA = {
    "target": "session",
    "channels": ["arc_current_A"],
    "labels": [
        {"kind": "span", "question": "vibration", "names": ["chatter", "quiet"]},
        # Two questions with the same answers: only the question tells them apart.
        {"kind": "class", "question": "outcome", "names": ["good", "bad"]},
        {"kind": "class", "question": "visual_inspection", "names": ["good", "bad"]},
    ],
    "max_points": 200,
}


def _model_row(label_id: str, question: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "label_id": label_id,
        "target": "session",
        "session_id": WELD,
        "kind": "class",
        "name": name,
        "question": question,
        "score": 0.8,
        "source": "model",
        "author": "judge:2",
        "created_at": datetime.now(UTC),
        **extra,
    }


def test_question_survives_push_and_pull(ls_server, ls_client, make_ds, project_name) -> None:
    from jangin.labeling import pull, push

    ds = make_ds(n_frames=1, seconds=6.0)
    ds.append(
        "labels",
        [
            _model_row("m1", "visual_inspection", "bad"),
            _model_row("m2", "not_asked_here", "whatever"),  # another project's question: left out
            _model_row(
                "m3",
                "vibration",
                "chatter",
                target="span",
                ts_start=T0 + timedelta(seconds=1),
                ts_end=T0 + timedelta(seconds=2),
            ),
        ],
    )
    r = push(
        ds,
        project_name,
        client=ls_client,
        root=ls_server.root,
        where=f"s.session_id = '{WELD}'",
        schema=QUESTION_SCHEMA,
        model="judge:2",
    )
    assert (r.created, r.predictions) == (1, 1)
    (task,) = tasks_by_key(ls_client, project_name).values()
    (pred,) = task["predictions"]
    got = sorted((x["from_name"], x["type"], json.dumps(x["value"], sort_keys=True)) for x in pred["result"])
    assert [(g[0], g[1]) for g in got] == [
        ("vibration", "timeserieslabels"),
        ("visual_inspection", "choices"),
    ]

    ls_client.annotate(
        task["id"],
        [
            {
                "id": "o",
                "from_name": "outcome",
                "to_name": "series",
                "type": "choices",
                "value": {"choices": ["good"]},
            },
            {
                "id": "v",
                "from_name": "visual_inspection",
                "to_name": "series",
                "type": "choices",
                "value": {"choices": ["bad"]},
            },
            {
                "id": "s",
                "from_name": "vibration",
                "to_name": "series",
                "type": "timeserieslabels",
                "value": {"start": 1.0, "end": 2.5, "instant": False, "timeserieslabels": ["chatter"]},
            },
        ],
    )
    res = pull(ds, project_name, client=ls_client)
    assert res.added == 3
    rows = ds.query("SELECT question, kind, name FROM current_labels WHERE source = 'labeller'").to_pylist()
    assert sorted((x["question"], x["kind"], x["name"]) for x in rows) == [
        ("outcome", "class", "good"),
        ("vibration", "span", "chatter"),
        ("visual_inspection", "class", "bad"),
    ]
