"""Process-signal models on ONNX Runtime (``task = "process"``, ``outputs.format = "process_v1"``): a
window of sensor samples in, P(NG) out.

The contract with the training side (``jangin.training._process``): the window's feature vector is
:func:`jangin.core.features.window_features` with the manifest's ``outputs.feature_spec``, indexed by
``outputs.feature_index``; ONNX input ``features`` ``(N, F)`` float32; output ``probabilities``
``(N, 2)``, column ``outputs.ng_column`` is P(NG); ``thresholds.ng`` (default 0.5).

Windows come as ``{channel: (times_us, values)}``; :func:`window_from_json`, :func:`window_from_arrow` and
:func:`window_from_csv` read the HTTP and CLI forms. A window without every channel the model was
trained on is refused, naming the missing ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jangin.core import InferenceError, ModelLoadError, ModelManifest, ModelVersion
from jangin.inference._open import ServedOnnx
from jangin.inference._runtime import ort_errors

__all__ = [
    "OnnxProcess",
    "ProcessResult",
    "Window",
    "WindowError",
    "window_from_arrow",
    "window_from_csv",
    "window_from_json",
]

Window = dict[str, tuple[np.ndarray, np.ndarray]]
#: Most samples one window may hold (all channels together).
MAX_SAMPLES = 2_000_000


class WindowError(InferenceError):
    """A window that cannot be scored: missing channels, bad arrays (HTTP 422)."""


@dataclass(frozen=True)
class ProcessResult:
    """One window's score.

    Attributes:
        p_ng: Probability the window is NG (the model's ``ng_column``).
        n_samples: Samples per channel the features were computed from.
    """

    p_ng: float
    n_samples: dict[str, int]


class OnnxProcess(ServedOnnx):
    """A ``process_v1`` model (see the module docstring)."""

    def __init__(self, session: Any, version: ModelVersion) -> None:
        out = version.manifest.outputs
        spec = out.get("feature_spec")
        if not isinstance(spec, dict) or "channels" not in spec:
            raise ModelLoadError(f"{version.name}:{version.version}: process_v1 needs outputs.feature_spec")
        self._bind(session, version)
        self.spec = spec
        self.index = list(out.get("feature_index") or spec.get("index") or [])
        self.ng_column = int(out.get("ng_column", 1))
        self.threshold = float(version.manifest.thresholds.get("ng", 0.5))
        self.classes: tuple[str, ...] = tuple(version.manifest.classes)
        self._outputs = [o.name for o in session.get_outputs()]

    @property
    def channels(self) -> list[str]:
        """The channels a window must hold, in the model's order."""
        return list(self.spec["channels"])

    @classmethod
    def from_version(
        cls,
        mv: ModelVersion,
        *,
        providers: Sequence[str] | None = None,
        prefer: Sequence[str] | None = None,
    ) -> OnnxProcess:
        """Load a published process model (checksums verified) and score an empty window once.

        Raises:
            InferenceError: Not a ``process_v1`` model. ModelLoadError: a checksum mismatch or a broken file.
        """

        def check(m: ModelManifest) -> None:
            if m.task != "process" or m.outputs.get("format") != "process_v1":
                raise InferenceError(  # the request names a model this server cannot serve: a 422, not a 503
                    f"{mv.name}:{mv.version} is not a servable process model (task {m.task}, "
                    f"format {m.outputs.get('format')!r}; process_v1 expected)",
                    hint="retrain it with `jangin train process`",
                )

        # One thread: a few hundred tree nodes gain nothing from more. ONNX Runtime unless a runtime is
        # preferred (open_artifact skips OpenVINO for the ai.onnx.ml operators of tree models, saying so).
        mv, session = cls.open_verified(
            mv, check, providers=None if prefer else ["CPUExecutionProvider"], prefer=prefer, threads=1
        )
        model = cls(session, mv)
        empty = {c: (np.zeros(1, np.int64), np.zeros(1)) for c in model.channels}
        model.score([empty])
        return model

    def features(self, window: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """The model's feature vector of one window.

        Raises:
            WindowError: A channel the model needs is missing or empty.
        """
        from jangin.core.features import window_features

        missing = [c for c in self.channels if c not in window or len(window[c][1]) == 0]
        if missing:
            raise WindowError(
                f"{self.name}:{self.model_version} needs channel(s) {missing} (missing or empty)",
                hint=f"send every channel of {self.channels}",
            )
        vec = window_features(window, self.spec)
        return vec[self.index] if self.index else vec

    def score(self, windows: Sequence[Mapping[str, tuple[np.ndarray, np.ndarray]]]) -> list[ProcessResult]:
        """P(NG) of each window.

        Raises:
            WindowError: A window lacks a channel.
            InferenceError: ONNX Runtime fails.
        """
        if not windows:
            return []
        X = np.stack([self.features(w) for w in windows]).astype(np.float32)
        try:
            outs = dict(zip(self._outputs, self.session.run(None, {self._input_name: X}), strict=True))
        except ort_errors() as exc:
            raise InferenceError(f"ONNX Runtime failed on {len(X)} window(s): {exc}") from exc
        probs = np.asarray(outs.get("probabilities", list(outs.values())[-1]), np.float32).reshape(len(X), -1)
        return [
            ProcessResult(float(p[self.ng_column]), {c: len(w[c][1]) for c in self.channels})
            for p, w in zip(probs, windows, strict=True)
        ]

    def __repr__(self) -> str:
        return f"OnnxProcess({self.name}:{self.model_version})"


def _arrays(name: str, t: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        values = np.asarray(v, dtype=np.float64).reshape(-1)
        times = (
            np.arange(len(values), dtype=np.int64) * 1000
            if t is None
            else np.asarray(t, dtype=np.float64).reshape(-1).astype(np.int64)
        )
    except (TypeError, ValueError) as exc:
        raise WindowError(f"channel {name!r}: values are not numbers ({exc})") from exc
    if len(times) != len(values):
        raise WindowError(f"channel {name!r}: {len(times)} times but {len(values)} values")
    order = np.argsort(times, kind="stable")
    return times[order], values[order]


def _check_size(window: Window) -> Window:
    n = sum(len(v) for _, v in window.values())
    if n > MAX_SAMPLES:
        raise WindowError(f"window of {n} samples is over the limit of {MAX_SAMPLES}")
    return window


def window_from_json(body: Mapping[str, Any]) -> Window:
    """``{"channels": {name: {"t_us": [...], "values": [...]}}}`` (``t_us`` optional: 1 kHz) → window.

    Raises:
        WindowError: The body does not have that shape.
    """
    chans = body.get("channels") if isinstance(body, Mapping) else None
    if not isinstance(chans, Mapping) or not chans:
        raise WindowError(
            "a process window needs 'channels': {name: {t_us: [...], values: [...]}}",
            hint='e.g. {"channels": {"pressure": {"t_us": [0, 1000], "values": [1.2, 1.3]}}}',
        )
    out: Window = {}
    for name, ch in chans.items():
        if isinstance(ch, Mapping):
            out[str(name)] = _arrays(str(name), ch.get("t_us"), ch.get("values", []))
        else:
            out[str(name)] = _arrays(str(name), None, ch)
    return _check_size(out)


def _from_table(table: Any, where: str) -> Window:
    cols = set(table.column_names)
    if {"channel", "value"} <= cols:  # long form: channel, t_us, value
        t = table.column("t_us").to_numpy() if "t_us" in cols else None
        names = np.asarray(table.column("channel").to_pylist(), dtype=object)
        vals = table.column("value").to_numpy(zero_copy_only=False)
        out: Window = {}
        for name in dict.fromkeys(names.tolist()):
            sel = names == name
            out[str(name)] = _arrays(str(name), None if t is None else t[sel], vals[sel])
        return _check_size(out)
    tcol = next((c for c in ("t_us", "t_s") if c in cols), None)
    if tcol is None:
        raise WindowError(
            f"{where}: no t_us / t_s column (wide form) nor channel / value columns (long form)"
        )
    t = np.asarray(table.column(tcol).to_numpy(zero_copy_only=False), np.float64)
    if tcol == "t_s":
        t = t * 1e6
    out = {}
    for c in table.column_names:
        if c == tcol:
            continue
        v = np.asarray(table.column(c).to_numpy(zero_copy_only=False), np.float64)
        ok = np.isfinite(v)
        out[c] = _arrays(c, t[ok], v[ok])
    return _check_size(out)


def window_from_arrow(data: bytes) -> Window:
    """An Arrow IPC stream (or file): long form ``channel, t_us, value`` or wide ``t_us, <channel>…``.

    Raises:
        WindowError: Not Arrow IPC, or neither form.
    """
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        table = ipc.open_stream(pa.BufferReader(data)).read_all()
    except (pa.ArrowInvalid, OSError):
        try:
            table = ipc.open_file(pa.BufferReader(data)).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise WindowError(f"the body is not Arrow IPC: {exc}") from exc
    return _from_table(table, "Arrow window")


def window_from_csv(path: str | Path) -> Window:
    """A CSV window: wide (``t_us`` or ``t_s`` then one column per channel) or long (``channel, t_us, value``).

    Raises:
        WindowError: Unreadable, or neither form.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        table = pcsv.read_csv(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise WindowError(f"cannot read the window CSV {path}: {exc}") from exc
    return _from_table(table, str(path))
