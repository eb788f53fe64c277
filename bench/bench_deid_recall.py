"""Face-detection recall for de-identification: CenterFace (what capture uses) against the old Haar path,
on faces with and without goggles, masks, helmets and visors.

    python bench/bench_deid_recall.py [--split heldout|tune|all] [--configs 0.2@640,0.35@640,0.2@512]

What the set covers (everything ships with pip packages or is drawn here; nothing downloads):

- Faces: the 100 face crops of scikit-image's ``data.lfw_subset()`` (Labeled Faces in the Wild, 25x25
  grey, eyebrows to chin, frontal to three-quarter, 100 different adults), tinted towards a skin tone
  and upscaled; ``tune`` = even indices (thresholds were chosen on these), ``heldout`` = odd indices.
- Non-faces: the 100 non-face crops of the same subset, pasted the same way (false positives).
- Conditions, drawn on each face: ``plain``; ``goggles`` (a dark band with a grey rim over the eyes);
  ``mask`` (a pale surgical mask over the lower 45 % with pleats); ``helmet`` (a hard hat over the
  top 30 % and above the head); ``visor`` (a dark green welding/face-shield tint over the whole face,
  at 30 % of its brightness, with a helmet band on top); ``goggles+mask``.
- Sizes: faces 40, 80 and 160 px wide in a 1280x720 frame (the detector sees it at 640x360), many
  per frame on a busy background (scikit-image's gravel/brick/grass textures, lines and discs).

Not covered: real shop-floor video, motion blur, strong backlight, profile views beyond three-quarter,
faces fully behind a closed welding helmet (nothing to find: the detector finds faces, not heads),
colour skin tones (the faces are grey, tinted). False positives are also counted on the sample
data's inspection images (synthetic bead close-ups, ``sample_data/inspection``): blurring a defect
destroys the data it was recorded for.

A face counts as found when a detected box's centre lies inside the pasted face and the box is
between a third and three times its width.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONDITIONS = ("plain", "goggles", "mask", "helmet", "visor", "goggles+mask")
SIZES = (40, 80, 160)
FRAME = (720, 1280)  # h, w
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    faces: list[tuple[int, int, int, int]]  # x0, y0, x1, y1 of each pasted face
    others: list[tuple[int, int, int, int]]  # pasted non-faces


def lfw(split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(faces, non-faces) of scikit-image's LFW subset as uint8 grey 25x25, for ``split``."""
    from skimage import data

    a = (data.lfw_subset() * 255).astype(np.uint8)
    faces, others = list(a[:100]), list(a[100:])
    pick = {"tune": slice(0, None, 2), "heldout": slice(1, None, 2), "all": slice(None)}[split]
    return faces[pick], others[pick]


