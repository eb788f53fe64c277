"""Live coaching: samples of a session being recorded are binned as they arrive and judged against the
profile for the current step with the same calibrated thresholds the after-the-fact score and the
coaching report use (:class:`jangin.inference._skill_judge.Judge`: one copy of them):

* a channel outside the experts' band for ``min_duration_s`` raises a ``minor`` alert; once it has
  stayed ≥ ``major_ratio`` half-widths out for ``major_share`` of the step's usual length, a ``major``
  (or ``critical``) one, as the report would call it at the step's end;
* a step that runs past the duration the calibration allows raises a ``duration`` alert (minor, then
  major);
* an adjustment the experts would have made by now raises a ``missed_adjustment`` alert;
* when the adjustments are due (their triggers' crossings, a session's own change) is found as the
  report finds it (:meth:`Judge.crossings` on the data so far, once a second), and the step's bins of
  the channels a newly found change moves are judged again with it.

Only channels the operator controls (the process definition's ``operator`` role) raise alerts: machine
state is scored after the run but never coached live.

Steps come from the recording app's ``step_start`` markers (published by the ingest API); without
markers the scorer walks through the profile's steps by their median durations from the first sample.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import numpy as np

from jangin.core.skill import SessionSignals, SkillProfile, Step, step_key
from jangin.inference._skill_judge import Judge, rule_crossing

__all__ = ["LiveCoach"]


def _ts_us(v: Any) -> int:
    if isinstance(v, int | float):
        return int(round(float(v) * 1e6))
    return int(round(datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp() * 1e6))


class _Channel:
    def __init__(self, nsm: int) -> None:
        self.open_bin: int | None = None
        self.sum = 0.0
        self.cnt = 0
        self.recent: list[float] = []
        self.nsm = nsm
        self.out_bins = 0
        self.alerted = False
        self.step_ratios: list[float] = []  # signed ratios in the current step
        self.step_bins: list[tuple[int, float, float]] = []  # (µs, step progress, level) in it
        self.major_alerted = ""  # the highest severity alerted in this step ("", major, critical)
        self.step_name = ""

    def reset(self) -> None:
        """A new step: judged afresh, and smoothed within the step only (as the report smooths), so the
        last step's level does not leak into the first bins of this one."""
        self.out_bins, self.alerted, self.step_ratios, self.major_alerted = 0, False, [], ""
        self.step_bins, self.recent = [], []


