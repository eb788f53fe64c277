"""The single source of truth for every Jangin table.

Each table is declared once here as a typed row record (a frozen dataclass: ``SessionRow``,
``EventRow``, …) whose fields carry their Arrow type and a description; the table's Arrow schema is
derived from the record (:func:`schema_from_record`), so no table is described twice. Writers build
rows as records (one builder per table) or as columns (``sensor_samples``), and
:meth:`jangin.core.Dataset.append` validates either against the derived schema.

Conventions:
    * Time is ``timestamp[us, UTC]`` everywhere (:data:`TS`). DESIGN.md first said nanoseconds, but
      Delta Lake's portable TIMESTAMP is microseconds (its ``timestampNanos`` feature cannot be read
      through pyarrow datasets, which DuckDB scans); a microsecond is far below any sensor period here.
    * Units live in a ``unit`` column (sensor samples) or in the column name (``latency_ms``,
      ``bbox_xyxy_norm``: x1, y1, x2, y2 as fractions of the image width / height, top-left origin).
    * Tables are append-only. A correction is a new row whose ``supersedes`` names the row it replaces;
      sessions are re-written as a new row with a later ``updated_at`` (latest row wins).

Schema evolution: :data:`SCHEMA_VERSION` is stored in every dataset's ``jangin.json``. Changes are
additive (new nullable columns, new tables): a dataset written by an older release opens and reads
(missing columns read as nulls) and gets the new columns on its first write or with ``jangin migrate``.
:data:`HISTORY` says what each version added. A dataset newer than this code is refused on open.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pyarrow as pa

__all__ = [
    "BBOX",
    "BBOX_COLUMNS",
    "HISTORY",
    "SCHEMA_VERSION",
    "TABLES",
    "TS",
    "EventRow",
    "FrameRow",
    "InspectionRow",
    "LabelRow",
    "MediaRow",
    "ProcessRow",
    "ReviewRow",
    "SensorSampleRow",
    "SessionRow",
    "TableSpec",
    "get_table",
    "record_to_dict",
    "schema_from_record",
    "schema_of",
]

#: Bumped whenever a table changes; stored in every dataset's ``jangin.json``.
SCHEMA_VERSION: Final = 2

#: What each schema version added (all additive: older datasets are upgraded in place).
HISTORY: Final[dict[int, str]] = {
    1: "release 0.1.0: sessions, sensor_samples, events, frames, media, labels, inspections, reviews",
    2: "sessions.parameters (recipe, map) and sessions.process_definition; events.occurrence (numbered "
    "step occurrences); frames.deid_json and media.deid_json (what de-identification found); "
    "labels.question; new table processes (process definitions)",
}

#: The one timestamp type of the project.
TS: Final = pa.timestamp("us", tz="UTC")

#: A box as [x1, y1, x2, y2], fractions of the image size, top-left origin. Delta Lake has no
#: fixed-size lists, so the length (4) is checked by the writer (see ``BBOX_COLUMNS``).
BBOX: Final = pa.list_(pa.float64())

#: Columns holding one box each; writers check that every non-null value has 4 numbers in 0..1.
BBOX_COLUMNS: Final = frozenset({"bbox_xyxy_norm"})

#: Session parameters (the recipe): name -> value as text (numbers are cast in SQL when needed).
PARAMETERS: Final = pa.map_(pa.string(), pa.string())


def _f(name: str, type_: pa.DataType, doc: str, *, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def req(type_: pa.DataType, doc: str) -> Any:
    """A required (non-null) column of a row record."""
    return field(metadata={"arrow": type_, "doc": doc, "nullable": False})


def opt(type_: pa.DataType, doc: str) -> Any:
    """A nullable column of a row record (default ``None``)."""
    return field(default=None, metadata={"arrow": type_, "doc": doc, "nullable": True})


def schema_from_record(record: type) -> pa.Schema:
    """The Arrow schema of a row record class: one field per dataclass field, in order."""
    return pa.schema(
        [
            _f(f.name, f.metadata["arrow"], f.metadata["doc"], nullable=f.metadata["nullable"])
            for f in dataclasses.fields(record)
        ]
    )


def record_to_dict(row: Any) -> dict[str, Any]:
    """A row record as a plain ``{column: value}`` dict (shallow; nested values kept as they are)."""
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}


@dataclass(frozen=True)
class TableSpec:
    """One table of the dataset.

    Attributes:
        name: Table name; also the directory under the dataset root and the DuckDB view name.
        record: The typed row record the schema is derived from.
        key: Columns that identify a row (documentation and de-duplication).
        partition_by: Columns the Delta table is partitioned by on disk.
        doc: What one row is.
        since: The schema version that introduced the table.
    """

    name: str
    record: type
    key: tuple[str, ...]
    doc: str
    partition_by: tuple[str, ...] = field(default=())
    since: int = 1

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema rows are validated against (derived from :attr:`record`)."""
        return _schema_cache(self.record)

    @property
    def required(self) -> tuple[str, ...]:
        """Columns that must be present and non-null in every row."""
        return tuple(f.name for f in self.schema if not f.nullable)


