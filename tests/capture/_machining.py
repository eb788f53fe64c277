"""A machining-like run set written the way a CNC logger exports it: one wide CSV per run, 100 ms
sampling, NO time column, 47 numeric channels (4 axes x 11 + 3 machine channels), a text
``Machining_Process`` column naming the phase, and a run table with recipe parameters and one
worn / unworn label per run. Generated in the tests, never committed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

AXES = ("X1", "Y1", "Z1", "S1")
SIGNALS = (
    "ActualPosition",
    "ActualVelocity",
    "ActualAcceleration",
    "CommandPosition",
    "CommandVelocity",
    "CommandAcceleration",
    "CurrentFeedback",
    "DCBusVoltage",
    "OutputCurrent",
    "OutputVoltage",
    "OutputPower",
)
MACHINE = ("M1_CURRENT_PROGRAM_NUMBER", "M1_sequence_number", "M1_CURRENT_FEEDRATE")
CHANNELS = [f"{a}_{s}" for a in AXES for s in SIGNALS] + list(MACHINE)
#: Phases in order, each (name, rows); "Layer 1 Up" comes twice: two occurrences, never merged.
PHASES = (("Prep", 20), ("Layer 1 Up", 30), ("Layer 1 Down", 25), ("Repositioning", 10), ("Layer 1 Up", 30))
ROWS = sum(n for _, n in PHASES)
START = "2026-03-02T08:00:00Z"


def write_run(path: Path, seed: int, *, phase_gap_at: int | None = None) -> None:
    """One run's CSV (``phase_gap_at``: leave that row's phase empty)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 1.0, (ROWS, len(CHANNELS)))
    data[:, CHANNELS.index("X1_ActualPosition")] = np.arange(ROWS) * 0.5 + seed  # known values
    phases = [name for name, n in PHASES for _ in range(n)]
    if phase_gap_at is not None:
        phases[phase_gap_at] = ""
    lines = [",".join([*CHANNELS, "Machining_Process"])]
    lines += [",".join([*(f"{v:.5f}" for v in row), ph]) for row, ph in zip(data, phases, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def write_run_set(root: Path, n_runs: int = 3) -> Path:
    """``root/runs.csv`` + ``root/run_NN.csv``; returns the run table's path."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [
        "file,technician,skill_level,station,started_at,rate_hz,feedrate,clamp_pressure,material,label.tool_condition"
    ]
    for i in range(1, n_runs + 1):
        write_run(root / f"run_{i:02d}.csv", i)
        rows.append(
            f"run_{i:02d}.csv,Operator {i},{'expert' if i % 2 else 'novice'},mill-1,"
            f"2026-03-02T0{i}:00:00Z,10,{3 * i},{2.5 + i / 10},wax,{'worn' if i == 2 else 'unworn'}"
        )
    table = root / "runs.csv"
    table.write_text("\n".join(rows) + "\n")
    return table
