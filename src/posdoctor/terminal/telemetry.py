"""What a terminal tells its TMS: heartbeat, self-check and log payloads (evidence contract).

The payloads are built from the terminal's state (persistent counters, comm settings,
installed apps, the event ring buffer) and its `Device` (peripheral faults, battery,
power, signal). They never carry a key, PIN, PAN or track data: events already hold none
and nothing else here is secret.

`Telemetry(state, device, events=None, persist=None)` sends them through a `TmsClient`
(`send_heartbeat`, `upload_self_check`, `upload_logs`); a failed call becomes a
``tms.*`` terminal event and the method returns None. `attach_counters` makes an
`EventLog` count errors into ``state.counters`` (they survive power cycles).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from posdoctor.terminal.device import Device, Peripheral
from posdoctor.terminal.core import local_now
from posdoctor.terminal.events import Clock, EventKind, EventLog, TerminalEvent
from posdoctor.terminal.slots import SlotStore
from posdoctor.terminal.state import TerminalState
from posdoctor.terminal.tmsclient import TmsClient, TmsError
from posdoctor.terminal.vault import DeviceVault, VaultError

__all__ = ["Telemetry", "heartbeat_payload", "self_check_payload", "pending_log_events", "attach_counters",
           "counter_for", "EVENT_COUNTERS", "BASE_COUNTERS", "peripheral_status", "last_errors"]

EVENT_COUNTERS: dict[str, str] = {
    "comm.connect_timeout": "connect_timeout",
    "comm.connect_failed": "connect_refused",
    "comm.unknown_host": "dns_failure",
    "comm.link_down": "link_down",
    "comm.receive_failed": "receive_timeout",
    "comm.receive_error": "receive_error",
    "comm.unpack_error": "unpack_error",
    "check.mac": "mac_fail",
    "host.rc.A0": "host_mac_fail",
    "keys.check_failed": "key_check_fail",
    "keys.unreadable": "key_unreadable",
    "device.card_reader": "card_read",
    "device.printer": "printer",
    "device.keypad": "keypad",
    "device.storage": "storage",
    "device.power": "power",
    "reversal.failed": "reversal_failed",
    "tms.unreachable": "tms_unreachable",
    "tms.timeout": "tms_timeout",
}
"""Event code -> persistent error counter."""

BASE_COUNTERS = ("connect_timeout", "connect_refused", "card_read", "reboot", "crash", "watchdog", "mac_fail")
"""Counters every heartbeat carries (zero when nothing happened)."""

NOT_ERRORS = frozenset({"device.self_check_ok", "reversal.in_progress", "reversal.done", "reversal.saved",
                        "host.requirement"})
LAST_ERRORS = 10
REPORTED_FAULTS = frozenset({"paper_out", "low_battery"})


def counter_for(code: str) -> str | None:
    if code in EVENT_COUNTERS:
        return EVENT_COUNTERS[code]
    if code.startswith("host.rc."):
        return "host_decline"
    return None


def attach_counters(events: EventLog, state: TerminalState) -> None:
    """Count every error event of `events` into ``state.counters`` (once per log)."""
    if any(getattr(listener, "_counts_into", None) is state for listener in events.listeners):
        return

    def count(event: TerminalEvent) -> None:
        counter = counter_for(event.code)
        if counter is not None:
            state.count(counter)

    count._counts_into = state  # type: ignore[attr-defined]
    events.listeners.append(count)


def peripheral_status(device: Device) -> dict[str, str]:
    """``{"printer": "ok" | "fault" | "paper_out", ...}`` for every peripheral."""
    status = {}
    for peripheral in Peripheral:
        fault = device.faults.get(peripheral)
        status[peripheral.value] = "ok" if fault is None else (fault if fault in REPORTED_FAULTS else "fault")
    if device.tampered:
        status["tamper"] = "triggered"
    return status


def is_error(event: TerminalEvent) -> bool:
    return not event.code.startswith("ok.") and event.code not in NOT_ERRORS


def last_errors(state: TerminalState, limit: int = LAST_ERRORS) -> list[str]:
    return [e.code for e in state.events if is_error(e)][-limit:]


def heartbeat_payload(state: TerminalState, device: Device, at: datetime | None = None,
                      slots: dict[str, Any] | None = None) -> dict[str, Any]:
    """The heartbeat body of the evidence contract (plus ``tid``, the terminal's ``at`` and,
    when given, ``slots``: `SlotStore.summary()` = active slot, trial flag, slot versions)."""
    counters = {name: 0 for name in BASE_COUNTERS}
    counters.update(state.counters)
    return {
        **({"slots": slots} if slots is not None else {}),
        "tid": state.tid,
        **({"at": at.isoformat()} if at else {}),
        "app_version": state.app_version,
        "firmware_version": device.firmware_version or state.firmware_version,
        "model": device.model or state.model,
        "serial": device.serial,
        "peripherals": peripheral_status(device),
        "battery_pct": device.battery_pct,
        "power_source": device.power_source,
        "voltage": device.voltage,
        "signal_dbm": device.signal_dbm,
        "network": device.network,
        "error_counters": counters,
        "last_errors": last_errors(state),
        "comm": {"host": state.comm.host, "port": state.comm.port, "tpdu": state.comm.tpdu},
        "params_version": state.params_version,
        "installed_apps": [app.name if not app.version else f"{app.name}:{app.version}"
                           for app in state.installed_apps],
        "uptime_s": device.uptime_s(),
        "bt_paired": device.bt_paired,
    }


def params_status(state: TerminalState) -> str:
    """``ok`` or ``inconsistent`` (never downloaded completely); the JSON state file that
    did not parse never gets here (`StateFileError`), so ``unreadable`` is not produced."""
    return "ok" if state.params and state.params_complete else "inconsistent"


def keys_status(state: TerminalState, device: Device) -> str:
    vault = DeviceVault(device.device_key)
    for kind, sealed in state.keys.items():
        try:
            vault.open(sealed.blob, kind)
        except VaultError:
            return "unreadable"
    return "ok" if "TMK" in state.keys else "missing"


def self_check_payload(state: TerminalState, device: Device, at: datetime | None = None) -> dict[str, Any]:
    """The self-check body: peripherals, parameters and keys, and the overall verdict."""
    peripherals = peripheral_status(device)
    params, keys = params_status(state), keys_status(state, device)
    blocking = [p for p, s in peripherals.items() if s not in ("ok", "low_battery")]
    ok = not blocking and params == "ok" and keys == "ok"
    return {"tid": state.tid, **({"at": at.isoformat()} if at else {}), "ok": ok, "peripherals": peripherals,
            "params": params, "keys": keys, "app_version": state.app_version}


def pending_log_events(state: TerminalState) -> list[TerminalEvent]:
    """Events of the ring buffer the TMS does not have yet (oldest first)."""
    since = state.logs_uploaded_until
    return [e for e in state.events if since is None or e.at > since]


class Telemetry:
    """Sends one terminal's heartbeat, self-check and logs through a `TmsClient`."""

    def __init__(self, state: TerminalState, device: Device, events: EventLog | None = None,
                 persist: Callable[[TerminalState], None] | None = None, clock: Clock | None = None,
                 slots: SlotStore | None = None) -> None:
        self.state = state
        self.slots = slots
        self.clock = clock or (events.clock if events is not None else local_now)
        self.device = device
        self.events = events
        self.persist = persist
        if events is not None:
            attach_counters(events, state)

    def _failed(self, operation: str, exc: TmsError) -> None:
        if self.events is not None:
            self.events.record(EventKind.COMM, exc.message, operation=operation, reason=exc.reason,
                               status=exc.status)
        else:
            counter = counter_for(exc.code)
            if counter:
                self.state.count(counter)

    def _save(self) -> None:
        if self.persist is not None:
            self.persist(self.state)

    async def send_heartbeat(self, client: TmsClient) -> dict[str, Any] | None:
        try:
            return await client.heartbeat(heartbeat_payload(
                self.state, self.device, self.clock(), self.slots.summary() if self.slots else None))
        except TmsError as exc:
            self._failed("heartbeat", exc)
            return None

    async def upload_self_check(self, client: TmsClient) -> dict[str, Any] | None:
        try:
            return await client.upload_status(self_check_payload(self.state, self.device, self.clock()))
        except TmsError as exc:
            self._failed("self_check", exc)
            return None

    async def upload_logs(self, client: TmsClient) -> int | None:
        """Send the events not sent yet; returns how many (None when the TMS failed)."""
        pending = pending_log_events(self.state)
        if not pending:
            return 0
        try:
            await client.upload_logs([e.to_json() for e in pending])
        except TmsError as exc:
            self._failed("logs", exc)
            return None
        self.state.logs_uploaded_until = pending[-1].at
        self._save()
        return len(pending)
