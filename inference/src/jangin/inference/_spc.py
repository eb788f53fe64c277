"""Statistical process control: p-chart of the NG rate, X̄ chart of the mean score, Western Electric
rules, and the charts as inline SVG (no JavaScript, no fonts to download)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["Chart", "p_chart", "render_svg", "western_electric", "xbar_chart"]


@dataclass
class Chart:
    """A control chart: one point per subgroup with its own limits (limits vary with subgroup size).

    Attributes:
        kind: ``"p"`` or ``"xbar"``.
        labels: Subgroup labels (e.g. the start time).
        values: Subgroup statistic (NG fraction, mean score).
        center: Centre line.
        ucl, lcl: Upper / lower 3σ limits per subgroup.
        sigma: σ of each subgroup's statistic (for the zone rules).
        n: Subgroup sizes.
        violations: ``[(index, rule), …]`` from :func:`western_electric`.
    """

    kind: str
    labels: list[str]
    values: list[float]
    center: float
    ucl: list[float]
    lcl: list[float]
    sigma: list[float]
    n: list[int]
    violations: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """As plain JSON data."""
        return {
            "kind": self.kind,
            "labels": self.labels,
            "values": self.values,
            "center": self.center,
            "ucl": self.ucl,
            "lcl": self.lcl,
            "n": self.n,
            "violations": [{"index": i, "rule": r} for i, r in self.violations],
            "drift": bool(self.violations),
        }


def western_electric(
    values: Sequence[float], center: float, sigma: Sequence[float] | float
) -> list[tuple[int, int]]:
    """Points where a Western Electric rule trips.

    Rules (z = (x - center) / σ):
        1. one point beyond 3σ;
        2. two of three consecutive points beyond 2σ on the same side;
        3. four of five consecutive points beyond 1σ on the same side;
        4. eight consecutive points on the same side of the centre line.

    Returns:
        ``[(index, rule)]``, the index being the last point of the run that trips the rule, sorted.
        Points with σ = 0 count only for rule 4.
    """
    sig = [float(sigma)] * len(values) if isinstance(sigma, int | float) else [float(s) for s in sigma]
    if len(sig) != len(values):
        raise ValueError(f"{len(values)} values but {len(sig)} sigmas")
    z = [(v - center) / s if s > 0 else 0.0 for v, s in zip(values, sig, strict=True)]
    side = [(v > center) - (v < center) for v in values]
    out: set[tuple[int, int]] = set()
    for i in range(len(z)):
        if abs(z[i]) > 3:
            out.add((i, 1))
        for rule, k, m, lim in ((2, 3, 2, 2.0), (3, 5, 4, 1.0)):
            if i + 1 >= m:
                window = z[max(0, i + 1 - k) : i + 1]
                for sgn in (1, -1):
                    if sum(1 for v in window if sgn * v > lim) >= m and sgn * z[i] > lim:
                        out.add((i, rule))
        if i >= 7 and side[i] != 0 and all(s == side[i] for s in side[i - 7 : i + 1]):
            out.add((i, 4))
    return sorted(out)


def p_chart(ng: Sequence[int], n: Sequence[int], labels: Sequence[str] | None = None) -> Chart:
    """p-chart: NG fraction per subgroup, centre p̄ = ΣNG / Σn, limits p̄ ± 3·√(p̄(1-p̄)/nᵢ) clipped to 0..1.

    Raises:
        ValueError: Lengths differ, or a subgroup is empty.
    """
    if len(ng) != len(n) or any(k <= 0 for k in n):
        raise ValueError("p_chart: ng and n must have the same length and every n > 0")
    total = sum(n)
    pbar = sum(ng) / total if total else 0.0
    sig = [math.sqrt(pbar * (1 - pbar) / k) for k in n]
    vals = [g / k for g, k in zip(ng, n, strict=True)]
    chart = Chart(
        "p",
        list(labels or map(str, range(len(n)))),
        vals,
        pbar,
        [min(1.0, pbar + 3 * s) for s in sig],
        [max(0.0, pbar - 3 * s) for s in sig],
        sig,
        list(n),
    )
    chart.violations = western_electric(vals, pbar, sig)
    return chart


def xbar_chart(groups: Sequence[Sequence[float]], labels: Sequence[str] | None = None) -> Chart:
    """X̄ chart: subgroup means, centre the grand mean, limits ± 3·s/√nᵢ with s the pooled standard
    deviation within subgroups (subgroups of one point contribute no within-variance).

    Raises:
        ValueError: A subgroup is empty.
    """
    if any(len(g) == 0 for g in groups):
        raise ValueError("xbar_chart: empty subgroup")
    means = [sum(g) / len(g) for g in groups]
    n = [len(g) for g in groups]
    total = sum(n)
    grand = sum(sum(g) for g in groups) / total if total else 0.0
    ss = sum(sum((x - m) ** 2 for x in g) for g, m in zip(groups, means, strict=True))
    dof = sum(k - 1 for k in n)
    s = math.sqrt(ss / dof) if dof > 0 else 0.0
    sig = [s / math.sqrt(k) for k in n]
    chart = Chart(
        "xbar",
        list(labels or map(str, range(len(n)))),
        means,
        grand,
        [grand + 3 * x for x in sig],
        [grand - 3 * x for x in sig],
        sig,
        n,
    )
    chart.violations = western_electric(means, grand, sig)
    return chart


def render_svg(chart: Chart, *, title: str, width: int = 640, height: int = 220) -> str:
    """The chart as a standalone SVG string: points, centre line, stepped 3σ limits, violations in red."""
    pad_l, pad_r, pad_t, pad_b = 48, 12, 24, 28
    vals = chart.values
    ys = vals + chart.ucl + chart.lcl + [chart.center]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    k = max(len(vals) - 1, 1)

    def x(i: float) -> float:
        return pad_l + pw * i / k

    def y(v: float) -> float:
        return pad_t + ph * (1 - (v - lo) / (hi - lo))

    bad = {i for i, _ in chart.violations}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{pad_l}" y="15" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{y(chart.center):.1f}" x2="{width - pad_r}" y2="{y(chart.center):.1f}" stroke="#2a7" stroke-width="1"/>',
        f'<text x="2" y="{y(chart.center) + 4:.1f}" fill="#2a7">{chart.center:.3g}</text>',
        f'<text x="2" y="{pad_t + 8}">{hi:.3g}</text><text x="2" y="{pad_t + ph}">{lo:.3g}</text>',
    ]
    for limits in (chart.ucl, chart.lcl):
        if limits:
            pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(limits))
            parts.append(f'<polyline points="{pts}" fill="none" stroke="#c33" stroke-dasharray="4 3"/>')
    if vals:
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#346" stroke-width="1.5"/>')
        for i, v in enumerate(vals):
            color = "#d00" if i in bad else "#346"
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="{4 if i in bad else 2.5}" fill="{color}">'
                f"<title>{escape(chart.labels[i])}: {v:.4g} (n={chart.n[i]})</title></circle>"
            )
        parts.append(f'<text x="{pad_l}" y="{height - 8}">{escape(chart.labels[0])}</text>')
        parts.append(
            f'<text x="{width - pad_r}" y="{height - 8}" text-anchor="end">{escape(chart.labels[-1])}</text>'
        )
    else:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data yet</text>')
    if chart.violations:
        rules = sorted({r for _, r in chart.violations})
        parts.append(
            f'<text x="{width - pad_r}" y="15" text-anchor="end" fill="#d00">drift: WE rule {", ".join(map(str, rules))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