_SCHEMAS: dict[type, pa.Schema] = {}


def _schema_cache(record: type) -> pa.Schema:
    if record not in _SCHEMAS:
        _SCHEMAS[record] = schema_from_record(record)
    return _SCHEMAS[record]


DEVICE = pa.struct(
    [
        _f("name", pa.string(), "device name, e.g. controller"),
        _f("kind", pa.string(), "device kind, e.g. power_source, camera"),
        _f("clock_offset_ns", pa.int64(), "add to the device's timestamps to get session (reference) time"),
        _f("offset_method", pa.string(), "given | sync_event | none"),
    ]
)

DETECTION = pa.struct(
    [
        _f("name", pa.string(), "class name"),
        _f("score", pa.float64(), "confidence 0..1"),
        _f("bbox_xyxy_norm", BBOX, "box, fractions of the image size"),
    ]
)

SCORE = pa.struct([_f("name", pa.string(), "score name"), _f("value", pa.float64(), "score value")])

_ROW = {"frozen": True, "kw_only": True, "slots": True}


@dataclass(**_ROW)
class SessionRow:
    """A recording session (latest row per ``session_id`` wins)."""

    session_id: str = req(pa.string(), "unique session id")
    technician: str | None = opt(pa.string(), "pseudonym (keyed hash), never a real name")
    skill_level: str | None = opt(pa.string(), "expert | intermediate | novice | unknown")
    site: str | None = opt(pa.string(), "plant or site id")
    line: str | None = opt(pa.string(), "production line id")
    station: str | None = opt(pa.string(), "station id")
    process: str | None = opt(
        pa.string(), "process, e.g. plasma_etch (a registered process definition's name)"
    )
    task: str | None = opt(pa.string(), "task within the process")
    started_at: datetime | None = opt(TS, "start of the session, reference clock")
    ended_at: datetime | None = opt(TS, "end of the session, reference clock; null while recording")
    devices: list[dict[str, Any]] | None = opt(pa.list_(DEVICE), "devices and their clock offsets")
    status: str = req(pa.string(), "recording | finished | processed | failed")
    source: str | None = opt(pa.string(), "file | api | live | generated")
    meta_json: str | None = opt(pa.string(), "free-form metadata as JSON")
    updated_at: datetime = req(TS, "when this row was written")
    parameters: dict[str, str] | None = opt(PARAMETERS, "session parameters (recipe): name -> value as text")
    process_definition: str | None = opt(pa.string(), "name of the process definition it follows")


@dataclass(**_ROW)
class SensorSampleRow:
    """One sample of one channel (long format; each channel keeps its own rate). Built as columns."""

    session_id: str = req(pa.string(), "session id")
    device: str = req(pa.string(), "device name")
    channel: str = req(pa.string(), "channel name, e.g. chamber_pressure_mTorr")
    ts: datetime = req(TS, "sample time, session reference clock (device offset applied)")
    value: float | None = opt(pa.float64(), "sample value")
    unit: str | None = opt(pa.string(), "unit of value, e.g. A, V, mm/s, degC")


