"""The meta parts of a LeRobot export: streaming statistics (``meta/stats.json``), the tasks table
(``meta/tasks.parquet``) and the dataset card (``README.md``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow as pa

    from jangin.training._lerobot import LeRobotExport

__all__ = ["QUANTILES", "Stats", "card", "tasks_table"]

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
_RESERVOIR = 20_000  # rows kept per feature for the quantiles (deterministic reservoir)


class Stats:
    """Streaming statistics of one feature (vectors of ``dim``): exact min/max/mean/std/count,
    quantiles from a deterministic reservoir of rows."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        self.n = 0
        self.sum = np.zeros(dim)
        self.sq = np.zeros(dim)
        self.min = np.full(dim, np.inf)
        self.max = np.full(dim, -np.inf)
        self.res: list[npt.NDArray[Any]] = []
        self.kept = 0
        self.rng = np.random.default_rng(seed)

    def update(self, x: npt.NDArray[Any]) -> None:
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        finite = np.where(np.isfinite(x), x, np.nan)
        self.n += len(x)
        self.sum += np.nansum(finite, 0)
        self.sq += np.nansum(finite**2, 0)
        with np.errstate(all="ignore"):
            if len(x):
                self.min = np.fmin(self.min, np.nanmin(np.where(np.isnan(finite), np.inf, finite), 0))
                self.max = np.fmax(self.max, np.nanmax(np.where(np.isnan(finite), -np.inf, finite), 0))
        take = x if len(x) <= _RESERVOIR else x[self.rng.choice(len(x), _RESERVOIR, replace=False)]
        self.res.append(take)
        self.kept += len(take)
        if self.kept > 2 * _RESERVOIR:
            allx = np.concatenate(self.res)
            self.res = [allx[self.rng.choice(len(allx), _RESERVOIR, replace=False)]]
            self.kept = _RESERVOIR

    def result(self, shape: tuple[int, ...] | None = None) -> dict[str, Any]:
        n = max(self.n, 1)
        mean = self.sum / n
        std = np.sqrt(np.maximum(self.sq / n - mean**2, 0.0))
        allx = np.concatenate(self.res) if self.res else np.zeros((0, len(self.sum)))
        with np.errstate(all="ignore"):
            qs = {
                f"q{round(q * 100):02d}": np.nanquantile(allx, q, axis=0) if len(allx) else mean
                for q in QUANTILES
            }
        out = {"min": self.min, "max": self.max, "mean": mean, "std": std, **qs}
        fix = {k: np.where(np.isfinite(v), v, 0.0) for k, v in out.items()}
        res: dict[str, Any] = {k: (v.reshape(shape) if shape else v).tolist() for k, v in fix.items()}
        res["count"] = [int(self.n)]
        return res


def tasks_table(tasks: list[str]) -> pa.Table:
    """``meta/tasks.parquet`` as pandas writes a frame indexed by ``task`` (LeRobot reads it with pandas)."""
    import pyarrow as pa

    meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    table = pa.table(
        {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())}
    )
    return table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})


def card(
    root: Path,
    res: LeRobotExport,
    info: dict[str, Any],
    *,
    repo_id: str,
    licence: str,
    where: str | None,
    snapshot: dict[str, int],
    resample: str,
    deid: str,
    units: dict[str, Any],
    defn_name: str | None,
) -> None:
    def chans(cs: list[str]) -> str:
        return ", ".join(f"{c} ({units.get(c) or '-'})" for c in cs) or "(none)"

    lines = [
        "---",
        f"license: {licence}",
        "tags: [LeRobot, jangin]",
        "task_categories: [robotics]",
        "---",
        f"# {repo_id}",
        "",
        "A LeRobot v3.0 dataset exported by Jangin (`jangin export lerobot`): one episode per recorded",
        "session of skilled technicians.",
        "",
        "## Provenance",
        f"- exported: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- selection: `{where or 'all sessions'}` ({res.episodes} sessions)",
        f"- source dataset snapshot (table versions): `{json.dumps(snapshot, sort_keys=True)}`",
        f"- process definition: {defn_name or 'none registered'}",
        f"- de-identification: {deid}",
        f"- licence: {licence}",
        "",
        "## Features",
        f"- fps: {res.fps}; frames: {res.frames}; tasks: {len(res.tasks)}",
        f"- observation.state (machine channels): {chans(res.state)}",
        f"- action (operator channels): {chans(res.action)}",
        f"- cameras: {', '.join(res.cameras) or '(none)'} (H.264 yuv420p)",
        f"- resampling: `{resample}` "
        + (
            "(linear interpolation between neighbouring samples; NaN outside a channel's range)"
            if resample == "linear"
            else "(last sample at or before each frame, within 2 sample periods)"
        ),
        "- native-rate channels (not resampled): `jangin/native/chunk-000/file-000.parquet` "
        "(episode_index, channel, timestamp s, value, unit)",
        "- episode metadata (meta/episodes): `jangin/session_id`, `jangin/skill_level`, `jangin/parameters` "
        "(recipe, JSON), `jangin/judgments` (JSON), `jangin/steps` (JSON [start_s, end_s, step])",
        "- stats.json: exact min/max/mean/std/count; quantiles from a reservoir sample",
    ]
    if res.warnings:
        lines += ["", "## Warnings", *[f"- {w}" for w in res.warnings]]
    lines += [
        "",
        "## Load",
        "```python",
        "from lerobot.datasets.lerobot_dataset import LeRobotDataset",
        f"ds = LeRobotDataset('{repo_id}', root='{root.name}')",
        "```",
        "",
    ]
    (root / "README.md").write_text("\n".join(lines))
