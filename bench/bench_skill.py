"""Skill scoring: seconds to score a long session against a profile (vs the session's duration and vs a
raw numpy pass over the same arrays), and live coaching latency from batch arrival to alert.

    python bench/bench_skill.py --minutes 10

The profile is built from the expert sample sessions (imported into a temporary dataset). The
synthetic session follows the experts' median curves, its steps stretched to ``--minutes`` in total,
with the sample sessions' channel rates (arc current / voltage 1 kHz, torch angle 100 Hz, travel speed
and wire feed 50 Hz, plate temperature 10 Hz) and noise; every 20 s the arc current leaves the band
for 1 s, so the live coach has alerts to raise. (The score itself is meaningless here: the stretched
steps are all outside the experts' durations, the plate temperature ramp triggers the experts' current
adjustment, which the synthetic session does not make, and every excursion counts.)

Baseline: the same 50 ms bin means of every channel computed with one ``np.bincount`` per channel,
the least any scorer of 50 ms bins has to do. Live: batches of 100 ms are published on a
``SampleBus`` and consumed by a ``LiveCoach`` in one asyncio loop (as the SSE route does), one batch
in flight at a time; latency is from publishing a batch to the coach's return (alerts are emitted
then), for every batch and for the batches that raised an alert.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RATES = {
    "arc_current_A": 1000,
    "arc_voltage_V": 1000,
    "torch_angle_deg": 100,
    "travel_speed_mm_s": 50,
    "wire_feed_m_min": 50,
    "plate_temp_C": 10,
}


def build_profile(tmp: Path):  # type: ignore[no-untyped-def]
    from jangin.capture import import_sessions
    from jangin.core import Dataset
    from jangin.core.skill import read_session
    from jangin.training._skill import SkillProfileConfig, profile_from_sessions

    ds = Dataset.create(tmp / "ds")
    import_sessions(
        ds, REPO / "sample_data" / "sessions", frame_interval_s=30.0, deidentify=False, keep_video=False
    )
    ids = (
        ds.query("SELECT session_id FROM current_sessions WHERE skill_level = 'expert'").column(0).to_pylist()
    )
    return profile_from_sessions(
        [read_session(ds, i) for i in ids], SkillProfileConfig(process="mig_butt_weld")
    )


def synth_session(prof, minutes: float, seed: int = 0):  # type: ignore[no-untyped-def]
    """Signals following the experts' medians with steps stretched to ``minutes``; step markers."""
    from jangin.core.skill import SessionSignals

    rng = np.random.default_rng(seed)
    steps = sorted(prof.steps, key=lambda s: s.order)
    total = sum(s.duration_median_s for s in steps)
    k = minutes * 60 / total
    t0 = 1_750_000_000_000_000
    bounds, t = [], t0
    for s in steps:
        d = int(s.duration_median_s * k * 1e6)
        bounds.append((s.name, t, t + d))
        t += d
    end = t
    events = []
    for name, a, b in bounds:
        events += [{"ts": a, "kind": "step_start", "name": name}, {"ts": b, "kind": "step_end", "name": name}]
    channels = {}
    for ch, hz in RATES.items():
        ts = np.arange(t0, end, int(1e6 / hz), dtype=np.int64)
        v = np.empty(len(ts))
        for name, a, b in bounds:
            m = (ts >= a) & (ts < b)
            band = prof.bands.get((name, ch))
            u = (ts[m] - a) / (b - a)
            grid = (np.arange(prof.n_points) + 0.5) / prof.n_points
            if band is None:  # context channel: a slow ramp
                v[m] = 20 + 200 * (ts[m] - t0) / (end - t0)
            else:
                v[m] = np.interp(u, grid, band.median)
        scale = np.nanstd(v) * 0.02 + 1e-3
        v += rng.normal(0, scale, len(v))
        if ch == "arc_current_A":  # a 1 s excursion every 20 s
            out = ((ts - t0) // 1_000_000) % 20 == 10
            v[out] *= 1.35
        channels[ch] = (ts, v)
    units = {c: prof.channels.get(c, {}).get("unit", "") for c in RATES}
    return SessionSignals("bench", channels, events, prof.process, None, units), bounds


def baseline(sig, hz: float) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    t0 = sig.span_us[0]
    for ts, v in sig.channels.values():
        idx = ((ts - t0) * hz // 1_000_000).astype(np.int64)
        n = int(idx[-1]) + 1
        s = np.bincount(idx, weights=v, minlength=n)
        c = np.bincount(idx, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            _ = s / c
    return time.perf_counter() - t


async def live(prof, sig, bounds, batch_s: float = 0.1) -> tuple[list[float], list[float], int]:  # type: ignore[no-untyped-def]
    from jangin.core.events import SampleBus
    from jangin.inference._skill_live import LiveCoach

    bus = SampleBus()
    q = bus.subscribe("bench")
    coach = LiveCoach(prof, session_id="bench")
    all_ms: list[float] = []
    alert_ms: list[float] = []
    t0, end = sig.span_us
    step_i = 0
    n_alerts = 0
    cursors = dict.fromkeys(sig.channels, 0)
    w = int(batch_s * 1e6)
    for a in range(t0, end, w):
        b = a + w
        while step_i < len(bounds) and bounds[step_i][1] < b:
            coach.feed_events(
                [{"kind": "step_start", "name": bounds[step_i][0], "ts": bounds[step_i][1] / 1e6}]
            )
            step_i += 1
        # one message per device batch of 100 ms, as the ingest router publishes them (here: all channels)
        tt = None
        chans = {}
        for ch, (ts, v) in sig.channels.items():
            i0 = cursors[ch]
            i1 = int(np.searchsorted(ts, b, side="left"))
            cursors[ch] = i1
            if ch == "arc_current_A":
                tt = ts[i0:i1]
            chans[ch] = (ts[i0:i1], v[i0:i1])
        for ch, (ts, v) in chans.items():
            if len(ts) == 0:
                continue
            bus.publish(
                "bench",
                {"type": "samples", "t_us": ts, "channels": {ch: v}, "received_at": time.perf_counter()},
            )
            msg = await q.get()
            alerts = coach.feed_samples(msg["t_us"], msg["channels"], received_at=msg["received_at"])
            ms = (time.perf_counter() - msg["received_at"]) * 1e3
            all_ms.append(ms)
            if alerts:
                n_alerts += len(alerts)
                alert_ms += [x["latency_ms"] for x in alerts]
        del tt
    return all_ms, alert_ms, n_alerts


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from jangin.inference._skill import score_session

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        prof = build_profile(Path(tmp))
        print(f"profile from the sample experts: {time.perf_counter() - t:.1f} s (import + build)")
    sig, bounds = synth_session(prof, args.minutes)
    n = sum(len(t) for t, _ in sig.channels.values())
    dur = (sig.span_us[1] - sig.span_us[0]) / 1e6
    print(
        f"synthetic session: {dur:.0f} s, {n:,} samples in {len(sig.channels)} channels, {len(bounds)} steps"
    )
    times, base = [], []
    sc = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        sc = score_session(prof, sig, profile_name="bench")
        times.append(time.perf_counter() - t)
        base.append(baseline(sig, prof.bin_hz))
    assert sc is not None
    s, b = statistics.median(times), statistics.median(base)
    print(
        f"score_session: {s:.3f} s (median of {args.repeat}) = {s / dur * 100:.3f} % of the session's duration "
        f"(1 : {dur / s:.0f}); {len(sc.deviations)} deviations, score {sc.score:.0f}"
    )
    print(
        f"baseline (numpy 50 ms bin means of the same arrays): {b:.3f} s; scoring / baseline = {s / b:.1f}x"
    )
    all_ms, alert_ms, n_alerts = asyncio.run(live(prof, sig, bounds))
    print(
        f"live coaching, 100 ms batches per device through SampleBus -> LiveCoach: {len(all_ms):,} batches, "
        f"{n_alerts} alerts"
    )
    print(
        f"  every batch: p50 {pct(all_ms, 50):.3f} ms, p99 {pct(all_ms, 99):.3f} ms, max {max(all_ms):.2f} ms"
    )
    print(
        f"  batches that raised an alert (arrival -> alert): p50 {pct(alert_ms, 50):.3f} ms, "
        f"p99 {pct(alert_ms, 99):.3f} ms"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