class LiveCoach:
    """Incremental scorer of one live session against a profile."""

    def __init__(self, profile: SkillProfile, *, min_duration_s: float = 0.3, session_id: str = "") -> None:
        self.profile = profile
        self.judge = Judge.of(profile)
        self.session_id = session_id
        self.occurrences: dict[str, int] = {}
        self.duration_alerted: dict[str, str] = {}
        self.hz = profile.bin_hz
        self.bin_us = 1e6 / self.hz
        self.min_bins = max(2, int(round(min_duration_s * self.hz)))
        self.nsm = max(1, int(round(float(profile.params.get("smooth_s", 0.25)) * self.hz)))
        self.channels: dict[str, _Channel] = {}
        self.step: tuple[str, int] | None = None
        self.has_markers = False
        self.t_first: int | None = None
        self.crossed: dict[int, int] = {}  # rule → when its change was due to start (as the report)
        self.sizes: dict[int, float] = {}  # rule → the session's own in-range change (as the report)
        self.triggered: dict[int, int] = {}  # rule → when its trigger crossed (missed-adjustment alerts)
        self.marks: list[tuple[str, int]] = []  # (step key, start µs) from the markers
        self.history: dict[str, list[tuple[int, float]]] = {}  # bin means of the adjustments' channels
        self.watched = {c for r in profile.adjustments for c in (r.channel, r.trigger_channel)}
        self.next_check = 0
        self.was_active = False
        self.adj_alerted: set[int] = set()
        self.levels: dict[str, list[tuple[int, float]]] = {}
        self.alerts = 0

    # -- inputs --------------------------------------------------------------------------------------

    def feed_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for e in events:
            if e.get("kind") == "step_start" and e.get("name"):
                self.has_markers = True
                name = str(e["name"])
                k = int(e.get("occurrence") or self.occurrences.get(name, 0) + 1)
                self.occurrences[name] = k
                self.step = (step_key(name, k), _ts_us(e["ts"]))
                self.marks.append(self.step)  # each channel starts the step afresh at its first bin in it
        return []

    def feed_samples(
        self, t_us: np.ndarray, channels: dict[str, np.ndarray], *, received_at: float | None = None
    ) -> list[dict[str, Any]]:
        """Add one batch (reference clock µs); returns the alerts it raised."""
        alerts: list[dict[str, Any]] = []
        if len(t_us) == 0:
            return alerts
        if self.t_first is None:
            self.t_first = int(t_us[0])
        idx = np.floor(t_us / self.bin_us).astype(np.int64)
        for name, values in channels.items():
            st = self.channels.setdefault(name, _Channel(self.nsm))
            ok = np.isfinite(values)
            if not ok.any():
                continue
            bi, vals = idx[ok], values[ok]
            base = int(bi[0])
            sums = np.bincount(bi - base, weights=vals)
            cnts = np.bincount(bi - base)
            for k in np.flatnonzero(cnts):
                b = base + int(k)
                if st.open_bin is None:
                    st.open_bin, st.sum, st.cnt = b, 0.0, 0
                if b != st.open_bin:
                    alerts += self._close_bin(name, st)
                    st.open_bin, st.sum, st.cnt = b, 0.0, 0
                st.sum += float(sums[k])
                st.cnt += int(cnts[k])
        alerts += self._duration(int(t_us[-1]))
        if self.profile.adjustments and int(t_us[-1]) >= self.next_check:
            self.next_check = int(t_us[-1]) + 1_000_000
            # only while a step the experts adjust in runs, and once after it (nothing moves later)
            cur = self.marks[-1][0] if self.marks else ""
            active = not self.marks or any(not r.steps or cur in r.steps for r in self.profile.adjustments)
            if active or self.was_active:
                self._update_crossings(int(t_us[-1]))
            self.was_active = active
        now = time.perf_counter()
        for a in alerts:
            a["session_id"] = self.session_id
            if received_at is not None:
                a["latency_ms"] = round((now - received_at) * 1e3, 3)
        self.alerts += len(alerts)
        return alerts

    # -- internals -----------------------------------------------------------------------------------

    def _current_step(self, t: int) -> tuple[str, float] | None:
        """(step name, progress 0..1) at time ``t``."""
        prof = self.profile
        if self.step is not None:  # the step whose marker is the last at or before t (a bin that
            # closes after the next marker arrived still belongs to its own step)
            mark = next((m for m in reversed(self.marks) if m[1] <= t), None)
            if mark is None:
                return None
            name, start = mark
            sp = prof.step(name)
            if sp is None:
                return None
            return name, min(1.0, (t - start) / 1e6 / max(sp.duration_median_s, 1e-3))
        if self.has_markers or self.t_first is None:
            return None
        el = (t - self.t_first) / 1e6
        for sp in sorted(prof.steps, key=lambda s: s.order):
            d = sp.duration_median_s
            if el < d:
                return sp.name, el / max(d, 1e-3)
            el -= d
        return None

    def _close_bin(self, name: str, st: _Channel) -> list[dict[str, Any]]:
        assert st.open_bin is not None
        mean = st.sum / st.cnt if st.cnt else float("nan")
        t_mid = int((st.open_bin + 0.5) * self.bin_us)
        cur = self._current_step(t_mid)
        if cur is not None and st.step_name != cur[0]:  # a new step (a marker, or walked by duration)
            st.reset()
            st.step_name = cur[0]
        st.recent.append(mean)
        del st.recent[: -st.nsm]
        x = float(np.nanmean(st.recent))
        if name in self.watched and np.isfinite(mean):
            self.history.setdefault(name, []).append((t_mid, mean))
        alerts = self._adjustments(name, x, t_mid)
        spec = self.profile.channels.get(name, {})
        if spec.get("role", "scored") != "scored" or not self.judge.advises(name):
            return alerts  # machine state and context: scored after the run, never coached live
        if cur is None:
            return alerts
        step, u = cur
        band = self.profile.bands.get((step, name))
        if band is None or not np.isfinite(x):
            return alerts
        f = float(self.judge.factor(name, np.array([t_mid]), self.crossed, step, self.sizes)[0])
        r = float(self.judge.ratio(step, name, np.array([u]), np.array([x]), f)[0])
        st.step_ratios.append(r)
        st.step_bins.append((t_mid, u, x))
        if abs(r) <= 1.0:
            st.out_bins, st.alerted = 0, False
            return alerts
        st.out_bins += 1
        sign = 1.0 if r > 0 else -1.0
        # as the report judges at the step's end: the ratio the channel has held (same side) for
        # ``major_share`` of the experts' usual step length
        sp = self.profile.step(step)
        n_step = max(1, int(round((sp.duration_median_s if sp else 1.0) * self.hz)))
        k = max(1, int(np.ceil(self.judge.major_share * n_step)))
        held = sorted((sign * v for v in st.step_ratios if sign * v > 0), reverse=True)
        sustained = held[k - 1] if len(held) >= k else 0.0
        sev = self.judge.severity(sustained) if sustained >= self.judge.major_ratio else "minor"
        rank = {"": 0, "minor": 0, "major": 1, "critical": 2}
        if rank[sev] > rank[st.major_alerted]:
            st.major_alerted = sev
        elif st.out_bins >= self.min_bins and not st.alerted:
            sev = "minor"
        else:
            return alerts
        st.alerted = True
        grid_i = min(self.profile.n_points - 1, max(0, int(u * self.profile.n_points)))
        med, lo, hi = band.median[grid_i] * f, band.lo[grid_i] * f, band.hi[grid_i] * f
        unit = spec.get("unit", "")
        display = spec.get("display_name") or name
        direction = "above" if r > 0 else "below"
        word = spec.get("higher" if r > 0 else "lower") or ("higher" if r > 0 else "lower")
        alerts.append(
            {
                "type": "deviation",
                "severity": sev,
                "step": step,
                "channel": name,
                "direction": direction,
                "ratio": round(abs(r) if sev == "minor" else sustained, 2),
                "value": round(x, 3),
                "expected": round(float(med), 3),
                "lo": round(float(lo), 3),
                "hi": round(float(hi), 3),
                "ts_us": t_mid,
                "message": f"{display} {direction} the experts' band in {step} ({sev}: {word} than the experts): "
                f"{x:.1f} {unit} (experts {lo:.1f}–{hi:.1f} {unit})",
            }
        )
        return alerts

    def _duration(self, t: int) -> list[dict[str, Any]]:
        """A step (from its marker) running past the duration the calibration allows."""
        if self.step is None:
            return []
        name, start = self.step
        el = (t - start) / 1e6
        done = self.duration_alerted.get(name, "")
        out: list[dict[str, Any]] = []
        for sev, ratio in (("major", self.judge.major_ratio), ("minor", 1.0)):
            lim = self.judge.duration_limit_s(name, ratio)
            if lim is None or el <= lim or done in (sev, "major"):
                continue
            self.duration_alerted[name] = sev
            sp = self.profile.step(name)
            lo, hi = (min(sp.durations_s), max(sp.durations_s)) if sp and sp.durations_s else (0.0, 0.0)
            out.append(
                {
                    "type": "deviation",
                    "severity": sev,
                    "kind": "duration",
                    "step": name,
                    "channel": "",
                    "direction": "longer",
                    "value": round(el, 2),
                    "expected": round(sp.duration_median_s, 2) if sp else None,
                    "ts_us": t,
                    "message": f"{name} has run {el:.1f} s; the experts take {lo:.1f}–{hi:.1f} s",
                }
            )
            break
        return out

    def _adjustments(self, name: str, x: float, t: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, r in enumerate(self.profile.adjustments):
            if name == r.channel:
                lv = self.levels.setdefault(name, [])
                lv.append((t, x))
                del lv[: -int(10 * self.hz)]
                if (
                    i in self.triggered
                    and self.judge.advises(r.channel)
                    and i not in self.adj_alerted
                    and t >= self.triggered[i] + (r.delay_max_s + 1) * 1e6
                ):
                    arr = np.asarray(lv, float)
                    # as the report judges (an own change in range by the due time counts)
                    made, change = self.judge.made(i, arr[:, 0], arr[:, 1], self.triggered[i], self.crossed)
                    if np.isfinite(change):
                        self.adj_alerted.add(i)
                        if not made:
                            units = {c: v.get("unit", "") for c, v in self.profile.channels.items()}
                            out.append(
                                {
                                    "type": "missed_adjustment",
                                    "channel": r.channel,
                                    "ts_us": t,
                                    "expected_change": r.change_rel,
                                    "observed_change": round(change, 4),
                                    "message": f"experts change {r.describe(units)}; change {r.channel} now",
                                }
                            )
        return out

    def _steps_so_far(self, now: int) -> list[Step]:
        """The session's steps up to ``now``: from the markers, else walked by the median durations."""
        if self.marks:
            ends = [m[1] for m in self.marks[1:]] + [now + 1]
            return [Step(k, a, b) for (k, a), b in zip(self.marks, ends, strict=True)]
        if self.has_markers or self.t_first is None:
            return []
        out, t = [], self.t_first
        for sp in sorted(self.profile.steps, key=lambda s: s.order):
            out.append(Step(sp.name, t, int(t + sp.duration_median_s * 1e6), "durations"))
            t = out[-1].end_us
        return out

    def _update_crossings(self, now: int) -> None:
        """Find when the adjustments were due from the data so far, as the report does; the bins of
        the current step of every channel a changed one moves are judged again with it."""
        steps = self._steps_so_far(now)
        chans = {
            c: (np.array([a for a, _ in h], np.int64), np.array([b for _, b in h]))
            for c, h in self.history.items()
        }
        sig = SessionSignals(self.session_id or "live", chans)
        for i, r in enumerate(self.profile.adjustments):
            if i not in self.triggered and r.trigger_channel in chans:
                tc = rule_crossing(r, sig, steps, self.hz)
                if tc is not None:
                    self.triggered[i] = tc
        crossed, sizes = self.judge.due(sig, steps)
        changed = {
            i
            for i in set(crossed) | set(self.crossed) | set(sizes) | set(self.sizes)
            if crossed.get(i) != self.crossed.get(i) or sizes.get(i) != self.sizes.get(i)
        }
        self.crossed, self.sizes = crossed, sizes
        for i in changed:
            r = self.profile.adjustments[i]
            for c in (r.channel, *r.also):
                st = self.channels.get(c)
                if st is None or not st.step_bins:
                    continue
                t, u, x = (np.array(v, float) for v in zip(*st.step_bins, strict=True))
                f = self.judge.factor(c, t, self.crossed, st.step_name, self.sizes)
                st.step_ratios = [float(v) for v in self.judge.ratio(st.step_name, c, u, x, f)]
