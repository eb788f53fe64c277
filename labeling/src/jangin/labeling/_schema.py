"""Label schemas: a small declarative description of what labellers mark, and the Label Studio
labelling configuration generated from it.

A schema is YAML (or a dict)::

    target: frame                 # frame: one task per frame | session: one task per sensor window
    labels:
      - kind: box                 # box (frames) | class (frames or sessions) | span (sessions)
        names: [porosity, undercut, spatter, crack]
        colors: {porosity: "#e6194b"}
      - kind: class
        question: quality         # the control's name = the question its labels answer; default: the kind
        names: [OK, NG]
    channels: [spindle_load_pct, feed_rate_mm_min]   # target session: channels shown (default: all)
    window_s: 10                  # target session: window length (default: the whole session)
    max_points: 2000              # target session: points per channel drawn in a window

Box labels become ``RectangleLabels`` on an ``Image``; class labels ``Choices`` (on the image, or on
the session window for session-level classes such as the expert's grade); span labels
``TimeSeriesLabels`` on a ``TimeSeries`` whose time column is seconds since the session start.

The control's name is the *question*: labels pulled from it carry it in ``labels.question``, and
pre-annotations whose question names a control go to that control. ``name:`` is accepted as well as
``question:`` (older schemas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jangin.core import ConfigError
from jangin.core.process_definition import ProcessDefinition

__all__ = ["LabelGroup", "LabelSchema", "load_schema"]

#: Names of the objects in the generated config (task data keys).
IMAGE = "image"
SERIES = "series"
TIME_COLUMN = "t"

_PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#fabed4",
    "#469990",
    "#dcbeff",
    "#9a6324",
    "#800000",
    "#aaffc3",
    "#808000",
    "#000075",
)


class LabelGroup(BaseModel):
    """One control of the labelling interface: a set of label names of one kind.

    Attributes:
        kind: ``box``, ``class`` or ``span``.
        name: The control's name in Label Studio (``from_name``); default: ``question``, else the kind.
        question: The question the control asks (``outcome``, ``defect``); it is the control's name,
            so either ``name`` or ``question`` may be given (both: they must agree).
        names: The label names, in a fixed order (the YOLO class order of box labels).
        colors: Optional ``{name: "#rrggbb"}``; others get a fixed palette colour.
        multiple: For classes: allow several choices at once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["box", "class", "span"]
    name: str = ""
    question: str = ""
    names: list[str] = Field(min_length=1)
    colors: dict[str, str] = Field(default_factory=dict)
    multiple: bool = False

    @model_validator(mode="after")
    def _one_name(self) -> LabelGroup:
        if self.name and self.question and self.name != self.question:
            raise ValueError(
                f"name {self.name!r} and question {self.question!r} differ; the control's name is its question"
            )
        return self

    @property
    def control(self) -> str:
        """The control's name (``from_name`` in Label Studio results), which is also the question."""
        return self.name or self.question or self.kind

    def color(self, label: str) -> str:
        """The colour of ``label``."""
        return self.colors.get(label) or _PALETTE[self.names.index(label) % len(_PALETTE)]


