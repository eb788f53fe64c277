"""Run by LeRobot's own venv (scripts/lerobot.sh python): load a Jangin export with ``LeRobotDataset``
offline, iterate every frame and write what it read as JSON (the test compares it with the source).

Usage: lerobot_check.py ROOT OUT_JSON [VIDEO_BACKEND]
"""

import json
import sys
from importlib.metadata import version

from lerobot.datasets.lerobot_dataset import LeRobotDataset


def main() -> None:
    root, out = sys.argv[1], sys.argv[2]
    backend = sys.argv[3] if len(sys.argv) > 3 else None
    ds = LeRobotDataset("jangin/check", root=root, video_backend=backend)
    frames = []
    for i in range(len(ds)):
        item = ds[i]
        row = {
            "index": int(item["index"]),
            "episode_index": int(item["episode_index"]),
            "frame_index": int(item["frame_index"]),
            "timestamp": float(item["timestamp"]),
            "task": item["task"],
        }
        for key in ("observation.state", "action"):
            if key in item:
                row[key] = [float(x) for x in item[key].reshape(-1).tolist()]  # shape (1,) is a scalar
        for key in ds.meta.video_keys:
            img = item[key]  # C, H, W float 0..1
            row[key] = {"shape": list(img.shape), "mean": float(img.mean()) * 255.0}
        frames.append(row)
    stats = {k: {s: v.tolist() for s, v in d.items()} for k, d in (ds.meta.stats or {}).items()}
    summary = {
        "lerobot": version("lerobot"),
        "backend": ds.video_backend,
        "fps": ds.fps,
        "num_frames": ds.num_frames,
        "num_episodes": ds.num_episodes,
        "features": {k: list(v["shape"]) for k, v in ds.features.items()},
        "video_keys": list(ds.meta.video_keys),
        "stats": stats,
        "frames": frames,
    }
    with open(out, "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    main()
