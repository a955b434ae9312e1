"""What the host knows of the TMS side of the registry, cached like the rest of it:
status reasons, merchant categories, allowed transaction types, app versions, device
asset statuses, policies and the versioned parameters.

Loaded with the registry, reloaded per terminal when it is invalidated, and per table
when the change feed says policies or parameters changed. Lookups are dict reads (the
host consults them on every message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from posdoctor.store.models_registry import ParamValue
from posdoctor.tms.policies import Policies


@dataclass(slots=True)
class TerminalProfile:
    mid: str
    serial: str
    reason: str | None = None
    allowed: frozenset[str] | None = None
    app_version: str | None = None
    downloaded: int = 0
    """Parameter version of the terminal's last complete download."""
    served: int | None = None
    """Parameter version sent in the download in progress (recorded at its end)."""


@dataclass(slots=True)
class MerchantProfile:
    reason: str | None = None
    mcc: str | None = None


@dataclass(slots=True)
class ParamLayers:
    """Parameter rows by scope: owner -> (newest version, tag -> value or None)."""

    template: tuple[int, dict[str, str | None]] = (0, {})
    merchants: dict[str, tuple[int, dict[str, str | None]]] = field(default_factory=dict)
    terminals: dict[str, tuple[int, dict[str, str | None]]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: list[ParamValue]) -> ParamLayers:
        layers: dict[tuple[str, str], tuple[int, dict[str, str | None]]] = {}
        for row in rows:
            version, values = layers.get((row.scope, row.owner), (0, {}))
            values[row.name] = row.value
            layers[(row.scope, row.owner)] = (max(version, row.version), values)
        by_scope: dict[str, dict[str, Any]] = {"merchant": {}, "terminal": {}}
        for (scope, owner), layer in layers.items():
            if scope in by_scope:
                by_scope[scope][owner] = layer
        return cls(layers.get(("template", ""), (0, {})), by_scope["merchant"], by_scope["terminal"])

    def version(self, tid: str, mid: str) -> int:
        return max(self.template[0], self.merchants.get(mid, (0, {}))[0], self.terminals.get(tid, (0, {}))[0])

    def values(self, tid: str, mid: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for _version, layer in (self.template, self.merchants.get(mid, (0, {})), self.terminals.get(tid, (0, {}))):
            merged.update((name, value) for name, value in layer.items() if value is not None)
        return merged


class ProfileSource(Protocol):
    def registry_profile_rows(self, tid: str | None = None) -> dict[str, Any]: ...

    def policies(self) -> dict[str, Any]: ...

    def param_rows(self) -> list[ParamValue]: ...

    def record_terminal_report(self, tid: str, *, app_version: str | None = None,
                               params_version: int | None = None) -> None: ...


class Profiles:
    """The cache. Methods named ``load_*``/``reload_*``/``record_*`` do I/O: run them in a
    worker thread. Without a source (tests with a fake registry) everything is empty."""

    def __init__(self, source: ProfileSource | None) -> None:
        self.source = source
        self.terminals: dict[str, TerminalProfile] = {}
        self.merchants: dict[str, MerchantProfile] = {}
        self.devices: dict[str, str] = {}
        self.policies = Policies()
        self.params = ParamLayers()

    # --- loading (worker thread) ------------------------------------------------------
    def load_all(self) -> None:
        if self.source is None:
            return
        terminals: dict[str, TerminalProfile] = {}
        merchants: dict[str, MerchantProfile] = {}
        devices: dict[str, str] = {}
        self._fill(self.source.registry_profile_rows(), terminals, merchants, devices)
        self.terminals, self.merchants, self.devices = terminals, merchants, devices  # swapped whole
        self.reload_policies()
        self.reload_params()

    def reload_terminal(self, tid: str) -> None:
        """One terminal, its merchant and its device (after an invalidation)."""
        if self.source is None:
            return
        rows = self.source.registry_profile_rows(tid)
        if not rows["terminals"]:
            self.terminals.pop(tid, None)
        self._fill(rows, self.terminals, self.merchants, self.devices)

    def reload_policies(self) -> None:
        if self.source is not None:
            self.policies = Policies.from_values(self.source.policies())

    def reload_params(self) -> None:
        if self.source is not None:
            self.params = ParamLayers.from_rows(self.source.param_rows())

    def _fill(self, rows: dict[str, Any], terminals: dict[str, TerminalProfile],
              merchants: dict[str, MerchantProfile], devices: dict[str, str]) -> None:
        """Put loaded rows into the given maps, keeping a download in progress."""
        for t in rows["terminals"]:
            old = self.terminals.get(t.tid)
            terminals[t.tid] = TerminalProfile(
                t.mid, t.serial, t.status_reason,
                frozenset(t.allowed_types.split(",")) if t.allowed_types else None,
                t.app_version, t.params_version or 0, old.served if old is not None else None)
        for m in rows["merchants"]:
            merchants[m.mid] = MerchantProfile(m.status_reason, m.mcc)
        for d in rows["devices"]:
            devices[d.serial] = d.status

    # --- lookups (event loop) ---------------------------------------------------------
    def terminal(self, tid: str) -> TerminalProfile | None:
        return self.terminals.get(tid)

    def merchant(self, mid: str) -> MerchantProfile:
        return self.merchants.get(mid) or MerchantProfile()

    def params_for(self, tid: str, mid: str) -> tuple[int, dict[str, str]]:
        return self.params.version(tid, mid), self.params.values(tid, mid)

    def params_stale(self, tid: str, mid: str) -> bool:
        profile = self.terminals.get(tid)
        downloaded = profile.downloaded if profile is not None else 0
        return self.params.version(tid, mid) > downloaded

    # --- what terminals report (worker thread) -----------------------------------------
    def record_app_version(self, tid: str, version: str) -> None:
        profile = self.terminals.get(tid)
        if profile is not None:
            profile.app_version = version
        if self.source is not None:
            self.source.record_terminal_report(tid, app_version=version)

    def record_params_downloaded(self, tid: str) -> int | None:
        """The download in progress ended: its version is now the terminal's."""
        profile = self.terminals.get(tid)
        if profile is None or profile.served is None:
            return None
        version, profile.served = profile.served, None
        profile.downloaded = max(profile.downloaded, version)
        if self.source is not None:
            self.source.record_terminal_report(tid, params_version=version)
        return version
