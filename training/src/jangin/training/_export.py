"""Runtime artifacts of a published model: OpenVINO IR (fp32, fp16), INT8, each through a parity gate.

``export_runtime`` adds one artifact to a model version directory (``runtimes/<runtime>-<precision>/``)
and to its manifest (``runtimes``), after the gate has compared it with the fp32 ONNX model on the
held-out check set:

* the task metric: detector mAP50 (conf 0.001, the model's NMS IoU) may drop by at most 1 point,
  anomaly and process AUROC by at most 0.01; a refusal names runtime, precision, metric, both values;
* for fp32 and fp16, also the raw outputs: the largest difference, relative to the largest output,
  at most 1e-3 (fp32) or 2e-2 (fp16).

INT8 is static post-training quantisation with ONNX Runtime (``quantize_static``: QDQ, per-channel
weights, activations calibrated on ``calibration`` images of the training split with the model's own
preprocessing; MinMax, Entropy or Percentile). For OpenVINO the weights are quantised to 7 bits
(``reduce_range``): on CPUs without VNNI its uint8 x int8 products are summed in saturating 16-bit pairs,
which full-range weights overflow (measured on the demo detector, AVX2: mAP50 drop 0.056 with 8-bit
weights, 0.002 with 7-bit; ONNX Runtime's kernels do not saturate and keep 8 bits). A detector is quantised whole except its box decoding
(the nodes after the last convolution); an anomaly model only in its convolutions (its distances to
the memory bank stay in float). The QDQ model runs on ONNX Runtime as is, and on OpenVINO as IR
(OpenVINO executes the quantise/dequantise pairs as int8).

Measured on the demo detector (YOLO11n, 256 px; check set its 24 held-out test images, calibration its
112 training images; 2 shared AVX2 cores): 16 calibration images lost 0.03 mAP50 (refused), 112 kept
both INT8 artifacts within 0.003; keeping the whole detection head in float did not help (ONNX Runtime
drop 0.015, OpenVINO 0.044). :func:`export_best` tries the candidates and keeps each one that passes.

The stem (the first convolutions, which see raw pixels) is what real images are sensitive to: on
NEU-DET (steel, YOLO11n at 192 px) ONNX Runtime INT8 lost 0.052 mAP50 on the val split with it in
int8 and none with it in float, so :data:`INT8_FLOAT_STEM` is chosen per model on the val split
(``CheckSet.select``) and the gate checks the choice on the test split. Every artifact must also give
fp32's verdict at the model's own thresholds on :data:`VERDICT_AGREEMENT` of the check inputs.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import TrainingError
from jangin.core.artifacts import InputSpec, ModelManifest, ModelVersion, RuntimeArtifact, sha256_file
from jangin.core.runtimes import Runtime, open_runtime

__all__ = [
    "TOLERANCES",
    "CheckSet",
    "evaluate_runtime",
    "export_best",
    "export_runtime",
    "measure_throughput",
    "preprocess",
    "quantize_int8",
]

log = logging.getLogger(__name__)

#: Largest accepted metric drop per task (metric, drop).
TOLERANCES: dict[str, tuple[str, float]] = {
    "detect": ("mAP50", 0.01),
    "anomaly": ("auroc", 0.01),
    "process": ("auroc", 0.01),
}
#: Least share of check inputs whose verdict at the model's own thresholds matches fp32's (see
#: :func:`served_agreement`): the metric gate ranks, this holds the operating point.
VERDICT_AGREEMENT = 0.95
#: Largest raw-output difference relative to the largest output, per precision (not checked for int8).
CLOSENESS = {"fp32": 1e-3, "fp16": 2e-2}
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
#: Inputs per calibration run when the model's batch is dynamic.
CALIBRATION_BATCH = 16
#: INT8 keeps this many leading convolutions (the stem, which sees the raw pixels) in float, tried in
#: this order on the selection split until one keeps the metric within the tolerance there. Measured on
#: NEU-DET (YOLO11n, 192 px, its 266 val images, 256 calibration images; ONNX Runtime): 0 -> mAP50 drop
#: 0.058, 1 -> -0.009 (no drop); the demo detector passes with 0.
INT8_FLOAT_STEM = (0, 1, 2)
#: Without a selection split: the stem in float (the safe choice of the measurements above).
INT8_FLOAT_STEM_DEFAULT = 1
#: Operator types quantised per task (absent: all but the detector's decoding after its last Conv).
#: Measured on 2 cores (bench_runtimes.py): a YOLO11n quantised whole took half the CPU of fp32, with
#: convolutions only no less; PatchCore's memory-bank distances (MatMul, Sub, ReduceMin) need float.
INT8_OP_TYPES: dict[str, tuple[str, ...]] = {"anomaly": ("Conv",), "process": ("Conv",)}


@dataclass
class CheckSet:
    """What the parity gate and the INT8 calibration run on.

    Attributes:
        inputs: Held-out inputs: BGR uint8 images (image models) or ready float32 arrays (process).
        labels: Per input: ``(boxes_xyxy_norm, class_ids)`` for detectors, a bool (defective) otherwise.
        calibration: Inputs for INT8 calibration (training split), same kind as ``inputs``.
        source: Where the sets came from (recorded in the manifest).
        select: Inputs INT8's settings are chosen on (validation split), never the held-out ``inputs``:
            the gate then checks the chosen artifact on data it was not chosen on.
        select_labels: Their labels, as ``labels``.
    """

    inputs: list[np.ndarray]
    labels: list[Any]
    calibration: list[np.ndarray] = field(default_factory=list)
    source: str = ""
    select: list[np.ndarray] = field(default_factory=list)
    select_labels: list[Any] = field(default_factory=list)


def preprocess(img: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, tuple[float, float, int, int]]:
    """A BGR uint8 image → the model input ``(C, H, W)`` float32 as the manifest's InputSpec says,
    and the letterbox geometry ``(gain_x, gain_y, pad_left, pad_top)`` (identity for stretch)."""
    import cv2

    from jangin.training._parity import letterbox

    h, w = img.shape[:2]
    if spec.resize == "letterbox" and spec.width == spec.height:
        x, geo = letterbox(img, spec.width, spec.pad_value)
    else:
        x = cv2.resize(img, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        geo = (spec.width / w, spec.height / h, 0, 0)
    if spec.color == "rgb":
        x = x[..., ::-1]
    t = x.transpose(2, 0, 1).astype(np.float32) * np.float32(spec.scale)
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    std = np.asarray(spec.std, np.float32)[:, None, None]
    return np.ascontiguousarray((t - mean) / std), geo


def _tensors(m: ModelManifest, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Any]]:
    if m.input is None or m.task == "process":
        return [np.asarray(x, np.float32) for x in inputs], [None] * len(inputs)
    pairs = [preprocess(im, m.input) for im in inputs]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _batches(rt: Runtime, xs: Sequence[np.ndarray], step: int = 8) -> list[list[np.ndarray]]:
    """Run ``xs`` (one input each) in batches (1 when the model's batch is static); per-input outputs."""
    first = rt.input_shapes[0][0] if rt.input_shapes and rt.input_shapes[0] else 1
    step = step if not isinstance(first, int) else 1
    out: list[list[np.ndarray]] = []
    for i in range(0, len(xs), step):
        batch = np.stack(xs[i : i + step])
        res = rt.run({rt.input_names[0]: batch})
        out.extend([r[k] for r in res] for k in range(len(batch)))
    return out


def evaluate_runtime(
    rt: Runtime, m: ModelManifest, check: CheckSet
) -> tuple[str, float, list[list[np.ndarray]]]:
    """The task metric of ``rt`` on the check set, and its raw outputs (per input)."""
    xs, geos = _tensors(m, check.inputs)
    outs = _batches(rt, xs)
    if m.task == "detect":
        from jangin.core.detections import Detections
        from jangin.training._eval import detection_map
        from jangin.training._parity import decode

        iou = float(m.thresholds.get("iou", 0.45))
        preds = []
        for o, (gx, gy, px, py), img in zip(outs, geos, check.inputs, strict=True):
            xyxy, score, cls = decode(o[0], 0.001, iou)
            h, w = img.shape[:2]
            b = np.clip((xyxy - [px, py, px, py]) / [gx, gy, gx, gy], 0, [w, h, w, h]) / [w, h, w, h]
            preds.append(
                Detections(b.astype(np.float32), score.astype(np.float32), cls.astype(np.int64), m.classes)
            )
        return "mAP50", float(detection_map(preds, check.labels, m.classes)["mAP50"]), outs
    if m.task in ("anomaly", "process"):
        from jangin.training._metrics import roc_auc

        k = _score_index(rt.output_names)
        scores = np.array([float(np.ravel(o[k])[-1]) for o in outs])
        auc = roc_auc(np.asarray(check.labels, bool), scores)
        if auc is None:
            raise TrainingError(
                "the check set has one class only: AUROC is undefined", hint="add defective inputs"
            )
        return "auroc", float(auc), outs
    raise TrainingError(f"runtime export of {m.task} models is not supported (detect, anomaly, process are)")


def _score_index(names: Sequence[str]) -> int:
    """The output holding the score: anomaly_v1 ``pred_score``; a process model (skl2onnx)
    ``probabilities`` (OK, NG), P(NG) last."""
    return next((list(names).index(n) for n in ("pred_score", "probabilities") if n in names), 0)


def measure_throughput(rt: Runtime, x: np.ndarray, *, seconds: float = 1.0, min_runs: int = 3) -> float:
    """Inputs per second of ``rt`` on batch ``x`` (a warm-up run first)."""
    feed = {rt.input_names[0]: x}
    rt.run(feed)
    n, t0 = 0, time.perf_counter()
    while n < min_runs or time.perf_counter() - t0 < seconds:
        rt.run(feed)
        n += 1
    return n * len(x) / (time.perf_counter() - t0)


# -- INT8 ----------------------------------------------------------------------------------------


def head_nodes(model: Any) -> list[str]:
    """Names of the nodes after the last convolution (box decoding, distances): kept in float."""
    nodes = list(model.graph.node)
    last = max((i for i, n in enumerate(nodes) if n.op_type == "Conv"), default=-1)
    names = [n.name for n in nodes[last + 1 :] if n.name]
    names += [n.name for n in nodes if n.name and ("/dfl/" in n.name or n.op_type == "Softmax")]
    return sorted(set(names))


def stem_nodes(model: Any, convs: int) -> list[str]:
    """Names of the nodes before the ``convs + 1``-th convolution (the first ``convs`` convolutions and
    what follows them up to the next one: bias, activation): kept in float."""
    nodes = list(model.graph.node)
    at = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    cut = 0 if convs <= 0 else (at[convs] if convs < len(at) else len(nodes))
    return [n.name for n in nodes[:cut] if n.name]


def quantize_int8(
    onnx_path: Path,
    out_path: Path,
    calibration: Sequence[np.ndarray],
    *,
    method: str = "minmax",
    exclude_head: bool = True,
    float_stem: int = 0,
    op_types: Sequence[str] | None = None,
    reduce_range: bool = False,
) -> dict[str, Any]:
    """Static INT8 quantisation (QDQ, per-channel int8 weights, uint8 activations) with ONNX Runtime.

    Args:
        onnx_path: The fp32 model.
        out_path: Where the quantised model goes.
        calibration: Preprocessed inputs ``(C, H, W)`` (or the model's input without batch).
        method: ``minmax``, ``entropy`` or ``percentile`` (99.999).
        exclude_head: Keep the nodes after the last Conv in float (see :func:`head_nodes`).
        float_stem: Keep the first this many convolutions in float (see :func:`stem_nodes`).
        op_types: Quantise only these operator types (default: every type ONNX Runtime can).
        reduce_range: 7-bit weights: CPUs without VNNI (AVX2 only) multiply uint8 x int8 pairs with a
            saturating 16-bit sum in OpenVINO, which full 8-bit weights can overflow.

    Returns:
        What was done (for the manifest): method, images, excluded node count.
    """
    import onnx

    from jangin.training._ultralytics_env import import_onnxruntime

    import_onnxruntime()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}")
    if not calibration:
        raise TrainingError("INT8 calibration needs at least one input", hint="pass --calibration N > 0")
    src = onnx_path
    pre = out_path.with_name(out_path.stem + ".pre.onnx")
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        src = pre
    except Exception as exc:  # the pre-processing is an optimisation; quantise the original without it
        log.warning("quantisation pre-processing of %s failed (%s); quantising it as is", onnx_path, exc)
    model = onnx.load(str(src))
    name = model.graph.input[0].name
    excluded = sorted(set(head_nodes(model) if exclude_head else []) | set(stem_nodes(model, float_stem)))

    dims = model.graph.input[0].type.tensor_type.shape.dim
    step = CALIBRATION_BATCH if dims and not dims[0].HasField("dim_value") else 1

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        """Batches of ``step`` inputs (one calibration run per batch, not per input)."""

        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = calibration[self.i : self.i + step]
            self.i += step
            return {name: np.stack([np.asarray(x, np.float32) for x in chunk])} if len(chunk) else None

    calib = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    try:
        quantize_static(
            str(src),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=calib,
            nodes_to_exclude=excluded,
            op_types_to_quantize=list(op_types) if op_types else None,
            extra_options={"CalibPercentile": 99.999},
        )
    except Exception as exc:  # onnxruntime.quantization raises anything from ValueError to its own types
        raise TrainingError(f"INT8 quantisation of {onnx_path} failed: {exc}") from exc
    finally:
        pre.unlink(missing_ok=True)
    return {
        "method": method,
        "images": len(calibration),
        "excluded_nodes": len(excluded),
        "float_stem": float_stem,
        "op_types": list(op_types) if op_types else "all",
        "format": "QDQ",
        "reduce_range": reduce_range,
    }


