"""The modelled POS device: peripherals that work or fail, and the power-on self-check.

A fleet simulator changes the world by setting faults on peripherals (`set_fault`);
the payment application only ever meets them through `require`, `read_card`,
`enter_pin`, `print_receipt` and `check_storage`, which raise `HardwareFault`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from posdoctor.terminal.card import Card
from posdoctor.terminal.messages import M, Message
from posdoctor.terminal.vault import new_device_key

__all__ = ["Peripheral", "CheckResult", "HardwareFault", "Device", "PERIPHERAL_MESSAGES"]


class Peripheral(StrEnum):
    PRINTER = "printer"
    CARD_READER = "card_reader"
    KEYPAD = "keypad"
    STORAGE = "storage"
    POWER = "power"


PERIPHERAL_MESSAGES: dict[Peripheral, Message] = {
    Peripheral.PRINTER: M.PRINTER_FAULT,
    Peripheral.CARD_READER: M.CARD_READER_FAULT,
    Peripheral.KEYPAD: M.KEYPAD_FAULT,
    Peripheral.STORAGE: M.STORAGE_FAULT,
    Peripheral.POWER: M.POWER_FAULT,
}

NON_BLOCKING_FAULTS: dict[Peripheral, frozenset[str]] = {
    Peripheral.POWER: frozenset({"low_battery"}),
}
"""Faults that the self-check reports but that do not stop the peripheral working."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    peripheral: Peripheral
    ok: bool
    fault: str | None = None


class HardwareFault(Exception):
    """A peripheral the operation needs is faulty."""

    def __init__(self, peripheral: Peripheral, fault: str) -> None:
        self.peripheral = peripheral
        self.fault = fault
        self.message = PERIPHERAL_MESSAGES[peripheral]
        super().__init__(f"{peripheral.value}: {fault}")


@dataclass(slots=True)
class Device:
    """One terminal's hardware. `faults` maps a peripheral to a short fault name.

    `device_key` is the secure element's key that seals the keys kept in the state.
    """

    serial: str
    model: str = "EMU-100"
    firmware_version: str = "1.0.0"
    faults: dict[Peripheral, str] = field(default_factory=dict)
    tampered: bool = False
    receipts_printed: int = 0
    device_key: bytes = field(default_factory=new_device_key, repr=False)
    # --- environment the telemetry reports (a simulator changes these) -------------------
    battery_pct: int | None = 100
    """Battery charge in percent (None: a mains-only device without battery)."""
    power_source: str = "mains"
    """``"mains"`` or ``"battery"``."""
    voltage: float = 12.0
    signal_dbm: int | None = -65
    """Wireless signal strength (None on a wired network)."""
    network: str = "4g"
    """``"ethernet"``, ``"wifi"``, ``"4g"``, ``"offline"``."""
    bt_paired: bool | None = None
    """Bluetooth pairing with the phone (mPOS); None when the device has no Bluetooth."""
    booted_at: float = field(default_factory=time.monotonic)
    """Monotonic time of the last boot (uptime = now - booted_at)."""

    def uptime_s(self) -> int:
        return int(time.monotonic() - self.booted_at)

    def reboot(self) -> None:
        """Power cycle: the uptime starts again (the state on storage is untouched)."""
        self.booted_at = time.monotonic()

    # --- world changes (fault injection) -------------------------------------------
    def set_fault(self, peripheral: Peripheral | str, fault: str = "failed") -> None:
        self.faults[Peripheral(peripheral)] = fault

    def clear_fault(self, peripheral: Peripheral | str) -> None:
        self.faults.pop(Peripheral(peripheral), None)

    def clear_all_faults(self) -> None:
        self.faults.clear()

    def trigger_tamper(self) -> None:
        """The case was opened: the secure element locks (the app wipes its keys)."""
        self.tampered = True

    # --- what the application asks ----------------------------------------------------
    def self_check(self) -> list[CheckResult]:
        """Power-on self-check: one result per peripheral, in a fixed order."""
        return [CheckResult(p, p not in self.faults, self.faults.get(p)) for p in Peripheral]

    def require(self, peripheral: Peripheral) -> None:
        fault = self.faults.get(peripheral)
        if fault is not None and fault not in NON_BLOCKING_FAULTS.get(peripheral, frozenset()):
            raise HardwareFault(peripheral, fault)

    def check_storage(self) -> None:
        self.require(Peripheral.STORAGE)

    def read_card(self, card: Card) -> Card:
        self.require(Peripheral.POWER)
        self.require(Peripheral.CARD_READER)
        return card

    def enter_pin(self, pin: str) -> str:
        self.require(Peripheral.KEYPAD)
        return pin

    def print_receipt(self) -> None:
        self.require(Peripheral.PRINTER)
        self.receipts_printed += 1
