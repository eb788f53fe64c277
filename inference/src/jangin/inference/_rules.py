"""Verdict rules per station: which classes are NG, thresholds, and the "doubtful" bands.

A rules file (YAML or JSON)::

    default:                      # applies to every station not listed below
      ng_classes: [crack, porosity]   # null / absent: every class is a defect
      min_conf: 0.4               # an NG-class box scoring at least this makes the part NG
      min_area: 0.0005            # boxes smaller than this fraction of the image are ignored
      doubtful: [0.2, 0.4]        # best NG-class score in [lo, hi) -> DOUBTFUL (human review)
      anomaly_threshold: null     # normalised anomaly score for NG; null: the manifest's (0.5)
      anomaly_doubtful: [0.4, 0.6]
    stations:
      st-02: {ng_classes: [crack], min_conf: 0.6}   # overrides, merged over `default`

The decision, in order: a score inside the doubtful band is DOUBTFUL; else a score at or above the
threshold is NG; else OK. The score is the best NG-class detection score (area filter applied) for a
detector, and the normalised image score (0..1, threshold 0.5 by construction) for an anomaly model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jangin.core import ConfigError
from jangin.core.detections import Detections

__all__ = ["RulesConfig", "StationRules", "Verdict", "decide_anomaly", "decide_detections", "load_rules"]


class Verdict:
    """Verdict values written to the ``inspections`` table."""

    OK = "OK"
    NG = "NG"
    DOUBTFUL = "DOUBTFUL"


class StationRules(BaseModel):
    """The rules of one station (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ng_classes: list[str] | None = None
    min_conf: float = Field(default=0.25, ge=0, le=1)
    min_area: float = Field(default=0.0, ge=0, le=1)
    doubtful: tuple[float, float] | None = None
    anomaly_threshold: float | None = Field(default=None, ge=0, le=1)
    anomaly_doubtful: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _bands(self) -> StationRules:
        for band in (self.doubtful, self.anomaly_doubtful):
            if band is not None and not 0 <= band[0] <= band[1] <= 1:
                raise ValueError(
                    f"a doubtful band must be [lo, hi] with 0 <= lo <= hi <= 1, got {list(band)}"
                )
        return self

    @property
    def lowest_score(self) -> float:
        """The lowest detection score these rules look at (the detector must report down to it)."""
        return min(self.min_conf, self.doubtful[0] if self.doubtful else 1.0)


class RulesConfig(BaseModel):
    """Rules for every station: ``default`` plus per-station overrides merged over it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: StationRules = StationRules()
    stations: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_stations(self) -> RulesConfig:
        for name in self.stations:
            self.for_station(name)
        return self

    def for_station(self, station: str | None) -> StationRules:
        """The rules of ``station`` (``default`` merged with its overrides)."""
        over = self.stations.get(station or "", {})
        if not over:
            return self.default
        return StationRules.model_validate({**self.default.model_dump(), **over})

    @property
    def lowest_score(self) -> float:
        """The lowest detection score any station's rules look at."""
        return min([self.default.lowest_score] + [self.for_station(s).lowest_score for s in self.stations])


def load_rules(path: str | Path | None) -> RulesConfig:
    """Read a rules file (YAML or JSON); None gives the defaults.

    Raises:
        ConfigError: The file is missing or invalid (the message names the field).
    """
    if path is None:
        return RulesConfig()
    p = Path(path)
    try:
        import yaml

        data = yaml.safe_load(p.read_text()) or {}
        return RulesConfig.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"cannot read verdict rules {p}: {exc}") from exc
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"invalid verdict rules {p}: {exc}") from exc


def _band_verdict(score: float, threshold: float, band: tuple[float, float] | None) -> str:
    if band is not None and band[0] <= score < band[1]:
        return Verdict.DOUBTFUL
    return Verdict.NG if score >= threshold else Verdict.OK


def decide_detections(dets: Detections, rules: StationRules) -> tuple[str, float, list[str]]:
    """Verdict of a detector's output under ``rules``.

    Returns:
        ``(verdict, score, reasons)``: ``score`` is the best NG-class score among boxes at least
        ``min_area`` large (0.0 when none); ``reasons`` names the boxes that decided it.
    """
    import numpy as np

    ng = set(dets.classes if rules.ng_classes is None else rules.ng_classes)
    mask = np.array([n in ng for n in dets.names], dtype=bool)
    if len(dets):
        mask &= dets.area() >= rules.min_area
    if not mask.any():
        return Verdict.OK, 0.0, []
    score = float(dets.scores[mask].max())
    verdict = _band_verdict(score, rules.min_conf, rules.doubtful)
    reasons = [
        f"{n} {s:.2f}"
        for n, s, m in zip(dets.names, dets.scores, mask, strict=True)
        if m and s >= min(rules.lowest_score, score)
    ]
    return verdict, score, reasons


def decide_anomaly(score: float, rules: StationRules) -> tuple[str, float, list[str]]:
    """Verdict of a normalised anomaly score (0..1; the manifest's threshold maps to 0.5)."""
    threshold = 0.5 if rules.anomaly_threshold is None else rules.anomaly_threshold
    verdict = _band_verdict(score, threshold, rules.anomaly_doubtful)
    return verdict, float(score), [f"anomaly {score:.2f} (threshold {threshold:.2f})"]