class LabelSchema(BaseModel):
    """What labellers mark in one Label Studio project (see the module docstring for the YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: Literal["frame", "session"] = "frame"
    labels: list[LabelGroup] = Field(min_length=1)
    channels: list[str] | None = None
    window_s: float | None = Field(default=None, gt=0)
    max_points: int = Field(default=2000, ge=2)

    @model_validator(mode="after")
    def _check(self) -> LabelSchema:
        controls = [g.control for g in self.labels]
        if len(set(controls)) != len(controls):
            raise ValueError(f"control names must be unique, got {controls}")
        for g in self.labels:
            if g.kind == "box" and self.target != "frame":
                raise ValueError("box labels need target: frame")
            if g.kind == "span" and self.target != "session":
                raise ValueError("span labels need target: session")
            if len(set(g.names)) != len(g.names):
                raise ValueError(f"label names of {g.control!r} repeat: {g.names}")
        return self

    @classmethod
    def from_process(
        cls, definition: ProcessDefinition, target: Literal["frame", "session"] = "session"
    ) -> LabelSchema:
        """The schema that asks a process's own questions (its ``labels:`` specs with choices).

        For ``target="session"`` the session questions become ``Choices`` and the span questions
        ``TimeSeriesLabels``; for ``frame`` the frame questions become ``Choices`` or, for
        ``kind: box``, ``RectangleLabels``. Each control is named after its question.

        Raises:
            ConfigError: The definition asks no question with choices for this target.
        """
        groups: list[dict[str, Any]] = []
        for spec in definition.labels:
            if not spec.choices:
                continue
            if target == "session" and spec.target in ("session", "span"):
                kind = "span" if spec.target == "span" else "class"
            elif target == "frame" and spec.target == "frame":
                kind = "box" if spec.kind == "box" else "class"
            else:
                continue
            groups.append({"kind": kind, "question": spec.question, "names": list(spec.choices)})
        if not groups:
            raise ConfigError(
                f"process {definition.name!r} defines no {target} question with choices to label",
                hint="add `labels: [{question: ..., target: ..., choices: [...]}]` to the process definition, "
                "or pass --schema",
            )
        return cls(target=target, labels=groups)  # type: ignore[arg-type]

    def group(self, control: str) -> LabelGroup:
        """The group whose control is ``control``.

        Raises:
            KeyError: No such control.
        """
        for g in self.labels:
            if g.control == control:
                return g
        raise KeyError(control)

    def names(self, kind: str) -> list[str]:
        """All label names of ``kind``, in schema order, without repeats."""
        out: list[str] = []
        for g in self.labels:
            if g.kind == kind:
                out += [n for n in g.names if n not in out]
        return out

    def label_config(self, channels: list[str] | None = None) -> str:
        """The Label Studio labelling configuration (XML) for this schema.

        Args:
            channels: For ``target: session``, the channels drawn (default: :attr:`channels`).

        Raises:
            ConfigError: A session schema with no channel to draw.
        """
        lines = ["<View>"]
        if self.target == "frame":
            lines.append(f'  <Image name="{IMAGE}" value="${IMAGE}" zoom="true"/>')
            to_name = IMAGE
        else:
            chans = channels if channels is not None else self.channels
            if not chans:
                raise ConfigError(
                    "a session schema needs channels to draw", hint="add `channels: [...]` to the schema"
                )
            to_name = SERIES
            lines.append('  <Header value="Session $session_key, $window"/>')
        for g in self.labels:
            if g.kind == "box":
                lines.append(f'  <RectangleLabels name={quoteattr(g.control)} toName="{IMAGE}">')
            elif g.kind == "span":
                lines.append(f'  <TimeSeriesLabels name={quoteattr(g.control)} toName="{SERIES}">')
            else:
                choice = "multiple" if g.multiple else "single"
                lines.append(
                    f'  <Choices name={quoteattr(g.control)} toName="{to_name}" choice="{choice}" showInline="true">'
                )
            for n in g.names:
                if g.kind == "class":
                    lines.append(f"    <Choice value={quoteattr(n)}/>")
                else:
                    lines.append(f"    <Label value={quoteattr(n)} background={quoteattr(g.color(n))}/>")
            lines.append(
                "  </RectangleLabels>"
                if g.kind == "box"
                else "  </TimeSeriesLabels>"
                if g.kind == "span"
                else "  </Choices>"
            )
        if self.target == "session":
            # The CSV is same-origin (local files), its time column seconds since the session start.
            lines.append(
                f'  <TimeSeries name="{SERIES}" valueType="url" value="$csv" sep="," '
                f'timeColumn="{TIME_COLUMN}" overviewWidth="100%">'
            )
            for c in chans or []:
                lines.append(f"    <Channel column={quoteattr(c)} legend={quoteattr(c)}/>")
            lines.append("  </TimeSeries>")
        lines.append("</View>")
        return "\n".join(lines) + "\n"


def load_schema(source: str | Path | dict[str, Any] | LabelSchema) -> LabelSchema:
    """Load a label schema from a YAML file, a YAML string, a dict or a schema.

    Raises:
        ConfigError: The file is missing or the schema is invalid (pydantic's message).
    """
    import yaml

    if isinstance(source, LabelSchema):
        return source
    where = "schema"
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        where = str(path)
        try:
            source = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read label schema {path}: {exc}") from exc
    elif isinstance(source, str):
        source = yaml.safe_load(source)
    if not isinstance(source, dict):
        raise ConfigError(f"{where}: a label schema is a mapping with `labels:`")
    try:
        return LabelSchema.model_validate(source)
    except ValidationError as exc:
        raise ConfigError(f"{where}: invalid label schema: {exc}") from exc