# -- export + gate ---------------------------------------------------------------------------------


def export_runtime(
    mv: ModelVersion,
    check: CheckSet,
    *,
    runtime: str,
    precision: str,
    device: str | None = None,
    calibration_method: str = "minmax",
    measure: bool = True,
    measure_seconds: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> RuntimeArtifact:
    """Build one runtime artifact of ``mv``, gate it, and record it in the version's manifest.

    Args:
        mv: The published version (its ``model.onnx`` is the fp32 reference).
        check: Held-out inputs with labels, and the calibration inputs (INT8).
        runtime: ``onnxruntime`` or ``openvino``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        device: Device to build and check on (default: the runtime's CPU).
        calibration_method: INT8 only: ``minmax``, ``entropy`` or ``percentile``.
        measure: Measure throughput (batch 8) of the artifact and of fp32 ONNX Runtime for the manifest.
        measure_seconds: How long each throughput measurement runs.
        progress: Called with a short description of each step.

    Returns:
        The manifest entry written.

    Raises:
        TrainingError: The gate refused the artifact (the message names runtime, precision, metric,
            both values), or building it failed.
    """
    say = progress or (lambda _msg: None)
    m = mv.manifest
    if m.task not in TOLERANCES:
        raise TrainingError(
            f"{mv.name}:{mv.version} is a {m.task} model; runtime export takes detect, anomaly, process"
        )
    if (runtime, precision) == ("onnxruntime", "fp32"):
        raise TrainingError("onnxruntime fp32 is model.onnx itself; export openvino, fp16 or int8")
    if runtime == "onnxruntime" and precision == "fp16" and (device or "cpu") == "cpu":
        raise TrainingError(
            "onnxruntime fp16 on CPU computes in fp32 (no gain)", hint="use --runtime openvino, or int8"
        )
    if not check.inputs:
        raise TrainingError(f"no held-out inputs to check {mv.name}:{mv.version} on ({check.source})")
    model = mv.file("model.onnx")
    mv.verify()
    if runtime == "openvino":
        from jangin.core.runtimes import ONNX_ML_REASON, uses_onnx_ml

        if uses_onnx_ml(model.read_bytes()):
            raise TrainingError(
                f"{mv.name}:{mv.version} cannot be exported to openvino: {ONNX_ML_REASON}",
                hint="serve it on onnxruntime (fp32, or --runtime onnxruntime --precision int8)",
            )
    metric, tol = TOLERANCES[m.task]
    say("fp32 reference")
    ref = open_runtime(model.read_bytes(), runtime="onnxruntime", device="cpu")
    _, ref_value, ref_out = evaluate_runtime(ref, m, check)

    sub = f"runtimes/{runtime}-{precision}" + (
        f"-{device.lower()}" if device and device.lower() != "cpu" else ""
    )
    staging = mv.path / f".staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        info: dict[str, Any] = {}
        if precision == "int8":
            files, info = _int8_files(model, m, check, staging, runtime, device, calibration_method, say)
        else:
            files = _build_files(model, model, runtime, precision, staging, say)
        say(f"{runtime} {precision}: checking on {len(check.inputs)} held-out input(s)")
        first = files[0]
        from jangin.core.runtimes import OV_CACHE

        # compiled once here into the version's OpenVINO cache: serving it later loads from the cache
        cache = mv.path / OV_CACHE if runtime == "openvino" else None
        rt = open_runtime(first, runtime=runtime, device=device, precision=precision, cache_dir=cache)
        _, value, out = evaluate_runtime(rt, m, check)
        drop = ref_value - value
        parity: dict[str, Any] = {
            "metric": metric,
            "fp32": round(ref_value, 5),
            "value": round(value, 5),
            "drop": round(drop, 5),
            "tolerance": tol,
            "inputs": len(check.inputs),
            "check_set": check.source,
        }
        problems = []
        if drop > tol:
            problems.append(f"{metric} {value:.4f} vs fp32 {ref_value:.4f} (drop {drop:.4f} > {tol})")
        rel = _max_rel_diff(ref_out, out)
        parity["max_rel_output_diff"] = rel  # recorded for int8 too; gated for fp32 / fp16
        agree = served_agreement(m, ref_out, out, _score_index(rt.output_names))
        parity["agreement"] = agree
        if agree["verdicts"] < VERDICT_AGREEMENT:
            problems.append(
                f"only {agree['verdicts']:.3f} of the verdicts at the model's thresholds agree with fp32 "
                f"(< {VERDICT_AGREEMENT})"
            )
        if precision in CLOSENESS and rel > CLOSENESS[precision]:
            problems.append(f"raw outputs differ by {rel:.2e} of their range (> {CLOSENESS[precision]})")
        if info:
            parity["int8"] = info
        parity["passed"] = not problems
        if problems:
            tried = (info.get("selection") or {}).get("tried") or []
            if tried:  # what the choice on the selection split saw
                problems.append(
                    "on the selection split: "
                    + ", ".join(
                        f"{t['float_stem']} stem conv(s) in float: drop {t['drop']:.4f}, verdicts {t['verdicts']:.3f}"
                        for t in tried
                    )
                )
            raise TrainingError(
                f"parity gate refused {runtime} {precision} for {mv.name}:{mv.version}: "
                + "; ".join(problems),
                hint="the artifact does not keep the model's answers; try more or other calibration images, "
                "another --calibration-method, or fp32/fp16",
            )
        entry_files = [f"{sub}/{p.name}" for p in files]
        throughput = fp32_tp = None
        if measure:
            say("throughput (batch 8)")
            xs, _ = _tensors(m, check.inputs[:8])
            x = np.stack([xs[i % len(xs)] for i in range(8)])
            if isinstance(rt.input_shapes[0][0], int):
                x = x[:1]
            # fp32 before and after, averaged: on a shared box the load drifts during the measurement
            before = measure_throughput(ref, x, seconds=measure_seconds / 2)
            throughput = round(measure_throughput(rt, x, seconds=measure_seconds), 2)
            fp32_tp = round((before + measure_throughput(ref, x, seconds=measure_seconds / 2)) / 2, 2)
        del rt
        final = mv.path / sub
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(exist_ok=True)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    art = RuntimeArtifact(
        runtime=runtime,
        precision=precision,  # type: ignore[arg-type]
        device_hint=(device or ("CPU" if runtime == "openvino" else "cpu")),
        files=entry_files,
        sha256={f: sha256_file(mv.path / f) for f in entry_files},
        parity=parity,
        throughput=throughput,
        fp32_throughput=fp32_tp,
    )
    mv.add_runtime(art)
    log.info(
        "%s:%s: added %s %s (%s %s, fp32 %s)",
        mv.name,
        mv.version,
        runtime,
        precision,
        metric,
        value,
        ref_value,
    )
    return art


def _build_files(
    model: Path, onnx_src: Path, runtime: str, precision: str, out: Path, say: Callable[[str], None]
) -> list[Path]:
    """The artifact's files in ``out``: OpenVINO IR of ``onnx_src``, or ``onnx_src`` itself (INT8 ONNX),
    or the fp16 ONNX of ``model`` (GPU). A quantised ``onnx_src`` converted to IR is removed."""
    if runtime == "openvino":
        from jangin.core.runtimes._openvino import save_ir

        say("OpenVINO IR")
        files = save_ir(onnx_src, out / "model.xml", fp16=precision == "fp16")
        if onnx_src != model:
            onnx_src.unlink()
        return list(files)
    if precision == "fp16":  # GPU only (refused on CPU before)
        return [_to_fp16(model, out / "model.onnx")]
    return [onnx_src] if onnx_src != model else []


def _int8_files(
    model: Path,
    m: ModelManifest,
    check: CheckSet,
    staging: Path,
    runtime: str,
    device: str | None,
    method: str,
    say: Callable[[str], None],
) -> tuple[list[Path], dict[str, Any]]:
    """Quantise ``model`` for ``runtime``, choosing how many stem convolutions stay in float
    (:data:`INT8_FLOAT_STEM`) on ``check.select``: the first choice within the task's tolerance there
    whose verdicts agree with fp32's (:data:`VERDICT_AGREEMENT`), else the closest one. Without a
    selection split: :data:`INT8_FLOAT_STEM_DEFAULT`. The choice and every tried figure go into the
    returned info (the manifest's parity)."""
    import onnx

    metric, tol = TOLERANCES[m.task]
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(model), load_external_data=False).graph.node)
    cal, _ = _tensors(m, check.calibration)
    select = CheckSet(check.select, check.select_labels)
    ref_value: float | None = None
    ref_out: list[list[np.ndarray]] = []
    if check.select:
        try:
            ref = open_runtime(model.read_bytes(), runtime="onnxruntime", device="cpu")
            _, ref_value, ref_out = evaluate_runtime(ref, m, select)
        except TrainingError as exc:  # e.g. one class only: no metric to choose on
            log.warning("INT8 settings not chosen on the selection split: %s", exc)
    stems = [k for k in INT8_FLOAT_STEM if k < convs] if ref_value is not None else []  # some stay int8
    stems = stems or [min(INT8_FLOAT_STEM_DEFAULT, max(convs - 1, 0))]
    tried: list[dict[str, Any]] = []
    chosen: tuple[float, list[Path], dict[str, Any]] | None = None
    for k in stems:
        out = staging / f"int8-stem{k}"
        out.mkdir()
        say(f"int8 calibration on {len(cal)} input(s), {k} stem convolution(s) in float")
        info = quantize_int8(
            model,
            out / "model.onnx",
            cal,
            method=method,
            float_stem=k,
            op_types=INT8_OP_TYPES.get(m.task),
            reduce_range=runtime == "openvino",
        )
        files = _build_files(model, out / "model.onnx", runtime, "int8", out, say)
        drop, ok = 0.0, True
        if ref_value is not None:
            rt = open_runtime(files[0], runtime=runtime, device=device, precision="int8")
            _, value, got = evaluate_runtime(rt, m, select)
            agree = served_agreement(m, ref_out, got, _score_index(rt.output_names))["verdicts"]
            del rt
            drop = ref_value - value
            tried.append(
                {"float_stem": k, metric: round(value, 5), "drop": round(drop, 5), "verdicts": agree}
            )
            ok = drop <= tol and agree >= VERDICT_AGREEMENT
            drop = drop if ok else max(drop, tol) + (1.0 - agree)  # ranks the refused ones
        if chosen is None or drop < chosen[0]:
            chosen = (drop, files, info)
        if ok:
            break
    assert chosen is not None
    _, files, info = chosen
    final = [staging / f.name for f in files]
    for f, to in zip(files, final, strict=True):
        f.rename(to)
    for d in staging.glob("int8-stem*"):
        shutil.rmtree(d)
    if tried:
        info["selection"] = {"on": f"{len(check.select)} selection inputs", "fp32": round(ref_value or 0, 5)}
        info["selection"]["tried"] = tried
    return final, info


