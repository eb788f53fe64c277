"""Round trip: export -> ``import-lerobot`` -> the channels, steps, labels and video come back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.physical.conftest import DURATION_S, FPS

from jangin.core import CaptureError


def test_export_import_round_trip(press: Any, tmp_path: Path) -> None:
    from jangin.capture._lerobot_import import import_lerobot
    from jangin.core import Dataset
    from jangin.core.timeseries import read_aligned, read_channels
    from jangin.training._lerobot import export_lerobot

    out = tmp_path / "lr"
    export_lerobot(press, out)
    target = Dataset.create(tmp_path / "back")
    results = import_lerobot(target, out)
    assert [r.session_key for r in results] == ["s0", "s1"]
    assert not any(r.skipped for r in results)
    n = int(DURATION_S * FPS)
    for k, r in enumerate(results):
        src = press.query(f"SELECT started_at FROM current_sessions WHERE session_id = 's{k}'").to_pylist()[0]
        grid = (int(src["started_at"].timestamp() * 1e6) + np.rint(np.arange(n) * 1e6 / FPS)).astype(np.int64)
        expect = read_aligned(
            press, f"s{k}", at=grid, method="linear", channels=["force_set_N", "feed_mm_s", "temp_C", "vib_g"]
        )
        got = read_channels(target, r.session_id)
        assert set(got) == {"force_set_N", "feed_mm_s", "temp_C", "vib_g"}
        for ch, (t, v) in got.items():
            assert np.array_equal(t, grid)  # same times (start time restored)
            assert v == pytest.approx(
                expect.column(ch).to_numpy(), rel=1e-6
            )  # the resampled values (float32)
        steps = target.query(
            f"SELECT name, occurrence FROM events WHERE session_id = '{r.session_id}' AND kind = 'step_start' "
            "ORDER BY ts"
        ).to_pylist()
        assert steps == [{"name": "heat", "occurrence": 1}, {"name": "hold", "occurrence": 1}]
    s = target.query("SELECT * FROM current_sessions ORDER BY started_at").to_pylist()
    assert [x["skill_level"] for x in s] == ["expert", "expert"]
    assert dict(s[0]["parameters"]) == {"force_target_N": "120", "recipe": "A"}
    assert s[0]["process"] == "demo_press" and s[0]["source"] == "lerobot"
    lab = target.query("SELECT question, name FROM current_labels").to_pylist()
    assert lab == [{"question": "outcome", "name": "good"}] * 2
    media = target.query("SELECT frames, deidentified FROM media ORDER BY session_id").to_pylist()
    assert [m["frames"] for m in media] == [n, n] and all(m["deidentified"] for m in media)
    assert target.query("SELECT count(*) AS c FROM frames").column(0)[0].as_py() >= 2 * int(DURATION_S)
    # a second import finds the sessions
    assert all(r.skipped for r in import_lerobot(target, out))


def test_refuses_what_is_not_lerobot_v3(tmp_path: Path) -> None:
    from jangin.capture._lerobot_import import import_lerobot
    from jangin.core import Dataset

    ds = Dataset.create(tmp_path / "ds")
    with pytest.raises(CaptureError, match="meta/info.json"):
        import_lerobot(ds, tmp_path)
    (tmp_path / "old" / "meta").mkdir(parents=True)
    (tmp_path / "old" / "meta" / "info.json").write_text(
        '{"codebase_version": "v2.1", "fps": 10, "features": {}}'
    )
    with pytest.raises(CaptureError, match="v2.1"):
        import_lerobot(ds, tmp_path / "old")


def test_single_channel_feature_is_a_scalar_column(tmp_path: Path) -> None:
    """LeRobot reads a feature of shape (1,) as a scalar: the export writes it so, the import reads it back."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tests.physical.conftest import build

    from jangin.capture._lerobot_import import import_lerobot
    from jangin.core import Dataset
    from jangin.core.timeseries import read_channels
    from jangin.training._lerobot import export_lerobot

    ds = build(tmp_path / "ds", sessions=1, video=False, register=False)
    res = export_lerobot(ds, tmp_path / "lr", action=["force_set_N", "feed_mm_s", "temp_C", "vib_g"])
    assert res.state == ["ambient_C"]
    data = pq.read_table(tmp_path / "lr/data/chunk-000/file-000.parquet")
    assert data.schema.field("observation.state").type == pa.float32()
    back = Dataset.create(tmp_path / "back")
    (r,) = import_lerobot(back, tmp_path / "lr")
    got = read_channels(back, r.session_id)
    assert set(got) == {"ambient_C", "force_set_N", "feed_mm_s", "temp_C", "vib_g"}
    assert got["ambient_C"][1] == pytest.approx(data.column("observation.state").to_numpy(), rel=1e-6)
