"""Group-commit writes done many at a time: keys of many sign-ins, sign-in times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host.provision import TerminalSpec, provision_terminals
from posdoctor.store import Store
from posdoctor.store.errors import InvalidValue
from posdoctor.store.models import TerminalKey
from posdoctor.store.records import KeysIssued, KeysRetired, TerminalSignedIn

MID = "898100000000001"
T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
TIDS = ("10000001", "10000002", "10000003")


def key_rows(store: Store) -> list[TerminalKey]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(TerminalKey).order_by(TerminalKey.id)))


def test_repeated_sign_ins_in_one_batch_leave_the_latest_keys_active(store: Store, lmk: bytes) -> None:
    hsm = SoftHSM(lmk)
    store.add_merchant(MID, "m")
    provision_terminals(store, hsm, [TerminalSpec(tid, MID, f"SN{tid}") for tid in TIDS])
    issued: dict[str, dict[str, object]] = {}
    writes: list[object] = []
    for round_ in range(3):
        for tid in TIDS:
            keys = {kind: hsm.generate_key() for kind in ("PIK", "MAK", "TDK")}
            issued[tid] = keys
            at = T0 + timedelta(minutes=round_)
            writes += [KeysIssued(tid, keys, at), TerminalSignedIn(tid, at)]
    writes.append(KeysRetired("10000003", ("TDK",)))
    result = store.apply_host_batch(writes)  # type: ignore[arg-type]
    assert result.written == len(writes)
    rows = key_rows(store)
    assert len(rows) == len(TIDS) * (2 + 3 * 3)
    for tid in TIDS:
        active = {r.kind: r.blob for r in rows if r.tid == tid and r.active}
        wanted = {kind: key.blob for kind, key in issued[tid].items()}  # type: ignore[attr-defined]
        if tid == "10000003":
            del wanted["TDK"]
        assert {k: v for k, v in active.items() if k not in ("TK", "TMK")} == wanted
        assert store.get_terminal(tid).last_signin_at == T0 + timedelta(minutes=2)


def test_an_unknown_key_kind_fails_the_whole_batch(store: Store, lmk: bytes) -> None:
    hsm = SoftHSM(lmk)
    store.add_merchant(MID, "m")
    provision_terminals(store, hsm, [TerminalSpec(TIDS[0], MID, "SN1")])
    with pytest.raises(InvalidValue, match="key kind XYZ"):
        store.apply_host_batch([TerminalSignedIn(TIDS[0], T0), KeysIssued(TIDS[0], {"XYZ": hsm.generate_key()}, T0)])
    assert store.get_terminal(TIDS[0]).last_signin_at is None
    assert len(key_rows(store)) == 2
