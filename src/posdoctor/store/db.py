"""Engines and schema upgrades for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Its driver's own
transaction handling is switched off so that SQLAlchemy's transactions (and
savepoints) are real: reading sessions begin ``DEFERRED``; sessions that write ask for
``BEGIN IMMEDIATE`` with the execution option :data:`WRITE_OPTION`, so concurrent
writers wait for each other (up to the busy timeout) instead of failing half way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url

from posdoctor.store.config import check_database_url, load_lmk, load_settings

if TYPE_CHECKING:
    from posdoctor.store.repo import Store

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 10_000
WRITE_OPTION = "posdoctor_write"
_MIGRATION_LOCK_ID = 0x706F7364  # "posd": PostgreSQL advisory lock for upgrades


def normalise_url(url: str | URL) -> URL:
    """Parse ``url``; PostgreSQL URLs without a driver get psycopg 3."""
    parsed = make_url(check_database_url(str(url)) if isinstance(url, str) else url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def json_text(value: Any) -> str:
    """JSON columns' serializer: orjson (the host's commit process writes two journal rows
    per message; the standard library's encoder took a fifth of that process's time)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str | URL, **engine_args: Any) -> Engine:
    """An engine for ``url`` with posdoctor's connection settings applied."""
    parsed = normalise_url(url)
    engine_args.setdefault("json_serializer", json_text)
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed, **engine_args)
    engine_args.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **engine_args)


def _make_sqlite_engine(url: URL, **engine_args: Any) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine_args.setdefault("connect_args", {}).setdefault("check_same_thread", False)
    engine = create_engine(url, **engine_args)

    @event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_conn.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction.

    Concurrent callers are serialised (SQLite write lock, PostgreSQL advisory lock), so
    a host and a CLI starting together on an empty database do not collide.
    """
    _run_alembic(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (``"base"``: drop every table)."""
    _run_alembic(engine, command.downgrade, revision)


def _run_alembic(engine: Engine, action: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config()
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = conn
            action(config, revision)


def open_store(
    url: str | None = None, home: str | Path | None = None, *, migrate: bool = True
) -> Store:
    """The usual way in: settings (``--db``/env/TOML), LMK from home, schema at head."""
    from posdoctor.store.repo import Store

    settings = load_settings(home=home)
    database_url = settings.database_url(url)
    lmk = load_lmk(settings.ensure_home())
    engine = make_engine(database_url)
    if migrate:
        upgrade(engine)
    return Store(engine, lmk)
