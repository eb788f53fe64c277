"""Which channels a skill profile scores, with what weight and in whose words.

The process definition (if any) says who controls a channel (operator: scored, advice given; machine:
scored with a low weight, no advice; outcome / context: not scored), whether differences are ratios
(%) or intervals (absolute), and the words for "higher" and "lower". The user may pick channels with
globs; without a pick, constant channels (except operator set points the experts hold constant: a
change of those is a deviation), declared command/actual duplicates and near-duplicates (|r| > 0.98
of their variation inside the steps) are left out, so a profile means the same for 6 or 60 channels.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from jangin.core import TrainingError
from jangin.core.skill import SessionSignals, Step, bin_means

__all__ = ["channel_meta", "select_channels"]

#: near-duplicate threshold on the within-step correlation of two channels
NEAR_DUPLICATE_R = 0.98
#: default weight by role when the definition gives none (mirrors the process definition's defaults)
_ROLE_WEIGHT = {"operator": 1.0, "machine": 0.25, "outcome": 0.0, "context": 0.0}


def channel_meta(definition: Any, channel: str, unit: str) -> dict[str, Any]:
    """A channel's words and role from the process definition (neutral defaults without one)."""
    cd = definition.channel(channel) if definition is not None else None
    if cd is None:
        return {
            "unit": unit,
            "display_name": channel,
            "kind": "operator" if definition is None else "machine",
            "quantity": "ratio",
            "higher": None,
            "lower": None,
            "advice": definition is None,
            "weight": 1.0 if definition is None else _ROLE_WEIGHT["machine"],
            "duplicate_of": None,
        }
    weight = cd.weight if cd.weight is not None else _ROLE_WEIGHT[cd.role]
    return {
        "unit": cd.unit or unit,
        "display_name": cd.display_name or channel,
        "kind": cd.role,
        "quantity": cd.quantity,
        "higher": cd.higher,
        "lower": cd.lower,
        "advice": cd.role == "operator",
        "weight": 0.0 if cd.duplicate_of else float(weight),
        "duplicate_of": cd.duplicate_of,
    }


def _match(patterns: Iterable[str], channels: Sequence[str]) -> list[str]:
    out: list[str] = []
    for p in patterns:
        hits = [c for c in channels if fnmatch.fnmatchcase(c, p)]
        if not hits:
            raise TrainingError(
                f"--channels {p!r} matches no channel of the reference sessions",
                hint=f"channels: {', '.join(channels[:20])}{' …' if len(channels) > 20 else ''}",
            )
        out += [c for c in hits if c not in out]
    return out


def _within_step(
    sigs: Sequence[SessionSignals], steps: Mapping[str, list[Step]], c: str, hz: float
) -> np.ndarray:
    """The channel's bins with each step's mean removed, all sessions concatenated (the variation a
    near-duplicate must share; two channels that only go on and off together are not duplicates)."""
    parts = []
    for s in sigs:
        t, v = s.channels[c]
        for st in steps.get(s.session_id, []):
            b = bin_means(t, v, st.start_us, st.end_us, hz)
            if len(b) > 2:
                parts.append(b - np.nanmean(b) if np.isfinite(b).any() else b)
    return np.concatenate(parts) if parts else np.zeros(0)


def select_channels(
    sigs: Sequence[SessionSignals],
    channels: Sequence[str],
    steps: Mapping[str, list[Step]],
    *,
    definition: Any = None,
    patterns: Sequence[str] = (),
    context: Iterable[str] = (),
    hz: float = 20.0,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The profile's channel table and the channels left out with the reason.

    Returns:
        ``{channel: meta}`` for every common channel (``role`` ``scored`` or ``context``) and
        ``{channel: why it is not scored}``.
    """
    units = {c: next((s.units.get(c, "") for s in sigs if s.units.get(c)), "") for c in channels}
    meta = {c: channel_meta(definition, c, units[c]) for c in channels}
    dropped: dict[str, str] = {}
    picked = _match(patterns, list(channels)) if patterns else None
    context = set(context)
    for c in channels:
        m = meta[c]
        if picked is not None:
            if c not in picked:
                dropped[c] = "not selected"
            continue
        if m["kind"] in ("outcome", "context"):
            dropped[c] = f"{m['kind']} channel (process definition)"
        elif m["duplicate_of"]:
            dropped[c] = f"duplicate of {m['duplicate_of']} (process definition)"
        elif c in context and m["kind"] != "operator":
            dropped[c] = "trigger of an adjustment (context)"
        elif m["weight"] <= 0:
            dropped[c] = "weight 0"
    if picked is None:
        series = {c: _within_step(sigs, steps, c, hz) for c in channels if c not in dropped}
        for c, x in list(series.items()):
            fin = x[np.isfinite(x)]
            total = np.concatenate([s.channels[c][1] for s in sigs])
            total = total[np.isfinite(total)]
            if len(total) == 0 or np.ptp(total) <= 1e-9 * max(1.0, float(np.abs(total).max())):
                if meta[c]["kind"] == "operator" and len(total):
                    # a set point the experts never change is a rule: keep it (any change deviates)
                    series.pop(c)
                    continue
                dropped[c] = "constant"
                series.pop(c)
            elif len(fin) < 4 or np.nanstd(fin) == 0:
                series.pop(c)  # no variation inside the steps: nothing to compare for duplicates
        listed = [cd.name for cd in getattr(definition, "channels", [])]
        rank = {c: (listed.index(c) if c in listed else len(listed), list(channels).index(c)) for c in series}
        # keep the heavier channel of a pair, then the one the definition lists first
        order = sorted(series, key=lambda c: (-meta[c]["weight"], rank[c]))
        kept: list[str] = []
        for c in order:
            dup = next((k for k in kept if _corr(series[c], series[k]) > NEAR_DUPLICATE_R), None)
            if dup is not None:
                dropped[c] = f"near-duplicate of {dup} (|r| > {NEAR_DUPLICATE_R})"
            else:
                kept.append(c)
    for c in channels:
        meta[c]["role"] = "context" if c in dropped else "scored"
    return meta, dropped


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 4:
        return 0.0
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return abs(float((a * b).sum()) / den) if den > 0 else 0.0
