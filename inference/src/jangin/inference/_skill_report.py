"""The coaching report: one self-contained HTML page per scored session, for a trainer to go through
with the apprentice.

It holds the overall score, a plain-language summary of the largest deviations ("In step 5
(segment 3) you travelled 36 % faster than the experts for 3.4 s"), one plot per channel of the
session inside the experts' band (each step on its own normalised time axis, deviations shaded red),
the video frame nearest each major deviation, the adjustments the experts make that the session
missed, and which deviations preceded NG judgments. Plots and frames are inline (base64); the page
loads nothing from anywhere.

matplotlib (Agg) is imported only when a report is rendered.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jangin.core.skill import SessionSignals, SkillProfile

if TYPE_CHECKING:
    from jangin.core._dataset import Dataset
    from jangin.inference._skill import Deviation, SkillScore

__all__ = ["coaching_sentences", "outcome_words", "render_report", "session_frames", "write_report"]

_RANK = {"minor": 0, "major": 1, "critical": 2}


def _meta(profile: SkillProfile, channel: str) -> dict[str, Any]:
    return dict(profile.channels.get(channel, {}))


def _display(profile: SkillProfile, channel: str) -> str:
    """The channel's name for people: the process definition's display name, else the channel name."""
    return str(_meta(profile, channel).get("display_name") or channel)


def _rule_words(profile: SkillProfile, rule: Any) -> str:
    """An adjustment rule in the definition's names: ``"pump speed -8 % within 2.4 s after tank
    temperature rises above 80 degC"``."""
    unit = str(_meta(profile, rule.trigger_channel).get("unit") or "")
    arrow = "rises above" if rule.direction > 0 else "falls below"
    return (
        f"{_display(profile, rule.channel)} {rule.change_rel * 100:+.0f} % within {rule.delay_max_s:.1f} s "
        f"after {_display(profile, rule.trigger_channel)} {arrow} {rule.trigger_value:g} {unit}"
    ).rstrip()


def _advisable(profile: SkillProfile, channel: str) -> bool:
    """Advice only on what the operator controls (profiles without the flag: every scored channel)."""
    return bool(_meta(profile, channel).get("advice", True))


def _word(profile: SkillProfile, key: str, default: str) -> str:
    return str((profile.params.get("words") or {}).get(key) or default)


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def step_words(step: str) -> str:
    """A step key as a person reads it: ``main_etch#2`` → ``main etch, 2nd time``; ``segment_3`` →
    ``segment 3`` (the names are the recording's own, only the separators change)."""
    name, _, occ = step.partition("#")
    words = name.replace("_", " ").strip() or step
    return f"{words}, {_ordinal(int(occ))} time" if occ.isdigit() else words


def _step_title(profile: SkillProfile, step: str) -> str:
    names = profile.step_names
    return f"step {names.index(step) + 1} ({step_words(step)})" if step in names else step_words(step)


def _n(x: float) -> str:
    """A value with enough digits to be told from zero (0.03, 0.4, 5.1, 165.3)."""
    return f"{x:.2f}" if abs(x) < 0.1 else f"{x:.1f}"


def _pct(value: float, expected: float) -> float | None:
    return None if abs(expected) < 1e-9 else (value / expected - 1) * 100


#: a direction phrase that starts with one of these (or a word ending in "ed") is a verb phrase said of
#: the person ("ran more current", "set less RF power"); others describe the quantity ("steeper")
_VERBS = {"ran", "held", "fed", "set", "had", "kept", "made", "put", "let", "drove", "gave", "took", "went"}


def _is_verb(phrase: str) -> bool:
    first = phrase.split()[0].lower() if phrase.split() else ""
    return first in _VERBS or first.endswith("ed")