@dataclass(**_ROW)
class EventRow:
    """A marker in time (step start/end, adjustment, judgment, note, sync)."""

    event_id: str = req(pa.string(), "unique event id")
    session_id: str = req(pa.string(), "session id")
    ts: datetime = req(TS, "event time, reference clock")
    kind: str = req(pa.string(), "step_start | step_end | adjustment | judgment | note | sync")
    name: str | None = opt(pa.string(), "step, channel or segment name")
    value: str | None = opt(pa.string(), "value as text, e.g. OK, NG:undercut, -8%")
    author: str | None = opt(pa.string(), "who set the marker (pseudonym or role)")
    segment_start: datetime | None = opt(TS, "for judgments: start of the judged segment")
    segment_end: datetime | None = opt(TS, "for judgments: end of the judged segment")
    occurrence: int | None = opt(
        pa.int32(), "step events: 1-based occurrence of this step name in the session"
    )


@dataclass(**_ROW)
class FrameRow:
    """A sampled video frame or a still image, JPEG bytes inline."""

    frame_id: str = req(pa.string(), "unique frame id")
    session_id: str = req(pa.string(), "session id")
    camera: str | None = opt(pa.string(), "camera name")
    ts: datetime = req(TS, "frame time, reference clock")
    pts: int | None = opt(pa.int64(), "frame index in the source video; null for stills")
    width: int = req(pa.int32(), "width in pixels")
    height: int = req(pa.int32(), "height in pixels")
    sharpness: float | None = opt(pa.float64(), "variance of the Laplacian")
    deidentified: bool = req(pa.bool_(), "faces were blurred before storing")
    source_uri: str | None = opt(pa.string(), "file the frame came from")
    station: str | None = opt(pa.string(), "station the image was taken at")
    image: bytes = req(pa.binary(), "JPEG bytes")
    deid_json: str | None = opt(pa.string(), "what de-identification detected and blurred (JSON)")


@dataclass(**_ROW)
class MediaRow:
    """A stored video file."""

    session_id: str = req(pa.string(), "session id")
    camera: str = req(pa.string(), "camera name")
    uri: str = req(pa.string(), "path relative to the dataset root")
    codec: str | None = opt(pa.string(), "fourcc")
    fps: float | None = opt(pa.float64(), "frames per second")
    frames: int | None = opt(pa.int64(), "frame count")
    duration_s: float | None = opt(pa.float64(), "duration in seconds")
    width: int | None = opt(pa.int32(), "width in pixels")
    height: int | None = opt(pa.int32(), "height in pixels")
    clock_offset_ns: int | None = opt(pa.int64(), "add to video time to get reference time")
    started_at: datetime | None = opt(TS, "reference time of the first frame")
    deidentified: bool | None = opt(pa.bool_(), "faces were blurred")
    sha256: str = req(pa.string(), "checksum of the stored file")
    deid_json: str | None = opt(pa.string(), "what de-identification detected and blurred (JSON summary)")


@dataclass(**_ROW)
class LabelRow:
    """One label on a frame, a time span or a session; corrections supersede."""

    label_id: str = req(pa.string(), "unique label id")
    target: str = req(pa.string(), "frame | span | session")
    frame_id: str | None = opt(pa.string(), "labelled frame (target = frame)")
    session_id: str = req(pa.string(), "session id")
    ts_start: datetime | None = opt(TS, "span start (target = span)")
    ts_end: datetime | None = opt(TS, "span end (target = span)")
    channel: str | None = opt(pa.string(), "sensor channel a span label refers to, if any")
    kind: str = req(pa.string(), "box | class | span | mask")
    name: str = req(pa.string(), "class name (the answer)")
    bbox_xyxy_norm: list[float] | None = opt(BBOX, "box (kind = box)")
    geometry_json: str | None = opt(pa.string(), "other geometry (mask polygon, …) as JSON")
    score: float | None = opt(pa.float64(), "confidence for model labels")
    source: str = req(pa.string(), "expert | labeller | model | review | import")
    author: str | None = opt(pa.string(), "who made it (pseudonym, model name@version)")
    created_at: datetime = req(TS, "when it was made")
    lead_time_s: float | None = opt(pa.float64(), "time the labeller spent")
    supersedes: str | None = opt(pa.string(), "label_id this row replaces")
    deleted: bool | None = opt(pa.bool_(), "true: this row retracts the superseded label")
    external_id: str | None = opt(pa.string(), "id in the labelling tool, for idempotent pulls")
    question: str | None = opt(pa.string(), "the question the label answers, e.g. outcome, tool_condition")


