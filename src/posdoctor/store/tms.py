"""``TmsMixin``: the ``Store`` methods for device credentials, telemetry, packages and campaigns.

The TMS services (``posdoctor.tms``) hold the rules; this mixin holds the queries. Logic
that must read and write in one transaction (campaign progress) uses ``tms_write()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from posdoctor.store.base import StoreBase, insert_new
from posdoctor.store.errors import NotFound
from posdoctor.store.models import Terminal, utcnow
from posdoctor.store.models_tms import (
    Campaign,
    CampaignTarget,
    DeviceCredential,
    FirmwarePackage,
    Telemetry,
)


class TmsMixin(StoreBase):
    # --- sessions for the TMS services ---------------------------------------------
    @contextmanager
    def tms_write(self) -> Iterator[Session]:
        """One writing transaction (committed on success) for ``posdoctor.tms``."""
        with self._write() as session:
            yield session

    @contextmanager
    def tms_read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def tms_connection(self) -> Iterator[Connection]:
        """A plain reading connection (no ORM session) for hot lookups."""
        with self.engine.connect() as connection:
            yield connection

    # --- credentials ---------------------------------------------------------------
    def store_credential(self, tid: str, serial: str, token_hash: str,
                         now: datetime | None = None) -> None:
        """Keep a new credential hash for ``tid``; earlier ones of ``tid`` are revoked."""
        when = now or utcnow()
        with self._write() as session:
            _revoke(session, tid, when)
            row = DeviceCredential(tid=tid, serial=serial, token_hash=token_hash,
                                   active=True, issued_at=when)
            insert_new(session, row, "credential", tid)

    def revoke_credentials(self, tid: str, now: datetime | None = None) -> int:
        """Revoke every active credential of ``tid``; returns how many were active."""
        with self._write() as session:
            return _revoke(session, tid, now or utcnow())

    def find_credential(self, token_hash: str) -> tuple[DeviceCredential, str | None] | None:
        """The credential with this token hash and the serial its terminal is registered on
        now, None if the terminal is gone (one query: the TMS API checks both on every request)."""
        with self._read() as session:
            row = session.execute(
                select(DeviceCredential, Terminal.serial).outerjoin(Terminal, Terminal.tid == DeviceCredential.tid)
                .where(DeviceCredential.token_hash == token_hash)).first()
        return None if row is None else (row[0], row[1])

    def credentials(self, tid: str) -> list[DeviceCredential]:
        with self._read() as session:
            query = select(DeviceCredential).where(DeviceCredential.tid == tid)
            return list(session.scalars(query.order_by(DeviceCredential.id)))

    # --- telemetry -----------------------------------------------------------------
    def latest_heartbeats(self, tids: Sequence[str] | None = None) -> dict[str, Telemetry]:
        """The latest heartbeat per terminal (all terminals, or those in ``tids``)."""
        query = select(Telemetry)
        if tids is not None:
            query = query.where(Telemetry.tid.in_(list(tids)))
        with self._read() as session:
            return {row.tid: row for row in session.scalars(query)}

    def latest_heartbeat(self, tid: str) -> Telemetry | None:
        with self._read() as session:
            return session.get(Telemetry, tid)

    # --- packages ------------------------------------------------------------------
    def add_package(self, package: FirmwarePackage) -> FirmwarePackage:
        with self._write() as session:
            if session.get(FirmwarePackage, package.version) is not None:
                from posdoctor.store.errors import AlreadyExists

                raise AlreadyExists("package", package.version)
            insert_new(session, package, "package", package.version)
        return package

    def find_package(self, version: str) -> FirmwarePackage | None:
        with self._read() as session:
            return session.get(FirmwarePackage, version)

    def get_package(self, version: str) -> FirmwarePackage:
        package = self.find_package(version)
        if package is None:
            raise NotFound("package", version)
        return package

    def cached_package(self, version: str) -> FirmwarePackage:
        """``get_package`` remembered per store: a registered package never changes."""
        cache: dict[str, FirmwarePackage] = self.__dict__.setdefault("_package_cache", {})
        package = cache.get(version)
        if package is None:
            package = cache[version] = self.get_package(version)
        return package

    def list_packages(self) -> list[FirmwarePackage]:
        with self._read() as session:
            return list(session.scalars(select(FirmwarePackage).order_by(FirmwarePackage.created_at)))

    # --- campaigns -----------------------------------------------------------------
    def get_campaign(self, campaign_id: int) -> Campaign:
        with self._read() as session:
            campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("campaign", str(campaign_id))
        return campaign

    def list_campaigns(self) -> list[Campaign]:
        with self._read() as session:
            return list(session.scalars(select(Campaign).order_by(Campaign.id)))

    def campaign_targets(self, campaign_id: int, state: str | None = None) -> list[CampaignTarget]:
        query = select(CampaignTarget).where(CampaignTarget.campaign_id == campaign_id)
        if state is not None:
            query = query.where(CampaignTarget.state == state)
        with self._read() as session:
            return list(session.scalars(query.order_by(CampaignTarget.tid)))

    def campaign_target(self, campaign_id: int, tid: str) -> CampaignTarget | None:
        with self._read() as session:
            return session.scalar(select(CampaignTarget).where(
                CampaignTarget.campaign_id == campaign_id, CampaignTarget.tid == tid))


def _revoke(session: Session, tid: str, when: datetime) -> int:
    result = session.execute(
        update(DeviceCredential)
        .where(DeviceCredential.tid == tid, DeviceCredential.active)
        .values(active=False, revoked_at=when)
    )
    return int(result.rowcount or 0)