#: What :func:`export_best` tries, in order: the fastest candidates first.
BEST_ORDER = (("openvino", "int8"), ("onnxruntime", "int8"), ("openvino", "fp32"))


def export_best(
    mv: ModelVersion,
    check: CheckSet,
    *,
    candidates: Sequence[tuple[str, str]] = BEST_ORDER,
    stop_at: float | None = 1.5,
    calibration_method: str = "minmax",
    measure_seconds: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[RuntimeArtifact], list[str]]:
    """Export each candidate runtime x precision through the parity gate; keep those that pass.

    Every artifact that passes is recorded in the manifest with its checksum, parity figures and
    throughput (so :func:`jangin.core.runtimes.open_artifact` serves the fastest); refusals are returned
    with their figures. Stops after the first artifact measured at least ``stop_at`` times fp32 ONNX
    Runtime (None: try every candidate).

    Returns:
        ``(artifacts that passed, one line per refusal)``.
    """
    from jangin.core import JanginError

    passed: list[RuntimeArtifact] = []
    refused: list[str] = []
    for runtime, precision in candidates:
        try:
            art = export_runtime(
                mv,
                check,
                runtime=runtime,
                precision=precision,
                calibration_method=calibration_method,
                measure_seconds=measure_seconds,
                progress=progress,
            )
        except (JanginError, ImportError) as exc:
            refused.append(f"{runtime} {precision}: {exc}")
            continue
        passed.append(art)
        speedup = (art.throughput or 0.0) / (art.fp32_throughput or float("inf"))
        if stop_at is not None and speedup >= stop_at:
            break
    return passed, refused