@dataclass(**_ROW)
class InspectionRow:
    """One verdict on the line."""

    inspection_id: str = req(pa.string(), "unique inspection id")
    ts: datetime = req(TS, "when the image was inspected")
    station: str | None = opt(pa.string(), "station id")
    camera: str | None = opt(pa.string(), "camera name")
    model: str = req(pa.string(), "model name")
    model_version: str = req(pa.string(), "model version")
    verdict: str = req(pa.string(), "OK | NG | DOUBTFUL")
    score: float | None = opt(pa.float64(), "the score the verdict was decided on")
    scores: list[dict[str, Any]] | None = opt(pa.list_(SCORE), "other named scores")
    detections: list[dict[str, Any]] | None = opt(
        pa.list_(DETECTION), "detections above the reporting threshold"
    )
    latency_ms: float | None = opt(pa.float64(), "inference latency")
    image_uri: str | None = opt(pa.string(), "stored image, relative to the dataset root (null: not kept)")
    image_sha256: str | None = opt(pa.string(), "checksum of the inspected image")
    source_uri: str | None = opt(pa.string(), "where the image came from (file, camera)")


@dataclass(**_ROW)
class ReviewRow:
    """A quality engineer's check of an inspection."""

    review_id: str = req(pa.string(), "unique review id")
    inspection_id: str = req(pa.string(), "reviewed inspection")
    reviewer: str | None = opt(pa.string(), "reviewer (pseudonym)")
    verdict: str = req(pa.string(), "OK | NG")
    comment: str | None = opt(pa.string(), "free text")
    ts: datetime = req(TS, "when reviewed")


@dataclass(**_ROW)
class ProcessRow:
    """One registered version of a process definition (latest version per name wins)."""

    name: str = req(pa.string(), "process name, e.g. plasma_etch (sessions.process refers to it)")
    version: int = req(pa.int64(), "1, 2, … per name")
    definition_yaml: str = req(pa.string(), "the definition as YAML")
    sha256: str = req(
        pa.string(), "checksum of definition_yaml (a re-registration of the same text adds nothing)"
    )
    registered_at: datetime = req(TS, "when it was registered")


SESSIONS = TableSpec(
    name="sessions",
    record=SessionRow,
    doc="a recording session (latest row per session_id wins)",
    key=("session_id",),
)
SENSOR_SAMPLES = TableSpec(
    name="sensor_samples",
    record=SensorSampleRow,
    doc="one sample of one channel (long format; each channel keeps its own rate)",
    key=("session_id", "device", "channel", "ts"),
    partition_by=("session_id",),
)
EVENTS = TableSpec(
    name="events",
    record=EventRow,
    doc="a marker in time (step start/end, adjustment, judgment, note, sync)",
    key=("event_id",),
)
FRAMES = TableSpec(
    name="frames",
    record=FrameRow,
    doc="a sampled video frame or a still image, JPEG bytes inline",
    key=("frame_id",),
    partition_by=("session_id",),
)
MEDIA = TableSpec(name="media", record=MediaRow, doc="a stored video file", key=("session_id", "camera"))
LABELS = TableSpec(
    name="labels",
    record=LabelRow,
    doc="one label on a frame, a time span or a session; corrections supersede",
    key=("label_id",),
)
INSPECTIONS = TableSpec(
    name="inspections", record=InspectionRow, doc="one verdict on the line", key=("inspection_id",)
)
REVIEWS = TableSpec(
    name="reviews", record=ReviewRow, doc="a quality engineer's check of an inspection", key=("review_id",)
)
PROCESSES = TableSpec(
    name="processes",
    record=ProcessRow,
    doc="a registered process definition version (latest version per name wins)",
    key=("name", "version"),
    since=2,
)

#: Every table, by name, in data-flow order.
TABLES: Final[dict[str, TableSpec]] = {
    t.name: t
    for t in (SESSIONS, SENSOR_SAMPLES, EVENTS, FRAMES, MEDIA, LABELS, INSPECTIONS, REVIEWS, PROCESSES)
}


def get_table(name: str) -> TableSpec:
    """Return the spec of table ``name``.

    Raises:
        ValueError: No such table.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; tables are: {', '.join(TABLES)}") from None


def schema_of(name: str) -> pa.Schema:
    """Return the Arrow schema of table ``name``."""
    return get_table(name).schema
