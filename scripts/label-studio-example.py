#!/usr/bin/env python
"""Make ``sample_data/label-studio/export.json`` from a real Label Studio round trip.

It imports the first four inspection stills and session weld-02 of the sample data into a scratch
dataset, starts a Label Studio server (``scripts/label-studio.sh``, from a scratch data dir), pushes
both as tasks, annotates them through the API as a labeller would (the stills' boxes from
``inspection/boxes.csv``, a span over the weld's too-fast segment and the session's grade from its
judgment events), and writes the server's own JSON export. ``jangin demo`` imports that file when no
server is configured.

    python scripts/label-studio-example.py [--out sample_data/label-studio/export.json]

Needs Jangin's environment (``jangin.capture`` and ``jangin.labeling``) and the Label Studio venv.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import socket
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
TOKEN = "jangin-example-token-01"
N_STILLS = 4

FRAMES_PROJECT = "jangin-example-defects"
SESSIONS_PROJECT = "jangin-example-sessions"
FRAME_SCHEMA = {
    "target": "frame",
    "labels": [
        {"kind": "box", "names": ["porosity", "undercut", "spatter", "crack"]},
        {"kind": "class", "name": "quality", "names": ["OK", "NG"]},
    ],
}
SESSION_SCHEMA = {
    "target": "session",
    "labels": [
        {"kind": "span", "names": ["travel_too_fast", "unstable_arc", "no_current_reduction"]},
        {"kind": "class", "name": "grade", "names": ["expert_like", "needs_coaching"]},
    ],
    "channels": ["travel_speed_mm_s", "arc_current_A", "plate_temp_C"],
    "max_points": 1500,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    from jangin.capture import import_session, import_stills
    from jangin.core import Dataset
    from jangin.labeling import LabelStudioClient, push

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=SAMPLE / "label-studio" / "export.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="jangin-ls-example-"))
    ds = Dataset.create(work / "dataset")
    stills = import_stills(ds, SAMPLE / "inspection", session_key="inspection", limit=N_STILLS)
    weld = import_session(ds, SAMPLE / "sessions" / "weld-02", frame_interval_s=5.0)
    port = _free_port()
    data, root = work / "ls-data", work / "ls-root"
    token = TOKEN
    # The tests' migrated data dir (made by tests/labeling/conftest.py) saves a ~1-3 min migration.
    template = Path.home() / ".cache" / "jangin" / "label-studio-template-1.23.2"
    if (template / "label_studio.sqlite3").is_file():
        shutil.copytree(template, data)
        token = "jangin-test-token-0001"
    script = str(REPO / "scripts" / "label-studio.sh")
    subprocess.run(["bash", script, "install"], check=True)
    subprocess.run(
        [
            "bash",
            script,
            "start",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--root",
            str(root),
            "--token",
            token,
            "--wait",
            "600",
        ],
        check=True,
    )
    try:
        client = LabelStudioClient(f"http://127.0.0.1:{port}", token)
        push(
            ds,
            FRAMES_PROJECT,
            client=client,
            root=root,
            schema=FRAME_SCHEMA,
            where=f"f.session_id = '{stills.session_id}'",
        )
        push(
            ds,
            SESSIONS_PROJECT,
            client=client,
            root=root,
            schema=SESSION_SCHEMA,
            where=f"s.session_id = '{weld.session_id}'",
        )

        # A labeller draws the stills' defect boxes (pixels -> percent of the original size) ...
        boxes: dict[str, list[dict[str, str]]] = {}
        with open(SAMPLE / "inspection" / "boxes.csv", newline="") as f:
            for r in csv.DictReader(f):
                boxes.setdefault(r["image"], []).append(r)
        pid = client.project(FRAMES_PROJECT)["id"]
        for task in client.iter_tasks(pid, include="id,data"):
            info = task["data"]["jangin"]
            w, h = info["width"], info["height"]
            result = []
            for i, b in enumerate(boxes.get(info["source_uri"], [])):
                x1, y1, x2, y2 = (float(b[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
                result.append(
                    {
                        "id": f"box{i}",
                        "from_name": "box",
                        "to_name": "image",
                        "type": "rectanglelabels",
                        "original_width": w,
                        "original_height": h,
                        "image_rotation": 0,
                        "value": {
                            "x": x1 / w * 100,
                            "y": y1 / h * 100,
                            "width": (x2 - x1) / w * 100,
                            "height": (y2 - y1) / h * 100,
                            "rotation": 0,
                            "rectanglelabels": [b["class"]],
                        },
                    }
                )
            result.append(
                {
                    "id": "q",
                    "from_name": "quality",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": ["NG" if result else "OK"]},
                }
            )
            client.annotate(task["id"], result, lead_time=20.0 + 5 * len(result))

        # ... and marks the segment the inspector judged NG on the weld's signals, in session seconds.
        (seg,) = ds.query(
            f"SELECT e.segment_start, e.segment_end, s.started_at FROM events e JOIN current_sessions s USING (session_id) "
            f"WHERE e.session_id = '{weld.session_id}' AND e.kind = 'judgment' AND e.value LIKE 'NG%'"
        ).to_pylist()
        start = (seg["segment_start"] - seg["started_at"]).total_seconds()
        end = (seg["segment_end"] - seg["started_at"]).total_seconds()
        pid = client.project(SESSIONS_PROJECT)["id"]
        (task,) = client.iter_tasks(pid, include="id,data")
        client.annotate(
            task["id"],
            [
                {
                    "id": "span0",
                    "from_name": "span",
                    "to_name": "series",
                    "type": "timeserieslabels",
                    "value": {
                        "start": start,
                        "end": end,
                        "instant": False,
                        "timeserieslabels": ["travel_too_fast"],
                    },
                },
                {
                    "id": "grade",
                    "from_name": "grade",
                    "to_name": "series",
                    "type": "choices",
                    "value": {"choices": ["needs_coaching"]},
                },
            ],
            lead_time=95.0,
        )

        export = []
        for title in (FRAMES_PROJECT, SESSIONS_PROJECT):
            export += client.export(client.project(title)["id"])
    finally:
        subprocess.run(["bash", script, "stop", "--data-dir", str(data)], check=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(export, indent=1, ensure_ascii=False) + "\n")
    n_ann = sum(len(t.get("annotations") or []) for t in export)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} wrote {args.out}: {len(export)} task(s), {n_ann} annotation(s)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
