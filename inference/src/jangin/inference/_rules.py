"""Verdict rules per station: which classes are NG, thresholds, and the "doubtful" bands.

A rules file (YAML or JSON)::

    default:                      # applies to every station not listed below
      ng_classes: [crack, porosity]   # null / absent: every class is a defect
      min_conf: 0.4               # an NG-class box scoring at least this makes the part NG
      min_area: 0.0005            # boxes smaller than this fraction of the image are ignored
      doubtful: [0.2, 0.4]        # best NG-class score in [lo, hi) -> DOUBTFUL (human review)
      anomaly_threshold: null     # normalised anomaly score for NG; null: the manifest's (0.5)
      anomaly_doubtful: [0.4, 0.6]
      classify_threshold: 0.5     # classifier: P(NG classes) for NG
      classify_doubtful: null
      process_threshold: null     # process model: P(NG) for NG; null: the manifest's (thresholds.ng)
      process_doubtful: null
    stations:
      st-02: {ng_classes: [crack], min_conf: 0.6}   # overrides, merged over `default`

The decision, in order: a score inside the doubtful band is DOUBTFUL; else a score at or above the
threshold is NG; else OK. The score is the best NG-class detection score (area filter applied) for a
detector, the normalised image score (0..1, threshold 0.5 by construction) for an anomaly model, the
summed probability of the NG classes for a classifier, and P(NG) for a process model.

Which classes are NG: ``ng_classes`` when set; else the manifest's ``extra.ng_classes``; else, for a
classifier, every class but the good ones (``extra.ok_classes``, else the names in :data:`GOOD_NAMES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jangin.core import ConfigError
from jangin.core.detections import Detections

__all__ = [
    "GOOD_NAMES",
    "RulesConfig",
    "StationRules",
    "Verdict",
    "decide_anomaly",
    "decide_classes",
    "decide_detections",
    "decide_process",
    "load_rules",
    "ng_classes_of",
]

#: Class names that mean a good part when neither the rules nor the manifest say which classes are NG.
GOOD_NAMES = frozenset({"ok", "good", "pass", "normal", "accept", "accepted", "conforming", "no_defect"})


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
    classify_threshold: float = Field(default=0.5, ge=0, le=1)
    classify_doubtful: tuple[float, float] | None = None
    process_threshold: float | None = Field(default=None, ge=0, le=1)
    process_doubtful: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _bands(self) -> StationRules:
        for band in (self.doubtful, self.anomaly_doubtful, self.classify_doubtful, self.process_doubtful):
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


def ng_classes_of(
    classes: list[str] | tuple[str, ...], extra: dict[str, Any], rules: StationRules
) -> set[str]:
    """The NG classes of a classifier (see the module docstring for the order of precedence)."""
    if rules.ng_classes is not None:
        return set(rules.ng_classes)
    if extra.get("ng_classes"):
        return set(extra["ng_classes"])
    good = {str(c).lower() for c in extra.get("ok_classes") or []} or GOOD_NAMES
    return {c for c in classes if c.lower() not in good}


def decide_classes(
    classes: tuple[str, ...], probs: Any, ng: set[str], rules: StationRules
) -> tuple[str, float, list[str]]:
    """Verdict of a classifier's probabilities: the summed probability of the NG classes against
    ``classify_threshold`` (``classify_doubtful`` band → DOUBTFUL)."""
    score = float(sum(float(p) for c, p in zip(classes, probs, strict=True) if c in ng))
    verdict = _band_verdict(score, rules.classify_threshold, rules.classify_doubtful)
    top = max(range(len(classes)), key=lambda i: float(probs[i]))
    return (
        verdict,
        score,
        [f"P(NG) {score:.2f} (threshold {rules.classify_threshold:.2f}); top {classes[top]}"],
    )


def decide_process(
    p_ng: float, manifest_threshold: float, rules: StationRules
) -> tuple[str, float, list[str]]:
    """Verdict of a process model's P(NG) (threshold: the rules', else the manifest's)."""
    threshold = manifest_threshold if rules.process_threshold is None else rules.process_threshold
    verdict = _band_verdict(p_ng, threshold, rules.process_doubtful)
    return verdict, float(p_ng), [f"P(NG) {p_ng:.2f} (threshold {threshold:.2f})"]
