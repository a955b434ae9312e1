"""`BulkStatement`: rows through the driver's executemany read back exactly as the ORM
would have written them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from posdoctor.store import Store
from posdoctor.store.bulk import BulkStatement
from posdoctor.store.models import Event, JournalEntry, Merchant

T0 = datetime(2024, 6, 1, 9, 0, 0, 123456, tzinfo=UTC)
CST = timezone(timedelta(hours=8))

JOURNAL = BulkStatement.insert(JournalEntry.__table__, ("steps", "at", "direction", "tid", "fields", "latency_ms"))
EVENTS = BulkStatement.insert(Event.__table__, ("source", "kind", "at", "tid", "code", "detail"))
RENAME = BulkStatement.update(Merchant.__table__, ("name", "status"), "mid")


def test_insert_converts_json_and_times_whatever_the_column_order(store: Store) -> None:
    rows = [
        ([{"step": "A", "verdict": "ok", "reason": "中文"}], T0, "in", "10000001", {"2": "6222****1234"}, None),
        ([], T0.astimezone(CST), "out", None, {}, 1.5),  # same instant, another zone
        ([], T0 + timedelta(seconds=1), "in", "10000002", {"39": "00"}, 0.25),
    ]
    with store.engine.begin() as conn:
        assert JOURNAL.execute(conn, rows) == 3
    with Session(store.engine) as session:
        got = session.scalars(select(JournalEntry).order_by(JournalEntry.id)).all()
    assert [(j.direction, j.tid, j.at, j.steps, j.fields, j.latency_ms) for j in got] == [
        ("in", "10000001", T0, [{"step": "A", "verdict": "ok", "reason": "中文"}], {"2": "6222****1234"}, None),
        ("out", None, T0, [], {}, 1.5),
        ("in", "10000002", T0 + timedelta(seconds=1), [], {"39": "00"}, 0.25),
    ]


def test_update_by_key(store: Store) -> None:
    store.add_merchant("898100000000001", "one")
    store.add_merchant("898100000000002", "two")
    with store.engine.begin() as conn:
        RENAME.execute(conn, [("uno", "frozen", "898100000000001"), ("dos", "active", "898100000000002")])
    with store.engine.connect() as conn:
        got = conn.execute(select(Merchant.mid, Merchant.name, Merchant.status).order_by(Merchant.mid)).all()
    assert [tuple(row) for row in got] == [("898100000000001", "uno", "frozen"), ("898100000000002", "dos", "active")]


def test_no_rows_is_no_statement(store: Store) -> None:
    with store.engine.begin() as conn:
        assert EVENTS.execute(conn, []) == 0


def test_a_value_its_type_refuses_is_a_statement_error_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.engine.begin() as conn:
        EVENTS.execute(conn, [("host", "ok", T0, None, None, {}), ("host", "bad", datetime(2024, 1, 1), None, None, {})])
    with store.engine.connect() as conn:
        assert conn.execute(select(Event)).all() == []


def test_rows_of_the_wrong_width_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="row 0 has 2 values, expected 6"), store.engine.begin() as conn:
        EVENTS.execute(conn, [("host", "short")])
