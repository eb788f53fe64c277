"""`import jangin.core` stays light: fast, and without torch, pyarrow or DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_import_core_is_light() -> None:
    code = (
        "import time, sys, json; t = time.perf_counter(); import jangin.core; dt = time.perf_counter() - t; "
        "print(json.dumps({'s': dt, 'mods': [m for m in ('torch', 'pyarrow', 'duckdb', 'deltalake', 'cv2', 'ultralytics') if m in sys.modules]}))"
    )
    best = None
    for _ in range(3):  # the machine is shared: take the best of three cold starts
        out = json.loads(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        )
        assert out["mods"] == [], f"import jangin.core pulled in {out['mods']}"
        best = out["s"] if best is None else min(best, out["s"])
    assert best is not None and best < 0.5, f"import jangin.core took {best:.3f} s"


@pytest.mark.parametrize("stage", ["capture", "labeling", "training", "inference"])
def test_stage_imports_do_not_import_heavy_frameworks(stage: str) -> None:
    code = f"import sys, jangin.{stage}; print(','.join(m for m in ('torch', 'ultralytics', 'label_studio_sdk') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
