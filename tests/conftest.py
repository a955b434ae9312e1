"""Shared fixtures for the whole suite.

``home``
    A fresh ``POSDOCTOR_HOME`` (``tmp_path / "home"``, not yet created) set in the
    environment; ``POSDOCTOR_DB`` is removed so nothing leaks in from the shell.

``db_url``
    A database URL for an empty database, parametrised over two backends:

    - ``sqlite``: a file under ``tmp_path``.
    - ``postgresql``: marked ``postgres``. The server is taken from
      ``POSDOCTOR_TEST_PG`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
      the test is skipped if it does not answer within 2 s. Each test gets its own
      schema, selected through the URL (``?options=-csearch_path=<schema>``), so any
      engine made from the URL (``make_engine``/``open_store``) is isolated; the schema
      is dropped afterwards. Run only SQLite with ``-m "not postgres"``.

``store``
    ``open_store(db_url, home=home)``: a ``Store`` on that database with the schema
    migrated to head by Alembic and the LMK from ``home``. Closed after the test.

``lmk``
    The local master key bytes of ``home`` (created on first use), for tests that build
    their own ``SoftHSM``; it is the same key the ``store`` fixture uses.
"""

from __future__ import annotations

import os
import secrets
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from posdoctor.store import Store, load_lmk, open_store

DEFAULT_TEST_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "pdt_"
STALE_SCHEMA_SECONDS = 3600

_pg_state: dict[str, str | None] = {}


def _pg_conninfo(url: str) -> str:
    """libpq URI (no SQLAlchemy driver suffix) for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_unavailable_reason(url: str) -> str | None:
    """None if PostgreSQL answers within 2 s, else why not (checked once per session)."""
    if "reason" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect(_pg_conninfo(url), connect_timeout=2, autocommit=True) as conn:
                _drop_stale_schemas(conn)
            _pg_state["reason"] = None
        except ImportError:
            _pg_state["reason"] = "psycopg is not installed"
        except Exception as exc:  # any connection failure means: skip the PG tests
            shown = make_url(url).render_as_string(hide_password=True)
            _pg_state["reason"] = (
                f"PostgreSQL at {shown} is not reachable (2 s timeout; set POSDOCTOR_TEST_PG "
                f"to another server): {type(exc).__name__}: {exc}"
            )
    return _pg_state["reason"]


def _drop_stale_schemas(conn: object) -> None:
    """Remove schemas left by interrupted runs (named pdt_<epoch>_<random>)."""
    cutoff = int(time.time()) - STALE_SCHEMA_SECONDS
    rows = conn.execute(  # type: ignore[attr-defined]
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (SCHEMA_PREFIX + "%",)
    ).fetchall()
    for (name,) in rows:
        parts = name.split("_")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < cutoff:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # type: ignore[attr-defined]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("POSDOCTOR_HOME", str(path))
    monkeypatch.delenv("POSDOCTOR_DB", raising=False)
    return path


@pytest.fixture
def lmk(home: Path) -> bytes:
    return load_lmk(home)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'posdoctor.db'}"
        return
    yield from _postgres_schema_url()


def _postgres_schema_url() -> Iterator[str]:
    base = os.environ.get("POSDOCTOR_TEST_PG", DEFAULT_TEST_PG)
    reason = _pg_unavailable_reason(base)
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(6)}"
    conninfo = _pg_conninfo(base)
    with psycopg.connect(conninfo, connect_timeout=2, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, connect_timeout=2, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '5s'")
            try:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            except psycopg.errors.LockNotAvailable:
                warnings.warn(
                    f"test schema {schema} is still locked (a connection left open in a "
                    "transaction?); it will be dropped by a later run",
                    stacklevel=1,
                )


@pytest.fixture
def store(db_url: str, home: Path) -> Iterator[Store]:
    opened = open_store(db_url, home=home)
    try:
        yield opened
    finally:
        opened.close()
