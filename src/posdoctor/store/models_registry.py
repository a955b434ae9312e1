"""Registry lifecycle tables (issue 3, revision 0002): status history, settlement accounts,
operators, parameters, policies, the host change feed and payouts.

Same ``Base`` as ``models``; ``models`` imports this module at its end so that
``Base.metadata`` always holds every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint  # noqa: F401
from sqlalchemy.orm import Mapped, mapped_column

from posdoctor.store.models import Base, BigId, utcnow


class StatusChange(Base):
    """One status change of a merchant, terminal, account, operator or device."""

    __tablename__ = "status_history"
    __table_args__ = (Index(None, "entity", "key", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    entity: Mapped[str] = mapped_column(String(16))  # merchant terminal account operator device
    key: Mapped[str] = mapped_column(String(32))  # MID, TID, serial, "TID/OPNO"
    old: Mapped[str | None] = mapped_column(String(16))
    new: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str | None] = mapped_column(String(64))


class SettlementAccount(Base):
    """Where a merchant's payouts go. Only the masked number and an HMAC are kept."""

    __tablename__ = "settlement_accounts"

    mid: Mapped[str] = mapped_column(ForeignKey("merchants.mid"), primary_key=True)
    number_masked: Mapped[str] = mapped_column(String(40))
    number_hash: Mapped[str] = mapped_column(String(64))
    bank: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="valid")  # valid, invalid
    status_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Operator(Base):
    """A cashier/supervisor of one terminal; the password is a salted scrypt hash."""

    __tablename__ = "operators"

    tid: Mapped[str] = mapped_column(ForeignKey("terminals.tid"), primary_key=True)
    opno: Mapped[str] = mapped_column(String(4), primary_key=True)
    pw_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, locked
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None]
    lock_source: Mapped[str | None] = mapped_column(String(16))  # tms, terminal
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ParamValue(Base):
    """A parameter of the template (owner ""), of a merchant (MID) or a terminal (TID).

    ``version`` is a global counter: the change that wrote the row. ``value`` NULL is a
    removed override (kept so that the version still moves)."""

    __tablename__ = "param_values"
    __table_args__ = (UniqueConstraint("scope", "owner", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))  # template, merchant, terminal
    owner: Mapped[str] = mapped_column(String(15))
    name: Mapped[str] = mapped_column(String(8))  # parameter tag (PARAM_TAGS)
    value: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(64))


class Policy(Base):
    """One named policy (min_app_version, allowed_apps, mcc.5411, ...) as JSON."""

    __tablename__ = "policies"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))


class HostChange(Base):
    """The change feed: every registry/policy/param change a running host must apply.

    Kinds: ``registry`` (reload tid / the terminals of mid / everything), ``policy``,
    ``params``, ``require_sign_in`` (tid), ``pending`` (tid, value = requirement digit)."""

    __tablename__ = "host_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    tid: Mapped[str | None] = mapped_column(String(8))
    mid: Mapped[str | None] = mapped_column(String(15))
    value: Mapped[str | None] = mapped_column(String(200))


class Payout(Base):
    """What one merchant is paid for one settlement day (T+1)."""

    __tablename__ = "payouts"
    __table_args__ = (Index(None, "mid", "settle_day"), Index(None, "status", "due_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    mid: Mapped[str] = mapped_column(String(15))
    settle_day: Mapped[str] = mapped_column(String(8))  # YYYYMMDD, China Standard Time
    due_at: Mapped[datetime]
    amount: Mapped[int] = mapped_column(BigInteger)  # cents: debit - credit
    batch_ids: Mapped[list[int]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12))  # scheduled, held, paid
    hold_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]


class PayoutBatch(Base):
    """A settled batch counted in a payout (each batch is paid out once)."""

    __tablename__ = "payout_batches"

    batch_id: Mapped[int] = mapped_column(BigId, ForeignKey("batches.id"), primary_key=True)
    payout_id: Mapped[int] = mapped_column(BigId, ForeignKey("payouts.id"), index=True)
