"""Anomaly methods without pretrained weights on the NEU-DET one-class task: the method table.

Data: patches cropped by ``bench/neu_det_patches.py`` for the frozen split ``bench/neu_det_split.json``
(train: good patches only; val / test: good patches and defective patches with box masks; test images
never trained on). Methods, all from random init (no weights exist here, nothing is downloaded):

* ``grey``: grey-level baseline: mean, std, 5/50/95th percentiles and mean gradient of a patch,
  scored by the standardised distance to the good training patches (the trivial baseline);
* ``patchcore`` / ``padim``: Jangin's path today (anomalib torch models, random-init resnet18);
* ``cutpaste``: a small CNN pretrained on the good patches with the CutPaste pretext, then PatchCore
  on its features (``jangin.training._ssl``);
* ``draem``: reconstruction + discriminative networks trained on synthetic Perlin-noise anomalies
  (``jangin.training._draem``);
* ``texture``: no learned weights at all: fixed Gabor filter bank + grey-level statistics per patch,
  standardised, scored by the distance to the nearest good training descriptors
  (``jangin.training._texture``; at ``--tex-imgsz``, default the patches' own 64 px);
* ``anomalib-<model>``: anomalib's own Engine on the same patches, split and random-init backbone.

Prints: method, train CPU seconds, image AUROC val / test, pixel AUROC test, ONNX Runtime ms per image
(batch 1, one thread), and the test AUROC against the grey baseline.

    python bench/neu_det_patches.py crop --out /tmp/neu-patches
    MALLOC_MMAP_THRESHOLD_=1048576 nice -n 10 python bench/bench_anomaly_methods.py --patches /tmp/neu-patches
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


def load(patches: Path, imgsz: int) -> dict[str, dict[str, Any]]:
    """``{split: {"x": (N,3,S,S) normalised, "grey": (N,h,w) uint8, "bad": (N,), "mask": (N,S,S) bool}}``."""
    import cv2

    with open(patches / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, dict[str, Any]] = {}
    for split in ("train", "val", "test"):
        rs = [r for r in rows if r["split"] == split]
        grey = np.stack([cv2.imread(str(patches / r["file"]), cv2.IMREAD_GRAYSCALE) for r in rs])
        big = np.stack([cv2.resize(g, (imgsz, imgsz), interpolation=cv2.INTER_LINEAR) for g in grey])
        x = (np.repeat(big[:, None], 3, 1).astype(np.float32) / 255 - MEAN) / STD
        masks = np.zeros((len(rs), imgsz, imgsz), bool)
        for i, r in enumerate(rs):
            if r["mask"]:
                m = cv2.imread(str(patches / r["mask"]), cv2.IMREAD_GRAYSCALE)
                masks[i] = cv2.resize(m, (imgsz, imgsz), interpolation=cv2.INTER_NEAREST) > 127
        out[split] = {
            "x": x.astype(np.float32),
            "grey": grey,
            "bad": np.array([r["bad"] == "1" for r in rs]),
            "mask": masks,
            "cls": np.array([r["cls"] for r in rs]),
        }
    return out


def grey_features(g: np.ndarray) -> np.ndarray:
    """Per patch: mean, std, 5/50/95th percentile, mean absolute gradient."""
    g = g.astype(np.float32)
    flat = g.reshape(len(g), -1)
    grad = np.abs(np.diff(g, axis=1)).mean((1, 2)) + np.abs(np.diff(g, axis=2)).mean((1, 2))
    return np.column_stack([flat.mean(1), flat.std(1), *np.percentile(flat, [5, 50, 95], axis=1), grad])


def run_grey(d: dict[str, Any]) -> dict[str, Any]:
    """The grey-level one-class baseline (no map)."""
    t0 = time.process_time()
    f = grey_features(d["train"]["grey"])
    mu, sd = f.mean(0), f.std(0) + 1e-6
    fit = time.process_time() - t0
    score = {s: np.sqrt((((grey_features(d[s]["grey"]) - mu) / sd) ** 2).sum(1)) for s in ("val", "test")}
    return {"fit_cpu_s": fit, "scores": score, "maps": None, "onnx": None, "train_patches": len(f)}


def score_torch(net: Any, x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    import torch

    s, m = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            a, b = net(torch.from_numpy(x[i : i + batch]))
            s.append(a.numpy())
            m.append(b[:, 0].numpy())
    return np.concatenate(s), np.concatenate(m)


def run_torch_method(name: str, d: dict[str, Any], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Fit one of Jangin's methods on the good train patches; scores and maps on val / test; ONNX file."""
    import torch

    x = d["train"]["x"]
    if name in ("cutpaste", "draem") and args.train_limit and len(x) > args.train_limit:
        x = x[np.sort(np.random.default_rng(args.seed).permutation(len(x))[: args.train_limit])]
    t0 = time.process_time()
    info: dict[str, Any] = {}
    if name == "cutpaste":
        from jangin.training._ssl import SslConfig, fit_cutpaste

        net, info = fit_cutpaste(
            x, SslConfig(epochs=args.epochs, seed=args.seed, threads=args.threads), progress=_progress
        )
    elif name == "draem":
        from jangin.training._draem import DraemConfig, fit_draem

        net, info = fit_draem(
            x, DraemConfig(epochs=args.epochs, seed=args.seed, threads=args.threads), progress=_progress
        )
    elif name == "texture":
        from jangin.training._texture import TextureConfig, fit_texture

        net, info = fit_texture(x, TextureConfig(seed=args.seed))
    elif name in ("patchcore", "padim"):
        from jangin.training._anomaly import AnomalyConfig, _build, _Scorer, k_center_greedy

        cfg = AnomalyConfig(algorithm=name, imgsz=x.shape[-1], seed=args.seed)
        torch.manual_seed(args.seed)
        model, _ = _build(cfg, torch)
        sub = x[np.random.default_rng(args.seed).permutation(len(x))[: args.max_train_pc]]
        model.train()
        with torch.no_grad():
            for i in range(0, len(sub), 32):
                model(torch.from_numpy(sub[i : i + 32]))
        if name == "patchcore":
            emb = torch.vstack(model.embedding_store)
            model.embedding_store.clear()
            model.memory_bank = emb[k_center_greedy(emb, cfg.coreset_ratio, args.seed)]
        else:
            model.fit()
        model.eval()
        net = _Scorer(model).eval()
        info = {"train_images": len(sub)}
    else:
        raise ValueError(name)
    fit = time.process_time() - t0
    scores, maps = {}, {}
    for s in ("val", "test"):
        scores[s], maps[s] = score_torch(net, d[s]["x"])
    from jangin.training._anomaly import export_anomaly_onnx

    onnx_path = work / f"{name}.onnx"
    export_anomaly_onnx(net, onnx_path, x.shape[-1])
    return {
        "fit_cpu_s": fit,
        "scores": scores,
        "maps": maps,
        "onnx": onnx_path,
        "info": info,
        "train_patches": info.get("train_images", len(x)),
    }


