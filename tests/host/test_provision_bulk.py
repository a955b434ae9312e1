"""Bulk provisioning: many terminals in one transaction, usable by the host at once."""

from __future__ import annotations

import pytest
from hostclient import TestTerminal
from hostsite import HOST_CONFIG

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.crypto.kcv import key_check_value
from posdoctor.host import HostServer
from posdoctor.host.provision import TerminalSpec, provision_terminal, provision_terminals
from posdoctor.store import Store
from posdoctor.store.errors import AlreadyExists, InvalidValue, NotFound

MID = "898100000000001"


def specs(count: int, first: int = 30000001) -> list[TerminalSpec]:
    return [TerminalSpec(f"{first + i}", MID, f"BULK{first + i}", "N910") for i in range(count)]


def test_bulk_rows_and_key_room_sheets(store: Store, lmk: bytes) -> None:
    hsm = SoftHSM(lmk)
    store.add_merchant(MID, "bulk")
    sheets = provision_terminals(store, hsm, specs(5))
    assert len(sheets) == 5
    assert [t.tid for t in store.list_terminals()][-5:] == [s.tid for s in specs(5)]
    fresh = SoftHSM(lmk)  # keys come back from their stored blobs, not a cache
    for spec, sheet in zip(specs(5), sheets, strict=True):
        keys = store.get_terminal_keys(spec.tid)
        assert set(keys) == {"TK", "TMK"}
        assert fresh.reveal_for_key_room(keys["TMK"]) == sheet.tmk
        assert key_check_value(sheet.tmk)[:4] == sheet.tmk_kcv == keys["TMK"].kcv
        assert store.get_device(spec.serial).model == "N910"
    assert len({s.tmk for s in sheets}) == 5


def test_bulk_refusals_write_nothing(store: Store, lmk: bytes) -> None:
    hsm = SoftHSM(lmk)
    store.add_merchant(MID, "bulk")
    provision_terminal(store, hsm, "30000003", MID, "TAKEN01")
    with pytest.raises(AlreadyExists, match="30000003"):
        provision_terminals(store, hsm, specs(5))
    with pytest.raises(AlreadyExists):
        provision_terminals(store, hsm, [*specs(2, 31000001), *specs(1, 31000001)])
    with pytest.raises(NotFound):
        provision_terminals(store, hsm, [TerminalSpec("32000001", "898100000000999", "X1")])
    with pytest.raises(InvalidValue):
        provision_terminals(store, hsm, [TerminalSpec("bad tid!", MID, "X2")])
    assert [t.tid for t in store.list_terminals()] == ["30000003"]


async def test_bulk_provisioned_terminals_sign_in(sqlite_store: Store, hsm: SoftHSM) -> None:
    sqlite_store.add_merchant(MID, "bulk")
    sheets = provision_terminals(sqlite_store, hsm, specs(3))
    host = HostServer(sqlite_store, hsm, HOST_CONFIG)
    address = await host.start()
    try:
        for spec, sheet in zip(specs(3), sheets, strict=True):
            terminal = TestTerminal(address, spec.tid, MID, spec.serial, sheet.tk, tmk=sheet.tmk)
            assert (await terminal.sign_in()).rc == "00"
            assert terminal.pik is not None
    finally:
        await host.stop()
    assert {r.kind for r in sqlite_store.terminal_key_rows("30000002") if r.active} == {"TK", "TMK", "PIK", "MAK", "TDK"}
