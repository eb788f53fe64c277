"""The session manifest (``session.yaml``): who recorded what, with which devices and clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jangin.core import CaptureError

__all__ = [
    "CameraSpec",
    "ChannelSpec",
    "DeviceSpec",
    "LongFileSpec",
    "Role",
    "SessionManifest",
    "load_manifest",
]


#: What a column of a wide sensor file is: a numeric channel, a phase / state column (steps), a
#: per-sample label column (span labels), or nothing (ignored).
Role = Literal["channel", "phase", "label", "ignore"]


class ChannelSpec(BaseModel):
    """One column of a sensor file and what it becomes (by default a numeric channel)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    channel: str | None = None
    unit: str | None = None
    display_name: str | None = None
    rate_hz: float | None = Field(default=None, gt=0)
    role: Role = "channel"

    @property
    def name(self) -> str:
        return self.channel or self.column


class DeviceSpec(BaseModel):
    """A sensor device: its file(s), time axis, clock offset and columns.

    Time comes from ``time_column`` (numbers in ``time_unit``, counted from the unix epoch or, with
    ``time_origin: start``, from the session start; or ISO 8601 strings, found by their type), or,
    when the file has no such column, from ``start`` (default: the session start) + ``rate_hz`` /
    ``period_s``.

    Columns: ``channels`` declares columns one by one (with a ``role``); without any declared
    ``channel`` role, every numeric column is a channel (``include`` globs narrow that, ``drop``
    globs remove columns). ``phase_column`` and ``label_columns`` are shorthands for those roles.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str = "sensor"
    file: str | None = None  # None: samples from a long-format file; a glob: many files, in name order
    clock_offset_s: float | None = None
    time_column: str | None = "timestamp"
    time_unit: Literal["s", "ms", "us", "ns", "iso"] = "s"
    time_origin: Literal["epoch", "start"] = "epoch"
    rate_hz: float | None = Field(default=None, gt=0)
    period_s: float | None = Field(default=None, gt=0)
    start: datetime | None = None
    channels: list[ChannelSpec] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)
    phase_column: str | None = None
    phase_ignore: list[str] = Field(default_factory=list)
    label_columns: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)  # file column -> channel name
    units: dict[str, str] = Field(default_factory=dict)  # channel -> unit, for channels not declared
    display_names: dict[str, str] = Field(default_factory=dict)
    sync_channel: str | None = None

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("start needs a timezone (e.g. 2026-03-02T08:15:00Z)")
        return v.astimezone(UTC) if v is not None else None


class LongFileSpec(BaseModel):
    """A long-format sensor file (``device, channel, ts, value, unit`` rows) holding any devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    column_map: dict[str, str] = Field(default_factory=dict)  # file column -> standard column
    time_unit: Literal["s", "ms", "us", "ns"] = "s"


class CameraSpec(BaseModel):
    """A video file of the session and its clock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "camera"
    file: str
    clock_offset_s: float | None = None
    started_at: datetime | None = None


class SessionManifest(BaseModel):
    """Metadata of one recorded session, as written by a recording app or by hand.

    ``clock_offset_s`` of a device or camera is what to ADD to its timestamps to get the session's
    reference time (the recording app's clock, which also stamps the events file). Left out, it is
    estimated from the session's ``sync`` event (a step in the device's ``sync_channel``, default its
    first channel; a brightness jump in video); with no sync event it is 0 (recorded as ``none``).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_key: str
    technician: str | None = None
    skill_level: Literal["expert", "intermediate", "novice", "unknown"] = "unknown"
    site: str = "site"
    line: str | None = None
    station: str | None = None
    process: str | None = None
    task: str | None = None
    started_at: datetime
    cameras: list[CameraSpec] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)
    long_files: list[LongFileSpec] = Field(default_factory=list)
    events: str | None = "events.csv"
    parameters: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    labels: dict[str, str | int | float | bool | None] = Field(default_factory=dict)  # question -> answer
    process_definition: str | None = None

    @field_validator("started_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("started_at needs a timezone (e.g. 2026-03-02T08:15:00Z)")
        return v.astimezone(UTC)

    @field_validator("session_key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not v or "/" in v or "\\" in v or v.startswith("."):
            raise ValueError(f"session_key {v!r} must be a plain name (no slashes, not starting with '.')")
        return v


def load_manifest(path: Path) -> SessionManifest:
    """Read and validate a ``session.yaml``.

    Raises:
        CaptureError: The file is missing, is not YAML, or a field is invalid (named in the message).
    """
    from jangin.core.yamlfile import load_yaml_model

    return load_yaml_model(SessionManifest, path, what="session manifest", error=CaptureError)
