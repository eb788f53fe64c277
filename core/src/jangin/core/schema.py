"""The single source of truth for every Jangin table.

Each table is declared once here as a :class:`TableSpec`: its Arrow schema (with a description of
every column in the field metadata), its key columns and how it is partitioned on disk. Every writer
validates against these schemas and every reader gets them back, so no table is described twice.

Conventions:
    * Time is ``timestamp[us, UTC]`` everywhere (:data:`TS`). DESIGN.md first said nanoseconds, but
      Delta Lake's portable TIMESTAMP is microseconds (its ``timestampNanos`` feature cannot be read
      through pyarrow datasets, which DuckDB scans); a microsecond is far below any sensor period here.
    * Units live in a ``unit`` column (sensor samples) or in the column name (``latency_ms``,
      ``bbox_xyxy_norm``: x1, y1, x2, y2 as fractions of the image width / height, top-left origin).
    * Tables are append-only. A correction is a new row whose ``supersedes`` names the row it replaces;
      sessions are re-written as a new row with a later ``updated_at`` (latest row wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa

__all__ = [
    "BBOX",
    "BBOX_COLUMNS",
    "SCHEMA_VERSION",
    "TABLES",
    "TS",
    "TableSpec",
    "get_table",
    "schema_of",
]

#: Bumped whenever a table changes incompatibly; stored in every dataset's ``jangin.json``.
SCHEMA_VERSION: Final = 1

#: The one timestamp type of the project.
TS: Final = pa.timestamp("us", tz="UTC")

#: A box as [x1, y1, x2, y2], fractions of the image size, top-left origin. Delta Lake has no
#: fixed-size lists, so the length (4) is checked by the writer (see ``BBOX_COLUMNS``).
BBOX: Final = pa.list_(pa.float64())

#: Columns holding one box each; writers check that every non-null value has 4 numbers in 0..1.
BBOX_COLUMNS: Final = frozenset({"bbox_xyxy_norm"})


def _f(name: str, type_: pa.DataType, doc: str, *, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


@dataclass(frozen=True)
class TableSpec:
    """One table of the dataset.

    Attributes:
        name: Table name; also the directory under the dataset root and the DuckDB view name.
        schema: The Arrow schema rows are validated against.
        key: Columns that identify a row (documentation and de-duplication).
        partition_by: Columns the Delta table is partitioned by on disk.
        doc: What one row is.
    """

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    doc: str
    partition_by: tuple[str, ...] = field(default=())

    @property
    def required(self) -> tuple[str, ...]:
        """Columns that must be present and non-null in every row."""
        return tuple(f.name for f in self.schema if not f.nullable)


DEVICE = pa.struct(
    [
        _f("name", pa.string(), "device name, e.g. power_source"),
        _f("kind", pa.string(), "device kind, e.g. welding_power_source, camera"),
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

SESSIONS = TableSpec(
    name="sessions",
    doc="a recording session (latest row per session_id wins)",
    key=("session_id",),
    schema=pa.schema(
        [
            _f("session_id", pa.string(), "unique session id", nullable=False),
            _f("technician", pa.string(), "pseudonym (keyed hash), never a real name"),
            _f("skill_level", pa.string(), "expert | intermediate | novice | unknown"),
            _f("site", pa.string(), "plant or site id"),
            _f("line", pa.string(), "production line id"),
            _f("station", pa.string(), "station id"),
            _f("process", pa.string(), "process, e.g. mig_butt_weld"),
            _f("task", pa.string(), "task within the process"),
            _f("started_at", TS, "start of the session, reference clock"),
            _f("ended_at", TS, "end of the session, reference clock; null while recording"),
            _f("devices", pa.list_(DEVICE), "devices and their clock offsets"),
            _f("status", pa.string(), "recording | finished | processed | failed", nullable=False),
            _f("source", pa.string(), "file | api | live | generated"),
            _f("meta_json", pa.string(), "free-form metadata as JSON"),
            _f("updated_at", TS, "when this row was written", nullable=False),
        ]
    ),
)

SENSOR_SAMPLES = TableSpec(
    name="sensor_samples",
    doc="one sample of one channel (long format; each channel keeps its own rate)",
    key=("session_id", "device", "channel", "ts"),
    partition_by=("session_id",),
    schema=pa.schema(
        [
            _f("session_id", pa.string(), "session id", nullable=False),
            _f("device", pa.string(), "device name", nullable=False),
            _f("channel", pa.string(), "channel name, e.g. arc_current_A", nullable=False),
            _f("ts", TS, "sample time, session reference clock (device offset applied)", nullable=False),
            _f("value", pa.float64(), "sample value"),
            _f("unit", pa.string(), "unit of value, e.g. A, V, mm/s, degC"),
        ]
    ),
)

EVENTS = TableSpec(
    name="events",
    doc="a marker in time (step start/end, adjustment, judgment, note, sync)",
    key=("event_id",),
    schema=pa.schema(
        [
            _f("event_id", pa.string(), "unique event id", nullable=False),
            _f("session_id", pa.string(), "session id", nullable=False),
            _f("ts", TS, "event time, reference clock", nullable=False),
            _f(
                "kind",
                pa.string(),
                "step_start | step_end | adjustment | judgment | note | sync",
                nullable=False,
            ),
            _f("name", pa.string(), "step, channel or segment name"),
            _f("value", pa.string(), "value as text, e.g. OK, NG:undercut, -8%"),
            _f("author", pa.string(), "who set the marker (pseudonym or role)"),
            _f("segment_start", TS, "for judgments: start of the judged segment"),
            _f("segment_end", TS, "for judgments: end of the judged segment"),
        ]
    ),
)

FRAMES = TableSpec(
    name="frames",
    doc="a sampled video frame or a still image, JPEG bytes inline",
    key=("frame_id",),
    partition_by=("session_id",),
    schema=pa.schema(
        [
            _f("frame_id", pa.string(), "unique frame id", nullable=False),
            _f("session_id", pa.string(), "session id", nullable=False),
            _f("camera", pa.string(), "camera name"),
            _f("ts", TS, "frame time, reference clock", nullable=False),
            _f("pts", pa.int64(), "frame index in the source video; null for stills"),
            _f("width", pa.int32(), "width in pixels", nullable=False),
            _f("height", pa.int32(), "height in pixels", nullable=False),
            _f("sharpness", pa.float64(), "variance of the Laplacian"),
            _f("deidentified", pa.bool_(), "faces were blurred before storing", nullable=False),
            _f("source_uri", pa.string(), "file the frame came from"),
            _f("station", pa.string(), "station the image was taken at"),
            _f("image", pa.binary(), "JPEG bytes", nullable=False),
        ]
    ),
)

MEDIA = TableSpec(
    name="media",
    doc="a stored video file",
    key=("session_id", "camera"),
    schema=pa.schema(
        [
            _f("session_id", pa.string(), "session id", nullable=False),
            _f("camera", pa.string(), "camera name", nullable=False),
            _f("uri", pa.string(), "path relative to the dataset root", nullable=False),
            _f("codec", pa.string(), "fourcc"),
            _f("fps", pa.float64(), "frames per second"),
            _f("frames", pa.int64(), "frame count"),
            _f("duration_s", pa.float64(), "duration in seconds"),
            _f("width", pa.int32(), "width in pixels"),
            _f("height", pa.int32(), "height in pixels"),
            _f("clock_offset_ns", pa.int64(), "add to video time to get reference time"),
            _f("started_at", TS, "reference time of the first frame"),
            _f("deidentified", pa.bool_(), "faces were blurred"),
            _f("sha256", pa.string(), "checksum of the stored file", nullable=False),
        ]
    ),
)

LABELS = TableSpec(
    name="labels",
    doc="one label on a frame, a time span or a session; corrections supersede",
    key=("label_id",),
    schema=pa.schema(
        [
            _f("label_id", pa.string(), "unique label id", nullable=False),
            _f("target", pa.string(), "frame | span | session", nullable=False),
            _f("frame_id", pa.string(), "labelled frame (target = frame)"),
            _f("session_id", pa.string(), "session id", nullable=False),
            _f("ts_start", TS, "span start (target = span)"),
            _f("ts_end", TS, "span end (target = span)"),
            _f("channel", pa.string(), "sensor channel a span label refers to, if any"),
            _f("kind", pa.string(), "box | class | span | mask", nullable=False),
            _f("name", pa.string(), "class name", nullable=False),
            _f("bbox_xyxy_norm", BBOX, "box (kind = box)"),
            _f("geometry_json", pa.string(), "other geometry (mask polygon, …) as JSON"),
            _f("score", pa.float64(), "confidence for model labels"),
            _f("source", pa.string(), "expert | labeller | model | review | import", nullable=False),
            _f("author", pa.string(), "who made it (pseudonym, model name@version)"),
            _f("created_at", TS, "when it was made", nullable=False),
            _f("lead_time_s", pa.float64(), "time the labeller spent"),
            _f("supersedes", pa.string(), "label_id this row replaces"),
            _f("deleted", pa.bool_(), "true: this row retracts the superseded label"),
            _f("external_id", pa.string(), "id in the labelling tool, for idempotent pulls"),
        ]
    ),
)

INSPECTIONS = TableSpec(
    name="inspections",
    doc="one verdict on the line",
    key=("inspection_id",),
    schema=pa.schema(
        [
            _f("inspection_id", pa.string(), "unique inspection id", nullable=False),
            _f("ts", TS, "when the image was inspected", nullable=False),
            _f("station", pa.string(), "station id"),
            _f("camera", pa.string(), "camera name"),
            _f("model", pa.string(), "model name", nullable=False),
            _f("model_version", pa.string(), "model version", nullable=False),
            _f("verdict", pa.string(), "OK | NG | DOUBTFUL", nullable=False),
            _f("score", pa.float64(), "the score the verdict was decided on"),
            _f("scores", pa.list_(SCORE), "other named scores"),
            _f("detections", pa.list_(DETECTION), "detections above the reporting threshold"),
            _f("latency_ms", pa.float64(), "inference latency"),
            _f("image_uri", pa.string(), "stored image, relative to the dataset root (null: not kept)"),
            _f("image_sha256", pa.string(), "checksum of the inspected image"),
            _f("source_uri", pa.string(), "where the image came from (file, camera)"),
        ]
    ),
)

REVIEWS = TableSpec(
    name="reviews",
    doc="a quality engineer's check of an inspection",
    key=("review_id",),
    schema=pa.schema(
        [
            _f("review_id", pa.string(), "unique review id", nullable=False),
            _f("inspection_id", pa.string(), "reviewed inspection", nullable=False),
            _f("reviewer", pa.string(), "reviewer (pseudonym)"),
            _f("verdict", pa.string(), "OK | NG", nullable=False),
            _f("comment", pa.string(), "free text"),
            _f("ts", TS, "when reviewed", nullable=False),
        ]
    ),
)

#: Every table, by name, in data-flow order.
TABLES: Final[dict[str, TableSpec]] = {
    t.name: t for t in (SESSIONS, SENSOR_SAMPLES, EVENTS, FRAMES, MEDIA, LABELS, INSPECTIONS, REVIEWS)
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
