"""The dataset store: a directory of append-only Delta Lake tables, queried through DuckDB."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from jangin.core._errors import DatasetError, SchemaError
from jangin.core._partitioned import FAST_APPEND_ROWS, write_partitioned
from jangin.core._validate import Rows, conform
from jangin.core.schema import SCHEMA_VERSION, TABLES, get_table

if TYPE_CHECKING:
    import duckdb
    from deltalake import DeltaTable

__all__ = ["Dataset", "Snapshot"]

log = logging.getLogger(__name__)

MARKER = "jangin.json"
TABLES_DIR = "tables"
MEDIA_DIR = "media"
MODELS_DIR = "models"

#: Views added to every DuckDB connection on top of the raw tables: the current state of the
#: append-only tables (latest session row, labels not superseded or retracted).
CURRENT_VIEWS = {
    "current_sessions": """
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY session_id ORDER BY updated_at DESC) AS rn
            FROM sessions) WHERE rn = 1""",
    "current_labels": """
        SELECT * FROM labels l
        WHERE NOT coalesce(l.deleted, false)
          AND l.label_id NOT IN (SELECT supersedes FROM labels WHERE supersedes IS NOT NULL)""",
    # The recipe of each session, one row per parameter; value_num is the value as a number, if it is one.
    "session_parameters": """
        SELECT session_id, e.key AS name, e.value AS value, TRY_CAST(e.value AS DOUBLE) AS value_num
        FROM (SELECT session_id, unnest(map_entries(parameters)) AS e
              FROM current_sessions WHERE parameters IS NOT NULL)""",
    "current_processes": """
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY name ORDER BY version DESC) AS rn
            FROM processes) WHERE rn = 1""",
}


@dataclass(frozen=True)
class Snapshot(Mapping[str, int]):
    """A consistent view of a dataset: the version of every table. The unit of lineage.

    Behaves as a read-only mapping ``table -> version``.
    """

    versions: tuple[tuple[str, int], ...]

    def __getitem__(self, key: str) -> int:
        for name, version in self.versions:
            if name == key:
                return version
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.versions)

    def __len__(self) -> int:
        return len(self.versions)

    def to_dict(self) -> dict[str, int]:
        """Return the snapshot as a plain dict (for manifests and JSON)."""
        return dict(self.versions)

    @classmethod
    def from_dict(cls, versions: Mapping[str, int]) -> Snapshot:
        """Build a snapshot from ``{table: version}``."""
        return cls(tuple(sorted((str(k), int(v)) for k, v in versions.items())))


class Dataset:
    """A Jangin dataset: one Delta Lake table per entry of :data:`jangin.core.schema.TABLES`.

    Use :meth:`create` or :meth:`open`; do not call the constructor directly. Writes are atomic per
    call: rows are validated first, then committed as one Delta transaction, so a rejected or failed
    write leaves the table as it was.

    Example:
        >>> ds = Dataset.create(tmp_path / "ds")            # doctest: +SKIP
        >>> ds.append("events", [{...}])                    # doctest: +SKIP
        >>> ds.query("SELECT count(*) AS n FROM events")    # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locks = {name: threading.Lock() for name in TABLES}
        self._current: set[str] = set()  # tables known to have the current schema

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | Path, *, exist_ok: bool = False) -> Dataset:
        """Create a dataset directory with every table, empty.

        Args:
            root: Directory to create (parents too).
            exist_ok: Open an existing dataset instead of failing.

        Raises:
            DatasetError: ``root`` exists and is a dataset (unless ``exist_ok``), or is a non-empty
                directory that is not a dataset.
        """
        from deltalake import DeltaTable

        root = Path(root).expanduser().resolve()
        if (root / MARKER).exists():
            if exist_ok:
                return cls.open(root)
            raise DatasetError(
                f"{root} is already a Jangin dataset", hint="open it, or pick another directory"
            )
        if root.exists() and any(root.iterdir()):
            raise DatasetError(
                f"{root} is not empty and is not a Jangin dataset", hint="pick an empty directory"
            )
        for sub in (TABLES_DIR, MEDIA_DIR, MODELS_DIR):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for spec in TABLES.values():
            DeltaTable.create(
                str(root / TABLES_DIR / spec.name),
                spec.schema,
                partition_by=list(spec.partition_by) or None,
                name=spec.name,
                description=spec.doc,
            )
        # The marker is written last: a directory without it is an unfinished create, not a dataset.
        (root / MARKER).write_text(
            json.dumps({"format": "jangin-dataset", "schema_version": SCHEMA_VERSION}, indent=2) + "\n"
        )
        log.info("created dataset %s", root)
        return cls(root)

    @classmethod
    def open(cls, root: str | Path) -> Dataset:
        """Open an existing dataset.

        Raises:
            DatasetError: ``root`` is missing, is not a dataset, or has a newer schema version.
        """
        root = Path(root).expanduser().resolve()
        marker = root / MARKER
        if not marker.is_file():
            raise DatasetError(
                f"{root} is not a Jangin dataset (no {MARKER})", hint=f"create one with `jangin init {root}`"
            )
        try:
            meta = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{marker} is unreadable: {exc}") from exc
        version = int(meta.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise DatasetError(
                f"{root} has schema version {version}; this Jangin reads up to {SCHEMA_VERSION}",
                hint="upgrade jangin (pip install -U jangin) to open it",
            )
        if version < SCHEMA_VERSION:
            log.info(
                "dataset %s has schema version %d (current %d): it reads as is; new columns are added on "
                "the first write to each table, or all at once with `jangin migrate`",
                root,
                version,
                SCHEMA_VERSION,
            )
        return cls(root)

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the dataset's marker file."""
        try:
            return int(json.loads((self.root / MARKER).read_text()).get("schema_version", 0))
        except (OSError, json.JSONDecodeError, ValueError):
            return 0

    def migrate(self) -> dict[str, list[str]]:
        """Bring every table to the current schema (additive: new tables, new nullable columns) and
        record :data:`SCHEMA_VERSION` in the marker. Idempotent; existing rows are untouched.

        Returns:
            What was added: ``{table: [column, …]}`` (``["(table)"]`` for a new table).

        Raises:
            DatasetError: A table cannot be upgraded (nothing of that table was changed).
        """
        added: dict[str, list[str]] = {}
        for name in TABLES:
            with self._locks[name]:
                cols = self._upgrade(name)
            if cols:
                added[name] = cols
        marker = self.root / MARKER
        meta = json.loads(marker.read_text())
        if int(meta.get("schema_version", 0)) < SCHEMA_VERSION:
            meta["schema_version"] = SCHEMA_VERSION
            tmp = marker.with_name(f".{MARKER}.tmp")
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
            tmp.replace(marker)
        return added

    def _upgrade(self, name: str) -> list[str]:
        """Create table ``name`` if missing, add the columns it lacks; the columns added."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        spec = get_table(name)
        path = self.table_path(name)
        if not (path / "_delta_log").is_dir():
            DeltaTable.create(
                str(path),
                spec.schema,
                partition_by=list(spec.partition_by) or None,
                name=spec.name,
                description=spec.doc,
            )
            return ["(table)"]
        dt = self._table(name)
        have = set(dt.schema().to_arrow().names)
        missing = [f for f in spec.schema if f.name not in have]
        if not missing:
            return []
        from deltalake.schema import Field as DeltaField

        try:
            dt.alter.add_columns([DeltaField.from_arrow(f.with_nullable(True)) for f in missing])
        except (DeltaError, OSError, pa.ArrowException) as exc:
            raise DatasetError(f"cannot add columns {[f.name for f in missing]} to {name}: {exc}") from exc
        log.info("table %s: added column(s) %s", name, ", ".join(f.name for f in missing))
        return [f.name for f in missing]

    @classmethod
    def open_or_create(cls, root: str | Path) -> Dataset:
        """Open ``root`` if it is a dataset, else create it."""
        return cls.create(root, exist_ok=True)

    # -- paths ---------------------------------------------------------------------------------------

    @property
    def media_dir(self) -> Path:
        """Directory of stored videos and images (paths in tables are relative to :attr:`root`)."""
        return self.root / MEDIA_DIR

    @property
    def models_dir(self) -> Path:
        """Default model registry of this dataset."""
        return self.root / MODELS_DIR

    def table_path(self, table: str) -> Path:
        """Directory of the Delta table ``table``."""
        return self.root / TABLES_DIR / get_table(table).name

    # -- writing ------------------------------------------------------------------------------------

    def append(
        self,
        table: str,
        rows: Rows,
        *,
        source: str | None = None,
        txn: tuple[str, int] | None = None,
    ) -> int:
        """Validate ``rows`` and append them to ``table`` in one atomic commit.

        Args:
            table: Table name.
            rows: An Arrow table/batch, a list of row dicts or a dict of columns.
            source: Where the rows came from, for error messages.
            txn: ``(app_id, sequence)`` for idempotent writes: the append is skipped when this
                app id has already committed ``sequence`` or a later one. The pair is recorded in
                the same Delta commit as the rows (Delta's application transactions), so a retried
                request after a crash never duplicates rows.

        Returns:
            The table's version after the write (unchanged if nothing was written).

        Raises:
            SchemaError: The rows do not match the schema; nothing was written.
            DatasetError: The write itself failed; nothing was committed.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake
        from deltalake.exceptions import DeltaError

        spec = get_table(table)
        data = conform(spec, rows, source=source)
        with self._locks[spec.name]:
            if spec.name not in self._current:
                self._upgrade(spec.name)  # a table of an older schema gets its new columns first
                self._current.add(spec.name)
            dt = self._table(spec.name)
            if txn is not None:
                app_id, seq = txn
                done = dt.transaction_version(app_id)
                if done is not None and done >= seq:
                    log.debug("skip %s append: %s already committed %s", spec.name, app_id, done)
                    return int(dt.version())
            if data.num_rows == 0 and txn is None:
                return int(dt.version())
            props = CommitProperties(
                app_transactions=[Transaction(app_id=txn[0], version=int(txn[1]))] if txn else None
            )
            try:
                # Column descriptions live in the table's schema from its creation; data is written
                # without them, so rewording a description never breaks appends to older tables.
                if spec.partition_by and data.num_rows >= FAST_APPEND_ROWS:
                    # Large sensor appends: Parquet by pyarrow + one commit (see _partitioned).
                    write_partitioned(dt, _without_docs(data), spec.partition_by, props)
                else:
                    write_deltalake(
                        dt,
                        _without_docs(_decode_columns(data, spec.partition_by)),
                        mode="append",
                        commit_properties=props,
                    )
            except (DeltaError, OSError, pa.ArrowException) as exc:
                raise DatasetError(f"writing {len(data)} rows to {spec.name} failed: {exc}") from exc
            dt.update_incremental()
            return int(dt.version())

    def committed(self, table: str, app_id: str) -> int | None:
        """The last sequence number committed to ``table`` by ``app_id`` (see :meth:`append`)."""
        v = self._table(table).transaction_version(app_id)
        return None if v is None else int(v)

    # -- reading ------------------------------------------------------------------------------------

    def version(self, table: str) -> int:
        """Current version of ``table`` (-1 for a table an older dataset does not have yet)."""
        if not self._exists(table):
            return -1
        return int(self._table(table).version())

    def snapshot(self) -> Snapshot:
        """The current version of every table."""
        return Snapshot.from_dict({name: self.version(name) for name in TABLES})

    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        snapshot: Mapping[str, int] | None = None,
        columns: list[str] | None = None,
        filters: Any = None,
    ) -> pa.Table:
        """Read ``table`` (at ``version``, or at its version in ``snapshot``) as an Arrow table.

        Args:
            table: Table name.
            version: Table version for time travel; default the latest.
            snapshot: A :class:`Snapshot` (or mapping) to take the version from.
            columns: Columns to read; default all.
            filters: pyarrow-style filters, e.g. ``[("session_id", "=", "s1")]``, pushed down to
                partitions and row groups.
        """
        spec = get_table(table)
        if snapshot is not None:
            version = snapshot.get(spec.name, -1)
        target = spec.schema if columns is None else pa.schema([spec.schema.field(c) for c in columns])
        if not self._exists(spec.name) or version == -1:
            return target.empty_table()
        dt = self._table(spec.name, version=version)
        have = set(dt.schema().to_arrow().names)
        absent = [f for f in target if f.name not in have]
        if (
            absent
            and filters is not None
            and any(_filter_column(f) in {a.name for a in absent} for f in filters)
        ):
            # A filter on a column the stored table does not have yet: every row has null there.
            return target.empty_table()
        out = dt.to_pyarrow_table(columns=[f.name for f in target if f.name in have], filters=filters)
        for f in absent:  # columns added by a later schema read as nulls
            out = out.append_column(f.name, pa.nulls(out.num_rows, f.type))
        return out.select(target.names).cast(target)

    def dataset(self, table: str, *, version: int | None = None) -> Any:
        """The table as a lazily scanned ``pyarrow.dataset.Dataset`` with the current schema (columns
        added by a later schema version read as nulls; a table not created yet is empty)."""
        spec = get_table(table)
        if not self._exists(spec.name) or version == -1:
            import pyarrow.dataset as pds

            return pds.dataset(spec.schema.empty_table())
        pds_ = self._table(spec.name, version=version).to_pyarrow_dataset()
        if pds_.schema.names != spec.schema.names:
            pds_ = pds_.replace_schema(spec.schema)
        return pds_

    def connect(self, snapshot: Mapping[str, int] | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with every table registered as a view (plus ``current_*`` views).

        Tables are scanned through Arrow datasets: no DuckDB extension is loaded or downloaded.

        Args:
            snapshot: Pin each table to its version in this snapshot; default the latest.
        """
        import duckdb

        con = duckdb.connect(
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        for name in TABLES:
            version = snapshot[name] if snapshot is not None and name in snapshot else None
            con.register(name, self.dataset(name, version=version))
        for name, sql in CURRENT_VIEWS.items():
            con.execute(f"CREATE VIEW {name} AS {sql}")
        return con

    def query(self, sql: str, *, snapshot: Mapping[str, int] | None = None) -> pa.Table:
        """Run one SQL statement over the dataset and return the result as an Arrow table.

        Raises:
            DatasetError: The SQL is invalid; the message is DuckDB's.
        """
        import duckdb

        con = self.connect(snapshot)
        try:
            return con.sql(sql).to_arrow_table() if _returns_rows(sql) else _empty(con.execute(sql))
        except duckdb.Error as exc:
            raise DatasetError(
                f"query failed: {exc}", hint="`jangin query 'DESCRIBE frames'` shows a table's columns"
            ) from exc
        finally:
            con.close()

    def counts(self) -> dict[str, int]:
        """Rows per table at the latest version."""
        return {name: int(self._table(name).count()) if self._exists(name) else 0 for name in TABLES}

    # -- internals ----------------------------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        return (self.table_path(name) / "_delta_log").is_dir()

    def _table(self, name: str, *, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        path = self.table_path(name)
        try:
            return DeltaTable(str(path), version=version)
        except TableNotFoundError as exc:
            raise DatasetError(
                f"table {name} is missing under {self.root}", hint="is this a Jangin dataset?"
            ) from exc
        except DeltaError as exc:
            if version is not None:
                raise SchemaError(f"table {name} has no version {version}: {exc}") from exc
            raise DatasetError(f"cannot open table {name}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r})"


def _plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(t):
        return pa.struct([pa.field(c.name, _plain_type(c.type), c.nullable) for c in t])
    if pa.types.is_list(t):
        v = t.value_field
        return pa.list_(pa.field(v.name, _plain_type(v.type), v.nullable))
    return t


def _decode_columns(data: pa.Table, names: Sequence[str]) -> pa.Table:
    """``data`` with the dictionary-encoded columns among ``names`` decoded to their value type
    (partition values must be plain for ``write_deltalake``)."""
    for name in names:
        i = data.schema.get_field_index(name)
        t = data.schema.field(i).type
        if pa.types.is_dictionary(t):
            data = data.set_column(
                i, data.schema.field(i).with_type(t.value_type), data.column(i).cast(t.value_type)
            )
    return data


def _without_docs(data: pa.Table) -> pa.Table:
    plain = pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in data.schema])
    return data.cast(plain)


def _filter_column(f: Any) -> str | None:
    return str(f[0]) if isinstance(f, tuple | list) and f else None


def _returns_rows(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in {
        "SELECT",
        "WITH",
        "FROM",
        "DESCRIBE",
        "SHOW",
        "SUMMARIZE",
        "PIVOT",
        "UNPIVOT",
        "VALUES",
        "EXPLAIN",
        "TABLE",
    }


def _empty(_: Any) -> pa.Table:
    return pa.table({})
