"""Quality statistics: the model's precision as reviews measure it, and control charts per station."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from jangin.inference._spc import Chart, p_chart, xbar_chart

if TYPE_CHECKING:
    from jangin.core import Dataset
    from jangin.inference.inspection._log import InspectionLog

__all__ = ["Quality"]


class Quality:
    """The statistics half of :class:`~jangin.inference.inspection.InspectionService` (a mixin: it needs
    ``ds`` and ``log``)."""

    ds: Dataset
    log: InspectionLog

    def precision(self, last: int = 200) -> dict[str, Any]:
        """The model's recent precision as measured by the last ``last`` reviews.

        ``ng_precision``: of reviewed NG verdicts, the fraction reviewers confirmed NG;
        ``ok_agreement``: the same for OK; ``doubtful_ng``: of reviewed DOUBTFUL ones, the fraction NG.
        """
        self.log.flush()
        con = self.ds.connect()
        try:
            rows = con.execute(
                """
                SELECT i.verdict AS model, r.verdict AS review, i.model AS name, i.model_version AS version FROM (
                  SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY inspection_id ORDER BY ts DESC) rn FROM reviews)
                  WHERE rn = 1 ORDER BY ts DESC LIMIT ?) r JOIN inspections i USING (inspection_id)""",
                [last],
            ).fetchall()
        finally:
            con.close()

        def frac(model: str, review: str) -> tuple[float | None, int]:
            sel = [r for r in rows if r[0] == model]
            return (sum(r[1] == review for r in sel) / len(sel) if sel else None), len(sel)

        ng, n_ng = frac("NG", "NG")
        ok, n_ok = frac("OK", "OK")
        dbt, n_dbt = frac("DOUBTFUL", "NG")
        return {
            "reviews": len(rows),
            "ng_precision": ng,
            "ng_reviewed": n_ng,
            "ok_agreement": ok,
            "ok_reviewed": n_ok,
            "doubtful_ng": dbt,
            "doubtful_reviewed": n_dbt,
        }

    # -- control charts -------------------------------------------------------------------------

    def charts(self, *, every: int = 20, last: int = 2000) -> dict[str, dict[str, Chart]]:
        """Per station: a p-chart of the NG rate and an X̄ chart of the mean score, over the last
        ``last`` inspections in subgroups of ``every`` consecutive inspections."""
        if every < 1:
            raise ValueError("every must be at least 1")
        self.log.flush()
        con = self.ds.connect()
        try:
            rows = con.execute(
                """SELECT coalesce(station, '') AS station, ts, verdict, score FROM (
                SELECT * FROM inspections ORDER BY ts DESC LIMIT ?) ORDER BY ts""",
                [last],
            ).fetchall()
        finally:
            con.close()
        by: dict[str, list[tuple[datetime, str, float]]] = {}
        for st, ts, v, s in rows:
            by.setdefault(st, []).append((ts, v, float(s or 0.0)))
        out: dict[str, dict[str, Chart]] = {}
        for st, items in sorted(by.items()):
            groups = [items[i : i + every] for i in range(0, len(items), every)]
            labels = [f"{g[0][0]:%m-%d %H:%M:%S}" for g in groups]
            out[st] = {
                "p": p_chart(
                    [sum(v == "NG" for _, v, _ in g) for g in groups], [len(g) for g in groups], labels
                ),
                "xbar": xbar_chart([[s for _, _, s in g] for g in groups], labels),
            }
        return out