def _amount(profile: SkillProfile, channel: str, value: float, expected: float) -> str:
    """``36 %`` for a ratio quantity, ``12.0 deg`` for an interval one (a percentage of an angle or a
    temperature means nothing)."""
    m = _meta(profile, channel)
    unit = str(m.get("unit") or "")
    pct = _pct(value, expected) if m.get("quantity", "ratio") == "ratio" else None
    if pct is not None and abs(pct) >= 1:
        return f"{abs(pct):.0f} %"
    return f"{_n(abs(value - expected))} {unit}".strip()


def deviation_sentence(profile: SkillProfile, channel: str, value: float, expected: float) -> str:
    """How a level deviation reads in the definition's words: ``"you travelled faster than the experts
    by 36 %"`` for a verb phrase, ``"tool angle: 12.0 deg steeper than the experts"`` for an adjective,
    ``"current: 10 % lower than the experts"`` without words."""
    m = _meta(profile, channel)
    word = (m.get("higher") or "") if value >= expected else (m.get("lower") or "")
    amount = _amount(profile, channel, value, expected)
    if word and _is_verb(word):
        return f"you {word} than the experts by {amount}"
    return f"{_display(profile, channel)}: {amount} {word or ('higher' if value >= expected else 'lower')} than the experts"


def difference_words(profile: SkillProfile, channel: str, value: float, expected: float) -> str:
    """``"36 % faster"`` for a ratio quantity, ``"12.0 deg steeper"`` for an interval one (angles,
    temperatures: a percentage of those means nothing), with the definition's direction words."""
    m = _meta(profile, channel)
    unit = str(m.get("unit") or "")
    word = (m.get("higher") or "higher") if value >= expected else (m.get("lower") or "lower")
    pct = _pct(value, expected) if m.get("quantity", "ratio") == "ratio" else None
    if pct is not None and abs(pct) >= 1:
        return f"{abs(pct):.0f} % {word}"
    return f"{_n(abs(value - expected))} {unit} {word}".replace("  ", " ")


def coaching_sentences(sc: SkillScore, profile: SkillProfile, *, limit: int = 6) -> list[str]:
    """Plain-language advice for the largest deviations on channels the operator controls (major and
    critical first, then by how far outside the band and how long), then the steps whose duration
    left the experts' range. All names, units and direction words come from the process definition
    stored in the profile; machine-state and outcome channels get no advice."""
    devs = sorted(
        (d for d in sc.deviations if d.kind == "duration" or _advisable(profile, d.channel)),
        key=lambda d: (-_RANK[d.severity], -d.ratio * max(d.duration_s, 0.1)),
    )
    out = []
    for d in devs:
        if len(out) >= limit:
            break
        where = _step_title(profile, d.step)
        unit = str(_meta(profile, d.channel).get("unit") or "")
        name = _display(profile, d.channel)
        if d.kind == "duration":  # "took 41.9 s: it ended 13.6 s after <cue>; the experts …"
            rest = d.message[len(d.step) :] if d.message.startswith(d.step) else f" took {d.value:.1f} s"
            out.append(f"{where.capitalize()}{rest}.")
            continue
        if d.kind == "missed_adjustment":
            a = next(
                (a for a in sc.missed if a.channel == d.channel and a.expected_by_us == d.start_us), None
            )
            rule = next((r for r in profile.adjustments if a is not None and r.channel == a.channel), None)
            trig = ""
            if rule is not None:
                arrow = "rose above" if rule.direction > 0 else "fell below"
                tunit = str(_meta(profile, rule.trigger_channel).get("unit") or "")
                trig = (
                    f"when {_display(profile, rule.trigger_channel)} {arrow} {rule.trigger_value:g} {tunit}".rstrip()
                    + ", "
                )
            change = f"{a.expected_change * 100:+.0f} %" if a else "?"
            seen = f"{a.observed_change * 100:+.1f} %" if a else "?"
            out.append(
                f"In {where}, {trig}the experts change the {name} by {change} within "
                f"{rule.delay_max_s if rule else 0:.1f} s; this time it changed by {seen} "
                f"(it stayed at {_n(d.value)} {unit})."
            )
        elif d.direction == "unsteady":
            out.append(
                f"In {where}, {name}: swung by ±{_n(d.value)} {unit} around its own course for "
                f"{d.duration_s:.1f} s; the experts stay within ±{_n(d.expected)} {unit}. Hold it steadier."
            )
        else:
            out.append(
                f"In {where} {deviation_sentence(profile, d.channel, d.value, d.expected)} for "
                f"{d.duration_s:.1f} s ({_n(d.value)} {unit} against {_n(d.expected)} {unit})."
            )
    return [x.replace(" )", ")") for x in out]


