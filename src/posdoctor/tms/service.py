"""``TmsService``: what the terminal-facing TMS API does, callable without HTTP.

The FastAPI handlers (``posdoctor.web.tms_api``) and the emulator's ``LocalTmsClient``
call the same methods. Every method is **synchronous** and thread-safe (each opens its
own store transaction); HTTP handlers run them in the server's thread pool. ``tid`` is
the terminal the caller authenticated (``authenticate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from posdoctor.store import NotFound, Store
from posdoctor.store.models import utcnow
from posdoctor.store.models_tms import FirmwarePackage
from posdoctor.tms import campaign_reports, reports
from posdoctor.tms.credentials import CredentialError, authenticate
from posdoctor.tms.firmware import read_package_bytes

Clock = Callable[[], datetime]
POLICY_CACHE_SECONDS = 5.0


def tid_mismatch(tid: str, claimed: str) -> CredentialError:
    return CredentialError("tid_mismatch", f"报告中的终端号 {claimed} 与凭证所属终端 {tid} 不符",
                           f"terminal {claimed} in the report is not the credential's terminal {tid}", 403)


class TmsService:
    def __init__(self, store: Store, home: str | Path, clock: Clock = utcnow) -> None:
        self.store, self.home, self.clock = store, Path(home).expanduser(), clock
        self._policies: tuple[float, dict[str, Any]] = (0.0, {})
        self._packages: dict[str, FirmwarePackage] = {}

    # --- authentication ------------------------------------------------------------
    def authenticate(self, token: str, serial: str | None = None) -> str:
        """The terminal of a bearer credential; :class:`CredentialError` if refused."""
        return authenticate(self.store, token, serial)[0]

    # --- reports -------------------------------------------------------------------
    def _check_tid(self, tid: str, payload: dict[str, Any]) -> None:
        claimed = payload.get("tid") if isinstance(payload, dict) else None
        if claimed is not None and claimed != tid:
            raise tid_mismatch(tid, str(claimed))

    def heartbeat(self, tid: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Record a heartbeat; answer with server time, upgrade flag, params and policies."""
        self._check_tid(tid, payload)
        now = self.clock()
        beat = reports.parse_report("heartbeat", payload)
        reports.record_report(self.store, tid, "heartbeat", beat, now)
        policies = self._cached_policies()
        upgrade = campaign_reports.has_upgrade(self.store, tid, beat.app_version, beat.model)
        return {"server_time": now.isoformat(), "upgrade": upgrade,
                "params_version": self._params_version(tid),
                "min_app_version": policies.get("min_app_version"),
                "allowed_apps": policies.get("allowed_apps")}

    def status(self, tid: str, payload: dict[str, Any]) -> dict[str, int]:
        """Record a self-check result."""
        self._check_tid(tid, payload)
        return {"accepted": reports.record_report(self.store, tid, "self_check", payload, self.clock())}

    def logs(self, tid: str, payload: dict[str, Any]) -> dict[str, int]:
        """Record uploaded terminal events."""
        self._check_tid(tid, payload)
        return {"accepted": reports.record_report(self.store, tid, "logs", payload, self.clock())}

    def _cached_policies(self) -> dict[str, Any]:
        fetched, values = self._policies
        if time.monotonic() - fetched > POLICY_CACHE_SECONDS:
            reader = getattr(self.store, "policies", None)
            values = reader() if reader is not None else {}
            self._policies = (time.monotonic(), values)
        return values

    def _params_version(self, tid: str) -> int | None:
        reader = getattr(self.store, "effective_params", None)
        if reader is None:
            return None
        try:
            return int(reader(tid)[0])
        except NotFound:
            return None

    # --- upgrades ------------------------------------------------------------------
    def upgrade_check(self, tid: str, version: str | None = None,
                      model: str | None = None) -> dict[str, Any] | None:
        """The upgrade (or rollback) offer for ``tid``, or None (HTTP 204)."""
        return campaign_reports.upgrade_check(self.store, tid, version, model, self.clock())

    def upgrade_report(self, tid: str, payload: dict[str, Any]) -> dict[str, int]:
        """Record one step the terminal's upgrade agent took."""
        self._check_tid(tid, payload)
        count = campaign_reports.apply_upgrade_reports(self.store, [(tid, payload, self.clock())])
        return {"accepted": count}

    # --- batches (the simulator's LocalTmsClient: one transaction per call) -------------
    def upgrade_checks(self, checks: Sequence[tuple[str, str | None, str | None]]
                       ) -> list[dict[str, Any] | None]:
        """``upgrade_check`` for many ``(tid, version, model)``; answers in order."""
        return campaign_reports.upgrade_checks(self.store, checks, self.clock())

    def upgrade_reports(self, items: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, int]:
        """Many ``(tid, report)`` in one transaction (all validated first)."""
        now = self.clock()
        count = campaign_reports.apply_upgrade_reports(self.store, [(tid, body, now) for tid, body in items])
        return {"accepted": count}

    def reports(self, items: Sequence[tuple[str, str, dict[str, Any]]]) -> dict[str, int]:
        """Many ``(tid, kind, payload)`` terminal reports (``heartbeat``, ``self_check``,
        ``logs``) in one transaction."""
        now = self.clock()
        written = reports.record_reports(self.store, [reports.Report(tid, kind, payload, now)
                                                      for tid, kind, payload in items])
        return {"accepted": written}

    def package(self, version: str) -> FirmwarePackage:
        """The package row (cached: packages never change once added); NotFound."""
        package = self._packages.get(version)
        if package is None:
            package = self.store.get_package(version)
            self._packages[version] = package
        return package

    def read_package(self, version: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start``..``end`` (inclusive; None = to the end) of a package file."""
        return read_package_bytes(self.home, self.package(version), start, end)
