"""NEU-DET as a real one-class task: good patches outside all boxes, defective patches over boxes.

NEU-DET (``../shared/data/neu-det``) has no defect-free images, but its regions outside every VOC box
are defect-free steel surface. This script

1. freezes a seeded split BY IMAGE, per class (``split``): train / val / test image ids, written to a
   JSON split file (committed: ``bench/neu_det_split.json``) before any tuning. Test images are never
   used for training; tuning uses val only;
2. crops fixed-size patches (``crop``) on a grid: a patch that touches no box (after a margin) is GOOD;
   a patch whose area is covered by boxes for at least ``--min-cover`` is DEFECTIVE, with a mask made
   of the box pixels inside the patch. Train keeps good patches only.

    python bench/neu_det_patches.py split [--data ../shared/data/neu-det] [--out bench/neu_det_split.json]
    python bench/neu_det_patches.py crop --out /tmp/neu-patches [--split bench/neu_det_split.json]

Output of ``crop``: ``OUT/{train,val,test}/{good,bad,mask}/<image>_<y>_<x>.png`` (grey PNGs; masks
0/255) and ``OUT/index.csv`` (split, image, cls, y, x, bad, cover, file, mask). The data never goes
into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parents[0] / "shared" / "data" / "neu-det"
DEFAULT_SPLIT = Path(__file__).resolve().parent / "neu_det_split.json"
SPLIT_SEED = 16
FRACTIONS = (0.5, 0.2, 0.3)  # train / val / test images per class


def read_boxes(ann_dir: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    """``{image stem: [(x1, y1, x2, y2), ...]}`` from VOC XML (0-based, end-exclusive, clamped)."""
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    for xml in sorted(ann_dir.glob("*.xml")):
        root = ET.parse(xml).getroot()
        stem = Path((root.findtext("filename") or xml.stem).strip()).stem
        w = int(root.findtext("size/width") or 200)
        h = int(root.findtext("size/height") or 200)
        boxes = []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                raise ValueError(f"{xml}: <object> without <bndbox>")
            x1, y1, x2, y2 = (int(float(bb.findtext(k) or 0)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((max(x1 - 1, 0), max(y1 - 1, 0), min(x2, w), min(y2, h)))
        out[stem] = boxes
    return out


def image_class(stem: str) -> str:
    """The class in a NEU-DET file name: ``rolled-in_scale_12`` -> ``rolled-in_scale``."""
    return stem.rsplit("_", 1)[0]


def make_split(stems: list[str], seed: int = SPLIT_SEED, fractions=FRACTIONS) -> dict[str, list[str]]:
    """Seeded split of image ids per class into train / val / test (disjoint)."""
    by_cls: dict[str, list[str]] = defaultdict(list)
    for s in sorted(stems):
        by_cls[image_class(s)].append(s)
    rng = random.Random(seed)
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cls in sorted(by_cls):
        ids = by_cls[cls]
        rng.shuffle(ids)
        n_tr = round(len(ids) * fractions[0])
        n_va = round(len(ids) * fractions[1])
        split["train"] += sorted(ids[:n_tr])
        split["val"] += sorted(ids[n_tr : n_tr + n_va])
        split["test"] += sorted(ids[n_tr + n_va :])
    return split


def box_mask(boxes: list[tuple[int, int, int, int]], h: int, w: int) -> np.ndarray:
    """Union of the boxes as a bool ``(h, w)`` mask."""
    m = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes:
        m[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    return m


def patches_of(
    boxes: list[tuple[int, int, int, int]],
    h: int,
    w: int,
    size: int,
    stride: int,
    margin: int,
    min_cover: float,
) -> list[tuple[int, int, bool, float]]:
    """Grid patches ``(y, x, bad, cover)``: good = no box within ``margin`` px; bad = cover >= min_cover.

    Patches in between (a little box, or a box just outside) are dropped: neither clean nor defective.
    """
    mask = box_mask(boxes, h, w)
    grown = box_mask([(x1 - margin, y1 - margin, x2 + margin, y2 + margin) for x1, y1, x2, y2 in boxes], h, w)
    out = []
    for y in range(0, h - size + 1, stride):
        for x in range(0, w - size + 1, stride):
            cover = float(mask[y : y + size, x : x + size].mean())
            if not grown[y : y + size, x : x + size].any():
                out.append((y, x, False, 0.0))
            elif cover >= min_cover:
                out.append((y, x, True, cover))
    return out


def crop(
    data: Path,
    split: dict[str, list[str]],
    out: Path,
    *,
    size: int = 64,
    stride: int = 34,
    margin: int = 4,
    min_cover: float = 0.3,
    max_good: int = 4,
    max_bad: int = 2,
    seed: int = 0,
) -> dict[str, dict[str, int]]:
    """Crop the patches of every split image into ``out`` (see the module docstring); the counts."""
    import cv2

    boxes = read_boxes(data / "annotations")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    rows = []
    for name, stems in split.items():
        for sub in ("good", "bad", "mask"):
            (out / name / sub).mkdir(parents=True, exist_ok=True)
        c = {"good": 0, "bad": 0}
        for stem in stems:
            img = cv2.imread(str(data / "images" / f"{stem}.jpg"), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise FileNotFoundError(data / "images" / f"{stem}.jpg")
            bx = boxes.get(stem, [])
            m = box_mask(bx, *img.shape)
            cand = patches_of(bx, *img.shape, size, stride, margin, min_cover)
            good = [p for p in cand if not p[2]]
            bad = [p for p in cand if p[2]] if name != "train" else []
            rng.shuffle(good)
            bad.sort(key=lambda p: -p[3])
            for y, x, is_bad, cover in good[:max_good] + bad[:max_bad]:
                fname = f"{stem}_{y}_{x}.png"
                sub = "bad" if is_bad else "good"
                cv2.imwrite(str(out / name / sub / fname), img[y : y + size, x : x + size])
                mfile = ""
                if is_bad:
                    mfile = f"{name}/mask/{fname}"
                    cv2.imwrite(str(out / mfile), (m[y : y + size, x : x + size] * 255).astype(np.uint8))
                rows.append(
                    [
                        name,
                        stem,
                        image_class(stem),
                        y,
                        x,
                        int(is_bad),
                        round(cover, 4),
                        f"{name}/{sub}/{fname}",
                        mfile,
                    ]
                )
                c[sub] += 1
        counts[name] = c
    with open(out / "index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["split", "image", "cls", "y", "x", "bad", "cover", "file", "mask"])
        w.writerows(rows)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("split", help="freeze the image split (before any tuning)")
    sp.add_argument("--data", type=Path, default=DEFAULT_DATA)
    sp.add_argument("--out", type=Path, default=DEFAULT_SPLIT)
    sp.add_argument("--seed", type=int, default=SPLIT_SEED)
    cp = sub.add_parser("crop", help="crop good/defective patches for the frozen split")
    cp.add_argument("--data", type=Path, default=DEFAULT_DATA)
    cp.add_argument("--split", type=Path, default=DEFAULT_SPLIT)
    cp.add_argument("--out", type=Path, required=True)
    cp.add_argument("--size", type=int, default=64)
    cp.add_argument("--stride", type=int, default=34)
    cp.add_argument("--margin", type=int, default=4)
    cp.add_argument("--min-cover", type=float, default=0.3)
    cp.add_argument("--max-good", type=int, default=4, help="good patches kept per image")
    cp.add_argument("--max-bad", type=int, default=2, help="defective patches kept per image (val/test)")
    a = ap.parse_args(argv)
    if a.cmd == "split":
        stems = sorted(p.stem for p in (a.data / "images").glob("*.jpg"))
        if not stems:
            print(f"no JPEGs under {a.data / 'images'}", file=sys.stderr)
            return 2
        split = make_split(stems, a.seed)
        doc = {
            "about": "NEU-DET one-class split by image, per class; frozen before tuning (bench/neu_det_patches.py)",
            "seed": a.seed,
            "fractions": list(FRACTIONS),
            **split,
        }
        a.out.write_text(json.dumps(doc, indent=1) + "\n")
        print({k: len(v) for k, v in split.items()}, "->", a.out)
        return 0
    doc = json.loads(a.split.read_text())
    split = {k: doc[k] for k in ("train", "val", "test")}
    counts = crop(
        a.data,
        split,
        a.out,
        size=a.size,
        stride=a.stride,
        margin=a.margin,
        min_cover=a.min_cover,
        max_good=a.max_good,
        max_bad=a.max_bad,
    )
    print(json.dumps(counts), "->", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
