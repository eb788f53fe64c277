"""Process definitions: what Jangin knows about one skilled process, as data (YAML), never as code.

A process definition names the process's channels (display name, unit, what "higher" and "lower"
mean in words, who controls it: the operator, the machine, or neither because it is an outcome), how
steps are found (markers, a phase/state column, or a signal template), the labels a session usually
gets, and the recipe parameters. Importers, skill profiles, coaching text and exports read it; stage
code holds no process vocabulary of its own.

Definitions are registered in the dataset (table ``processes``, one row per version; a re-registration
of the same text adds nothing), so a dataset carries the meaning of its own channels.

Example (YAML)::

    name: plasma_etch
    display_name: Plasma etch chamber
    channels:
      - name: rf_forward_W
        display_name: RF forward power
        unit: W
        role: operator
        quantity: ratio
        higher: more RF power
        lower: less RF power
      - name: electrode_temp_C
        unit: degC
        role: machine
        quantity: interval
    steps: {source: phase_column, column: recipe_step, ignore: [idle]}
    labels:
      - {question: outcome, target: session, choices: [good, marginal, scrap]}
    parameters:
      - {name: rf_power_setpoint_W, unit: W}
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from collections.abc import Mapping

    from jangin.core._dataset import Dataset

__all__ = [
    "ChannelDef",
    "LabelSpec",
    "ParameterSpec",
    "ProcessDefinition",
    "StepSpec",
    "get_process",
    "list_processes",
    "load_process_definition",
    "register_process",
]

log = logging.getLogger(__name__)

Role = Literal["operator", "machine", "outcome", "context"]

#: Default scoring weight of a channel by role (operator-controlled channels count fully).
ROLE_WEIGHTS: dict[str, float] = {"operator": 1.0, "machine": 0.25, "outcome": 0.0, "context": 0.0}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelDef(_Model):
    """One channel of a process.

    Attributes:
        name: The channel name as stored in ``sensor_samples.channel`` (exact).
        display_name: How people call it ("RF forward power").
        unit: Unit of its values ("W", "degC", "mm/s").
        role: ``operator`` (the person controls it: scored, advice given), ``machine`` (machine
            state: scored with a low weight, never advice), ``outcome`` (a result: not scored),
            ``context`` (shown only).
        quantity: ``ratio`` (differences read as percentages: power, flow, speed) or ``interval``
            (absolute differences: angles, temperatures in °C, positions).
        higher: Words for "higher than the experts" ("steeper", "more RF power").
        lower: Words for "lower than the experts".
        weight: Scoring weight; default by role (:data:`ROLE_WEIGHTS`).
        duplicate_of: This channel is a command/actual copy of that one (scored once).
    """

    name: str
    display_name: str | None = None
    unit: str | None = None
    role: Role = "machine"
    quantity: Literal["ratio", "interval"] = "ratio"
    higher: str | None = None
    lower: str | None = None
    weight: float | None = Field(default=None, ge=0)
    duplicate_of: str | None = None

    @property
    def label(self) -> str:
        """The name to show people."""
        return self.display_name or self.name

    @property
    def scoring_weight(self) -> float:
        """The weight this channel gets in a skill score (0 for duplicates, outcomes and context)."""
        if self.duplicate_of:
            return 0.0
        return self.weight if self.weight is not None else ROLE_WEIGHTS[self.role]

    @property
    def advisable(self) -> bool:
        """Whether advice may be given on this channel (only what the operator controls)."""
        return self.role == "operator"


class StepSpec(_Model):
    """How the steps of a session are found.

    Attributes:
        source: ``markers`` (step_start/step_end events from the recording app), ``phase_column``
            (a text or integer state column in the sensor files; each change starts a step, a phase
            seen twice is two numbered occurrences), ``template`` (from the signals, with
            :attr:`template`), or ``none``.
        column: The phase/state column (``phase_column``).
        ignore: Phase values that are not steps (e.g. ``idle``).
        template: The signal template (keys defined by the skill stage), only for ``template`` or as
            a fallback when a session has no markers.
    """

    source: Literal["markers", "phase_column", "template", "none"] = "markers"
    column: str | None = None
    ignore: list[str] = Field(default_factory=list)
    template: dict[str, Any] | None = None


class LabelSpec(_Model):
    """A question sessions, spans or frames of this process are usually labelled with."""

    question: str
    target: Literal["session", "span", "frame"] = "session"
    kind: Literal["class", "box", "span"] = "class"
    choices: list[str] = Field(default_factory=list)
    #: The choices that mean a good part (e.g. ``[good]``, ``[OK, pass]``): training counts frames with
    #: these class labels as good, every other class label as defective.
    good: list[str] = Field(default_factory=list)


class ParameterSpec(_Model):
    """A recipe parameter of a session."""

    name: str
    unit: str | None = None
    display_name: str | None = None


class ProcessDefinition(_Model):
    """A skilled process, described as data. See the module docstring for the YAML form."""

    name: str
    display_name: str | None = None
    description: str | None = None
    channels: list[ChannelDef] = Field(default_factory=list)
    steps: StepSpec = Field(default_factory=StepSpec)
    labels: list[LabelSpec] = Field(default_factory=list)
    parameters: list[ParameterSpec] = Field(default_factory=list)
    words: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "_-." for c in v):
            raise ValueError(f"{v!r}: use letters, digits, '_', '-' or '.'")
        return v

    @field_validator("channels")
    @classmethod
    def _unique(cls, v: list[ChannelDef]) -> list[ChannelDef]:
        seen: set[str] = set()
        for c in v:
            if c.name in seen:
                raise ValueError(f"channel {c.name!r} is defined twice")
            seen.add(c.name)
        names = {c.name for c in v}
        for c in v:
            if c.duplicate_of and c.duplicate_of not in names:
                raise ValueError(f"channel {c.name!r}: duplicate_of {c.duplicate_of!r} is not a channel")
        return v

    def channel(self, name: str) -> ChannelDef | None:
        """The definition of channel ``name``, if the process names it."""
        return next((c for c in self.channels if c.name == name), None)

    def word(self, key: str, default: str) -> str:
        """The process's own word for ``key`` ("session" → "run", "operator" → "process engineer")."""
        return self.words.get(key, default)

    def label_spec(self, question: str) -> LabelSpec | None:
        """The label spec of ``question``, if the process names it."""
        return next((x for x in self.labels if x.question == question), None)

    @classmethod
    def from_yaml(cls, source: str | Path) -> ProcessDefinition:
        """Read a definition from a YAML file (a :class:`~pathlib.Path`) or YAML text (a ``str``).

        Raises:
            ConfigError: Unreadable, not YAML, or a field is wrong (named, with the file).
        """
        from jangin.core.yamlfile import load_yaml_model

        return load_yaml_model(
            cls,
            source,
            what="process definition",
            hint="see jangin.core.process_definition for the fields",
        )

    def to_yaml(self) -> str:
        """The definition as YAML (defaults left out)."""
        import yaml

        return str(
            yaml.safe_dump(self.model_dump(exclude_defaults=True), sort_keys=False, allow_unicode=True)
        )


