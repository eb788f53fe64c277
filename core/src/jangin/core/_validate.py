"""Turn user rows into an Arrow table that matches a table's schema exactly, or explain why not."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from jangin.core._errors import SchemaError
from jangin.core.schema import BBOX_COLUMNS, TableSpec

__all__ = ["Rows", "conform"]

#: What a writer accepts: an Arrow table or batch, a list of row records (``SessionRow``, …) or row
#: dicts, or a dict of columns.
Rows: TypeAlias = pa.Table | pa.RecordBatch | Sequence[Any] | Mapping[str, Sequence[Any]]


def conform(spec: TableSpec, data: Rows, *, source: str | None = None) -> pa.Table:
    """Return ``data`` as a table with exactly ``spec.schema``.

    Missing nullable columns are filled with nulls; everything else that does not fit raises.

    Args:
        spec: The target table.
        data: Rows to validate.
        source: Optional name of where the rows came from (a file), used in error messages.

    Raises:
        SchemaError: Unknown or missing column, a value of the wrong type, a null in a required column,
            or a malformed box. The message names the table, the column and, where known, the row.
    """
    where = f"{spec.name}" + (f" (from {source})" if source else "")
    columns = _columns(spec, data, where)
    names = set(columns)
    unknown = sorted(names - set(spec.schema.names))
    if unknown:
        raise SchemaError(
            f"{where}: unknown column(s) {', '.join(map(repr, unknown))}",
            hint=f"the columns of {spec.name} are: {', '.join(spec.schema.names)}",
        )
    n_rows = max((len(c) for c in columns.values()), default=0)
    arrays: list[pa.Array | pa.ChunkedArray] = []
    for field in spec.schema:
        if field.name not in columns:
            if not field.nullable:
                raise SchemaError(f"{where}: required column {field.name!r} is missing")
            arrays.append(pa.nulls(n_rows, field.type))
            continue
        values = columns[field.name]
        if _keeps_dictionary(spec, field, values):
            # Repeated names (device, channel, unit) stay dictionary-encoded: no string copies, and
            # the Parquet writer stores them as the dictionaries they already are.
            arrays.append(values)
            continue
        arrays.append(_cast_column(where, field, values))
    schema = pa.schema(
        [f.with_type(a.type) if a.type != f.type else f for f, a in zip(spec.schema, arrays, strict=True)]
    )
    table = pa.Table.from_arrays(arrays, schema=schema)
    for field in spec.schema:
        col = table.column(field.name)
        if not field.nullable and col.null_count:
            row = _first_index(pc.is_null(col))
            raise SchemaError(f"{where}: column {field.name!r} is required but row {row} is null")
        if field.name in BBOX_COLUMNS:
            _check_boxes(where, field.name, col)
    return table


def _keeps_dictionary(spec: TableSpec, field: pa.Field, values: Any) -> bool:
    """A dictionary array of strings for a string column is kept as it is (partition columns too:
    the writers decode them, or read their few values, without materialising one string per row)."""
    t = getattr(values, "type", None)
    return (
        t is not None
        and pa.types.is_dictionary(t)
        and t.value_type == field.type
        and pa.types.is_string(field.type)
    )


def _columns(spec: TableSpec, data: Rows, where: str) -> dict[str, Any]:
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return {name: data.column(name) for name in data.column_names}
    if isinstance(data, Mapping):
        return {str(k): v for k, v in data.items()}
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and dataclasses.is_dataclass(data[0]):
            if not all(type(row) is spec.record for row in data):
                bad = next(i for i, row in enumerate(data) if type(row) is not spec.record)
                raise SchemaError(
                    f"{where}: row {bad} is a {type(data[bad]).__name__}, expected a {spec.record.__name__}"
                )
            return {f.name: [getattr(row, f.name) for row in data] for f in dataclasses.fields(spec.record)}
        keys: dict[str, None] = {}
        for i, row in enumerate(data):
            if not isinstance(row, Mapping):
                raise SchemaError(f"{where}: row {i} is a {type(row).__name__}, expected a mapping")
            keys.update(dict.fromkeys(row))
        return {k: [row.get(k) for row in data] for k in keys}
    raise TypeError(f"cannot write {type(data).__name__} to {spec.name}: expected an Arrow table or rows")


def _cast_column(where: str, field: pa.Field, values: Any) -> pa.Array | pa.ChunkedArray:
    try:
        if isinstance(values, pa.Array | pa.ChunkedArray):
            arr = values
            if pa.types.is_timestamp(field.type):
                arr = _to_timestamp(where, field, arr)
            elif pa.types.is_dictionary(arr.type):
                arr = arr.cast(arr.type.value_type)
            return arr.cast(field.type, safe=True) if arr.type != field.type else arr
        if pa.types.is_map(field.type):
            # {name: value} dicts; values become text when the map holds strings (recipe parameters)
            text = pa.types.is_string(field.type.item_type)
            values = [
                None
                if v is None
                else {str(k): (str(x) if text and x is not None else x) for k, x in dict(v).items()}
                for v in values
            ]
            return pa.array(values, type=field.type)
        arr = pa.array(values, from_pandas=True)
        if pa.types.is_timestamp(field.type):
            arr = _to_timestamp(where, field, arr)
        return arr.cast(field.type, safe=True) if arr.type != field.type else arr
    except SchemaError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        row = _first_bad_row(field, values)
        at = f" at row {row}" if row is not None else ""
        raise SchemaError(f"{where}: column {field.name!r} expects {field.type}{at}: {exc}".rstrip()) from exc


def _to_timestamp(where: str, field: pa.Field, arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    t = arr.type
    if pa.types.is_null(t):
        return arr.cast(field.type)
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise SchemaError(
                f"{where}: column {field.name!r} holds timezone-naive timestamps",
                hint="give times with a timezone (UTC); naive times are ambiguous on a plant floor",
            )
        # Sub-microsecond digits cannot be stored (Delta timestamps are microseconds): truncate them.
        return pc.cast(arr, field.type, safe=False) if t.unit == "ns" else arr.cast(field.type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        parsed = pc.strptime(arr, format="%Y-%m-%dT%H:%M:%S%z", unit="us", error_is_null=True)
        bad = pc.and_(pc.is_null(parsed), pc.is_valid(arr))
        if pc.any(bad).as_py():
            # Fall back to Arrow's ISO-8601 cast, which also takes fractions of a second.
            return arr.cast(field.type)
        return parsed.cast(field.type)
    raise SchemaError(
        f"{where}: column {field.name!r} expects UTC timestamps, got {t}",
        hint="numbers are ambiguous (seconds? ms?); convert them to timestamps first",
    )


def _first_bad_row(field: pa.Field, values: Any) -> int | None:
    try:
        seq = values.to_pylist() if isinstance(values, pa.Array | pa.ChunkedArray) else list(values)
    except Exception:
        return None
    for i, v in enumerate(seq):
        try:
            pa.array([v], type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return i
    return None


def _check_boxes(where: str, name: str, col: pa.ChunkedArray) -> None:
    for i, box in enumerate(col.to_pylist()):
        if box is None:
            continue
        if len(box) != 4 or any(v is None for v in box):
            raise SchemaError(
                f"{where}: column {name!r} row {i}: a box needs 4 numbers [x1, y1, x2, y2], got {box}"
            )
        x1, y1, x2, y2 = box
        if not (0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0):
            raise SchemaError(
                f"{where}: column {name!r} row {i}: box {box} is not inside [0, 1] with x1 < x2 and y1 < y2",
                hint="boxes are fractions of the image width / height, top-left origin",
            )


def _first_index(mask: pa.ChunkedArray | pa.Array) -> int:
    idx = pc.index(mask, True).as_py()
    return int(idx)
