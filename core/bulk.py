"""Writing thousands of rows in one statement (one repayment to 10,000 lenders).

On PostgreSQL the rows travel as one JSON document that `json_to_recordset` turns back
into typed rows: one short statement, one parameter and one round trip however many
rows (json.dumps is C, where binding arrays or thousands of placeholders is Python; a
psycopg array per column measured no faster). A column with the same value in every row
(the debit account, the loan, the time of a repayment's 10,000 transfers) is sent once
as a plain parameter instead. Elsewhere (SQLite, in-process) a plain executemany is as
fast.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import FromClause, Table, bindparam, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def _table(clause: FromClause) -> Table:
    assert isinstance(clause, Table)
    return clause


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _recordset(session: Session, table: Table, columns: list[str]) -> str:
    """`json_to_recordset(:rows) AS v(col type, ...)` for these columns."""
    dialect = session.get_bind().dialect
    typed = ", ".join(f"{c} {table.c[c].type.compile(dialect=dialect)}" for c in columns)
    return f"json_to_recordset(CAST(:rows AS json)) AS v({typed})"


def _columns(table: Table, rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table's columns the rows name (every row names the same ones)."""
    named = rows[0].keys()
    return [c.name for c in table.columns if c.name in named]


def _constant(rows: Sequence[dict[str, Any]], column: str) -> bool:
    first = rows[0][column]
    return all(row[column] == first for row in rows)


def insert_rows(session: Session, clause: FromClause, rows: Sequence[dict[str, Any]], *,
                returning: str | None = None, same: dict[str, Any] | None = None,
                skip_existing: str | None = None) -> list[Any]:
    """Insert `rows` (every row names the same columns), each with the columns of `same`
    too; return the `returning` column of the new rows (in no promised order), or []
    without `returning`. With `skip_existing` (a column with a unique index), a row
    whose value is already in the table is skipped, in the same statement (no read
    first, and no race with a concurrent writer of the same value)."""
    table = _table(clause)
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        if same:
            rows = [{**same, **row} for row in rows]
        statement = (sqlite_insert(table).on_conflict_do_nothing(index_elements=[skip_existing])
                     if skip_existing else table.insert())
        if returning is None:
            session.execute(statement, list(rows))
            return []
        return list(session.scalars(statement.returning(table.c[returning]), list(rows)))
    columns = _columns(table, rows)
    fixed: dict[str, Any] = {}
    for column in table.columns:  # Python-side scalar defaults, as table.insert() applies
        default = column.default
        if (column.name not in columns and column.name not in (same or {})
                and default is not None and default.is_scalar):
            fixed[column.name] = _plain(default.arg)  # type: ignore[attr-defined]
    fixed.update({name: _plain(value) for name, value in (same or {}).items()})
    varying = []
    for name in columns:
        if _constant(rows, name):
            fixed[name] = _plain(rows[0][name])
        else:
            varying.append(name)
    dialect = session.get_bind().dialect
    params: dict[str, Any] = {f"c_{name}": value for name, value in fixed.items()}
    values = [f"CAST(:c_{name} AS {table.c[name].type.compile(dialect=dialect)})"
              for name in fixed]
    if varying:
        exact = len(varying) == len(rows[0])  # the rows are already what to send
        params["rows"] = json.dumps(
            rows if exact else [{name: row[name] for name in varying} for row in rows],
            default=_json)
        source = f"FROM {_recordset(session, table, varying)}"
    else:
        source = f"FROM generate_series(1, {len(rows)})"
    sql = (f"INSERT INTO {table.name} ({', '.join([*fixed, *varying])}) "
           f"SELECT {', '.join([*values, *(f'v.{name}' for name in varying)])} {source}")
    if skip_existing:
        sql += f" ON CONFLICT ({table.c[skip_existing].name}) DO NOTHING"
    if returning is not None:
        sql += f" RETURNING {returning}"
    result = session.execute(text(sql), params)
    return list(result.scalars()) if returning is not None else []


def add_to_rows(session: Session, clause: FromClause, key: str,
                rows: Sequence[dict[str, Any]]) -> int:
    """For each row, `column = column + value` for every other key of the row, on the
    table row whose `key` column equals the row's `key` value; return how many table
    rows changed (fewer than `rows` when a key matches nothing). A column that adds 0
    in every row is left out."""
    table = _table(clause)
    if not rows:
        return 0
    named = [c for c in _columns(table, rows) if c != key]
    columns = [c for c in named if any(row[c] for row in rows)] or named[:1]
    if session.get_bind().dialect.name != "postgresql":
        statement = (table.update().where(table.c[key] == bindparam(f"_{key}"))
                     .values({c: table.c[c] + bindparam(f"_{c}") for c in columns}))
        return rowcount(session.execute(
            statement, [{f"_{c}": row[c] for c in (key, *columns)} for row in rows]))
    sets = ", ".join(f"{c} = {table.name}.{c} + v.{c}" for c in columns)
    exact = len(columns) + 1 == len(rows[0])  # the rows are already what to send
    document = json.dumps(rows if exact else [{c: row[c] for c in (key, *columns)}
                                              for row in rows])
    return rowcount(session.execute(text(
        f"UPDATE {table.name} SET {sets} FROM {_recordset(session, table, [key, *columns])} "
        f"WHERE {table.name}.{key} = v.{key}"), {"rows": document}))


def set_rows(session: Session, clause: FromClause, key: str, rows: Sequence[dict[str, Any]], *,
             same: dict[str, Any] | None = None) -> int:
    """For each row, set every other column it names (and the columns of `same`) on the
    table row whose `key` column equals the row's `key` value, in one statement on
    PostgreSQL; return how many table rows changed."""
    table = _table(clause)
    if not rows:
        return 0
    named = [c for c in _columns(table, rows) if c != key]
    fixed = {name: _plain(value) for name, value in (same or {}).items()}
    if session.get_bind().dialect.name != "postgresql":
        statement = (table.update().where(table.c[key] == bindparam(f"_{key}"))
                     .values({**{c: bindparam(f"_{c}") for c in named}, **fixed}))
        return rowcount(session.execute(
            statement, [{f"_{c}": row[c] for c in (key, *named)} for row in rows]))
    dialect = session.get_bind().dialect
    sets = [f"{c} = v.{c}" for c in named]
    sets += [f"{c} = CAST(:c_{c} AS {table.c[c].type.compile(dialect=dialect)})" for c in fixed]
    exact = len(named) + 1 == len(rows[0])  # the rows are already what to send
    document = json.dumps(rows if exact else [{c: row[c] for c in (key, *named)} for row in rows],
                          default=_json)
    return rowcount(session.execute(text(
        f"UPDATE {table.name} SET {', '.join(sets)} "
        f"FROM {_recordset(session, table, [key, *named])} "
        f"WHERE {table.name}.{key} = v.{key}"),
        {"rows": document, **{f"c_{c}": value for c, value in fixed.items()}}))
