"""Data pipeline: decoded images/s from the Parquet (Delta) dataset vs from a folder of JPEGs.

Both paths decode the same 240 sample stills to RGB float tensors at 128 px (what the anomaly trainer
feeds its backbone); the folder is the baseline. Run: ``python bench/bench_training_pipeline.py``.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(repeats: int = 3) -> None:
    import cv2

    from jangin.core import Dataset
    from jangin.training._image_set import decode_images

    files = sorted((ROOT / "sample_data" / "inspection").rglob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        ds = Dataset.create(Path(tmp) / "ds")
        t0 = datetime(2026, 11, 1, tzinfo=UTC)
        ds.append(
            "frames",
            [
                {
                    "frame_id": f"f{i:04d}",
                    "session_id": "bench",
                    "ts": t0 + timedelta(seconds=i),
                    "width": 256,
                    "height": 256,
                    "deidentified": True,
                    "source_uri": str(p.relative_to(ROOT)),
                    "image": p.read_bytes(),
                }
                for i, p in enumerate(files)
            ],
        )
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

        def from_parquet() -> int:
            blobs = ds.read("frames", columns=["image"]).column("image").to_pylist()
            return len(decode_images(blobs, 128, mean, std))

        def from_folder() -> int:
            out = []
            for p in files:
                img = cv2.resize(cv2.imread(str(p), cv2.IMREAD_COLOR), (128, 128))
                out.append(
                    (
                        (img[:, :, ::-1].transpose(2, 0, 1) / 255.0 - np.reshape(mean, (3, 1, 1)))
                        / np.reshape(std, (3, 1, 1))
                    ).astype(np.float32)
                )
            return len(out)

        rates = {}
        for name, fn in (("parquet", from_parquet), ("folder", from_folder)):
            best = np.inf
            for _ in range(repeats):
                t = time.perf_counter()
                n = fn()
                best = min(best, time.perf_counter() - t)
            rates[name] = n / best
            print(f"{name:8s} {n} images  {rates[name]:8.1f} images/s (best of {repeats})")
        print(f"ratio parquet / folder: {rates['parquet'] / rates['folder']:.2f}")


if __name__ == "__main__":
    main()
