"""`jangin label push|pull|import|export|config` as a user runs them (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from test_roundtrip import FRAME_SCHEMA, box, tasks_by_key


def jangin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jangin.core.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        timeout=300,
    )


def test_push_pull_export_through_the_cli(
    ls_server, ls_client, make_ds, project_name, tmp_path: Path
) -> None:
    ds = make_ds(n_frames=3)
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump(FRAME_SCHEMA))
    env = {
        "JANGIN_LABEL_STUDIO_URL": ls_server.url,
        "JANGIN_LABEL_STUDIO_TOKEN": ls_server.token,
        "JANGIN_LABEL_STUDIO_ROOT": str(ls_server.root),
    }
    d = ["-d", str(ds.root)]
    r = jangin(
        "label",
        "push",
        "--project",
        project_name,
        "--schema",
        str(schema),
        "--where",
        "f.frame_id <> 'frm-000002'",
        *d,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "2 new task(s), 0 already there" in r.stderr
    task = tasks_by_key(ls_client, project_name)["frame:frm-000001"]
    ls_client.annotate(task["id"], [box(25, 25, 50, 50, "crack")])
    r = jangin("label", "pull", "--project", project_name, *d, env=env)
    assert r.returncode == 0, r.stderr
    assert "1 annotation(s): 1 new" in r.stderr
    r = jangin(
        "label", "export", "--format", "yolo", "--schema", str(schema), "-o", str(tmp_path / "yolo"), *d
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "porosity\nundercut\ncrack\n"
    assert (
        tmp_path / "yolo" / "labels" / "frm-000001.txt"
    ).read_text() == "2 0.50000000 0.50000000 0.50000000 0.50000000\n"


def test_cli_errors_are_one_line_with_a_hint(make_ds, tmp_path: Path) -> None:
    ds = make_ds(n_frames=1)
    env = {"JANGIN_LABEL_STUDIO_URL": "http://127.0.0.1:9", "JANGIN_LABEL_STUDIO_TOKEN": "tok-123456"}
    r = jangin("label", "pull", "--project", "p", "-d", str(ds.root), env=env)
    assert r.returncode == 1
    assert "error: cannot reach Label Studio at http://127.0.0.1:9" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.stderr


def test_import_and_config_commands(make_ds, tmp_path: Path) -> None:
    ds = make_ds(n_frames=1)
    export = [
        {
            "id": 1,
            "project": 5,
            "data": {
                "jangin_key": "frame:frm-000000",
                "jangin": {
                    "target": "frame",
                    "frame_id": "frm-000000",
                    "session_id": "ses-stills",
                    "width": 320,
                    "height": 200,
                },
            },
            "annotations": [
                {
                    "id": 3,
                    "completed_by": 1,
                    "updated_at": "2026-11-01T00:00:00Z",
                    "lead_time": 1.0,
                    "result": [box(0, 0, 50, 50, "crack")],
                }
            ],
        }
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    r = jangin("label", "import", str(path), "-d", str(ds.root))
    assert r.returncode == 0, r.stderr
    assert "1 annotation(s): 1 new" in r.stderr
    schema = tmp_path / "s.yaml"
    schema.write_text(yaml.safe_dump(FRAME_SCHEMA))
    r = jangin("label", "config", str(schema))
    assert r.returncode == 0 and r.stdout.startswith("<View>") and "<RectangleLabels" in r.stdout
