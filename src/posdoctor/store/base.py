"""Shared plumbing of the ``Store`` facade: sessions, card secrets, key conversion."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from posdoctor.store.cardsecrets import CardSecrets
from posdoctor.store.db import WRITE_OPTION
from posdoctor.store.errors import AlreadyExists, InvalidValue
from posdoctor.store.gate import gate_for
from posdoctor.store.models import Base, TerminalKey, utcnow
from posdoctor.store.records import KEY_KINDS, WrappedKeyLike


class StoreBase:
    """Owns the engine, two sessionmakers (read / write) and the LMK-derived secrets."""

    def __init__(self, engine: Engine, lmk: bytes) -> None:
        self.engine = engine
        self.secrets = CardSecrets(lmk)
        self._read_sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            engine, expire_on_commit=False, execution_options={WRITE_OPTION: True}
        )
        self._write_gate = write_gate(engine)

    def close(self) -> None:
        """Release the engine's pooled connections."""
        self.engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._read_sessions() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One transaction; committed on success, rolled back on any error. On a SQLite
        file the writers of this process take turns in arrival order (`store.gate`)."""
        with self._write_gate, self._write_sessions.begin() as session:
            yield session

    def create_schema(self) -> None:
        """Create missing tables straight from the models (tests, throw-away databases).
        Real databases use ``db.upgrade`` (Alembic) instead."""
        Base.metadata.create_all(self.engine)


def write_gate(engine: Engine) -> AbstractContextManager[object]:
    """The process's `WriteGate` of a SQLite file; nothing to queue on otherwise
    (PostgreSQL lets writers in together; an in-memory database has one connection)."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return nullcontext()
    return gate_for(os.path.realpath(database))


def insert_new(session: Session, row: Any, entity: str, key: str) -> None:
    """Add ``row`` and flush, turning a unique-key race into :class:`AlreadyExists`."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyExists(entity, key) from None


def key_rows(
    tid: str, keys: Mapping[str, WrappedKeyLike], at: datetime | None
) -> list[TerminalKey]:
    """``TerminalKey`` rows for a kind -> wrapped key mapping (validated kinds)."""
    when = at or utcnow()
    rows = []
    for kind, key in keys.items():
        if kind not in KEY_KINDS:
            raise InvalidValue(
                "kind",
                f"密钥类型 {kind} 无效(应为 {'/'.join(KEY_KINDS)})",
                f"key kind {kind} is invalid (expected {'/'.join(KEY_KINDS)})",
            )
        alg = key.alg
        rows.append(
            TerminalKey(
                tid=tid,
                kind=kind,
                blob=bytes(key.blob),
                kcv=bytes(key.kcv),
                alg=getattr(alg, "name", str(alg)),
                length=int(key.length),
                issued_at=when,
                active=True,
            )
        )
    return rows


def wrapped_key_from_row(row: TerminalKey) -> Any:
    """The HSM's ``WrappedKey`` for a stored row."""
    from posdoctor.crypto.ciphers import Algorithm
    from posdoctor.crypto.hsm import WrappedKey

    return WrappedKey(blob=row.blob, kcv=row.kcv, alg=Algorithm[row.alg], length=row.length)
