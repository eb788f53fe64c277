"""Features of a sensor window, shared by training and serving of process-quality models.

A process model (``task = "process"``) scores one time window of a session (a seam segment) from its
channels. Training fits the model on these features; the line computes the very same features from
the ``feature_spec`` in the model's manifest, so this module lives in core (stages may not import each
other) and uses numpy only.

For each channel of ``spec["channels"]``, from the raw samples inside the window:

* ``mean``, ``std``, ``q05``, ``q50``, ``q95``;
* ``slope``: least-squares slope in units per second;
* ``frac_out``: share of samples outside the channel's robust band ``spec["band"][ch] = [lo, hi]``
  (median ± 4 × 1.4826 × MAD of the OK training samples);
* ``absz_mean``, ``absz_std``: ``|x - centre| / scale`` of the window's mean and std, with centre and
  scale the median and 1.4826 × MAD of OK training windows (``spec["centre"]``, ``spec["scale"]``).

Then, across channels: ``max_absz_mean``, ``max_absz_std``. A channel with no sample gives NaN, which
becomes 0 (the model was trained with the same rule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BASE_STATS", "feature_names", "fit_feature_spec", "window_features"]

BASE_STATS = ("mean", "std", "q05", "q50", "q95", "slope", "frac_out")
_Z = ("absz_mean", "absz_std")


def feature_names(channels: Sequence[str]) -> list[str]:
    """Names of the feature vector's entries, in order."""
    return [f"{c}:{s}" for c in channels for s in (*BASE_STATS, *_Z)] + ["max_absz_mean", "max_absz_std"]


def _base(t_us: npt.NDArray[Any], v: npt.NDArray[Any], band: Sequence[float] | None) -> list[float]:
    if len(v) == 0:
        return [np.nan] * len(BASE_STATS)
    q05, q50, q95 = np.quantile(v, [0.05, 0.5, 0.95])
    if len(v) > 1 and t_us[-1] > t_us[0]:
        t = (t_us - t_us[0]).astype(np.float64) / 1e6
        tc = t - t.mean()
        slope = float((tc * (v - v.mean())).sum() / max((tc * tc).sum(), 1e-12))
    else:
        slope = 0.0
    frac = float(((v < band[0]) | (v > band[1])).mean()) if band is not None else 0.0
    return [float(v.mean()), float(v.std()), float(q05), float(q50), float(q95), slope, frac]


def window_features(
    window: Mapping[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]], spec: Mapping[str, Any]
) -> npt.NDArray[Any]:
    """The feature vector (float32) of one window.

    Args:
        window: ``{channel: (times_us, values)}`` of the samples inside the window
            (e.g. :func:`jangin.core.timeseries.read_channels` with ``start`` / ``end``).
        spec: The manifest's ``feature_spec``: ``channels``, ``band``, ``centre``, ``scale``.
    """
    out: list[float] = []
    zm, zs = [], []
    centre, scale = spec.get("centre", {}), spec.get("scale", {})
    for ch in spec["channels"]:
        t, v = window.get(ch, (np.zeros(0, np.int64), np.zeros(0)))
        base = _base(np.asarray(t), np.asarray(v, np.float64), spec.get("band", {}).get(ch))
        z = []
        for stat, val in (("mean", base[0]), ("std", base[1])):
            c, s = centre.get(f"{ch}:{stat}"), scale.get(f"{ch}:{stat}")
            z.append(abs(val - c) / s if c is not None and s and np.isfinite(val) else np.nan)
        zm.append(z[0])
        zs.append(z[1])
        out += base + z
    agg = [np.nanmax(a) if np.isfinite(a).any() else np.nan for a in (np.array(zm), np.array(zs))]
    vec = np.asarray(out + agg, np.float64)
    return np.nan_to_num(vec, nan=0.0, posinf=1e6, neginf=-1e6).astype(np.float32)


def fit_feature_spec(
    channels: Sequence[str], ok_windows: Sequence[Mapping[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]]]
) -> dict[str, Any]:
    """The ``feature_spec`` (bands, centres, scales) from OK training windows."""
    spec: dict[str, Any] = {"version": 1, "channels": list(channels), "band": {}, "centre": {}, "scale": {}}
    for ch in channels:
        vals = [np.asarray(w[ch][1], np.float64) for w in ok_windows if ch in w and len(w[ch][1])]
        if not vals:
            continue
        pooled = np.concatenate(vals)
        med = float(np.median(pooled))
        mad = 1.4826 * float(np.median(np.abs(pooled - med))) or float(pooled.std()) or 1e-6
        spec["band"][ch] = [med - 4 * mad, med + 4 * mad]
        stats: tuple[Callable[[npt.NDArray[Any]], Any], ...] = (np.mean, np.std)
        for k, stat in enumerate(stats):
            xs = np.array([float(stat(v)) for v in vals])
            c = float(np.median(xs))
            s = 1.4826 * float(np.median(np.abs(xs - c))) or float(xs.std()) or max(abs(c) * 0.01, 1e-6)
            name = f"{ch}:{('mean', 'std')[k]}"
            spec["centre"][name], spec["scale"][name] = c, s
    return spec
