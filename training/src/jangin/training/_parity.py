"""The parity gate: an exported ONNX model must give the training framework's answers.

The ONNX side runs through ONNX Runtime with pre- and post-processing written here in numpy and
OpenCV, independently of Ultralytics (and of ``jangin.inference``, which this stage may not import):
letterbox, RGB, 1/255, NCHW; decode of the ``yolo_v8`` output ``(batch, 4 + nc, anchors)``; class-wise
greedy NMS. Two checks run on a set of images:

* raw outputs: the ONNX output and the PyTorch model's output on the *same* input tensor, over every
  anchor: class scores within ``max_score_diff``, their log-odds within ``max_logit_diff`` (a barely
  trained model has tiny scores, where an absolute tolerance sees nothing), box coordinates within
  ``max_box_diff`` of the input size;
* end to end, at the serving threshold and a very low one: Ultralytics ``predict`` against the ONNX
  pipeline; boxes are matched per image and class (highest IoU first); matched boxes need IoU ≥
  ``min_iou`` and score difference ≤ ``max_score_diff``; boxes left unmatched are tolerated when
  their score is within the raw-output difference of the threshold (they may fall either side), or
  when NMS had to break a tie for them (see ``_compare``), and beyond that up to ``count_tolerance``
  of the reference boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import TrainingError
from jangin.core.detections import box_iou, letterbox_geometry, nms
from jangin.training._ultralytics_env import import_onnxruntime

__all__ = ["check_parity"]

#: Class offset for class-wise NMS in one pass (Ultralytics uses the same).
_MAX_WH = 7680.0
_MAX_NMS = 30000


def letterbox(
    img: np.ndarray, size: int, pad_value: int = 114
) -> tuple[np.ndarray, tuple[float, float, int, int]]:
    """Resize keeping aspect ratio and pad to ``size`` × ``size``, centred (Ultralytics' ``LetterBox``).

    Returns:
        The padded BGR image and ``(gain_x, gain_y, pad_left, pad_top)`` to map boxes back.
    """
    import cv2

    h, w = img.shape[:2]
    nw, nh, top, bottom, left, right = letterbox_geometry(h, w, size, size)
    if (nw, nh) != (w, h):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return img, (nw / w, nh / h, left, top)


def to_tensor(imgs: Sequence[np.ndarray]) -> np.ndarray:
    """Letterboxed BGR uint8 images to an RGB NCHW float32 batch in 0..1."""
    x = np.stack([im[..., ::-1].transpose(2, 0, 1) for im in imgs]).astype(np.float32)
    return np.ascontiguousarray(x / 255.0)


def decode(
    out: np.ndarray, conf: float, iou: float, max_det: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's ``(4 + nc, anchors)`` output to boxes (xyxy, input pixels), scores, class ids."""
    scores_all = out[4:].T
    cls = scores_all.argmax(1)
    score = scores_all[np.arange(len(cls)), cls]
    keep = score > conf
    xywh, score, cls = out[:4].T[keep], score[keep], cls[keep]
    if len(score) > _MAX_NMS:
        top = np.argsort(-score, kind="stable")[:_MAX_NMS]
        xywh, score, cls = xywh[top], score[top], cls[top]
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    idx = nms(xyxy + cls[:, None] * _MAX_WH, score, iou)[:max_det]
    return xyxy[idx], score[idx], cls[idx]


def onnx_predict(
    session: Any, imgs: Sequence[np.ndarray], imgsz: int, conf: float, iou: float
) -> list[dict[str, np.ndarray]]:
    """For each BGR image: the final boxes (original-image pixels), scores, class ids, and the
    candidates before NMS (``cand_*``), which tell whether NMS had ties to break."""
    name = session.get_inputs()[0].name
    out = []
    for img in imgs:
        lb, (gx, gy, px, py) = letterbox(img, imgsz)
        raw = session.run(None, {name: to_tensor([lb])})[0][0]
        h, w = img.shape[:2]

        def back(xyxy: np.ndarray) -> np.ndarray:
            return np.clip((xyxy - [px, py, px, py]) / [gx, gy, gx, gy], 0, [w, h, w, h])  # noqa: B023

        xyxy, score, cls = decode(raw, conf, iou)
        cand, cand_score, cand_cls = decode(raw, conf, 1.0)  # IoU 1.0: nothing suppressed
        out.append(
            {
                "xyxy": back(xyxy),
                "score": score,
                "cls": cls,
                "cand_xyxy": back(cand),
                "cand_score": cand_score,
                "cand_cls": cand_cls,
            }
        )
    return out


def check_parity(
    onnx_path: Path,
    checkpoint: Path,
    images: Sequence[Path],
    *,
    imgsz: int,
    confs: Sequence[float] = (0.25, 0.001),
    iou: float = 0.45,
    min_iou: float = 0.95,
    max_score_diff: float = 0.02,
    max_logit_diff: float = 0.1,
    max_box_diff: float = 0.005,
    count_tolerance: float = 0.02,
) -> dict[str, Any]:
    """Compare an exported ONNX detector with its Ultralytics checkpoint; refuse a mismatch.

    Boxes are compared at each confidence threshold of ``confs``: the serving one, and a very low one
    so that boxes are compared even for a model that is barely trained.

    Args:
        onnx_path: The exported model.
        checkpoint: The Ultralytics ``.pt`` it was exported from (must be local; loaded with Ultralytics).
        images: The check set (image files).
        imgsz: Square input size of the export.
        confs: Confidence thresholds at which both pipelines are compared.
        iou: NMS IoU threshold of both pipelines.
        min_iou: Smallest IoU accepted between matched boxes.
        max_score_diff: Largest score difference accepted (raw outputs and matched boxes).
        max_logit_diff: Largest difference of raw class log-odds (scores clipped to 1e-4 … 1 - 1e-4).
        max_box_diff: Largest difference of raw box coordinates, as a fraction of ``imgsz``.
        count_tolerance: Share of the reference boxes that may stay unmatched, beyond boxes whose score
            is so close to the threshold that the raw-output difference can flip them.

    Returns:
        The figures (recorded in the model manifest): raw-output differences, and per threshold the
        box counts, matches, smallest and mean IoU, largest score difference and unmatched boxes.

    Raises:
        TrainingError: The export does not match; the message gives the figures.
    """
    import cv2

    ort = import_onnxruntime()
    import torch
    from ultralytics import YOLO

    imgs: list[Any] = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in images]
    if not imgs or any(im is None for im in imgs):
        raise TrainingError(f"parity check set is empty or unreadable ({len(images)} image files)")
    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a broken file
        raise TrainingError(f"ONNX Runtime cannot load the export {onnx_path}: {exc}") from exc
    yolo = YOLO(str(checkpoint), task="detect")
    net = yolo.model.float().eval()
    name = session.get_inputs()[0].name

    # 1. raw outputs on identical input tensors
    raw_score_diff = raw_logit_diff = raw_box_diff = 0.0
    for img in imgs:
        x = to_tensor([letterbox(img, imgsz)[0]])
        got = session.run(None, {name: x})[0]
        with torch.no_grad():
            ref = net(torch.from_numpy(x))
        ref = (ref[0] if isinstance(ref, list | tuple) else ref).numpy()
        if ref.shape != got.shape:
            raise TrainingError(
                f"parity gate: ONNX output shape {got.shape} differs from PyTorch {ref.shape}"
            )
        raw_score_diff = max(raw_score_diff, float(np.abs(ref[:, 4:] - got[:, 4:]).max()))
        raw_logit_diff = max(raw_logit_diff, float(np.abs(_logit(ref[:, 4:]) - _logit(got[:, 4:])).max()))
        raw_box_diff = max(raw_box_diff, float(np.abs(ref[:, :4] - got[:, :4]).max()))
    figures: dict[str, Any] = {
        "images": len(imgs),
        "iou": iou,
        "raw_max_score_diff": raw_score_diff,
        "raw_max_logit_diff": raw_logit_diff,
        "raw_max_box_diff_px": raw_box_diff,
    }
    problems = []
    if raw_score_diff > max_score_diff:
        problems.append(f"raw class scores differ by up to {raw_score_diff:.4f} (> {max_score_diff})")
    # Small scores (a young model, background anchors) hide changes from an absolute tolerance: compare
    # log-odds too.
    if raw_logit_diff > max_logit_diff:
        problems.append(f"raw class log-odds differ by up to {raw_logit_diff:.4f} (> {max_logit_diff})")
    if raw_box_diff > max_box_diff * imgsz:
        problems.append(
            f"raw box coordinates differ by up to {raw_box_diff:.3f} px (> {max_box_diff * imgsz:.3f})"
        )

    # 2. end to end: Ultralytics predict against the ONNX pipeline
    band = max(3 * raw_score_diff, 1e-5)  # scores this close to a threshold may fall either side
    for conf in confs:
        # rect=False: Model.predict() defaults to rect=True (pad only to a multiple of the stride), while
        # the export serves a fixed square letterbox; compare like with like.
        refs = yolo.predict(
            imgs, imgsz=imgsz, conf=conf, iou=iou, device="cpu", verbose=False, max_det=300, rect=False
        )
        ours = onnx_predict(session, imgs, imgsz, conf, iou)
        f = _compare(refs, ours, conf, iou, band)
        figures[f"conf_{conf:g}"] = f
        if f["matched"] and f["min_matched_iou"] < min_iou:
            problems.append(
                f"conf {conf:g}: matched-box IoU down to {f['min_matched_iou']:.3f} (< {min_iou})"
            )
        if f["matched"] and f["max_score_diff"] > max_score_diff:
            problems.append(
                f"conf {conf:g}: matched-box scores differ by {f['max_score_diff']:.4f} (> {max_score_diff})"
            )
        if f["unmatched_other"] > int(count_tolerance * f["boxes_reference"]):
            problems.append(
                f"conf {conf:g}: {f['unmatched_other']} box(es) unmatched ({f['boxes_reference']} reference, "
                f"{f['boxes_onnx']} ONNX)"
            )
    figures["passed"] = not problems
    if problems:
        raise TrainingError(
            "parity gate refused the ONNX export: " + "; ".join(problems) + f". Figures: {figures}",
            hint="the export does not reproduce the trained model; check the exporter and opset",
        )
    return figures


