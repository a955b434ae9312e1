"""Many rows into one table in one driver call: the group commit's hot statements.

SQLAlchemy Core's executemany spends most of its time per row in generic machinery
(a parameter dict per row, processor lookups, type dispatch): measured at 60-70 µs a
journal row on SQLite against 14 µs for the same row through ``sqlite3`` directly.
`BulkStatement` keeps what SQLAlchemy gives (the dialect's compiled SQL and each
column type's own bind processor: UTC datetimes, JSON, booleans, binary) and drops the
rest: it compiles the statement once per dialect, converts each row's values with
the column processors (a datetime shared by many rows is converted once), and hands
the rows to the driver's ``executemany`` through ``Connection.exec_driver_sql``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.sql import ColumnElement

Processor = Callable[[Any], Any]
SQLITE_MAX_VARIABLES = 32766
"""Bound values one SQLite statement may hold (the default since SQLite 3.32)."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    order: tuple[int, ...] | None
    """Positional drivers: the row positions in the order the SQL binds them
    (None when that is the row order); named drivers get dicts instead."""
    converters: tuple[tuple[int, Processor, bool], ...]
    """(position, processor, memoise) for every column whose type converts values."""
    values_head: str | None = None
    values_row: str = ""
    """SQLite INSERTs: the statement up to VALUES and one row's placeholders, to send
    many rows in one multi-row INSERT (one step of the database, one GIL release)."""


class BulkStatement:
    """An INSERT (or a keyed UPDATE) run for many rows given as tuples in `names` order."""

    def __init__(self, build: Callable[[], Any], names: Sequence[str], types: Sequence[Any]) -> None:
        self._build = build
        self.names = tuple(names)
        """Bind names, in the order of the row tuples."""
        self._types = tuple(types)
        self._prepared: dict[int, _Prepared] = {}

    @classmethod
    def insert(cls, table: Table, columns: Sequence[str]) -> BulkStatement:
        """``INSERT INTO table (columns...)``; each row a tuple of those columns."""
        columns = tuple(columns)
        return cls(lambda: insert(table).values({name: bindparam(name) for name in columns}), columns,
                   [table.c[name].type for name in columns])

    @classmethod
    def update(cls, table: Table, set_columns: Sequence[str], where_column: str) -> BulkStatement:
        """``UPDATE table SET set_columns... WHERE where_column = ?``; each row a tuple of
        the new values followed by the key."""
        names = (*(f"{name}_new" for name in set_columns), f"{where_column}_key")
        types = [*(table.c[name].type for name in set_columns), table.c[where_column].type]

        def build() -> Any:
            values = {name: bindparam(f"{name}_new", type_=table.c[name].type) for name in set_columns}
            where: ColumnElement[bool] = table.c[where_column] == bindparam(names[-1], type_=types[-1])
            return update(table).where(where).values(values)

        return cls(build, names, types)

    def execute(self, conn: Connection, rows: Iterable[tuple[Any, ...]]) -> int:
        """Run the statement for every row (one executemany); returns the number of rows."""
        prepared = self._prepare(conn.dialect)
        rows = list(rows)
        width = len(self.names)
        for number, row in enumerate(rows):
            if len(row) != width:
                raise ValueError(f"row {number} has {len(row)} values, expected {width} ({', '.join(self.names)})")
        try:
            converted = _convert(rows, prepared.converters)
        except Exception as exc:  # as SQLAlchemy reports a value its type refuses
            raise StatementError(f"({type(exc).__name__}) {exc}", prepared.sql, None, exc) from exc
        if not converted:
            return 0
        params: list[Any]
        order = prepared.order
        if prepared.values_head is not None:
            self._insert_rows(conn, prepared, converted)
        elif not conn.dialect.positional:
            names = self.names
            params = [dict(zip(names, row, strict=True)) for row in converted]
        elif order is None:
            params = [tuple(row) for row in converted]
        else:
            params = [tuple([row[i] for i in order]) for row in converted]
        if prepared.values_head is None:
            conn.exec_driver_sql(prepared.sql, params)
        return len(converted)

    def _insert_rows(self, conn: Connection, prepared: _Prepared, rows: list[list[Any]]) -> None:
        """Multi-row INSERTs of at most `SQLITE_MAX_VARIABLES` bound values each."""
        per_statement = max(1, SQLITE_MAX_VARIABLES // len(self.names))
        order = prepared.order
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            sql = prepared.values_head + ", ".join([prepared.values_row] * len(chunk))
            if order is None:
                flat = tuple([value for row in chunk for value in row])
            else:
                flat = tuple([row[i] for row in chunk for i in order])
            conn.exec_driver_sql(sql, flat)

    def _prepare(self, dialect: Dialect) -> _Prepared:
        prepared = self._prepared.get(id(dialect))
        if prepared is None:
            prepared = self._prepared[id(dialect)] = self._compile(dialect)
        return prepared

    def _compile(self, dialect: Dialect) -> _Prepared:
        compiled = self._build().compile(dialect=dialect, for_executemany=True)
        order: tuple[int, ...] | None = None
        if compiled.positional:
            bound = tuple(compiled.positiontup or ())
            if sorted(bound) != sorted(self.names):
                raise ValueError(f"bulk statement binds {bound}, expected {self.names}")
            order = tuple(self.names.index(name) for name in bound)
            if order == tuple(range(len(self.names))):
                order = None
        converters = []
        for position, type_ in enumerate(self._types):
            processor = type_.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                converters.append((position, processor, _is_datetime(type_)))
        sql = str(compiled)
        head, _, row = sql.rpartition(" VALUES ")
        if dialect.name == "sqlite" and compiled.isinsert and head and row.startswith("(") and row.endswith(")"):
            return _Prepared(sql, order, tuple(converters), head + " VALUES ", row)
        return _Prepared(sql, order, tuple(converters))


def _is_datetime(type_: Any) -> bool:
    return getattr(type_, "python_type_hint", None) is datetime or "DateTime" in type(type_).__name__


def _convert(rows: list[tuple[Any, ...]], converters: tuple[tuple[int, Processor, bool], ...]) -> list[list[Any]]:
    out = [list(row) for row in rows]
    for position, processor, memoise in converters:
        if memoise:  # rows of one message share their time: format it once
            seen: dict[Any, Any] = {}
            for row in out:
                value = row[position]
                if value is None:
                    continue
                done = seen.get(value)
                if done is None:
                    done = seen[value] = processor(value)
                row[position] = done
        else:
            for row in out:
                value = row[position]
                if value is not None:
                    row[position] = processor(value)
    return out
