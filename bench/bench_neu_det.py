"""NEU-DET (real steel-surface defect images with boxes, not made here) through Jangin's detection path.

1. import: the JPEGs into the ``frames`` table (``import_stills``: decode check, size, de-identification
   off — no people in these images) and the VOC boxes into ``labels``, against a raw
   ``pyarrow.parquet.write_table`` of the same JPEG bytes in the same run;
2. train: YOLO from its YAML (no pretrained weights: nothing is downloaded) on a split by image,
   parity-gated ONNX export;
3. evaluate: mAP50 of the exported model through ONNX Runtime on the held-out test split (the demo's
   evaluator) against random boxes of realistic size; ONNX Runtime predict ms/image (pre + run + post)
   against raw ``InferenceSession.run`` on the same preprocessed input.

    python bench/bench_neu_det.py [--data ../shared/data/neu-det] [--epochs 10] [--imgsz 192] [--limit N]

The data stays outside the repository; published YOLO figures on NEU-DET (mAP50 ~0.70-0.80) use
ImageNet-pretrained backbones, this trains from scratch on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def voc_to_csv(ann_dir: Path, names: set[str], out: Path) -> int:
    """The VOC XML boxes of the images in ``names`` as a boxes CSV (image, class, xmin, ymin, xmax, ymax)."""
    n = 0
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "class", "xmin", "ymin", "xmax", "ymax"])
        for xml in sorted(ann_dir.glob("*.xml")):
            root = ET.parse(xml).getroot()
            image = (root.findtext("filename") or xml.stem).strip()
            if not image.lower().endswith(".jpg"):
                image += ".jpg"
            if image not in names:
                continue
            for obj in root.iter("object"):
                bb = obj.find("bndbox")
                assert bb is not None, xml
                x1, y1, x2, y2 = (float(bb.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax"))
                # VOC is 1-based and inclusive; clamp to the 200 px image
                w.writerow(
                    [
                        image,
                        (obj.findtext("name") or "").strip(),
                        max(x1 - 1, 0),
                        max(y1 - 1, 0),
                        min(x2, 200),
                        min(y2, 200),
                    ]
                )
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "neu-det")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--imgsz", type=int, default=192)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jangin.capture import import_stills
    from jangin.core import Dataset, ModelRegistry
    from jangin.core.settings import get_settings
    from jangin.demo._run import _evaluate_test_split
    from jangin.inference import OnnxDetector
    from jangin.labeling import import_box_csv
    from jangin.training import build_detection_set, train_detector

    images = sorted((a.data / "images").glob("*.jpg"))[: a.limit]
    if not images:
        sys.exit(f"{a.data / 'images'}: no JPEGs (give --data)")
    work = a.work or Path(tempfile.mkdtemp(prefix="neu-det-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "stills"
    src.mkdir(exist_ok=True)
    for p in images:  # a folder of exactly the chosen images (links, no copies)
        if not (src / p.name).exists():
            (src / p.name).symlink_to(p.resolve())

    # 1. import vs a raw Parquet write of the same bytes --------------------------------------
    t = time.perf_counter()
    blobs = [p.read_bytes() for p in images]
    pq.write_table(pa.table({"uri": [p.name for p in images], "image": blobs}), work / "raw.parquet")
    raw_s = time.perf_counter() - t
    ds = Dataset.create(work / "ds")
    t = time.perf_counter()
    res = import_stills(
        ds, src, session_key="neu-det", settings=get_settings(dataset=ds.root), deidentify=False
    )
    import_s = time.perf_counter() - t
    boxes_csv = work / "boxes.csv"
    n_xml = voc_to_csv(a.data / "annotations", {p.name for p in images}, boxes_csv)
    t = time.perf_counter()
    n_box = import_box_csv(ds, boxes_csv, session_id=res.session_id)
    label_s = time.perf_counter() - t
    mb = sum(map(len, blobs)) / 1e6
    print(
        f"import   {res.frames} images ({mb:.1f} MB) in {import_s:.2f} s = {res.frames / import_s:.0f} img/s; "
        f"raw pyarrow write of the same bytes {raw_s:.2f} s; ratio {import_s / raw_s:.1f}x raw"
    )
    print(f"labels   {n_box} boxes of {n_xml} in the VOC files in {label_s:.2f} s")

    # 2. train ----------------------------------------------------------------------------------
    t = time.perf_counter()
    det_set = build_detection_set(ds, group_by="frame_id", seed=0, cache_dir=work / "cache")
    registry = ModelRegistry(ds.models_dir)
    mv = train_detector(
        det_set,
        registry=registry,
        name="neu-det",
        epochs=a.epochs,
        imgsz=a.imgsz,
        batch=a.batch,
        device=a.device,
        seed=0,
        work_dir=work / "train",
        allow_random_init=True,  # from scratch: the figure quoted is the no-pretrained-weights one
    )
    train_s = time.perf_counter() - t
    sizes = {k: len(v) for k, v in det_set.splits.items()}
    m = mv.manifest.metrics
    print(
        f"train    yolo11n from scratch, {a.epochs} epochs at {a.imgsz} px, splits {sizes}: {train_s:.0f} s "
        f"({m.get('seconds_per_epoch', float('nan')):.1f} s/epoch); Ultralytics val on test: mAP50 "
        f"{m.get('mAP50', float('nan')):.3f}, mAP50-95 {m.get('mAP50-95', float('nan')):.3f}"
    )
    print(f"parity   ONNX vs PyTorch max score diff {mv.manifest.parity.get('raw_max_score_diff')}")

    # 3. evaluate through ONNX Runtime ------------------------------------------------------------
    metrics, _, test_images = _evaluate_test_split(ds, mv, det_set, seed=0)
    per = ", ".join(f"{k} {v:.2f}" for k, v in metrics["onnx_per_class_AP50"].items() if v is not None)
    print(
        f"eval     ONNX Runtime on {metrics['test_images']} held-out images: mAP50 {metrics['onnx_mAP50']:.3f} "
        f"vs random boxes {metrics['baseline_mAP50']:.3f} ({per})"
    )
    det = OnnxDetector.from_version(mv)
    data = [b for _, b in test_images][:100]
    for b in data[:5]:
        det.predict_bytes(b)
    t = time.perf_counter()
    for b in data:
        det.predict_bytes(b)
    full_ms = (time.perf_counter() - t) * 1e3 / len(data)
    sess = det.session if hasattr(det, "session") else None
    if sess is not None:
        x = np.zeros((1, 3, a.imgsz, a.imgsz), np.float32)
        name = sess.get_inputs()[0].name
        for _ in range(5):
            sess.run(None, {name: x})
        t = time.perf_counter()
        for _ in data:
            sess.run(None, {name: x})
        raw_ms = (time.perf_counter() - t) * 1e3 / len(data)
        print(
            f"predict  {full_ms:.2f} ms/image (decode + letterbox + run + NMS) vs raw InferenceSession.run "
            f"{raw_ms:.2f} ms; ratio {full_ms / raw_ms:.2f}x"
        )
    else:
        print(f"predict  {full_ms:.2f} ms/image")
    print(f"work dir {work}")


if __name__ == "__main__":
    main()