def served_agreement(
    m: ModelManifest, ref: list[list[np.ndarray]], got: list[list[np.ndarray]], score_at: int = 0
) -> dict[str, float]:
    """How far the answers a server gives at the model's own thresholds agree with fp32's: the metric
    gate ranks (mAP50, AUROC), this checks the operating point.

    ``verdicts``: the share of inputs with the same verdict (detector: a box at ``thresholds.conf`` or
    not; anomaly: score at ``thresholds.image``; process: P(NG) at ``thresholds.ng``, the score in output
    ``score_at``). Detectors also ``boxes``: F1 between the two runtimes' boxes at ``thresholds.conf``
    (same class, IoU >= 0.5)."""
    if m.task == "detect":
        from jangin.core.detections import box_iou
        from jangin.training._parity import decode

        conf, iou = float(m.thresholds.get("conf", 0.25)), float(m.thresholds.get("iou", 0.45))
        matched = total = same = 0
        for r, g in zip(ref, got, strict=True):
            rb, _, rc = decode(r[0], conf, iou)
            gb, _, gc = decode(g[0], conf, iou)
            total += len(rb) + len(gb)
            same += bool(len(rb)) == bool(len(gb))
            free = np.ones(len(gb), bool)
            if len(rb) and len(gb):
                ov = box_iou(rb, gb) * (rc[:, None] == gc[None, :])
                for i in range(len(rb)):
                    j = int(np.argmax(np.where(free, ov[i], -1.0)))
                    if free[j] and ov[i, j] >= 0.5:
                        free[j] = False
                        matched += 2
        return {
            "verdicts": round(same / len(ref), 4) if ref else 1.0,
            "boxes": round(matched / total, 4) if total else 1.0,
        }
    t = float(m.thresholds.get("image" if m.task == "anomaly" else "ng", 0.5))
    verdict = [
        (float(np.ravel(r[score_at])[-1]) >= t) == (float(np.ravel(g[score_at])[-1]) >= t)
        for r, g in zip(ref, got, strict=True)
    ]
    return {"verdicts": round(float(np.mean(verdict)), 4) if verdict else 1.0}


def _max_rel_diff(ref: list[list[np.ndarray]], got: list[list[np.ndarray]]) -> float:
    worst = 0.0
    for a_list, b_list in zip(ref, got, strict=True):
        for a, b in zip(a_list, b_list, strict=True):
            a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
            if a64.shape != b64.shape:
                return float("inf")
            scale = max(float(np.abs(a64).max(initial=0.0)), 1e-6)
            worst = max(worst, float(np.abs(a64 - b64).max(initial=0.0)) / scale)
    return worst


def _to_fp16(model: Path, out: Path) -> Path:
    """An fp16 ONNX copy (inputs and outputs stay fp32) for GPU execution providers."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise TrainingError(
            "fp16 ONNX needs onnxconverter-common", hint="pip install onnxconverter-common"
        ) from exc
    onnx.save(float16.convert_float_to_float16(onnx.load(str(model)), keep_io_types=True), str(out))
    return out