def outcome_words(profile: SkillProfile, row: Mapping[str, Any]) -> str:
    """A ``relate_outcomes`` row in the process definition's words: ``"Step 3 (segment 3): travel speed
    above the experts' band preceded 1 of 1 undercut defect(s)"`` (a row without its structured fields,
    from an older caller, keeps its own text)."""
    if "step" not in row:
        return str(row.get("text", ""))
    ch, direction = str(row.get("channel") or ""), str(row.get("direction") or "")
    name = _display(profile, ch) if ch else "the step"
    what = {
        "above": f"{name} above the experts' band",
        "below": f"{name} below the experts' band",
        "missed": f"the experts' change of {name} not made",
        "unsteady": f"{name} unsteady",
        "longer": "the step longer than the experts'",
        "shorter": "the step shorter than the experts'",
    }.get(direction, f"{name} {direction}".strip())
    return (
        f"{_step_title(profile, str(row['step'])).capitalize()}: {what} preceded {row['preceded']} of "
        f"{row['defects']} {row['defect']} defect(s)"
    )


def machine_notes(sc: SkillScore, profile: SkillProfile) -> list[str]:
    """Major deviations of channels the operator does not control: stated, never advised on."""
    out = []
    for d in sc.deviations:
        if d.kind == "band" and _RANK[d.severity] >= 1 and not _advisable(profile, d.channel):
            unit = str(_meta(profile, d.channel).get("unit") or "")
            how = "higher" if d.value >= d.expected else "lower"
            out.append(
                f"{_step_title(profile, d.step).capitalize()}, {_display(profile, d.channel)}: "
                f"{_amount(profile, d.channel, d.value, d.expected)} {how} than in the experts' sessions "
                f"({_n(d.value)} {unit} against {_n(d.expected)} {unit})."
            )
    return [x.replace(" )", ")").replace(" ,", ",") for x in out]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def channel_plots(sc: SkillScore, profile: SkillProfile) -> dict[str, str]:
    """One PNG (base64) per scored channel: the session inside the experts' band, each step on its own
    normalised time axis ([k, k+1] for the k-th step), deviations shaded red."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    units = {c: str(v.get("unit") or "") for c, v in profile.channels.items()}
    steps = [s for s in sc.steps if profile.step(s.name) is not None]
    out: dict[str, str] = {}
    # what the operator controls first (by weight), then machine state
    for ch in sorted(profile.scored_channels, key=lambda c: (-profile.weight(c), c)):
        if not any((s.name, ch) in sc.curves for s in steps):
            continue
        fig, ax = plt.subplots(figsize=(10, 2.3))
        for k, st in enumerate(steps):
            cv = sc.curves.get((st.name, ch))
            if k:
                ax.axvline(k, color="#bbb", lw=0.8)
            ax.text(
                k + 0.5,
                1.0,
                step_words(st.name),
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=7,
                color="#555",
            )
            if cv is None or len(cv["value"]) == 0:
                continue
            n = len(cv["value"])
            x = k + (np.arange(n) + 0.5) / n
            ax.fill_between(
                x,
                cv["lo"],
                cv["hi"],
                color="#9ecae1",
                alpha=0.55,
                lw=0,
                label="experts' band" if k == 0 else None,
            )
            ax.plot(
                x, cv["median"], color="#3182bd", lw=1, ls="--", label="experts' median" if k == 0 else None
            )
            ax.plot(x, cv["value"], color="#222", lw=1.3, label="this session" if k == 0 else None)
            span = max(st.end_us - st.start_us, 1)
            for d in sc.deviations:
                if d.channel != ch or d.end_us <= st.start_us or d.start_us >= st.end_us:
                    continue
                a = k + max(0.0, (d.start_us - st.start_us) / span)
                b = k + min(1.0, (d.end_us - st.start_us) / span)
                ax.axvspan(a, b, color="#e41a1c", alpha=0.35 if _RANK[d.severity] else 0.12, lw=0)
        ax.set_xlim(0, len(steps))
        ax.set_xticks([])
        ax.set_ylabel(units.get(ch, ""), fontsize=8)
        ax.tick_params(labelsize=7)
        title = _display(profile, ch) + (f" [{units[ch]}]" if units.get(ch) else "")
        ax.set_title(title if title.startswith(ch) else f"{title} · {ch}", loc="left", fontsize=9, pad=12)
        ax.legend(loc="upper right", fontsize=7, ncol=3, frameon=False, bbox_to_anchor=(1.0, 1.22))
        out[ch] = _png(fig)
        plt.close(fig)
    return out


def session_frames(ds: Dataset, session_id: str) -> list[dict[str, Any]]:
    """The session's stored frames: ``{"frame_id", "camera", "ts_us", "image"}`` sorted by time."""
    import pyarrow as pa

    t = ds.read(
        "frames", columns=["frame_id", "camera", "ts", "image"], filters=[("session_id", "=", session_id)]
    )
    if t.num_rows == 0:
        return []
    t = t.set_column(t.schema.get_field_index("ts"), "ts_us", t.column("ts").cast(pa.int64()))
    return sorted(t.to_pylist(), key=lambda r: r["ts_us"])


