"""Registering a large fleet in a few transactions (what an acquirer's data migration does).

The store's one-at-a-time functions (`add_merchant`, `set_settlement_account`,
`provision_terminal`) commit once per call; for thousands of terminals the simulator
writes the same rows in chunks instead: merchants with their settlement accounts,
then devices, terminals and their wrapped transport key and TMK through
`host.provision.provision_terminals` (the same checks and keys as `provision_terminal`).
Small fleets use the store's functions.
"""

from __future__ import annotations

from typing import Any

from posdoctor.host.provision import KeyRoomSheet, TerminalSpec, provision_terminals
from posdoctor.sim.config import FIRST_MID
from posdoctor.store.lifecycle import mask_account
from posdoctor.store.models import Merchant
from posdoctor.store.models_registry import SettlementAccount

__all__ = ["register_in_bulk", "BULK_FROM", "account_number", "BANK"]

BULK_FROM = 300
CHUNK = 500
BANK = "模拟银行 Sim Bank"


def account_number(merchant_index: int) -> str:
    return f"6217{merchant_index + 1:012d}"


def merchant_name(merchant_index: int) -> str:
    return f"模拟商户 Sim Merchant {merchant_index + 1:05d}"


def _merchant_rows(world: Any, mids: list[str], now: Any) -> list[Any]:
    rows: list[Any] = []
    secrets = world.store.secrets
    for mid in mids:
        index = int(mid) - FIRST_MID
        rows.append(Merchant(mid=mid, name=merchant_name(index),
                             status=world.merchant_status.get(mid, "active"), created_at=now))
        number = account_number(index)
        rows.append(SettlementAccount(mid=mid, number_masked=mask_account(number), bank=BANK,
                                      number_hash=secrets.pan_hash("account:" + number), status="valid",
                                      updated_at=now))
    return rows


def register_in_bulk(world: Any) -> dict[str, KeyRoomSheet]:
    """Merchants, accounts, devices, terminals and keys; returns each terminal's key sheet."""
    from posdoctor.sim.fleet import serial_of

    store, hsm, now = world.store, world.hsm, world.clock.utc()
    mids = sorted({t.mid for t in world.terminals})
    for start in range(0, len(mids), CHUNK):
        with store.tms_write() as session:
            session.add_all(_merchant_rows(world, mids[start:start + CHUNK], now))
    sheets: dict[str, KeyRoomSheet] = {}
    registered = [t for t in world.terminals if t.tid not in world.unregistered]
    for start in range(0, len(registered), CHUNK):
        specs = [TerminalSpec(t.tid, t.mid, serial_of(t.index), t.device.model)
                 for t in registered[start:start + CHUNK]]
        sheets.update(zip((s.tid for s in specs), provision_terminals(store, hsm, specs, now=now), strict=True))
    return sheets
