"""Which weights a model starts from, what its manifest records about them, and the random-init refusal.

Every trained model's manifest carries ``train_config["backbone"]``::

    {"architecture": "resnet18", "weights": "resnet18-imagenet" | "random-init",
     "weights_sha256": "…" | None, "framework": "torchvision", "licence": "BSD-3-Clause", "source": "…"}

A model whose backbone starts from random initialisation is refused at publishing unless the caller
says ``allow_random_init`` (``--allow-random-init``): on real parts such a model is usually no better
than a grey-level baseline, and nobody should put one on the line by accident.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jangin.core import TrainingError
from jangin.core.artifacts import sha256_file
from jangin.core.weights import RANDOM_INIT, WeightsEntry, WeightsRegistry, default_registry

__all__ = ["RANDOM_INIT_WARNING", "backbone_record", "check_random_init", "resolve_weights"]

log = logging.getLogger(__name__)

RANDOM_INIT_WARNING = (
    "the backbone started from RANDOM initialisation (no registered pretrained weights): on real parts "
    "such a model is often no better than trivial baselines; bring weights with "
    "`jangin weights add` and train with --backbone-weights / --weights"
)


def resolve_weights(name: str | None, registry: WeightsRegistry | None = None) -> WeightsEntry | None:
    """The registered weights ``name`` (checksum verified), or ``None`` for no name.

    Raises:
        WeightsError: Unknown name, or the file changed since it was added.
    """
    if not name:
        return None
    reg = registry if registry is not None else default_registry()
    entry = reg.get(name)
    log.info("weights %s: %s (%s), sha256 %s", entry.name, entry.architecture, entry.framework, entry.sha256)
    return entry


def backbone_record(
    architecture: str, entry: WeightsEntry | None, file: Path | None = None
) -> dict[str, Any]:
    """What a manifest records about the weights a model started from."""
    if entry is not None:
        return {"architecture": architecture, **entry.record()}
    if file is not None:  # an unregistered local file (older option): its checksum at least
        return {
            "architecture": architecture,
            "weights": f"file:{Path(file).name}",
            "weights_sha256": sha256_file(Path(file)) if Path(file).is_file() else None,
        }
    return {"architecture": architecture, "weights": RANDOM_INIT, "weights_sha256": None}


def check_random_init(record: dict[str, Any], *, allow: bool, what: str) -> list[str]:
    """Refuse a random-init backbone unless ``allow``; the warnings for the report's top otherwise.

    Raises:
        TrainingError: ``record`` says random-init and ``allow`` is false.
    """
    if record.get("weights") != RANDOM_INIT:
        return []
    if not allow:
        raise TrainingError(
            f"{what}: the {record.get('architecture')} backbone would start from random initialisation "
            "(no --backbone-weights / --weights given); such a model is refused for publishing",
            hint="register pretrained weights (`jangin weights add NAME FILE …`) and pass their name, or "
            "pass --allow-random-init to publish it anyway (the report will say so at the top)",
        )
    log.warning("%s: %s", what, RANDOM_INIT_WARNING)
    return [RANDOM_INIT_WARNING]