def _nearest_frames(
    devs: Sequence[Deviation], frames: Sequence[Mapping[str, Any]], limit: int = 8
) -> list[tuple[Deviation, Mapping[str, Any]]]:
    if not frames:
        return []
    ts = np.asarray([f["ts_us"] for f in frames], np.int64)
    out = []
    for d in devs[:limit]:
        mid = (d.start_us + d.end_us) // 2
        i = int(np.argmin(np.abs(ts - mid)))
        if abs(int(ts[i]) - mid) <= 5e6:  # no frame within 5 s: show none rather than a wrong one
            out.append((d, frames[i]))
    return out


_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;background:#f5f6f8;color:#222}
main{max-width:980px;margin:0 auto;padding:24px}
header{display:flex;justify-content:space-between;align-items:center;background:#fff;border-radius:8px;padding:16px 20px;box-shadow:0 1px 3px #0002}
header h1{font-size:20px;margin:0 0 6px}
header .meta{font-size:13px;color:#555;line-height:1.6}
.score{font-size:40px;font-weight:700;min-width:110px;text-align:center;border-radius:8px;padding:8px 12px;color:#fff}
.score small{display:block;font-size:12px;font-weight:400}
.good{background:#2ca25f}.fair{background:#e6a100}.poor{background:#d7301f}
section{background:#fff;border-radius:8px;padding:14px 20px;margin-top:16px;box-shadow:0 1px 3px #0002}
h2{font-size:16px;margin:4px 0 10px}
ul{margin:0;padding-left:20px}li{margin:4px 0;line-height:1.45}
img.plot{width:100%;display:block;margin:6px 0 14px}
.frames{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
figure{margin:0}figure img{width:100%;border-radius:4px}figcaption{font-size:12px;color:#444;margin-top:4px}
table{border-collapse:collapse;font-size:13px;width:100%}td,th{border-bottom:1px solid #e3e3e3;padding:4px 6px;text-align:left}
.sev-critical{color:#b30000;font-weight:600}.sev-major{color:#d7301f}.sev-minor{color:#777}
.muted{color:#777;font-size:13px}
"""


def recipe_lines(sig: SessionSignals, profile: SkillProfile, profile_name: str) -> list[str]:
    """What the session was run with and what it was compared against, in plain words: the session's
    recipe parameters (the definition's names and units), the profile and the recipe it holds for,
    and a plain warning when the session's recipe is not the profile's."""
    spec = dict(profile.params.get("parameters") or {})
    session_w = _word(profile, "session", "session")

    def named(k: str, v: str) -> str:
        m = dict(spec.get(k) or {})
        unit = str(m.get("unit") or "")
        return f"{m.get('display_name') or k} = {v}{' ' + unit if unit and v else ''}"

    first = list(profile.condition)
    order = sorted(sig.parameters, key=lambda k: (k not in first, first.index(k) if k in first else 0, k))

    out = []
    if sig.parameters:
        out.append(
            f"This {session_w}'s recipe: " + "; ".join(named(k, sig.parameters[k]) for k in order) + "."
        )
    else:
        out.append(f"This {session_w} has no recipe parameters recorded.")
    cond = profile.condition
    if cond:
        out.append(
            f"Scored against skill profile {profile_name or '?'}, built from {len(profile.sessions)} expert "
            f"{session_w}s with " + ", ".join(named(k, v) for k, v in cond.items()) + "."
        )
        off = {k: v for k, v in cond.items() if sig.parameters.get(k) != v and ":" not in str(v)}
        if off:
            out.append(
                f"Careful: this {session_w}'s recipe is not the profile's ("
                + ", ".join(
                    f"{k}: {sig.parameters.get(k, 'none')} here, {v} in the profile" for k, v in off.items()
                )
                + "); the comparison may be unfair."
            )
    else:
        out.append(
            f"Scored against skill profile {profile_name or '?'}, built from {len(profile.sessions)} expert "
            f"{session_w}s of any recipe (the profile is not conditioned on the recipe)."
        )
    return out


def render_no_profile(sig: SessionSignals, reason: str, hint: str | None = None) -> str:
    """The page for a session no skill profile fits (e.g. none for its recipe): says so plainly."""
    e = html.escape
    params = "; ".join(f"{k} = {v}" for k, v in sorted(sig.parameters.items())) or "none recorded"
    return "\n".join(
        [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>No coaching report {e(sig.session_id)}</title><style>{_CSS}</style></head><body><main>",
            f"<header><div><h1>No coaching report for {e(sig.session_id)}</h1><div class='meta'>",
            f"Process <b>{e(sig.process or '?')}</b><br>Recipe: {e(params)}</div></div></header>",
            f"<section><h2>There is no skill profile for this recipe</h2><p>{e(reason)}</p>",
            f"<p class='muted'>{e(hint or '')}</p></section></main></body></html>",
        ]
    )


def render_report(
    sc: SkillScore,
    sig: SessionSignals,
    profile: SkillProfile,
    *,
    frames: Sequence[Mapping[str, Any]] = (),
    outcomes: Sequence[Mapping[str, Any]] | None = None,
    technician: str | None = None,
) -> str:
    """The coaching report of one scored session as a self-contained HTML page."""
    from jangin.inference._skill import relate_outcomes

    e = html.escape
    units = {c: str(v.get("unit") or "") for c, v in profile.channels.items()}
    cls = "good" if sc.score >= 80 else "fair" if sc.score >= 60 else "poor"
    n_major = sum(1 for d in sc.deviations if _RANK[d.severity] >= 1)
    session_w = _word(profile, "session", "session")
    operator_w = _word(profile, "operator", "technician")
    process_name = str(profile.params.get("display_name") or profile.process)
    condition = ", ".join(f"{k} = {v}" for k, v in profile.condition.items())
    low_conf = [s for s in sc.steps if s.confidence < 0.5]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Coaching report {e(sig.session_id)}</title><style>{_CSS}</style></head><body><main>",
        f"<header><div><h1>Coaching report · {e(process_name)}</h1><div class='meta'>",
        f"{e(session_w.capitalize())} <b>{e(sig.session_id)}</b><br>{e(operator_w.capitalize())} "
        f"<b>{e(technician or 'unknown')}</b>"
        f"{' (' + e(sig.skill_level) + ')' if sig.skill_level else ''}<br>",
        f"Compared with skill profile <b>{e(sc.profile or '?')}</b> "
        f"({len(profile.sessions)} expert {e(session_w)}s{', ' + e(condition) if condition else ''})<br>",
        f"{n_major} major deviation(s), {len(sc.deviations) - n_major} minor, {len(sc.missed)} missed adjustment(s)",
        f"</div></div><div class='score {cls}'>{sc.score:.0f}<small>of 100</small></div></header>",
    ]
    parts.append(
        "<section><h2>Recipe and profile</h2><ul>"
        + "".join(f"<li>{e(x)}</li>" for x in recipe_lines(sig, profile, sc.profile))
        + "</ul></section>"
    )
    if low_conf:
        parts.append(
            "<section><p class='sev-major'>The steps of this "
            f"{e(session_w)} were found with low confidence ("
            + e(", ".join(f"{s.name} {s.confidence:.2f}" for s in low_conf))
            + "): read the step-by-step comparison with care.</p></section>"
        )
    sentences = coaching_sentences(sc, profile)
    parts.append("<section><h2>What to work on</h2>")
    if sentences:
        parts.append("<ul>" + "".join(f"<li>{e(s)}</li>" for s in sentences) + "</ul>")
    else:
        parts.append("<p>Everything stayed inside the experts' band. Well done.</p>")
    notes = machine_notes(sc, profile)
    if notes:
        parts.append(
            f"<h2 style='margin-top:12px'>Not under the {e(operator_w)}'s control</h2><ul>"
            + "".join(f"<li>{e(n)}</li>" for n in notes)
            + "</ul>"
        )
    parts.append("</section>")

    plots = channel_plots(sc, profile)
    parts.append(
        "<section><h2>Signals against the experts</h2><p class='muted'>Black: this session. Blue: the experts' "
        "median (dashed) and band. Each step is stretched to the same width; red: where the session left the "
        "band (pale red: minor).</p>"
    )
    for ch, png in plots.items():
        parts.append(f"<img class='plot' alt='{e(ch)}' src='data:image/png;base64,{png}'>")
    parts.append("</section>")

    major = sorted(
        (d for d in sc.deviations if _RANK[d.severity] >= 1), key=lambda d: (-_RANK[d.severity], -d.ratio)
    )
    shots = _nearest_frames(major, frames)
    if shots:
        parts.append("<section><h2>What the camera saw</h2><div class='frames'>")
        t0 = sig.span_us[0]
        for d, f in shots:
            img = base64.b64encode(f["image"]).decode("ascii")
            parts.append(
                f"<figure><img alt='frame {e(str(f['frame_id']))}' src='data:image/jpeg;base64,{img}'>"
                f"<figcaption><span class='sev-{d.severity}'>{e(d.severity)}</span> · {e(_step_title(profile, d.step))} · "
                f"{e(_display(profile, d.channel) if d.channel else 'duration')} {e(d.direction)} · "
                f"t = {(f['ts_us'] - t0) / 1e6:.1f} s</figcaption></figure>"
            )
        parts.append("</div></section>")

    parts.append("<section><h2>Adjustments the experts make</h2>")
    if sc.adjustments:
        parts.append("<table><tr><th>adjustment</th><th>expected</th><th>this session</th><th></th></tr>")
        units = {c: str(v.get("unit") or "") for c, v in profile.channels.items()}
        rules = {r.describe(units): r for r in profile.adjustments}
        for a in sc.adjustments:
            status = (
                "<span class='sev-minor'>made</span>" if a.made else "<span class='sev-major'>missed</span>"
            )
            parts.append(
                f"<tr><td>{e(_rule_words(profile, rules[a.rule]) if a.rule in rules else a.rule)}</td>"
                f"<td>{a.expected_change * 100:+.1f} %</td>"
                f"<td>{a.observed_change * 100:+.1f} %</td><td>{status}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p class='muted'>None of the experts' adjustments was due in this session.</p>")
    parts.append("</section>")

    rows = list(outcomes) if outcomes is not None else relate_outcomes([(sc, sig)])
    parts.append("<section><h2>Deviations and defects</h2>")
    if rows:
        parts.append("<ul>" + "".join(f"<li>{e(outcome_words(profile, r))}</li>" for r in rows) + "</ul>")
    else:
        parts.append("<p class='muted'>No NG judgment followed a major deviation.</p>")
    parts.append("</section>")

    parts.append(
        "<section><h2>All deviations</h2><table><tr><th>step</th><th>channel</th><th>what</th>"
        "<th>s</th><th>severity</th></tr>"
    )
    for d in sc.deviations:
        parts.append(
            f"<tr><td>{e(step_words(d.step))}</td><td>{e(_display(profile, d.channel) if d.channel else 'duration')}</td>"
            f"<td>{e(d.message or d.direction)}</td>"
            f"<td>{d.duration_s:.1f}</td><td class='sev-{d.severity}'>{e(d.severity)}</td></tr>"
        )
    parts.append("</table>")
    timing = "".join(
        f"<tr><td>{e(step_words(x['step']))}</td><td>{x['duration_s']:.1f}</td><td>{x['expert_min_s']:.1f}–{x['expert_max_s']:.1f}</td>"
        f"<td>{'ok' if x['ok'] else '<b>outside</b>'}</td><td>{e(x.get('end_cue') or '')}</td>"
        f"<td>{e(x['method'])} ({x['confidence']:.2f})</td></tr>"
        for x in sc.step_timing
    )
    parts.append(
        "<h2 style='margin-top:14px'>Step timing</h2><table><tr><th>step</th><th>s</th><th>experts (s)</th>"
        f"<th></th><th>end after the experts' cue</th><th>found from</th></tr>{timing}</table></section>"
    )
    parts.append(f"<p class='muted'>Units: {e(', '.join(f'{c} [{u}]' for c, u in units.items() if u))}</p>")
    score_note = (
        "Score: the share of step-time every scored channel spent inside the experts' band, each channel "
        "weighted by its role in the process definition; a step whose duration left the experts' range counts "
        "as out."
    )
    parts.append(f"<p class='muted'>{e(score_note)}</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write_report(
    ds: Dataset,
    session_id: str,
    out: str | Path,
    *,
    profile: tuple[str, SkillProfile] | None = None,
    outcomes: Sequence[Mapping[str, Any]] | None = None,
    score: SkillScore | None = None,
    sig: SessionSignals | None = None,
) -> tuple[Path, SkillScore | None]:
    """Score ``session_id`` (unless ``score`` is given) and write its coaching report to ``out``.

    ``profile`` is ``(name:version, profile)``; default the newest active profile of the session's
    process (and recipe) in the dataset's registry. When there is none for the session's recipe, the
    page says so plainly and the score is None.
    """
    from jangin.core import ModelRegistry, NotFoundError
    from jangin.core.skill import read_session
    from jangin.inference._skill import find_profile, score_session

    sig = sig or read_session(ds, session_id)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if profile is None:
        try:
            profile = find_profile(ModelRegistry(ds.models_dir), sig.process, parameters=sig.parameters)
        except NotFoundError as exc:  # e.g. no profile for this recipe: a page that says so
            path.write_text(render_no_profile(sig, str(exc), exc.hint), encoding="utf-8")
            return path, None
    name, prof = profile
    sc = score or score_session(prof, sig, profile_name=name)
    tech = ds.read(
        "sessions", columns=["technician", "updated_at"], filters=[("session_id", "=", session_id)]
    ).to_pylist()
    technician = max(tech, key=lambda r: r["updated_at"])["technician"] if tech else None
    page = render_report(
        sc, sig, prof, frames=session_frames(ds, session_id), outcomes=outcomes, technician=technician
    )
    path.write_text(page, encoding="utf-8")
    return path, sc