def load_process_definition(path: str | Path) -> ProcessDefinition:
    """Read a process definition YAML file. Raises :class:`~jangin.core.ConfigError`."""
    return ProcessDefinition.from_yaml(Path(path))


def register_process(ds: Dataset, definition: ProcessDefinition | str | Path) -> int:
    """Register ``definition`` in ``ds`` (table ``processes``) and return its version number.

    Registering the same text again adds nothing and returns the existing version; a changed
    definition becomes the next version (the latest is the one in force).
    """
    if not isinstance(definition, ProcessDefinition):
        definition = ProcessDefinition.from_yaml(Path(definition))
    from jangin.core.schema import ProcessRow

    text = definition.to_yaml()
    digest = hashlib.sha256(text.encode()).hexdigest()
    rows = ds.read(
        "processes", columns=["name", "version", "sha256"], filters=[("name", "=", definition.name)]
    )
    versions = dict(zip(rows.column("sha256").to_pylist(), rows.column("version").to_pylist(), strict=True))
    latest = max(versions.values(), default=0)
    if digest in versions and versions[digest] == latest:
        return int(latest)
    version = latest + 1
    row = ProcessRow(
        name=definition.name,
        version=version,
        definition_yaml=text,
        sha256=digest,
        registered_at=datetime.now(UTC),
    )
    ds.append("processes", [row], txn=(f"process/{definition.name}", version))
    log.info("registered process %s version %d", definition.name, version)
    return version


def get_process(
    ds: Dataset, name: str | None, *, snapshot: Mapping[str, int] | None = None
) -> ProcessDefinition | None:
    """The latest registered definition of process ``name`` (at ``snapshot``), or ``None``."""
    if not name:
        return None
    rows = ds.read(
        "processes", snapshot=snapshot, columns=["version", "definition_yaml"], filters=[("name", "=", name)]
    )
    if rows.num_rows == 0:
        return None
    versions = rows.column("version").to_pylist()
    text = rows.column("definition_yaml").to_pylist()[versions.index(max(versions))]
    return ProcessDefinition.from_yaml(str(text))


def list_processes(ds: Dataset) -> list[ProcessDefinition]:
    """Every registered process (latest version of each), by name."""
    rows = ds.read("processes", columns=["name", "version", "definition_yaml"])
    latest: dict[str, tuple[int, str]] = {}
    for n, v, t in zip(
        *(rows.column(c).to_pylist() for c in ("name", "version", "definition_yaml")), strict=True
    ):
        if n not in latest or v > latest[n][0]:
            latest[n] = (v, t)
    return [ProcessDefinition.from_yaml(latest[n][1]) for n in sorted(latest)]
