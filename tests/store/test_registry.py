"""Merchants, devices, terminals and terminal keys on both databases."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from posdoctor.store import AlreadyExists, InvalidValue, NotFound, Store

MID = "898100000000001"
TID = "10000001"


class Alg(enum.Enum):
    TDES = 1
    SM4 = 2


@dataclass(frozen=True)
class FakeWrapped:
    """Shape of posdoctor.crypto.hsm.WrappedKey; opaque bytes are enough for the store."""

    blob: bytes
    kcv: bytes
    alg: Alg = Alg.TDES
    length: int = 16


def test_merchant_round_trip_and_defaults(store: Store) -> None:
    before = datetime.now(UTC)
    store.add_merchant(MID, "示例商户")
    merchant = store.get_merchant(MID)
    assert (merchant.mid, merchant.name, merchant.status) == (MID, "示例商户", "active")
    assert merchant.created_at.tzinfo is UTC
    assert before - timedelta(seconds=5) <= merchant.created_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_duplicate_merchant_message(store: Store) -> None:
    store.add_merchant(MID, "a")
    with pytest.raises(AlreadyExists) as err:
        store.add_merchant(MID, "b")
    assert str(err.value) == f"商户 {MID} 已存在 / merchant {MID} already exists"
    assert (err.value.entity, err.value.key) == ("merchant", MID)
    assert store.get_merchant(MID).name == "a"


def test_missing_merchant_message(store: Store) -> None:
    with pytest.raises(NotFound) as err:
        store.get_merchant(MID)
    assert str(err.value) == f"商户 {MID} 不存在 / merchant {MID} not found"


def test_merchant_values_are_validated(store: Store) -> None:
    with pytest.raises(InvalidValue, match="MID must be 15 digits"):
        store.add_merchant("123", "x")
    with pytest.raises(InvalidValue, match="status must be one of"):
        store.add_merchant(MID, "x", status="happy")


def test_merchant_status_change(store: Store) -> None:
    store.add_merchant(MID, "a")
    store.set_merchant_status(MID, "frozen", "风控")
    merchant = store.get_merchant(MID)
    assert (merchant.status, merchant.status_reason) == ("frozen", "风控")
    with pytest.raises(NotFound):
        store.set_merchant_status("898100000000002", "frozen")


def test_device_add_get_duplicate(store: Store) -> None:
    store.add_device("SN0001", "N910")
    assert store.get_device("SN0001").model == "N910"
    with pytest.raises(AlreadyExists, match="device SN0001 already exists"):
        store.add_device("SN0001")
    with pytest.raises(NotFound, match="设备 SN0002 不存在 / device SN0002 not found"):
        store.get_device("SN0002")


def test_terminal_with_keys_in_one_step(store: Store) -> None:
    store.add_merchant(MID, "a")
    issued = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    keys = {"TK": FakeWrapped(b"\x01" * 24, b"\xaa\xbb\xcc\xdd"), "TMK": FakeWrapped(b"\x02" * 24, b"\x11\x22\x33\x44")}
    store.add_terminal(TID, MID, "SN0001", "N910", keys=keys, now=issued)
    terminal = store.get_terminal(TID)
    assert (terminal.mid, terminal.serial, terminal.model) == (MID, "SN0001", "N910")
    assert (terminal.status, terminal.batch_no, terminal.last_signin_at) == ("active", 1, None)
    assert store.get_device("SN0001").model == "N910"  # registered with the terminal
    rows = store.terminal_key_rows(TID)
    assert [(r.kind, r.blob, r.kcv, r.alg, r.length, r.issued_at) for r in rows] == [
        ("TK", b"\x01" * 24, b"\xaa\xbb\xcc\xdd", "TDES", 16, issued),
        ("TMK", b"\x02" * 24, b"\x11\x22\x33\x44", "TDES", 16, issued),
    ]


def test_terminal_errors(store: Store) -> None:
    with pytest.raises(NotFound, match=f"merchant {MID} not found"):
        store.add_terminal(TID, MID, "SN0001")
    store.add_merchant(MID, "a")
    with pytest.raises(NotFound, match="device SN0001 not found"):
        store.add_terminal(TID, MID, "SN0001", register_device=False)
    store.add_terminal(TID, MID, "SN0001")
    with pytest.raises(AlreadyExists, match=f"终端 {TID} 已存在 / terminal {TID} already exists"):
        store.add_terminal(TID, MID, "SN0002")
    with pytest.raises(InvalidValue, match="TID must be 8 letters or digits"):
        store.add_terminal("1", MID, "SN0001")
    with pytest.raises(NotFound, match="terminal 10000009 not found"):
        store.get_terminal("10000009")


def test_failed_terminal_add_leaves_nothing(store: Store) -> None:
    store.add_merchant(MID, "a")
    with pytest.raises(InvalidValue, match="key kind XX is invalid"):
        store.add_terminal(TID, MID, "SN0001", keys={"XX": FakeWrapped(b"1", b"2")})
    with pytest.raises(NotFound):
        store.get_terminal(TID)
    with pytest.raises(NotFound):
        store.get_device("SN0001")


def test_list_and_search_terminals(store: Store) -> None:
    store.add_merchant(MID, "a")
    store.add_merchant("898100000000002", "b")
    store.add_terminal("10000002", MID, "SN2")
    store.add_terminal("10000001", MID, "SN1")
    store.add_terminal("20000001", "898100000000002", "SN1")
    store.update_terminal("10000002", status="suspended", status_reason="欠费")
    assert [t.tid for t in store.list_terminals()] == ["10000001", "10000002", "20000001"]
    assert [t.tid for t in store.list_terminals(mid=MID)] == ["10000001", "10000002"]
    assert [t.tid for t in store.list_terminals(status="suspended")] == ["10000002"]
    assert [t.tid for t in store.terminals_by_serial("SN1")] == ["10000001", "20000001"]


def test_update_terminal_checks_references(store: Store) -> None:
    store.add_merchant(MID, "a")
    store.add_terminal(TID, MID, "SN1")
    signed = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.update_terminal(TID, batch_no=7, last_signin_at=signed)
    terminal = store.get_terminal(TID)
    assert (terminal.batch_no, terminal.last_signin_at) == (7, signed)
    with pytest.raises(NotFound, match="device NOPE not found"):
        store.update_terminal(TID, serial="NOPE")
    with pytest.raises(TypeError, match="unknown columns"):
        store.update_terminal(TID, created_at=None)


def test_new_keys_retire_old_ones_of_the_same_kind(store: Store) -> None:
    store.add_merchant(MID, "a")
    first = datetime(2024, 1, 1, tzinfo=UTC)
    store.add_terminal(TID, MID, "SN1", keys={"TMK": FakeWrapped(b"old", b"0000")}, now=first)
    store.set_terminal_keys(TID, {"PIK": FakeWrapped(b"pik1", b"1111"), "MAK": FakeWrapped(b"mak1", b"2222")}, now=first)
    later = first + timedelta(hours=1)
    store.set_terminal_keys(TID, {"PIK": FakeWrapped(b"pik2", b"3333", Alg.SM4)}, now=later)
    active = {r.kind: (r.blob, r.alg) for r in store.terminal_key_rows(TID)}
    assert active == {"TMK": (b"old", "TDES"), "MAK": (b"mak1", "TDES"), "PIK": (b"pik2", "SM4")}
    history = [(r.kind, r.blob, r.active) for r in store.terminal_key_rows(TID, include_retired=True)]
    assert ("PIK", b"pik1", False) in history and len(history) == 4
    with pytest.raises(NotFound):
        store.set_terminal_keys("10000009", {"PIK": FakeWrapped(b"x", b"y")})


def test_get_terminal_keys_returns_hsm_wrapped_keys(store: Store) -> None:
    hsm = pytest.importorskip("posdoctor.crypto.hsm", reason="posdoctor.crypto.hsm not written yet")
    from posdoctor.crypto.ciphers import Algorithm

    store.add_merchant(MID, "a")
    key = hsm.SoftHSM(bytes(32)).generate_key(16)
    store.add_terminal(TID, MID, "SN1", keys={"TMK": key})
    loaded = store.get_terminal_keys(TID)
    assert set(loaded) == {"TMK"}
    assert isinstance(loaded["TMK"], hsm.WrappedKey)
    assert loaded["TMK"] == key
    assert loaded["TMK"].alg is Algorithm.TDES


def test_row_repr_shows_the_key_only(store: Store) -> None:
    store.add_merchant(MID, "秘密名称")
    assert repr(store.get_merchant(MID)) == f"Merchant(mid='{MID}')"