def background(seed: int) -> np.ndarray:
    import cv2
    from skimage import data

    rng = np.random.default_rng(seed)
    h, w = FRAME
    tex = [data.gravel(), data.brick(), data.grass()]
    bg = np.zeros((h, w), np.uint8)
    for y in range(0, h, 240):
        for x in range(0, w, 320):
            t = tex[int(rng.integers(len(tex)))]
            oy, ox = int(rng.integers(0, t.shape[0] - 240)), int(rng.integers(0, t.shape[1] - 320))
            bg[y : y + 240, x : x + 320] = t[oy : oy + 240, ox : ox + 320][: h - y, : w - x]
    img = cv2.cvtColor(bg, cv2.COLOR_GRAY2BGR)
    img = (img * np.array([0.8, 0.9, 1.0])).astype(np.uint8)
    for _ in range(25):
        p = tuple(int(v) for v in rng.integers(0, (w, h)))
        q = tuple(int(v) for v in rng.integers(0, (w, h)))
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.line(img, p, q, c, int(rng.integers(2, 9)))
    for _ in range(10):
        p = tuple(int(v) for v in rng.integers(0, (w, h)))
        cv2.circle(img, p, int(rng.integers(10, 60)), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return img


def occlude(face: np.ndarray, condition: str) -> np.ndarray:
    """Draw ``condition`` on a BGR face crop (eyebrows to chin); returns a new image."""
    import cv2

    f = face.copy()
    h, w = f.shape[:2]
    if condition in ("goggles", "goggles+mask"):
        y0, y1 = int(0.22 * h), int(0.50 * h)
        cv2.rectangle(f, (0, y0), (w - 1, y1), (70, 70, 70), -1)  # frame / strap
        m = max(1, w // 25)
        cv2.rectangle(f, (m, y0 + m), (w // 2 - m, y1 - m), (22, 28, 22), -1)  # dark lenses
        cv2.rectangle(f, (w // 2 + m, y0 + m), (w - 1 - m, y1 - m), (22, 28, 22), -1)
    if condition in ("mask", "goggles+mask"):
        y0 = int(0.55 * h)
        cv2.rectangle(f, (0, y0), (w - 1, h - 1), (225, 215, 200), -1)
        for k in (1, 2, 3):
            y = y0 + k * (h - y0) // 4
            cv2.line(f, (0, y), (w - 1, y), (190, 180, 165), max(1, h // 60))
    if condition in ("helmet", "visor"):
        band = int(0.30 * h) if condition == "helmet" else int(0.12 * h)
        cv2.rectangle(f, (0, 0), (w - 1, band), (20, 190, 230) if condition == "helmet" else (40, 40, 40), -1)
    if condition == "visor":
        tint = np.array([0.25, 0.35, 0.22])  # dark green shade, BGR
        f[int(0.12 * h) :] = (f[int(0.12 * h) :] * tint).astype(np.uint8)
    return f


def _paste_cells(size: int) -> list[tuple[int, int]]:
    h, w = FRAME
    cell = 2 * size
    return [(x, y) for y in range(cell // 4, h - cell, cell) for x in range(cell // 4, w - cell, cell)]


def build(split: str, conditions: tuple[str, ...] = CONDITIONS, sizes: tuple[int, ...] = SIZES) -> dict:
    """``{(condition, size): [Frame, ...]}`` plus ``("nonface", size)`` frames."""
    import cv2

    faces, others = lfw(split)
    tint = np.array([0.78, 0.88, 1.05])  # grey -> a skin-like tone (BGR)
    out: dict[tuple[str, int], list[Frame]] = {}
    seed = 0
    for size in sizes:
        cells = _paste_cells(size)
        rng = np.random.default_rng(size)
        for cond in (*conditions, "nonface"):
            crops = others if cond == "nonface" else faces
            frames = []
            for start in range(0, len(crops), len(cells)):
                seed += 1
                img = background(seed)
                boxes = []
                for (x, y), crop in zip(cells, crops[start : start + len(cells)], strict=False):
                    x += int(rng.integers(0, size // 2))
                    y += int(rng.integers(0, size // 2))
                    c = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
                    c = np.clip(cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) * tint, 0, 255).astype(np.uint8)
                    if cond != "nonface":
                        c = occlude(c, cond)
                        if cond == "helmet":  # the hat's dome above the head
                            cv2.ellipse(img, (x + size // 2, y), (size // 2 + size // 10, size // 3), 0, 180, 360,
                                        (20, 190, 230), -1)  # fmt: skip
                    img[y : y + size, x : x + size] = c
                    boxes.append((x, y, x + size, y + size))
                frames.append(
                    Frame(img, [] if cond == "nonface" else boxes, boxes if cond == "nonface" else [])
                )
            out[(cond, size)] = frames
    return out


def hits(dets: list[tuple[int, int, int, int]], faces: list[tuple[int, int, int, int]]) -> int:
    """Faces matched by a detection (x0, y0, x1, y1): centre inside the face, width 1/3x..3x."""
    n = 0
    for fx0, fy0, fx1, fy1 in faces:
        fw = fx1 - fx0
        for x0, y0, x1, y1 in dets:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            if fx0 <= cx <= fx1 and fy0 <= cy <= fy1 and fw / 3 <= (x1 - x0) <= 3 * fw:
                n += 1
                break
    return n


def centerface(
    threshold: float, max_side: int = 640
) -> Callable[[np.ndarray], list[tuple[int, int, int, int]]]:
    from jangin.capture._faces import FaceBlurrer

    b = FaceBlurrer(threshold=threshold, max_side=max_side)
    return lambda img: [d.box for d in b.detect(img)]


def haar() -> Callable[[np.ndarray], list[tuple[int, int, int, int]]]:
    """The de-identification detector capture used before CenterFace (frontal + profile Haar
    cascades, CLAHE, a face counts only with an eye in its upper part), reproduced for comparison."""
    import cv2

    root = Path(cv2.data.haarcascades)
    names = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml", "haarcascade_eye.xml")
    cascades = [cv2.CascadeClassifier(str(root / n)) for n in names]
    face_cascades, eye_cascade = cascades[:2], cascades[2]
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

    def detect(bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, 960 / max(gray.shape[:2]))
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = clahe.apply(gray)
        found = []
        for cascade in face_cascades:
            for x, y, w, h in cascade.detectMultiScale(
                gray, scaleFactor=1.15, minNeighbors=5, minSize=(24, 24)
            ):
                top = gray[y : y + int(h * 0.6), x : x + w]
                f = max(1.0, 160.0 / max(1, w))
                top = cv2.equalizeHist(cv2.resize(top, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR))
                if len(eye_cascade.detectMultiScale(top, scaleFactor=1.1, minNeighbors=3, minSize=(20, 20))):
                    found.append(tuple(int(round(v / scale)) for v in (x, y, x + w, y + h)))
        return found

    return detect


def evaluate(detect: Callable[[np.ndarray], list], frames: list[Frame]) -> tuple[int, int, int, float]:
    """(faces found, faces, detections outside any face, seconds per frame)."""
    found = total = fp = 0
    t = time.perf_counter()
    for fr in frames:
        dets = detect(fr.image)
        found += hits(dets, fr.faces)
        total += len(fr.faces)
        if not fr.faces:  # non-face frames: every detection is a false positive
            fp += len(dets)
    return found, total, fp, (time.perf_counter() - t) / max(1, len(frames))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="heldout", choices=("heldout", "tune", "all"))
    ap.add_argument(
        "--configs",
        default="0.2@640",
        help="CenterFace score threshold @ longest side the detector sees, comma-separated (0.2@640,0.35@512)",
    )
    ap.add_argument("--no-haar", action="store_true")
    a = ap.parse_args()
    sets = build(a.split)
    detectors: dict[str, Callable] = {}
    for c in a.configs.split(","):
        t, _, side = c.partition("@")
        detectors[f"cf {t}@{side or 640}"] = centerface(float(t), int(side or 640))
    if not a.no_haar:
        detectors["haar (old)"] = haar()
    print(f"split={a.split}: {len(lfw(a.split)[0])} faces x {len(CONDITIONS)} conditions x sizes {SIZES} px")
    head = f"{'condition':14s} {'size':>4s} " + " ".join(f"{n:>18s}" for n in detectors)
    print(head)
    totals = {n: [0, 0] for n in detectors}
    secs: dict[str, list[float]] = {n: [] for n in detectors}
    for (cond, size), frames in sets.items():
        cells = []
        for name, det in detectors.items():
            found, total, fp, spf = evaluate(det, frames)
            secs[name].append(spf)
            if cond == "nonface":
                cells.append(f"{fp:4d} false pos.     ")
            else:
                cells.append(f"{found:3d}/{total:3d} = {found / total:5.1%}")
                totals[name][0] += found
                totals[name][1] += total
        print(f"{cond:14s} {size:4d} " + " ".join(f"{c:>18s}" for c in cells))
    print(f"{'all occluded+plain':19s} " + " ".join(f"{f / t:18.1%}" for f, t in totals.values()))
    beads = sorted((ROOT / "sample_data" / "inspection").rglob("*.jpg"))
    if beads:
        import cv2

        imgs = [cv2.imread(str(p)) for p in beads]
        fp = [sum(1 for im in imgs if det(im)) for det in detectors.values()]
        print(f"{'bead images w/ det.':19s} " + " ".join(f"{f:>11d} of {len(imgs):3d}" for f in fp))
    print(f"{'ms per 1280x720 frame':19s} " + " ".join(f"{1000 * np.mean(v):18.0f}" for v in secs.values()))


if __name__ == "__main__":
    main()
