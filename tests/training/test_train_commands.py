"""``jangin train process`` through the command group (in process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from jangin.core import ModelRegistry


def test_train_process_command_with_yaml_config(adata: Any, tmp_path: Path) -> None:
    from jangin.training.cli import train_app

    ds = adata.make_process_dataset(tmp_path / "ds", n_sessions=4)
    cfg = tmp_path / "process.yaml"
    cfg.write_text("n_estimators: 10\nname: from-yaml\n")
    r = CliRunner().invoke(
        train_app,
        ["process", "--dataset", str(ds.root), "--config", str(cfg), "--work-dir", str(tmp_path / "w")],
    )
    assert r.exit_code == 0, r.output
    assert "leave-one-session-out" in r.output, r.output
    mv = ModelRegistry(ds.models_dir).get("from-yaml")  # the YAML's name: no --name flag was given
    assert mv.manifest.train_config["n_estimators"] == 10
