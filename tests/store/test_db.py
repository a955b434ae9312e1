"""Engines, SQLite connection settings, and Alembic migrations against the models."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.script import ScriptDirectory
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from posdoctor.store import Store, db
from posdoctor.store.db import (
    BUSY_TIMEOUT_MS, alembic_config, downgrade, make_engine, normalise_url, upgrade,
)
from posdoctor.store.errors import ConfigError
from posdoctor.store.models import Base, Merchant

EXPECTED_TABLES = {
    "accounts", "batches", "cards", "decline_rules", "devices", "events", "journal",
    "merchants", "reversals", "terminal_keys", "terminals", "txns",
}


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:////tmp/a.db", "sqlite"),
    ],
)
def test_postgres_urls_get_psycopg3(url: str, driver: str) -> None:
    assert normalise_url(url).drivername == driver


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="only sqlite and postgresql"):
        make_engine("oracle://u@h/db")


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    assert (tmp_path / "sub" / "x.db").exists()
    engine.dispose()


def test_sqlite_in_memory_works(lmk: bytes) -> None:
    store = Store(make_engine("sqlite://"), lmk)
    store.create_schema()
    store.add_merchant("898100000000001", "内存")
    assert store.get_merchant("898100000000001").name == "内存"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_write_sessions_take_the_lock_up_front(store: Store, db_url: str) -> None:
    path = db_url.removeprefix("sqlite:///")
    with store._write() as session:
        session.execute(select(Merchant)).all()  # only a read so far
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        assert other.execute("SELECT count(*) FROM merchants").fetchone() == (0,)  # WAL reader
        other.close()


def test_concurrent_writers_wait_for_each_other(store: Store) -> None:
    errors: list[BaseException] = []

    def add(first: int) -> None:
        try:
            for n in range(first, first + 10):
                store.add_merchant(f"{n:015d}", f"m{n}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(k * 100,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list_merchants()) == 30


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_writer_is_not_starved_by_back_to_back_transactions(
        store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread commits back to back, holding each transaction a while (the host's group
    commit under load); SQLite's busy handler alone would keep missing the short gaps and
    give up. The other thread's write gets the next turn instead."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 300)
    store.engine.dispose()  # new connections take the short timeout
    stop, turns = threading.Event(), [0]

    def hog() -> None:
        while not stop.is_set():
            with store._write() as session:
                session.execute(text("UPDATE merchants SET name = name"))
                time.sleep(0.03)
            turns[0] += 1

    thread = threading.Thread(target=hog)
    thread.start()
    try:
        while turns[0] < 3:
            time.sleep(0.005)
        store.add_merchant("898100000000001", "排队")
        assert turns[0] < 20  # it got in within a few of the hog's turns, not after it stopped
    finally:
        stop.set()
        thread.join()
    assert store.get_merchant("898100000000001").name == "排队"


def test_alembic_upgrade_matches_the_models(store: Store) -> None:
    """The hand-written migration creates exactly what the models describe."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        tables = set(inspect(conn).get_table_names())
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        assert EXPECTED_TABLES <= tables
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head


def test_upgrade_twice_is_a_no_op_and_downgrade_empties(store: Store) -> None:
    store.add_merchant("898100000000001", "x")
    upgrade(store.engine)
    assert store.get_merchant("898100000000001").name == "x"
    downgrade(store.engine)
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    upgrade(store.engine)
    assert set(inspect(store.engine).get_table_names()) >= EXPECTED_TABLES


def test_detecting_a_drift_works(db_url: str) -> None:
    """Guard for the test above: a missing index is reported by the comparison."""
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_journal_tid_at"))
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d[0] for d in diffs] == ["add_index"]
    assert diffs[0][1].name == "ix_journal_tid_at"
    engine.dispose()
