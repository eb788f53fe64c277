"""The station YAML of ``jangin capture record``: which sources to read, how tags become channels,
what starts and ends a session, where the sessions go.

Example (every protocol's own keys are documented by its source class in ``jangin.capture.sources``)::

    station: etch-pm1
    line: line-a
    site: fab-1
    process: plasma_etch
    dataset: ./jangin-data            # or server: http://host:8000 (key from $JANGIN_API_KEY)
    sources:
      chamber: {type: replay, file: sample_data/etch/etch-01.csv.gz, rate_hz: 10, phase_column: recipe_step}
    channels:
      rf_forward_W: {name: rf_forward_W, unit: W}
    session:
      trigger: "cycle_active == 1"    # one session per machine cycle
      step_tag: recipe_step           # its value changes are steps

Credentials never live in this file: a source reads them from ``<key>_env`` (an environment variable)
or ``<key>_file`` (a secret file); a literal ``password:`` (or token, secret, api key) is refused.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jangin.core import ConfigError

__all__ = ["BufferConfig", "ChannelMap", "SessionControl", "StationConfig", "Trigger", "load_station"]

#: Keys whose literal value would be a credential in the YAML.
SECRET_KEYS = re.compile(r"^(password|passwd|secret|token|api_key|apikey|key_password)$", re.I)

_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_TRIGGER = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9._-]*)\s*(==|!=|>=|<=|>|<)\s*(-?[0-9.eE+-]+)\s*$")


class Trigger(BaseModel):
    """``TAG OP VALUE``: a session runs while the condition holds (e.g. ``cycle_active == 1``)."""

    model_config = ConfigDict(frozen=True)
    tag: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Trigger:
        m = _TRIGGER.match(text)
        if not m:
            raise ValueError(f"trigger {text!r}: expected 'TAG OP NUMBER', OP one of {' '.join(_OPS)}")
        return cls(tag=m.group(1), op=m.group(2), value=float(m.group(3)))

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.value))


class ChannelMap(BaseModel):
    """A tag stored under another channel name and/or with a unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    unit: str | None = None


class SessionControl(BaseModel):
    """What starts and ends sessions, and where steps come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    trigger: Trigger | None = None
    control: Literal["auto", "http"] = "auto"
    step_tag: str | None = None
    step_names: dict[float, str] = Field(default_factory=dict)
    pre_roll_s: float = Field(default=2.0, ge=0, le=60)
    close_wait_s: float = Field(default=1.0, ge=0, le=60)
    frame_interval_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _one_control(self) -> SessionControl:
        if self.trigger is not None and self.control == "http":
            raise ValueError(
                "control: http and a trigger exclude each other (the trigger starts and stops sessions)"
            )
        return self

    @field_validator("trigger", mode="before")
    @classmethod
    def _trigger(cls, v: Any) -> Any:
        return Trigger.parse(v) if isinstance(v, str) else v


class BufferConfig(BaseModel):
    """How much may wait on the recorder's disk while the dataset or server is away."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_bytes: int = Field(default=2 << 30, gt=0)
    batch_s: float = Field(default=0.25, gt=0, le=10)
    retry_s: float = Field(default=10.0, gt=0)


class StationConfig(BaseModel):
    """A station YAML (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    station: str
    line: str | None = None
    site: str = "site"
    process: str | None = None
    task: str | None = None
    technician: str | None = None
    skill_level: Literal["expert", "intermediate", "novice", "unknown"] = "unknown"
    dataset: Path | None = None
    server: str | None = None
    api_key_env: str = "JANGIN_API_KEY"
    spool: Path | None = None
    sources: dict[str, dict[str, Any]] = Field(min_length=1)
    clocks: dict[str, float] = Field(default_factory=dict)
    channels: dict[str, ChannelMap] = Field(default_factory=dict)
    session: SessionControl = Field(default_factory=SessionControl)
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    health_interval_s: float = Field(default=5.0, gt=0)

    @field_validator("station", "site")
    @classmethod
    def _name(cls, v: str) -> str:
        from jangin.capture._staging import check_name

        return check_name("name", v)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from jangin.capture.sources import SOURCE_TYPES

        for name, cfg in v.items():
            if not isinstance(cfg, dict) or "type" not in cfg:
                raise ValueError(f"{name}: give the source's type ({', '.join(sorted(SOURCE_TYPES))})")
            if cfg["type"] not in SOURCE_TYPES:
                raise ValueError(f"{name}.type: unknown {cfg['type']!r} ({', '.join(sorted(SOURCE_TYPES))})")
            _no_secrets(cfg, name)
            if cfg["type"] == "mqtt" and not cfg.get("channels"):
                # a staged session declares its devices and channels when it starts: samples of a
                # channel it did not declare would be dropped, so an unlisted topic records nothing
                raise ValueError(
                    f"{name}.channels: list the topics to record ({{topic, channel, unit}} each): a session "
                    "declares its channels when it starts, and samples of undeclared ones are dropped"
                )
        return v

    @model_validator(mode="after")
    def _target(self) -> StationConfig:
        if (self.dataset is None) == (self.server is None):
            raise ValueError(
                "give exactly one of dataset (record into a dataset) or server (a jangin serve URL)"
            )
        unknown = set(self.clocks) - set(self.sources)
        if unknown:
            raise ValueError(f"clocks: no source named {', '.join(sorted(unknown))}")
        return self

    def rel(self, base: Path) -> StationConfig:
        """Relative paths (dataset, spool) resolved against ``base`` (the YAML's folder)."""
        upd: dict[str, Any] = {}
        for k in ("dataset", "spool"):
            p = getattr(self, k)
            if p is not None and not p.is_absolute():
                upd[k] = (base / p).resolve()
        return self.model_copy(update=upd)


def _no_secrets(cfg: Any, where: str) -> None:
    if isinstance(cfg, dict):
        for k, val in cfg.items():
            if isinstance(k, str) and SECRET_KEYS.match(k) and val not in (None, ""):
                raise ValueError(
                    f"{where}.{k}: credentials are never written in the station YAML; "
                    f"use {k}_env: VARIABLE or {k}_file: /path/to/secret"
                )
            _no_secrets(val, f"{where}.{k}")
    elif isinstance(cfg, list):
        for i, item in enumerate(cfg):
            _no_secrets(item, f"{where}[{i}]")


def load_station(path: Path | str | None = None, *, text: str | None = None) -> StationConfig:
    """Read and check a station YAML (a file, or ``text``); relative paths are against its folder.

    Raises:
        ConfigError: Not YAML, or a field is wrong (named, with the first problem's message).
    """
    where = str(path) if path is not None else "station YAML"
    try:
        raw = yaml.safe_load(text if text is not None else Path(path).read_text())  # type: ignore[arg-type]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping (station, sources, ...)")
    try:
        cfg = StationConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if field == "sources" and (m := re.match(r"^([\w.\[\]-]+): (.*)$", msg)):
            field, msg = f"sources.{m.group(1)}", m.group(2)  # the source's own field, named in full
        raise ConfigError(
            f"{where}: {field}: {msg}", hint="see `jangin capture record --help` and the README"
        ) from None
    return cfg.rel(Path(path).resolve().parent) if path is not None else cfg
