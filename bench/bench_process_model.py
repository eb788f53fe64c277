"""Process model on synthetic worn/unworn runs with a planted confound: what the user is told.

Runs (``tests/training/anomaly_data.py:make_runs_dataset``): 10 Hz machining-like channels, one run-level
label (worn / unworn) per run. Worn runs get +0.2 on ``x_pos``'s level (a set-up offset, 10 run-to-run SD)
and, as the real but weak wear signal, ``spindle_load`` +``signal`` run-level SD. Prints, leave-one-run-out:
AUROC with all features, with the confounded channel removed, the single-channel threshold chosen inside
each fold and on all data (hindsight), bootstrap intervals and the warnings; then the same without the
offset. NEU-DET is images: nothing to run here.

Run: ``python bench/bench_process_model.py [--runs 30] [--signal 1.0]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _factory():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "anomaly_data", ROOT / "tests" / "training" / "anomaly_data.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--signal", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.getLogger("jangin").setLevel(logging.ERROR)
    from jangin.core import ModelRegistry
    from jangin.training import ProcessConfig, train_process

    data = _factory()
    with tempfile.TemporaryDirectory() as tmp:
        for case, offset in (("planted offset +0.2 on x_pos", 0.2), ("no offset", 0.0)):
            ds = data.make_runs_dataset(
                Path(tmp) / f"ds-{offset}",
                n_runs=args.runs,
                offset=offset,
                signal=args.signal,
                seed=args.seed,
            )
            for features in ("all", "deviation"):
                t = time.perf_counter()
                mv = train_process(
                    ds,
                    ProcessConfig(
                        name="wear", ok_name="unworn", features=features, seed=args.seed, force=True
                    ),
                    registry=ModelRegistry(ds.models_dir),
                    work_dir=Path(tmp) / "w",
                )
                m = mv.manifest.metrics
                print(
                    f"\n== {case}, features={features}: {m['evaluation']} ({time.perf_counter() - t:.0f} s)"
                )
                print(
                    f"  model AUROC {m['auroc']}  95% CI {m['auroc_ci95']}  accuracy {m['accuracy']} {m['accuracy_ci95']}"
                )
                print(
                    f"  without confounded channels {m['confounds']['channels'] or '-'}: "
                    f"AUROC {m.get('auroc_without_confounds', '-')}"
                )
                print(
                    f"  single-channel threshold inside each fold: AUROC {m['baseline_auroc']} "
                    f"accuracy {m['baseline_accuracy']}; chosen on all data (hindsight): "
                    f"{m['baseline_hindsight_auroc']} ({m['baseline_hindsight_channel']})"
                )
                for w in m["warnings"]:
                    print(f"  warning: {w[:160]}")


if __name__ == "__main__":
    main()
