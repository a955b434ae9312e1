"""SQLAlchemy 2 models: the registry, card issuer data, and the evidence the host writes.

No clear key, PIN or PAN is stored: terminal keys are blobs wrapped under the LMK by the
HSM; cards are found by an HMAC of the PAN and keep their PIN sealed (see
``cardsecrets``). Journal, transaction and event rows carry no foreign key to the
registry on purpose: evidence about unknown or since-changed terminals must be kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

# 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps them naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), bytes: LargeBinary()}

    def __repr__(self) -> str:
        """Class and primary key only: rows may hold sealed or wrapped secrets."""
        keys = ", ".join(
            f"{column.key}={getattr(self, column.key, None)!r}"
            for column in self.__table__.primary_key.columns  # type: ignore[attr-defined]
        )
        return f"{type(self).__name__}({keys})"


class Merchant(Base):
    __tablename__ = "merchants"

    mid: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    mcc: Mapped[str | None] = mapped_column(String(4))
    """Merchant category code (ISO 18245), e.g. 5411; policies map it to allowed kinds."""


class Device(Base):
    __tablename__ = "devices"

    serial: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    """Asset status: active, lost, retired (a terminal on a lost/retired device is refused)."""


class Terminal(Base):
    __tablename__ = "terminals"

    tid: Mapped[str] = mapped_column(String(8), primary_key=True)
    mid: Mapped[str] = mapped_column(ForeignKey("merchants.mid"), index=True)
    serial: Mapped[str] = mapped_column(ForeignKey("devices.serial"), index=True)
    model: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(200))
    batch_no: Mapped[int] = mapped_column(Integer, default=1)
    last_signin_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    allowed_types: Mapped[str | None] = mapped_column(String(64))
    """Comma list of transaction kinds the terminal may send (sale,void,...); NULL = all."""
    app_version: Mapped[str | None] = mapped_column(String(32))
    """Payment app version the terminal last reported (sign-in 62 AV, status upload, heartbeat)."""
    params_version: Mapped[int | None] = mapped_column(Integer)
    """Version of the TMS parameters the terminal last downloaded completely (0800/361)."""


class TerminalKey(Base):
    """One key issued to a terminal, wrapped under the LMK. Older keys of the same kind
    stay as history with ``active`` false."""

    __tablename__ = "terminal_keys"
    __table_args__ = (Index(None, "tid", "kind", "active"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[str] = mapped_column(ForeignKey("terminals.tid"))
    kind: Mapped[str] = mapped_column(String(4))  # TK, TMK, PIK, MAK, TDK
    blob: Mapped[bytes]
    kcv: Mapped[bytes] = mapped_column(LargeBinary(16))
    alg: Mapped[str] = mapped_column(String(8))  # Algorithm member name: TDES, SM4
    length: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    balance: Mapped[int] = mapped_column(BigInteger)  # cents (fen)
    currency: Mapped[str] = mapped_column(String(3), default="156")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Card(Base):
    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pan_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pan_masked: Mapped[str] = mapped_column(String(19))
    pin_sealed: Mapped[bytes]
    expiry: Mapped[str | None] = mapped_column(String(4))  # YYMM
    status: Mapped[str] = mapped_column(String(16), default="active")
    single_limit: Mapped[int | None] = mapped_column(BigInteger)
    daily_limit: Mapped[int | None] = mapped_column(BigInteger)
    pin_tries: Mapped[int] = mapped_column(Integer, default=0)  # consecutive wrong PINs
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeclineRule(Base):
    """A test rule: when a request matches, the issuer answers ``respond_code`` and/or
    waits ``delay_ms``. Empty match columns match anything."""

    __tablename__ = "decline_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[str | None] = mapped_column(String(8), index=True)
    amount_eq: Mapped[int | None] = mapped_column(BigInteger)
    amount_pattern: Mapped[str | None] = mapped_column(String(32))  # glob on the cents
    pan_hash: Mapped[str | None] = mapped_column(String(64))
    respond_code: Mapped[str | None] = mapped_column(String(2))
    delay_ms: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JournalEntry(Base):
    """One ISO 8583 message in or out, with the pipeline's step verdicts; masked."""

    __tablename__ = "journal"
    __table_args__ = (Index(None, "tid", "at"), Index(None, "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    tid: Mapped[str | None] = mapped_column(String(8))
    mid: Mapped[str | None] = mapped_column(String(15))
    direction: Mapped[str] = mapped_column(String(3))  # "in" / "out"
    route: Mapped[str | None] = mapped_column(String(32))
    mti: Mapped[str | None] = mapped_column(String(4))
    stan: Mapped[str | None] = mapped_column(String(6))
    rc: Mapped[str | None] = mapped_column(String(2))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    fields: Mapped[dict[str, Any]]
    raw_hex: Mapped[str | None] = mapped_column(Text)
    peer: Mapped[str | None] = mapped_column(String(64))


class Txn(Base):
    __tablename__ = "txns"
    __table_args__ = (
        UniqueConstraint("tid", "batch_no", "stan", "kind"),
        Index(None, "tid", "batch_no"),
        Index(None, "card_id", "at"),
        Index(None, "rrn"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[str] = mapped_column(String(8))
    mid: Mapped[str] = mapped_column(String(15))
    batch_no: Mapped[int] = mapped_column(Integer)
    stan: Mapped[str] = mapped_column(String(6))
    rrn: Mapped[str | None] = mapped_column(String(12))
    auth_code: Mapped[str | None] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(8))  # sale, void, refund, balance
    amount: Mapped[int] = mapped_column(BigInteger)
    pan_masked: Mapped[str | None] = mapped_column(String(19))
    pan_hash: Mapped[str | None] = mapped_column(String(64))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    status: Mapped[str] = mapped_column(String(10))  # approved voided reversed refunded declined
    rc: Mapped[str | None] = mapped_column(String(2))
    orig_txn_id: Mapped[int | None] = mapped_column(ForeignKey("txns.id"))
    at: Mapped[datetime]


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("tid", "batch_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[str] = mapped_column(String(8))
    batch_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8), default="open")  # open, settled
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]
    debit_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    debit_count: Mapped[int] = mapped_column(Integer, default=0)
    credit_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_count: Mapped[int] = mapped_column(Integer, default=0)
    flag: Mapped[str | None] = mapped_column(String(1))  # 1 balanced, 2 unbalanced, 3 error


class Reversal(Base):
    __tablename__ = "reversals"
    __table_args__ = (Index(None, "tid", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[str] = mapped_column(String(8))
    batch_no: Mapped[int] = mapped_column(Integer)
    stan: Mapped[str] = mapped_column(String(6))
    orig_txn_id: Mapped[int | None] = mapped_column(ForeignKey("txns.id"))
    reason: Mapped[str | None] = mapped_column(String(2))  # field 39 of the 0400
    amount: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime]


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index(None, "tid", "at"), Index(None, "kind", "at"), Index(None, "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))  # host, terminal, tms, doctor, sim
    kind: Mapped[str] = mapped_column(String(48))
    tid: Mapped[str | None] = mapped_column(String(8))
    code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]

# Registry lifecycle (revision 0002) and TMS (0003) tables live in their own modules.
from posdoctor.store import models_registry  # noqa: E402,F401

# TMS tables live in their own module, on the same Base.
from posdoctor.store import models_tms  # noqa: E402,F401
