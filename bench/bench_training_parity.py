"""Export parity: max score difference ONNX Runtime vs PyTorch / scikit-learn over a check set.

Anomaly: PatchCore (random-init resnet18, 96 px) fitted on 40 good sample stills, checked on 60 held-out
stills, normalised image scores (the served figure) and maps. Process: gradient boosting on random
features, P(NG) over 500 rows. Each figure is printed against the gate's tolerance (ratio < 1 passes).
Run: ``python bench/bench_training_parity.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    from jangin.training._process import check_process_parity, export_process_onnx

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    insp = ROOT / "sample_data" / "inspection"
    good = sorted((insp / "good").glob("*.jpg"))
    check = good[40:70] + sorted((insp / "images").glob("*.jpg"))[:30]
    size = 96
    for k in (1, 9):
        _anomaly(k, good, check, size)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20)).astype(np.float32)
    y = X[:, 0] + X[:, 1] ** 2 + rng.normal(size=500) > 1
    clf = GradientBoostingClassifier(random_state=0).fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        p = check_process_parity(export_process_onnx(clf, 20, Path(tmp) / "p.onnx"), clf, X)
    print(
        f"process: {p['windows']} rows, max |P(NG) diff| {p['max_proba_diff']:.2e}, flips {p['decision_flips']}; "
        f"ratio to tolerance {p['max_proba_diff'] / p['tolerance']:.4f}"
    )


def _anomaly(k: int, good: list[Path], check: list[Path], size: int) -> None:
    import torch

    from jangin.core import TrainingError
    from jangin.training._anomaly import (
        MEAN,
        STD,
        AnomalyConfig,
        _build,
        _Scorer,
        check_anomaly_parity,
        export_anomaly_onnx,
        k_center_greedy,
    )
    from jangin.training._image_set import decode_images

    torch.manual_seed(0)
    model, _ = _build(AnomalyConfig(imgsz=size, num_neighbors=k), torch)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(decode_images([p.read_bytes() for p in good[:40]], size, MEAN, STD)))
    emb = torch.vstack(model.embedding_store)
    model.embedding_store.clear()
    model.memory_bank = emb[k_center_greedy(emb, 0.1)]
    model.eval()
    net = _Scorer(model).eval()
    x = decode_images([p.read_bytes() for p in check], size, MEAN, STD)
    with torch.no_grad():
        s, m = (t.numpy() for t in net(torch.from_numpy(x)))
    norm = {
        "score_min": float(s.min()),
        "score_max": float(s.max()),
        "map_min": float(m.min()),
        "map_max": float(m.max()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_anomaly_onnx(net, Path(tmp) / "a.onnx", size)
        try:
            a = check_anomaly_parity(onnx, net, x, float(np.median(s)), norm)
        except TrainingError as exc:
            print(f"anomaly, PatchCore num_neighbors={k}: REFUSED: {exc.message}")
            return
    print(
        f"anomaly, PatchCore num_neighbors={k}: {a['images']} images, max |normalised score diff| "
        f"{a['max_norm_score_diff']:.2e} (raw {a['max_raw_score_diff']:.2e}), map {a['max_norm_map_diff']:.2e}, "
        f"flips {a['decision_flips']}; ratio to tolerance {a['max_norm_score_diff'] / a['tolerance']:.4f}"
    )


if __name__ == "__main__":
    main()