def _progress(task: str, done: int, total: int) -> None:
    print(f"  {task}: {done}/{total} ({time.strftime('%H:%M:%S')})", flush=True)


def ort_ms(path: Path, x: np.ndarray, n: int = 30) -> float:
    """Median ONNX Runtime ms per image, batch 1, one thread."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    sess.run(None, {"images": x[:1]})
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        sess.run(None, {"images": x[i % len(x) : i % len(x) + 1]})
        ts.append(time.perf_counter() - t0)
    return 1000 * float(np.median(ts))


def auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    """ROC AUC by ranks (ties averaged): O(n log n), for millions of pixels."""
    from scipy.stats import rankdata

    y = np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    r = rankdata(np.asarray(s, np.float64))
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pixel_auroc(maps: np.ndarray, masks: np.ndarray, seed: int = 0, n: int = 1_000_000) -> float | None:
    """Pixel AUROC over the test patches (good patches: all-zero masks), on a seeded pixel sample."""
    m, y = maps.reshape(-1), masks.reshape(-1)
    idx = np.random.default_rng(seed).choice(len(m), min(n, len(m)), replace=False)
    return auroc(y[idx], m[idx])


def run_anomalib_engine(model: str, patches: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """anomalib's Engine (Lightning) on the same train subset and test patches, random-init resnet18, same size.

    The train subset is the one the ``patchcore`` / ``padim`` rows use (same seed); val is set to the
    test folder (``same_as_test``) so that the test set stays whole.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from anomalib.data import Folder
    from anomalib.engine import Engine
    from anomalib.models import Padim, Patchcore

    with open(patches / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if r["split"] == "train"]
    keep = np.random.default_rng(args.seed).permutation(len(train))[: args.max_train_pc]
    root = work / f"anomalib-data-{model}"
    for sub in ("train/good", "test/good", "test/bad", "test/mask"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for k in keep:
        (root / "train/good" / Path(train[k]["file"]).name).symlink_to(patches / train[k]["file"])
    for r in rows:
        if r["split"] == "test":
            (root / r["file"]).symlink_to(patches / r["file"])
            if r["mask"]:
                (root / r["mask"]).symlink_to(patches / r["mask"])
    dm = Folder(
        name="neu",
        root=root,
        normal_dir="train/good",
        abnormal_dir="test/bad",
        normal_test_dir="test/good",
        mask_dir="test/mask",
        train_batch_size=32,
        eval_batch_size=32,
        num_workers=0,
        val_split_mode="same_as_test",
        seed=args.seed,
    )
    cls = Patchcore if model == "patchcore" else Padim
    size = (args.pc_imgsz, args.pc_imgsz)
    m = cls(
        backbone="resnet18",
        pre_trained=False,
        pre_processor=cls.configure_pre_processor(image_size=size),
        visualizer=False,
    )
    engine = Engine(default_root_dir=str(work / "anomalib-run"), accelerator="cpu", devices=1, logger=False)
    t0 = time.process_time()
    engine.fit(model=m, datamodule=dm)
    fit = time.process_time() - t0
    res = engine.test(model=m, datamodule=dm)[0]
    x = torch.zeros(1, 3, *size)
    m.model.eval()
    ts = []
    with torch.no_grad():
        for _ in range(20):
            t1 = time.perf_counter()
            m.model(x)
            ts.append(time.perf_counter() - t1)
    return {
        "fit_cpu_s": fit,
        "test_auroc": float(res["image_AUROC"]),
        "pixel_auroc": float(res["pixel_AUROC"]) if "pixel_AUROC" in res else None,
        "torch_ms": 1000 * float(np.median(ts)),
        "train_patches": len(keep),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patches", type=Path, required=True, help="output dir of neu_det_patches.py crop")
    ap.add_argument("--methods", default="grey,patchcore,padim,cutpaste,draem")
    ap.add_argument("--imgsz", type=int, default=32, help="model input (patches are resized to it)")
    ap.add_argument("--pc-imgsz", type=int, default=64, help="input of random-init PatchCore/PaDiM")
    ap.add_argument("--tex-imgsz", type=int, default=64, help="input of texture (64 = the patches' own size)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy box)")
    ap.add_argument(
        "--max-train-pc", type=int, default=600, help="train patches for random-init PatchCore/PaDiM"
    )
    ap.add_argument(
        "--train-limit", type=int, default=0, help="cutpaste/draem: at most this many train patches"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.patches / "index.csv").is_file():
        print(f"{args.patches}/index.csv missing: run bench/neu_det_patches.py crop first", file=sys.stderr)
        return 2
    import torch

    from jangin.training._metrics import roc_auc

    torch.set_num_threads(args.threads)
    d = load(args.patches, args.imgsz)
    by_size = {args.imgsz: d}
    print({s: {"good": int((~v["bad"]).sum()), "bad": int(v["bad"].sum())} for s, v in d.items()})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.methods.split(","):
            if name.startswith("anomalib-"):
                r = run_anomalib_engine(name.split("-", 1)[1], args.patches, args, work)
                rows.append(
                    {
                        "method": name,
                        "train_cpu_s": round(r["fit_cpu_s"], 1),
                        "auroc_val": None,
                        "auroc_test": round(r["test_auroc"], 3),
                        "pixel_auroc_test": None if r["pixel_auroc"] is None else round(r["pixel_auroc"], 3),
                        "ms_per_image": round(r["torch_ms"], 1),
                        "train_patches": r["train_patches"],
                        "runtime": "torch (anomalib)",
                    }
                )
                print(rows[-1], flush=True)
                continue
            size = {"patchcore": args.pc_imgsz, "padim": args.pc_imgsz, "texture": args.tex_imgsz}.get(
                name, args.imgsz
            )
            if size not in by_size:
                by_size[size] = load(args.patches, size)
            dd = by_size[size]
            r = run_grey(dd) if name == "grey" else run_torch_method(name, dd, args, work)
            if args.json:  # keep the scores whatever happens next
                np.savez_compressed(
                    args.json.with_suffix(f".{name}.npz"),
                    **{f"score_{k}": v for k, v in r["scores"].items()},
                )
            row = {
                "method": name,
                "train_cpu_s": round(r["fit_cpu_s"], 1),
                "train_patches": r.get("train_patches"),
                "imgsz": dd["test"]["x"].shape[-1],
                "auroc_val": round(roc_auc(d["val"]["bad"], r["scores"]["val"]), 3),
                "auroc_test": round(roc_auc(d["test"]["bad"], r["scores"]["test"]), 3),
                "pixel_auroc_test": None
                if r["maps"] is None
                else round(pixel_auroc(r["maps"]["test"], dd["test"]["mask"], args.seed), 3),
                "ms_per_image": None if r["onnx"] is None else round(ort_ms(r["onnx"], dd["test"]["x"]), 2),
                "runtime": "numpy" if r["onnx"] is None else "onnxruntime",
                "info": r.get("info", {}),
            }
            per_cls = {}
            for c in sorted(set(d["test"]["cls"])):
                k = d["test"]["cls"] == c
                per_cls[str(c)] = round(roc_auc(d["test"]["bad"][k], r["scores"]["test"][k]), 3)
            row["test_auroc_per_class"] = per_cls
            rows.append(row)
            print(row, flush=True)
    grey = next((r["auroc_test"] for r in rows if r["method"] == "grey"), None)
    print(
        f"\n{'method':<20}{'train CPU s':>12}{'AUROC val':>11}{'AUROC test':>11}{'px AUROC':>10}{'ms/img':>9}{'vs grey':>9}"
    )
    for r in rows:
        vs = "" if grey is None or r["auroc_test"] is None else f"{r['auroc_test'] - grey:+.3f}"
        print(
            f"{r['method']:<20}{r['train_cpu_s']:>12}{_f(r['auroc_val']):>11}{_f(r['auroc_test']):>11}"
            f"{_f(r['pixel_auroc_test']):>10}{_f(r['ms_per_image']):>9}{vs:>9}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


def _f(v: Any) -> str:
    return "-" if v is None else f"{v}"


if __name__ == "__main__":
    raise SystemExit(main())