def _compare(
    refs: Sequence[Any], ours: Sequence[dict[str, np.ndarray]], conf: float, iou: float, band: float
) -> dict[str, Any]:
    """Match the two pipelines' boxes; explain differences by the threshold or by NMS ties.

    A box whose score is within ``band`` of the threshold may fall either side of it. A box that
    competes in NMS with another candidate of its class (IoU > ``iou``) whose score is within ``band``
    of its own may lose in one pipeline and win in the other: which one survives a tie is up to the
    NMS implementation (a barely trained model gives thousands of anchors one and the same score).
    """
    ious: list[float] = []
    sdiffs: list[float] = []
    unexplained = near = ties = n_ref = n_onnx = 0
    for res, o in zip(refs, ours, strict=True):
        rb = res.boxes
        r_xyxy, r_score = rb.xyxy.cpu().numpy(), rb.conf.cpu().numpy()
        r_cls = rb.cls.cpu().numpy().astype(int)
        n_ref += len(r_score)
        n_onnx += len(o["score"])

        def tied(box: np.ndarray, s: float, c: int) -> bool:
            same = o["cand_cls"] == c  # noqa: B023
            close = np.abs(o["cand_score"][same] - s) <= band  # noqa: B023
            overlap = box_iou(box[None], o["cand_xyxy"][same][close])[0]  # noqa: B023
            return bool(((overlap > iou) & (overlap < 1 - 1e-6)).any())

        matched_r, matched_o = _match(r_xyxy, r_cls, o["xyxy"], o["cls"])
        for i, j in zip(matched_r, matched_o, strict=True):
            pair_iou = float(box_iou(r_xyxy[i : i + 1], o["xyxy"][j : j + 1])[0, 0])
            sdiffs.append(abs(float(r_score[i]) - float(o["score"][j])))
            if (
                pair_iou < 1 - 1e-3
                and tied(r_xyxy[i], r_score[i], r_cls[i])
                and tied(o["xyxy"][j], o["score"][j], o["cls"][j])
            ):
                ties += 1
            else:
                ious.append(pair_iou)
        left = [(r_xyxy[i], r_score[i], r_cls[i]) for i in range(len(r_score)) if i not in set(matched_r)]
        left += [
            (o["xyxy"][j], o["score"][j], o["cls"][j])
            for j in range(len(o["score"]))
            if j not in set(matched_o)
        ]
        for box, s, c in left:
            if abs(float(s) - conf) <= band:
                near += 1
            elif tied(box, float(s), int(c)):
                ties += 1
            else:
                unexplained += 1
    return {
        "boxes_reference": n_ref,
        "boxes_onnx": n_onnx,
        "matched": len(ious),
        "min_matched_iou": min(ious) if ious else None,
        "mean_matched_iou": float(np.mean(ious)) if ious else None,
        "max_score_diff": max(sdiffs) if sdiffs else None,
        "unmatched_near_threshold": near,
        "explained_by_nms_ties": ties,
        "unmatched_other": unexplained,
    }


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _match(
    r_xyxy: np.ndarray, r_cls: np.ndarray, o_xyxy: np.ndarray, o_cls: np.ndarray
) -> tuple[list[int], list[int]]:
    """Optimal one-to-one matching of same-class boxes by IoU (Hungarian); pairs with IoU > 0.

    Greedy matching mis-pairs the many near-identical boxes of a young model at a low threshold.
    """
    from scipy.optimize import linear_sum_assignment

    if not len(r_xyxy) or not len(o_xyxy):
        return [], []
    ious = box_iou(r_xyxy, o_xyxy) * (r_cls[:, None] == o_cls[None, :])
    rows, cols = linear_sum_assignment(-ious)
    keep = ious[rows, cols] > 0
    return [int(i) for i in rows[keep]], [int(j) for j in cols[keep]]
