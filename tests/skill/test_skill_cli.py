"""``jangin skill build|score|report|steps``, run in-process on core's app.

The stages' ``jangin.cli`` entry points (``skill-build`` in training, ``skill`` in inference) are
called directly: the installed entry points may belong to another checkout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cli():  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from jangin.core.cli import app, command_group
    from jangin.inference.cli import register_skill as inference_skill
    from jangin.training.cli import register_skill as training_skill

    group = next((g.typer_instance for g in app.registered_groups if g.name == "skill"), None)
    if group is None or not group.registered_commands:
        training_skill(app)
        inference_skill(app)
    group = command_group(app, "skill")
    assert sum(1 for g in app.registered_groups if g.name == "skill") == 1  # one group, two stages
    assert {c.name for c in group.registered_commands} >= {"build", "score", "report", "steps"}
    return CliRunner(), app


@pytest.mark.slow
def test_skill_cli(cli, skill_ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner, app = cli
    ds, ids = skill_ds
    d = ["--dataset", str(ds.root)]
    r = runner.invoke(
        app, ["skill", "build", "--process", "mig_butt_weld", "--name", "cli-skill", "--json", *d]
    )
    assert r.exit_code == 0, r.output
    built = json.loads(r.stdout.strip().splitlines()[-1])
    assert built["name"] == "cli-skill" and built["metrics"]["sessions"] == 3
    ref = f"cli-skill:{built['version']}"

    r = runner.invoke(app, ["skill", "score", ids["weld-02"], "--profile", ref, "--json", *d])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["profile"] == ref and res["score"] < 80
    assert any(x["channel"] == "travel_speed_mm_s" and x["step"] == "segment_3" for x in res["deviations"])

    r = runner.invoke(app, ["skill", "score", ids["weld-02"], "--profile", ref, *d])
    assert r.exit_code == 0 and "critical\tsegment_3\ttravel_speed_mm_s" in r.stdout, r.output

    out = tmp_path / "coach" / "weld-02.html"
    r = runner.invoke(app, ["skill", "report", ids["weld-02"], "-o", str(out), "--profile", ref, *d])
    assert r.exit_code == 0, r.output
    assert out.is_file() and "data:image/png;base64," in out.read_text()

    r = runner.invoke(app, ["skill", "steps", ids["weld-04"], *d])  # default profile: newest of the process
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("step\tstart_s") and len(lines) == 8
    assert all(line.split("\t")[4] == "events" for line in lines[1:])

    r = runner.invoke(app, ["skill", "score", "nope", *d])
    assert r.exit_code != 0
