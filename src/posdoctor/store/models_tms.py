"""TMS tables (issue 3): device credentials, telemetry, firmware packages, campaigns.

Same ``Base`` as ``models``; ``models`` imports this module at its end so that
``Base.metadata`` always holds every table. Like the evidence tables, these carry no
foreign key to the registry: a credential or a report about a since-removed terminal
is still evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from posdoctor.store.models import Base, BigId, utcnow


class DeviceCredential(Base):
    """A TMS API bearer credential: only its SHA-256 is kept. One active per terminal."""

    __tablename__ = "device_credentials"
    __table_args__ = (Index(None, "tid", "active"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tid: Mapped[str] = mapped_column(String(8))
    serial: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Telemetry(Base):
    """The latest heartbeat of each terminal (the full history is in ``events``)."""

    __tablename__ = "telemetry"

    tid: Mapped[str] = mapped_column(String(8), primary_key=True)
    at: Mapped[datetime]  # the terminal's clock
    received_at: Mapped[datetime]  # the TMS clock
    code: Mapped[str] = mapped_column(String(16))  # ok / degraded
    app_version: Mapped[str | None] = mapped_column(String(32))
    firmware_version: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]


class FirmwarePackage(Base):
    """A signed package file under ``$POSDOCTOR_HOME/packages/``."""

    __tablename__ = "firmware_packages"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    models: Mapped[list[str]] = mapped_column(JSON)
    from_versions: Mapped[list[str]] = mapped_column(JSON)  # empty: any version
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # hex Ed25519 over the file
    settle_first: Mapped[bool] = mapped_column(Boolean, default=False)
    resets: Mapped[list[str]] = mapped_column(JSON)
    manifest: Mapped[dict[str, Any]]
    filename: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    """An upgrade campaign; counters are kept on the row (updated with each report)."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(ForeignKey("firmware_packages.version"))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    state_reason: Mapped[str | None] = mapped_column(String(200))
    selection: Mapped[dict[str, Any]]  # models, mids, tids, from_versions
    canary_pct: Mapped[float] = mapped_column(Float, default=10.0)
    threshold: Mapped[float] = mapped_column(Float, default=0.2)
    min_sample: Mapped[int] = mapped_column(Integer, default=5)
    window_start: Mapped[str] = mapped_column(String(5), default="00:00")
    window_end: Mapped[str] = mapped_column(String(5), default="23:59")
    stagger_minutes: Mapped[int] = mapped_column(Integer, default=0)
    wave: Mapped[int] = mapped_column(Integer, default=0)  # 0 before start, 1 canary, 2 rest
    wave_size: Mapped[int] = mapped_column(Integer, default=0)
    wave_done: Mapped[int] = mapped_column(Integer, default=0)
    wave_failed: Mapped[int] = mapped_column(Integer, default=0)
    halt_base_done: Mapped[int] = mapped_column(Integer, default=0)
    halt_base_failed: Mapped[int] = mapped_column(Integer, default=0)
    wave_opened_at: Mapped[datetime | None]
    targeted: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    rolled_back: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CampaignTarget(Base):
    """One terminal in one campaign."""

    __tablename__ = "campaign_targets"
    __table_args__ = (
        Index(None, "campaign_id", "tid", unique=True),
        Index(None, "tid", "campaign_id"),
        Index(None, "campaign_id", "wave", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    tid: Mapped[str] = mapped_column(String(8))
    wave: Mapped[int] = mapped_column(Integer)
    stagger: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1 of the stagger period
    state: Mapped[str] = mapped_column(String(16), default="pending")
    from_version: Mapped[str | None] = mapped_column(String(32))
    last_step: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None]
