"""A fast append for large partitioned writes (sensor samples): Parquet files written by pyarrow, one
Delta commit for all of them.

``write_deltalake`` splits every batch by its partition values (a sort and a copy of every column)
before writing; for an append of millions of samples of one session that costs about as much CPU
as writing the Parquet itself. Here each partition value's rows are selected once (no copy when the
whole table is one partition), written with ``pyarrow.parquet`` straight into the table's
``col=value/`` folder, and committed with their statistics (row count, null counts, min / max of
numeric and time columns) and the app transaction in ONE Delta commit, so the append stays atomic
and idempotent: files of a failed commit are never referenced and are removed.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["FAST_APPEND_ROWS", "write_partitioned"]

#: Appends to a partitioned table with at least this many rows take the fast path.
FAST_APPEND_ROWS = 1_000_000
#: Rows per Parquet file (a few hundred MB at most).
ROWS_PER_FILE = 20_000_000


def _stat(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, float) and v != v:  # NaN has no order: leave the bound out
        return None
    return v


def _stats(data: pa.Table) -> str:
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for f in data.schema:
        t = f.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t):
            mm = pc.min_max(data.column(f.name))
            lo, hi = _stat(mm["min"].as_py()), _stat(mm["max"].as_py())
            if lo is not None and hi is not None:
                mins[f.name], maxs[f.name] = lo, hi
    return json.dumps(
        {
            "numRecords": data.num_rows,
            "minValues": mins,
            "maxValues": maxs,
            "nullCount": {f.name: data.column(f.name).null_count for f in data.schema},
        }
    )


def write_partitioned(dt: Any, data: pa.Table, partition_by: Sequence[str], commit_properties: Any) -> None:
    """Append ``data`` (already conformed, without column docs) to the partitioned Delta table ``dt``.

    Raises:
        DeltaError, OSError, ArrowException: The write or the commit failed; nothing was committed.
    """
    from deltalake.transaction import AddAction

    root = Path(dt.table_uri.removeprefix("file://"))
    if len(partition_by) == 1:  # the usual case: one unique over the column, no joined keys
        col = data.column(partition_by[0])
        if pa.types.is_dictionary(col.type):
            # One session's samples: the dictionary entries in use (a unique over small integers),
            # not a pass over one string per row.
            used = [c.dictionary.take(pc.unique(c.indices.drop_null())) for c in col.chunks]
            values = pc.unique(pa.chunked_array(used, col.type.value_type)).to_pylist()
            values += [None] if col.null_count else []
        else:
            values = pc.unique(col).to_pylist()
        keys = ["\x00" if v is None else str(v) for v in values]
    else:
        keys = pc.unique(
            pc.binary_join_element_wise(
                *[pc.fill_null(data.column(c).cast(pa.string()), "\x00") for c in partition_by], "\x1f"
            )
        ).to_pylist()
    if len(keys) > 1:  # rows are selected by value below: plain columns for the comparisons
        for c in partition_by:
            t = data.schema.field(c).type
            if pa.types.is_dictionary(t):
                data = data.set_column(data.schema.get_field_index(c), c, data.column(c).cast(t.value_type))
    body = data.drop_columns(list(partition_by))
    textual = [
        f.name
        for f in body.schema
        if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    written: list[Path] = []
    actions = []
    try:
        for key in keys:
            values = [None if v == "\x00" else v for v in key.split("\x1f")]
            part = body
            if len(keys) > 1:
                mask = None
                for col, v in zip(partition_by, values, strict=True):
                    m = pc.is_null(data.column(col)) if v is None else pc.equal(data.column(col), v)
                    mask = m if mask is None else pc.and_(mask, m)
                part = body.filter(mask)
            folder = "/".join(
                f"{c}={'__HIVE_DEFAULT_PARTITION__' if v is None else quote(v, safe='')}"
                for c, v in zip(partition_by, values, strict=True)
            )
            for start in range(0, part.num_rows, ROWS_PER_FILE):
                chunk = part.slice(start, ROWS_PER_FILE)
                rel = f"{folder}/part-00000-{uuid.uuid4()}-c000.snappy.parquet"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                written.append(path)
                # No Arrow schema in the file: readers see the Delta types (strings, not dictionaries).
                # Dictionary encoding only where it pays (names): trying it on times and values
                # costs a hash of every value until the dictionary overflows, for nothing.
                pq.write_table(
                    chunk, path, compression="snappy", store_schema=False, use_dictionary=textual or False
                )
                actions.append(
                    AddAction(
                        rel,
                        os.path.getsize(path),
                        dict(zip(partition_by, values, strict=True)),
                        int(time.time() * 1000),
                        True,
                        _stats(chunk),
                    )
                )
        dt.create_write_transaction(
            actions,
            "append",
            dt.schema(),
            partition_by=list(partition_by),
            commit_properties=commit_properties,
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
