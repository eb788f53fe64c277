"""Anomaly: fit time, ms/image and image AUROC of our served ONNX path vs anomalib's own path.

On the sample stills (good/ for training; held-out good + defective for the test), PatchCore on a
random-init resnet18 at 128 px. Baselines measured in the same process:

* fit: our vectorised k-center-greedy coreset vs anomalib's ``KCenterGreedy`` (same embeddings);
* inference: ONNX Runtime on the exported model vs anomalib's ``TorchInferencer`` on the same model
  (falls back to the bare torch model, and says so, if the inferencer cannot load it).

Run: ``MALLOC_MMAP_THRESHOLD_=1048576 python bench/bench_training_anomaly.py [--quick]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(quick: bool = False) -> None:
    import cv2
    import torch

    from jangin.training._anomaly import (
        MEAN,
        STD,
        AnomalyConfig,
        _build,
        _Scorer,
        export_anomaly_onnx,
        k_center_greedy,
    )
    from jangin.training._metrics import roc_auc
    from jangin.training._ultralytics_env import import_onnxruntime

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    insp = ROOT / "sample_data" / "inspection"
    good = sorted((insp / "good").glob("*.jpg"))
    bad = sorted((insp / "images").glob("*.jpg"))[: 20 if quick else 80]
    train, test_good = good[:60], good[60:]
    test = test_good + bad
    y = np.array([False] * len(test_good) + [True] * len(bad))
    size = 128

    def load(paths: list[Path]) -> np.ndarray:
        out = np.empty((len(paths), 3, size, size), np.float32)
        for i, p in enumerate(paths):
            img = cv2.resize(cv2.imread(str(p)), (size, size))[:, :, ::-1].transpose(2, 0, 1) / 255.0
            out[i] = (img - np.reshape(MEAN, (3, 1, 1))) / np.reshape(STD, (3, 1, 1))
        return out

    cfg = AnomalyConfig(imgsz=size)
    torch.manual_seed(0)
    model, _ = _build(cfg, torch)
    model.train()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(train), 16):
            model(torch.from_numpy(load(train[i : i + 16])))
    embed_s = time.perf_counter() - t
    emb = torch.vstack(model.embedding_store)
    model.embedding_store.clear()
    t = time.perf_counter()
    model.memory_bank = emb[k_center_greedy(emb, 0.1)]
    ours_s = time.perf_counter() - t
    if quick:
        theirs_s = float("nan")
    else:
        from anomalib.models.components import KCenterGreedy

        t = time.perf_counter()
        KCenterGreedy(embedding=emb, sampling_ratio=0.1).sample_coreset()
        theirs_s = time.perf_counter() - t
    print(
        f"fit: embeddings {embed_s:.1f} s; coreset ours {ours_s:.2f} s vs anomalib KCenterGreedy {theirs_s:.2f} s "
        f"(ratio anomalib / ours {theirs_s / ours_s:.1f}x)"
    )

    model.eval()
    net = _Scorer(model).eval()
    x = load(test)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_anomaly_onnx(net, Path(tmp) / "m.onnx", size)
        ort = import_onnxruntime()
        sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        sess.run(["pred_score"], {"images": x[:1]})
        t = time.perf_counter()
        ours = np.concatenate([sess.run(["pred_score"], {"images": x[i : i + 1]})[0] for i in range(len(x))])
        ours_ms = 1000 * (time.perf_counter() - t) / len(x)
        ref_name, ref_ms, ref = _anomalib_inferencer(model, test, size, Path(tmp))
        if ref is None:
            ref_name = "anomalib PatchcoreModel (torch, batch 1)"
            with torch.no_grad():
                net(torch.from_numpy(x[:1]))
                t = time.perf_counter()
                ref = np.concatenate([net(torch.from_numpy(x[i : i + 1]))[0].numpy() for i in range(len(x))])
                ref_ms = 1000 * (time.perf_counter() - t) / len(x)
    print(f"ours (ONNX Runtime): {ours_ms:.1f} ms/image, image AUROC {roc_auc(y, ours)}")
    print(f"{ref_name}: {ref_ms:.1f} ms/image, image AUROC {roc_auc(y, ref)}")
    print(
        f"ratio ms/image ours / anomalib: {ours_ms / ref_ms:.2f}; AUROC ours - anomalib: "
        f"{(roc_auc(y, ours) or 0) - (roc_auc(y, ref) or 0):+.4f}"
    )


def _anomalib_inferencer(model, paths, size, tmp):  # type: ignore[no-untyped-def]
    """anomalib's TorchInferencer around the same fitted torch model; None if it cannot be built here."""
    try:
        import torch
        from anomalib.deploy import TorchInferencer
        from anomalib.models import Patchcore
        from anomalib.pre_processing import PreProcessor
        from torchvision.transforms.v2 import Compose, Normalize, Resize

        lm = Patchcore(
            backbone="resnet18",
            layers=["layer2", "layer3"],
            pre_trained=False,
            pre_processor=PreProcessor(
                transform=Compose(
                    [Resize((size, size)), Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]
                )
            ),
            post_processor=False,
            evaluator=False,
            visualizer=False,
        )
        lm.model = model
        lm.eval()
        torch.save({"model": lm}, tmp / "model.pt")
        # TorchInferencer unpickles; we wrote this file ourselves a line above, in this process.
        os.environ["TRUST_REMOTE_CODE"] = "1"
        inf = TorchInferencer(path=tmp / "model.pt", device="cpu")
        inf.predict(str(paths[0]))
        t = time.perf_counter()
        scores = [float(np.asarray(inf.predict(str(p)).pred_score).reshape(-1)[0]) for p in paths]
        return "anomalib TorchInferencer", 1000 * (time.perf_counter() - t) / len(paths), np.array(scores)
    except Exception as exc:  # report and fall back: the benchmark still measures the torch model
        print(f"(anomalib TorchInferencer unavailable here: {type(exc).__name__}: {str(exc)[:160]})")
        return "", 0.0, None


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
