"""Demo step: the detector exported to OpenVINO / INT8 through the parity gate, and the runtime table."""

from __future__ import annotations

import os
import time
from typing import Any


def demo_runtimes(mv: Any, det_set: Any, *, say: Any = print, calibration: int = 256) -> dict[str, Any]:
    """Export ``mv`` (a detector) to the first of ONNX Runtime INT8 (on 2 AVX2 cores the faster INT8),
    OpenVINO fp32 that passes the gate (metric and verdict agreement) on the held-out split (INT8 calibrated on up to ``calibration`` training images: 16
    were too few for the demo detector, mAP50 -0.03; its 112 keep it within 0.005; INT8 settings chosen
    on the val split), and print the runtime table:
    runtime, precision, p50 ms (batch 1), img/s (batch 8), mAP50, parity. The artifact goes into the
    manifest, so a server that opens models with ``open_artifact`` serves it when it is measured faster.

    Skipped with ``JANGIN_DEMO_SKIP=runtimes``; any failure is reported, never fatal to the demo.
    """
    if "runtimes" in os.environ.get("JANGIN_DEMO_SKIP", "").split(","):
        return {"skipped": True}
    import cv2
    import numpy as np

    from jangin.core.artifacts import ModelVersion
    from jangin.core.runtimes import OV_CACHE, open_artifact, open_runtime
    from jangin.training._export import CheckSet, _tensors, export_best

    t0 = time.perf_counter()
    split = "test" if det_set.splits["test"] else "val"
    read = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in det_set.images(split)]
    cal = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in det_set.images("train")[:calibration]]
    sel = det_set.images("val") if split == "test" else []  # INT8 settings are chosen on val
    check = CheckSet(
        read,
        det_set.truths(split),
        cal,
        f"{split} split ({len(read)} images)",
        [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sel],
        det_set.truths("val") if sel else [],
    )
    arts, refused = export_best(
        mv,
        check,
        candidates=(("onnxruntime", "int8"), ("openvino", "fp32")),
        stop_at=0.0,
        measure_seconds=0.5,
    )
    rows = [{"runtime": a.runtime, "precision": a.precision, "artifact": a} for a in arts]
    mv = ModelVersion.load(mv.path)
    xs, _ = _tensors(mv.manifest, read[:1] or cal[:1])
    table = []
    for r in [{"runtime": "onnxruntime", "precision": "fp32", "artifact": None}, *rows]:
        art = r["artifact"]
        path = mv.path / (art.files[0] if art else "model.onnx")
        rt = open_runtime(path, runtime=r["runtime"], precision=r["precision"], cache_dir=mv.path / OV_CACHE)
        feed = {rt.input_names[0]: np.stack(xs)}
        rt.run(feed)
        lat = []
        for _ in range(5):
            t = time.perf_counter()
            rt.run(feed)
            lat.append((time.perf_counter() - t) * 1000)
        p = art.parity if art else None
        fp32_tp = rows[0]["artifact"].fp32_throughput if rows else None
        table.append(
            {
                "runtime": r["runtime"],
                "precision": r["precision"],
                "p50_ms": round(float(np.median(lat)), 1),
                "img_s": art.throughput if art else fp32_tp,
                "mAP50": p["value"] if p else (rows[0]["artifact"].parity["fp32"] if rows else None),
                "parity": f"passed (drop {p['drop']:+.4f})" if p else "reference",
            }
        )
    served = open_artifact(mv.path, mv.manifest, prefer=[])
    say("runtimes (held-out split, this box):")
    say(f"  {'runtime':<12} {'precision':<9} {'p50 ms':>7} {'img/s':>8} {'mAP50':>7}  parity")
    for r in table:
        img_s = f"{r['img_s']:.1f}" if r["img_s"] else "-"
        m50 = f"{r['mAP50']:.3f}" if r["mAP50"] is not None else "-"
        say(
            f"  {r['runtime']:<12} {r['precision']:<9} {r['p50_ms']:>7.1f} {img_s:>8} {m50:>7}  {r['parity']}"
        )
    for line in refused:
        say(f"  refused: {line}")
    say(f"  open_artifact serves {served.artifact} ({time.perf_counter() - t0:.0f} s)")  # type: ignore[attr-defined]
    return {"table": table, "refused": refused, "served": served.artifact}  # type: ignore[attr-defined]
