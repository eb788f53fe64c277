"""Skill profiles: the on-disk format and the pieces both stages need (steps, binning, time normalisation).

A *skill profile* is a model artifact (``task = "skill_profile"``) built by ``jangin.training`` from
expert sessions of one process and read by ``jangin.inference`` to score and coach other sessions.
Its version directory holds:

* ``profile.json``: process, channels (unit, role ``scored`` or ``context``, scoring weight, and the
  process definition's words for them), steps (order, duration distribution, share of the motion),
  the experts' adjustments, the condition (recipe) it holds for, and the build parameters with the
  leave-one-out calibration of the severity thresholds;
* ``envelopes.npz``: for each step and scored channel three arrays of ``n_points`` values over the
  step's normalised time (0 = step start, 1 = step end): ``<step>/<channel>/median``, ``…/lo``,
  ``…/hi`` (the band a session should stay inside); ``<step>/<channel>~env/…`` the envelope of the
  experts' median (lo, hi) and their spread (median); ``<step>/<channel>~sd/hi`` the unsteadiness limit.

Signals are compared as 50 ms bin means (``bin_hz`` = 20): kHz ripple and spikes average out; what an
expert does with the tool does not. Steps come from step markers (or a phase column turned into step
events at import, one numbered occurrence per visit) when there are any; from a signal template only
when the process definition names one (:func:`steps_from_signals`); else the session is one step.

Only numpy is imported here (and pyarrow inside :func:`read_session`); no scipy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from jangin.core._dataset import Dataset

__all__ = [
    "ENVELOPES_FILE",
    "ENV_SUFFIX",
    "PROFILE_FILE",
    "SD_SUFFIX",
    "AdjustmentRule",
    "Band",
    "SessionSignals",
    "SkillProfile",
    "Step",
    "StepProfile",
    "bin_means",
    "condition_label",
    "crossing_index",
    "end_trace",
    "normalise",
    "outside",
    "read_session",
    "rolling_sd",
    "running_median",
    "smooth",
    "step_end_lag",
    "step_key",
    "steps_from_events",
    "steps_from_signals",
    "unsteadiness",
]

PROFILE_FILE = "profile.json"
ENVELOPES_FILE = "envelopes.npz"
FORMAT = "skill_profile_v1"
#: bands of a channel's steadiness (1 s rolling rms around its own running median) are ``<channel>~sd``
SD_SUFFIX = "~sd"
#: the envelope of the experts' median (lo, hi) and their spread (median) are ``<channel>~env``
ENV_SUFFIX = "~env"
Series: TypeAlias = tuple[npt.NDArray[Any], npt.NDArray[Any]]


@dataclass(frozen=True)
class Step:
    """One step of a session, on the reference clock (microseconds since the epoch)."""

    name: str
    start_us: int
    end_us: int
    method: str = "events"
    confidence: float = 1.0
    occurrence: int = 1

    @property
    def duration_s(self) -> float:
        return (self.end_us - self.start_us) / 1e6


@dataclass
class SessionSignals:
    """What skill work needs of one session: its channels, events and metadata."""

    session_id: str
    channels: dict[str, Series]
    events: list[dict[str, Any]] = field(default_factory=list)
    process: str | None = None
    skill_level: str | None = None
    units: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def span_us(self) -> tuple[int, int]:
        firsts = [int(t[0]) for t, _ in self.channels.values() if len(t)]
        lasts = [int(t[-1]) for t, _ in self.channels.values() if len(t)]
        if not firsts:
            return 0, 0
        return min(firsts), max(lasts) + 1


@dataclass
class AdjustmentRule:
    """An adjustment experts make: ``channel`` changes by ``change_rel`` about ``delay_s`` after
    ``trigger_channel`` crosses ``trigger_value`` (``direction`` +1 rising, -1 falling).

    ``also`` lists channels that move with it (a synergic partner) and their relative change; ``steps``
    the steps the experts made it in (a trigger crossed in another step expects nothing), ``lapses``
    later steps whose level the experts keep as before the change. ``support`` of ``of`` made it.
    """

    channel: str
    change_rel: float
    trigger_channel: str
    trigger_value: float
    direction: int
    delay_s: float
    delay_max_s: float
    support: int
    of: int
    change_rel_min: float = 0.0
    change_rel_max: float = 0.0
    also: dict[str, float] = field(default_factory=dict)
    source: str = "events+signals"
    steps: list[str] = field(default_factory=list)
    lapses: list[str] = field(default_factory=list)

    def made(self, t: npt.NDArray[Any], v: npt.NDArray[Any], tc_us: float) -> tuple[bool, float]:
        """(made, relative change) for a trigger crossed at ``tc_us``: the level ``delay_max_s`` after
        it against the second before it (the report, live coaching and training all judge so)."""
        lvl = [float(np.nanmedian(v[m])) if (m := (t >= a) & (t < a + 1e6)).any() else np.nan for a in
               (tc_us - 1e6, tc_us + self.delay_max_s * 1e6)]  # fmt: skip
        c, w = (lvl[1] / lvl[0] - 1 if abs(lvl[0]) > 1e-9 else 0.0), self.change_rel
        return bool(np.sign(c) == np.sign(w) and abs(c) >= 0.5 * abs(w)), c

    def describe(self, units: Mapping[str, str] | None = None) -> str:
        u = (units or {}).get(self.trigger_channel, "")
        arrow = "rises above" if self.direction > 0 else "falls below"
        return (
            f"{self.channel} {self.change_rel * 100:+.0f} % within {self.delay_max_s:.1f} s after "
            f"{self.trigger_channel} {arrow} {self.trigger_value:g} {u}".rstrip()
        )


@dataclass
class StepProfile:
    """A step as the experts do it: order, durations (s) and share of the motion (0..1)."""

    name: str
    order: int
    durations_s: list[float]
    motion_share: float | None = None

    @property
    def duration_median_s(self) -> float:
        return float(np.median(self.durations_s)) if self.durations_s else 0.0

    def duration_range_s(self, q: float = 0.1) -> tuple[float, float]:
        d = np.asarray(self.durations_s, float)
        return (float(np.quantile(d, q)), float(np.quantile(d, 1 - q))) if len(d) else (0.0, 0.0)


@dataclass
class Band:
    """The expert band of one channel in one step, over ``n_points`` of normalised step time."""

    median: npt.NDArray[Any]
    lo: npt.NDArray[Any]
    hi: npt.NDArray[Any]


@dataclass
class SkillProfile:
    """A skill profile: steps, per-step channel envelopes and the experts' adjustments."""

    process: str
    channels: dict[str, dict[str, Any]]
    steps: list[StepProfile]
    bands: dict[tuple[str, str], Band]
    adjustments: list[AdjustmentRule] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    n_points: int = 100
    bin_hz: float = 20.0
    params: dict[str, Any] = field(default_factory=dict)
    condition: dict[str, str] = field(default_factory=dict)

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in sorted(self.steps, key=lambda s: s.order)]

    @property
    def scored_channels(self) -> list[str]:
        return [c for c, spec in self.channels.items() if spec.get("role", "scored") == "scored"]

    def weight(self, channel: str) -> float:
        """The channel's weight in the score (1 unless the process definition says otherwise)."""
        return float(self.channels.get(channel, {}).get("weight", 1.0) or 0.0)

    def step(self, name: str) -> StepProfile | None:
        return next((s for s in self.steps if s.name == name), None)

    def save(self, directory: str | Path) -> list[Path]:
        """Write ``profile.json`` and ``envelopes.npz`` into ``directory``; returns the paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "process": self.process,
            "channels": self.channels,
            "steps": [asdict(s) for s in self.steps],
            "adjustments": [asdict(a) for a in self.adjustments],
            "sessions": self.sessions,
            "n_points": self.n_points,
            "bin_hz": self.bin_hz,
            "params": self.params,
            "condition": self.condition,
            "bands": sorted(f"{s}/{c}" for s, c in self.bands),
        }
        (d / PROFILE_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        arrays: dict[str, npt.NDArray[Any]] = {}
        for (s, c), b in self.bands.items():
            arrays[f"{s}/{c}/median"] = b.median.astype(np.float64)
            arrays[f"{s}/{c}/lo"] = b.lo.astype(np.float64)
            arrays[f"{s}/{c}/hi"] = b.hi.astype(np.float64)
        with open(d / ENVELOPES_FILE, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        return [d / PROFILE_FILE, d / ENVELOPES_FILE]

    @classmethod
    def load(cls, directory: str | Path) -> SkillProfile:
        """Read a profile written by :meth:`save` (no pickles: ``allow_pickle=False``).

        Raises:
            ModelLoadError: Missing or malformed files.
        """
        from jangin.core._errors import ModelLoadError

        d = Path(directory)
        try:
            meta = json.loads((d / PROFILE_FILE).read_text())
            if meta.get("format") != FORMAT:
                raise ModelLoadError(f"{d}: not a {FORMAT} profile (format {meta.get('format')!r})")
            with np.load(d / ENVELOPES_FILE, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k]) for k in z.files}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{d}: cannot read skill profile: {exc}") from exc
        bands: dict[tuple[str, str], Band] = {}
        for key in meta["bands"]:
            s, c = key.split("/", 1)
            bands[(s, c)] = Band(arrays[f"{key}/median"], arrays[f"{key}/lo"], arrays[f"{key}/hi"])
        return cls(
            process=meta["process"],
            channels=meta["channels"],
            steps=[StepProfile(**s) for s in meta["steps"]],
            bands=bands,
            adjustments=[AdjustmentRule(**a) for a in meta["adjustments"]],
            sessions=list(meta["sessions"]),
            n_points=int(meta["n_points"]),
            bin_hz=float(meta["bin_hz"]),
            params=dict(meta.get("params", {})),
            condition=dict(meta.get("condition", {})),
        )


# -- signals -------------------------------------------------------------------------------------------


def bin_means(
    t_us: npt.NDArray[Any], values: npt.NDArray[Any], t0_us: int, t1_us: int, hz: float
) -> npt.NDArray[Any]:
    """Mean of ``values`` in bins of ``1/hz`` seconds from ``t0_us`` to ``t1_us``; NaN where a bin has
    no sample (a slower channel's empty bins are filled from the previous sample, up to 0.5 s)."""
    step = 1e6 / hz
    n = max(0, int(np.ceil((t1_us - t0_us) / step)))
    if n == 0:
        return np.zeros(0)
    t_us = np.asarray(t_us, np.int64)
    values = np.asarray(values, float)
    if len(t_us) > 64 and t_us[0] <= t_us[-1]:  # sorted (as read): look at the span only
        a, b = np.searchsorted(t_us, [t0_us, t1_us])
        t_us, values = t_us[a:b], values[a:b]
    idx = np.floor((t_us - t0_us) / step).astype(np.int64)
    ok = (idx >= 0) & (idx < n) & np.isfinite(values)
    sums = np.bincount(idx[ok], weights=values[ok], minlength=n)
    counts = np.bincount(idx[ok], minlength=n)
    out = np.full(n, np.nan)
    has = counts > 0
    out[has] = sums[has] / counts[has]
    # forward-fill short gaps (slow channels, e.g. a 10 Hz thermocouple in 20 Hz bins)
    limit = int(round(0.5 * hz))
    if limit > 0 and has.any() and not has.all():
        last = np.where(has, np.arange(n), -1)
        last = np.maximum.accumulate(last)
        fill = (~has) & (last >= 0) & (np.arange(n) - last <= limit)
        out[fill] = out[last[fill]]
    return out


def normalise(values: npt.NDArray[Any], n_points: int) -> npt.NDArray[Any]:
    """Resample a step's bins to ``n_points`` over normalised time (linear; NaNs interpolated over)."""
    v = np.asarray(values, float)
    if len(v) == 0:
        return np.full(n_points, np.nan)
    ok = np.isfinite(v)
    if not ok.any():
        return np.full(n_points, np.nan)
    x = (np.arange(len(v)) + 0.5) / len(v)
    return np.asarray(np.interp((np.arange(n_points) + 0.5) / n_points, x[ok], v[ok]))


def smooth(x: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    """Centred moving average over ``n`` bins, NaN-aware (edges average what is there)."""
    if n <= 1 or len(x) == 0:
        return x
    ok = np.isfinite(x)
    k = np.ones(min(n, len(x)))
    num = np.convolve(np.where(ok, x, 0.0), k, mode="same")
    den = np.convolve(ok.astype(float), k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def rolling_sd(x: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    """Centred rolling standard deviation over ``n`` bins (how steady a channel is held)."""
    if len(x) == 0:
        return x
    ok = np.isfinite(x)
    k = np.ones(max(1, min(n, len(x))))
    x0 = np.where(ok, x, 0.0)
    cnt = np.convolve(ok.astype(float), k, mode="same")
    s1 = np.convolve(x0, k, mode="same")
    s2 = np.convolve(x0 * x0, k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(cnt > 1, (s2 - s1 * s1 / cnt) / np.maximum(cnt - 1, 1), np.nan)
    return np.asarray(np.sqrt(np.clip(var, 0, None)))


def running_median(x: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    """Centred running median over ``n`` bins (NaN-aware; edges use what is there). Unlike a moving
    average it keeps a level change sharp, so the residual around it shows wobble, not adjustments."""
    x = np.asarray(x, float)
    if n <= 1 or len(x) < 3:
        return x.copy()
    n = min(n, len(x))
    h = n // 2
    pad = np.pad(x, (h, n - 1 - h), constant_values=np.nan)
    win = np.lib.stride_tricks.sliding_window_view(pad, n)
    # the median of every ``stride``-th window, interpolated between (a level change stays sharp to
    # within a stride, far inside the window)
    stride = max(1, n // 6)
    at = np.unique(np.r_[np.arange(0, len(x), stride), len(x) - 1])
    w = win[at]
    bad = np.isnan(w).any(axis=1)
    med = np.empty(len(at))
    med[~bad] = np.median(w[~bad], axis=1)
    if bad.any():  # the windows at the edges: the median of what is there (nanmedian, row by row)
        med[bad] = [np.median(r[f]) if (f := ~np.isnan(r)).any() else np.nan for r in w[bad]]
    ok = np.isfinite(med)
    if not ok.any():
        return np.full(len(x), np.nan)
    return np.asarray(np.interp(np.arange(len(x)), at[ok], med[ok]))


def outside(
    x: npt.NDArray[Any], env_lo: npt.NDArray[Any], env_hi: npt.NDArray[Any], sig: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """Signed distance of ``x`` outside the experts' median envelope ``[env_lo, env_hi]`` in units of
    their spread ``sig`` (0 inside, positive above, negative below)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        up = (x - env_hi) / np.maximum(sig, 1e-12)
        down = (env_lo - x) / np.maximum(sig, 1e-12)
    return np.where(up > 0, up, np.where(down > 0, -down, 0.0))


def unsteadiness(x: npt.NDArray[Any], hz: float) -> npt.NDArray[Any]:
    """1 s rolling rms of the variation around the series' own 1.5 s running median: an adjustment or
    a step edge moves the median with it, so only wobble remains."""
    res = x - running_median(x, max(3, int(round(1.5 * hz))))
    return rolling_sd(res, int(round(hz)))


def crossing_index(b: npt.NDArray[Any], level: float, direction: int, start: int = 0) -> int | None:
    """The first bin at or after ``start`` where ``b`` crosses ``level`` rising (``direction`` +1) or
    falling (-1): the bin before is on the near side (or at the level), this one beyond it."""
    x = (np.asarray(b, float) - level) * direction
    start = max(1, start)
    if len(x) <= start:
        return None
    with np.errstate(invalid="ignore"):
        hit = (x[start - 1 : -1] <= 0) & (x[start:] > 0)
    idx = np.flatnonzero(hit)
    return None if len(idx) == 0 else int(idx[0]) + start


def end_trace(sig: SessionSignals, channel: str, st: Step, hz: float) -> npt.NDArray[Any]:
    """The channel from the step's start to the session's end, as 0.25 s-smoothed bin means minus its
    median over the step's first tenth (a cue is a change from where the step began, so a level
    shifted by a set point does not move it), the step and what follows it smoothed apart (a change
    at the step's end does not leak back into the step)."""
    t, v = sig.channels[channel]
    b = bin_means(t, v, st.start_us, sig.span_us[1], hz)
    n, k = int(np.ceil(st.duration_s * hz)), max(1, int(round(0.25 * hz)))
    out = np.concatenate([smooth(b[:n], k), smooth(b[n:], k)])
    head = out[: max(1, int(0.1 * st.duration_s * hz))]
    base = float(np.nanmedian(head)) if np.isfinite(head).any() else 0.0
    return np.asarray(out - base)


def step_end_lag(trace: npt.NDArray[Any], st: Step, level: float, direction: int, hz: float) -> float:
    """Seconds from the cue (the first crossing after the step's first tenth) to the step's end;
    negative when the cue came after the end, and the most negative possible when it never came."""
    k = crossing_index(trace, level, direction, start=max(1, int(0.1 * st.duration_s * hz)))
    if k is None:
        return st.duration_s - len(trace) / hz
    return st.duration_s - k / hz


# -- steps ---------------------------------------------------------------------------------------------


def step_key(name: str, occurrence: int = 1) -> str:
    """The profile key of a step occurrence: ``etch`` for the first, ``etch#2`` for the second…"""
    return name if occurrence <= 1 else f"{name}#{occurrence}"


def steps_from_events(events: Sequence[Mapping[str, Any]]) -> list[Step]:
    """Steps from ``step_start`` / ``step_end`` markers (a step without an end ends at the next start).

    ``events``: dicts with ``ts`` (microseconds or datetime), ``kind``, ``name`` and optionally
    ``occurrence``. A step name seen again is a new occurrence (``events.occurrence``, else counted
    here), named by :func:`step_key` (``etch``, ``etch#2``) so that each visit gets its own band.
    """
    marks = sorted(
        (
            (_us(e["ts"]), str(e["kind"]), str(e.get("name") or ""))
            for e in events
            if e.get("kind") in ("step_start", "step_end")
        ),
        key=lambda m: (m[0], 0 if m[1] == "step_end" else 1),
    )
    occ_given = {
        (_us(e["ts"]), str(e.get("name") or "")): int(e["occurrence"])
        for e in events
        if e.get("kind") == "step_start" and e.get("occurrence")
    }
    seen: dict[str, int] = {}
    open_: dict[str, tuple[int, int]] = {}
    steps: list[Step] = []

    def close(name: str, end: int, conf: float) -> None:
        t0, k = open_.pop(name)
        steps.append(Step(step_key(name, k), t0, end, "events", conf, k))

    for ts, kind, name in marks:
        if kind == "step_start":
            for other in list(open_):  # an unclosed step ends where the next one starts
                close(other, ts, 0.8)
            seen[name] = occ_given.get((ts, name), seen.get(name, 0) + 1)
            open_[name] = (ts, seen[name])
        elif name in open_:
            close(name, ts, 1.0)
    return sorted((s for s in steps if s.end_us > s.start_us), key=lambda s: s.start_us)


def _otsu(x: npt.NDArray[Any]) -> tuple[float, float]:
    """Otsu threshold of ``x`` and how well it separates two levels (gap / pooled std)."""
    x = x[np.isfinite(x)]
    if len(x) < 4 or np.ptp(x) == 0:
        return float("nan"), 0.0
    hist, edges = np.histogram(x, bins=64)
    p = hist / hist.sum()
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * mids)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = 0
    k = int(np.argmax(between))
    thr = float(edges[k + 1])
    lo, hi = x[x <= thr], x[x > thr]
    if len(lo) < 2 or len(hi) < 2:
        return thr, 0.0
    pooled = float(np.sqrt((lo.var() * len(lo) + hi.var() * len(hi)) / len(x))) + 1e-9
    return thr, float((hi.mean() - lo.mean()) / pooled)


def _level_split(x: npt.NDArray[Any]) -> tuple[float, float]:
    """A threshold 30 % of the way from the low level (p5) to the high one (p95), and the separation
    of the two sides (gap / pooled std); unlike Otsu it keeps a third, higher level on the high side."""
    x = x[np.isfinite(x)]
    if len(x) < 4:
        return float("nan"), 0.0
    p5, p95 = np.quantile(x, [0.05, 0.95])
    thr = float(p5 + 0.3 * (p95 - p5))
    lo, hi = x[x <= thr], x[x > thr]
    if len(lo) < 2 or len(hi) < 2:
        return thr, 0.0
    pooled = float(np.sqrt((lo.var() * len(lo) + hi.var() * len(hi)) / len(x))) + 1e-9
    return thr, float((np.median(hi) - np.median(lo)) / pooled)


def _longest_run(mask: npt.NDArray[Any], max_gap: int) -> tuple[int, int] | None:
    """``[start, end)`` of the longest run of True, bridging gaps up to ``max_gap`` bins."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return None
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])


TEMPLATE_KINDS = ("activity_motion",)


def steps_from_signals(
    signals: SessionSignals,
    *,
    template: Sequence[StepProfile] | None = None,
    bin_hz: float = 20.0,
    spec: Mapping[str, Any] | None = None,
) -> list[Step]:
    """Steps found in the signals by the signal template a process definition names (``spec``).

    Without a ``spec`` (the process definition names no template) the session is one step
    ``session`` (method ``none``): steps are never guessed from signals the definition says nothing
    about. The one template kind, ``activity_motion`` (keys ``activity`` and ``motion``: lists of
    channel names, from the definition's YAML), works as follows:

    1. *Activity*: of the ``activity`` channels, the one with the clearest on/off levels splits the
       session at its Otsu threshold into idle – active – idle.
    2. *Motion*: inside the active span, the ``motion`` channel with the clearest two regimes marks
       where motion starts and stops: active-before-motion, motion, active-after-motion.
    3. The motion is split into the template's motion steps by their share of the integrated motion
       channel.

    With a ``template`` (a profile's steps, in order) the steps get its names. Each step carries
    ``method="signals"`` and a confidence (0..1) from how clearly the regimes separate AND how well
    the found durations fit the experts' (a step 3× longer than any expert's is not a confident fit).
    """
    t0, t1 = signals.span_us
    if t1 <= t0:
        return []
    if not spec or spec.get("kind", "activity_motion") not in TEMPLATE_KINDS:
        return [Step("session", t0, t1, "none", 1.0 if not spec else 0.0)]
    act_names = _names(spec, "activity")
    mot_names = _names(spec, "motion")
    wanted = set(act_names) | set(mot_names)
    binned = {
        c: bin_means(t, v, t0, t1, bin_hz) for c, (t, v) in signals.channels.items() if len(t) and c in wanted
    }
    if not any(c in binned for c in act_names):
        return [Step("session", t0, t1, "signals", 0.0)]
    found = _activity_motion(binned, act_names, mot_names, t0, t1, bin_hz, template)
    return _fit_confidence(found, template)


def _names(spec: Mapping[str, Any], key: str) -> list[str]:
    """Channel names of a template key: ``activity: [a, b]`` or ``activity_channel: a``."""
    v = spec.get(key, spec.get(f"{key}_channel", []))
    return [str(v)] if isinstance(v, str) else [str(c) for c in v or []]


def _fit_confidence(steps: list[Step], template: Sequence[StepProfile] | None) -> list[Step]:
    """Scale each step's confidence by how its duration fits the experts' (1 inside their range,
    falling towards 0 at 3× outside it) and all of them by the share of template steps found."""
    if not template:
        return steps
    by = {s.name: s for s in template if s.durations_s}
    if not by:
        return steps
    fits = []
    for st in steps:
        sp = by.get(st.name)
        if sp is None:
            fits.append(1.0)
            continue
        lo, hi = min(sp.durations_s), max(sp.durations_s)
        d = max(st.duration_s, 1e-3)
        off = max(lo / d, d / hi, 1.0) if lo > 0 else max(d / hi, 1.0) if hi > 0 else 1.0
        fits.append(float(np.clip(1.0 - (off - 1.0) / 2.0, 0.0, 1.0)))
    found = sum(1 for s in template if s.durations_s and any(st.name == s.name for st in steps))
    coverage = found / len(by)
    overall = min(fits) * coverage if fits else 0.0
    return [
        Step(s.name, s.start_us, s.end_us, s.method, round(s.confidence * min(f, 0.5 + 0.5 * overall), 3))
        for s, f in zip(steps, fits, strict=True)
    ]


def _activity_motion(
    binned: dict[str, npt.NDArray[Any]],
    act_names: Sequence[str],
    mot_names: Sequence[str],
    t0: int,
    t1: int,
    bin_hz: float,
    template: Sequence[StepProfile] | None,
) -> list[Step]:
    n = len(next(iter(binned.values())))
    step_us = 1e6 / bin_hz

    def at(i: int) -> int:
        return int(t0 + i * step_us)

    # activity: of the channels with two clear levels and about the longest "on" run, the clearest
    cands: list[tuple[int, float, str, tuple[int, int]]] = []
    for c, v in binned.items():
        if c not in act_names:
            continue
        thr, sep = _otsu(v)
        run = _longest_run(v > thr, max_gap=int(0.3 * bin_hz)) if sep >= 5 else None
        if run is not None:
            cands.append((run[1] - run[0], sep, c, run))
    if not cands:
        return [Step("session", t0, t1, "signals", 0.0)]
    longest_on = max(c[0] for c in cands)
    _, sep, act_ch, (a0, a1) = max((c for c in cands if c[0] >= 0.97 * longest_on), key=lambda c: c[1])
    conf_act = float(1 - np.exp(-sep / 8))
    # motion: inside the active span, a motion channel with two clear levels whose "on" run starts
    # after the active span starts and ends before it ends
    motion: tuple[int, int] | None = None
    mot_ch = None
    best = 0.0
    longest = 0
    for c, v in binned.items():
        if c == act_ch or c not in mot_names:
            continue
        seg = v[a0:a1]
        th, s = _level_split(seg)
        if s < 3:
            continue
        r = _longest_run(seg > th, max_gap=int(0.3 * bin_hz))
        if r is not None and r[0] >= 2 and r[1] <= len(seg) - 2 and r[1] - r[0] > longest:
            longest, best, mot_ch, motion = r[1] - r[0], s, c, (a0 + r[0], a0 + r[1])
    conf_mot = float(1 - np.exp(-best / 8)) * conf_act
    names = _template_names(template)
    steps = [Step(names["idle"], at(0), at(a0), "signals", conf_act)]
    if motion is None or mot_ch is None:
        steps.append(
            Step(names["motion"][0] if names["motion"] else "active", at(a0), at(a1), "signals", conf_act)
        )
    else:
        m0, m1 = motion
        steps.append(Step(names["start"], at(a0), at(m0), "signals", conf_mot))
        parts = names["motion"] or ["motion"]
        shares = names["shares"] or [1.0 / len(parts)] * len(parts)
        v = np.nan_to_num(np.clip(binned[mot_ch][m0:m1], 0, None))
        cum = np.cumsum(v)
        total = cum[-1] if len(cum) and cum[-1] > 0 else 1.0
        bounds = [m0]
        acc = 0.0
        for share in shares[:-1]:
            acc += share / sum(shares)
            bounds.append(m0 + int(np.searchsorted(cum / total, acc)) + 1)
        bounds.append(m1)
        for name, b0, b1 in zip(parts, bounds[:-1], bounds[1:], strict=True):
            steps.append(Step(name, at(b0), at(max(b1, b0 + 1)), "signals", round(conf_mot * 0.85, 3)))
        steps.append(Step(names["finish"], at(m1), at(a1), "signals", conf_mot))
    if a1 < n:
        steps.append(Step(names["after"], at(a1), t1, "signals", conf_act))
    return [s for s in steps if s.end_us > s.start_us]


def _template_names(template: Sequence[StepProfile] | None) -> dict[str, Any]:
    default: dict[str, Any] = {
        "idle": "idle",
        "start": "start",
        "motion": [],
        "shares": [],
        "finish": "finish",
        "after": "after",
    }
    if not template:
        return default
    ordered = sorted(template, key=lambda s: s.order)
    motion = [s for s in ordered if s.motion_share]
    if not motion:
        return default
    first = ordered.index(motion[0])
    last = ordered.index(motion[-1])
    before = ordered[:first]
    after = ordered[last + 1 :]
    return {
        "idle": before[0].name if len(before) >= 2 else "idle",
        "start": before[-1].name if before else "start",
        "motion": [s.name for s in motion],
        "shares": [float(s.motion_share or 0) for s in motion],
        "finish": after[0].name if after else "finish",
        "after": "after",
    }


def condition_label(spec: str, parameters: dict[str, str]) -> tuple[str, str | None]:
    """``(parameter name, label)`` of a session for one ``condition_on`` entry: the value itself for
    ``name``, the bin ``lo–hi`` for ``name:width``; label None when the session lacks the parameter."""
    name, _, width = spec.partition(":")
    raw = parameters.get(name)
    if raw is None or raw == "":
        return name, None
    if not width:
        return name, raw
    try:
        w, v = float(width), float(raw)
    except ValueError:
        return name, raw
    lo = np.floor(v / w) * w
    return name, f"{lo:g}-{lo + w:g}"


# -- reading -------------------------------------------------------------------------------------------


def _us(t: Any) -> int:
    from jangin.core.timeseries import _us as us

    if isinstance(t, int | np.integer):
        return int(t)
    return us(t)


def read_session(ds: Dataset, session_id: str, *, snapshot: Any = None) -> SessionSignals:
    """A session's channels (reference clock), events and metadata from the dataset.

    Raises:
        NotFoundError: Unknown session.
    """
    import pyarrow as pa

    from jangin.core._errors import NotFoundError
    from jangin.core.timeseries import read_channels

    st = ds.read("sessions", filters=[("session_id", "=", session_id)], snapshot=snapshot)
    rows = st.select(
        [
            c
            for c in ("session_id", "process", "skill_level", "updated_at", "parameters")
            if c in st.column_names
        ]
    ).to_pylist()
    if not rows:
        raise NotFoundError(
            f"no session {session_id!r}", hint="`jangin query 'SELECT * FROM current_sessions'`"
        )
    meta = max(rows, key=lambda r: r["updated_at"])
    channels = read_channels(ds, session_id, snapshot=snapshot)
    units_t = ds.query(
        f"SELECT channel, any_value(unit) AS unit FROM sensor_samples WHERE session_id = '{_sql(session_id)}' GROUP BY 1",
        snapshot=snapshot,
    ).to_pylist()
    ev = ds.read("events", filters=[("session_id", "=", session_id)], snapshot=snapshot)
    ev = ev.select(
        [
            c
            for c in ("ts", "kind", "name", "value", "segment_start", "segment_end", "occurrence")
            if c in ev.column_names
        ]
    )
    events: list[dict[str, Any]] = []
    for col in ("ts", "segment_start", "segment_end"):
        ev = ev.set_column(ev.schema.get_field_index(col), col, ev.column(col).cast(pa.int64()))
    events = sorted(ev.to_pylist(), key=lambda e: e["ts"])
    return SessionSignals(
        session_id=session_id,
        channels=channels,
        events=events,
        process=meta["process"],
        skill_level=meta["skill_level"],
        units={r["channel"]: r["unit"] or "" for r in units_t},
        parameters=_params(meta.get("parameters")),
    )


def _params(raw: Any) -> dict[str, str]:
    """``sessions.parameters`` as a dict (Arrow gives a map as a list of (key, value) pairs)."""
    if not raw:
        return {}
    items = raw.items() if isinstance(raw, Mapping) else raw
    return {str(k): "" if v is None else str(v) for k, v in items}


def _sql(s: str) -> str:
    return s.replace("'", "''")
