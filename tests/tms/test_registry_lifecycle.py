"""Registry lifecycle at the store/service level, on SQLite and PostgreSQL: transitions,
history, evidence events, the change feed, settlement accounts, devices, operators."""

from __future__ import annotations

import pytest

from posdoctor.store import InvalidValue, NotFound, Store
from posdoctor.store.lifecycle import InvalidTransition
from posdoctor.tms import operators
from posdoctor.tms import registry as reg
from posdoctor.tms.policies import set_policy

MID = "898100000000101"
TID = "20000001"


@pytest.fixture
def registered(store: Store) -> Store:
    store.add_merchant(MID, "生命周期商户", "pending", mcc="5411")
    store.add_terminal(TID, MID, "SN-LC-1", "N910")
    return store


def feed(store: Store) -> list[tuple[str, str | None, str | None, str | None]]:
    """Change-feed rows after the fixture's own (adding the terminal writes one)."""
    return [(c.kind, c.tid, c.mid, c.value) for c in store.host_changes_after(0)][1:]


def test_merchant_walks_its_lifecycle_with_history_events_and_feed(registered: Store) -> None:
    store = registered
    reg.approve_merchant(store, MID, actor="ops1")
    reg.freeze_merchant(store, MID, "risk review", actor="risk")
    reg.unfreeze_merchant(store, MID, actor="risk")
    reg.close_merchant(store, MID, actor="ops2", reason="contract ended")
    merchant = store.get_merchant(MID)
    assert (merchant.status, merchant.status_reason, merchant.mcc) == ("closed", "contract ended", "5411")
    history = [(h.old, h.new, h.reason, h.actor) for h in store.status_history("merchant", MID)]
    assert history == [("pending", "active", "approved", "ops1"), ("active", "frozen", "risk review", "risk"),
                       ("frozen", "active", "unfrozen", "risk"), ("active", "closed", "contract ended", "ops2")]
    events = store.events(kind="status_change", source="tms")
    assert [e.code for e in events] == ["active", "frozen", "active", "closed"]
    assert events[1].detail == {"entity": "merchant", "id": MID, "old": "active", "new": "frozen",
                                "reason": "risk review", "actor": "risk"}
    assert feed(store) == [("registry", None, MID, s) for s in ("active", "frozen", "active", "closed")]


ILLEGAL = [
    ([], lambda s, m: reg.unfreeze_merchant(s, m), "is pending: it cannot become active"),
    ([], lambda s, m: reg.freeze_merchant(s, m, "x"), "is pending: it cannot become frozen"),
    (["active"], lambda s, m: reg.approve_merchant(s, m), "is already active"),
    (["closed"], lambda s, m: reg.unfreeze_merchant(s, m), "is closed: it cannot become active"),
    (["closed"], lambda s, m: reg.freeze_merchant(s, m, "x"), "is closed: it cannot become frozen"),
    (["active", "frozen"], lambda s, m: reg.freeze_merchant(s, m, "again"), "is already frozen"),
]


def test_illegal_merchant_transitions_change_nothing(registered: Store) -> None:
    for n, (setup, action, message) in enumerate(ILLEGAL):
        mid = f"8981000000009{n:02d}"
        registered.add_merchant(mid, "非法迁移", "pending")
        for status in setup:
            registered.change_merchant_status(mid, status, reason="setup")

        def snapshot(mid: str = mid) -> tuple[object, ...]:
            return (registered.get_merchant(mid).status, len(registered.status_history("merchant", mid)),
                    registered.last_host_change_id(), len(registered.events(kind="status_change", limit=1000)))

        before = snapshot()
        with pytest.raises(InvalidTransition, match=f"merchant {mid} {message}") as err:
            action(registered, mid)
        assert err.value.zh and err.value.en
        assert snapshot() == before, message


def test_reason_is_required_to_freeze_or_disable(registered: Store) -> None:
    reg.approve_merchant(registered, MID)
    with pytest.raises(InvalidValue, match="reason is required"):
        reg.freeze_merchant(registered, MID, "  ")
    with pytest.raises(InvalidValue, match="reason is required"):
        reg.disable_terminal(registered, TID, "")
    assert registered.get_merchant(MID).status == "active"


def test_terminal_statuses_allowed_types_and_feed(registered: Store) -> None:
    store = registered
    reg.suspend_terminal(store, TID, "unpaid fee", actor="ops")
    reg.disable_terminal(store, TID, "lost device", actor="ops")
    with pytest.raises(InvalidTransition, match="terminal 20000001 is disabled: it cannot become suspended"):
        reg.suspend_terminal(store, TID, "x")
    reg.enable_terminal(store, TID, actor="ops")
    terminal = store.get_terminal(TID)
    assert (terminal.status, terminal.status_reason) == ("active", "enabled")
    assert [(h.old, h.new) for h in store.status_history("terminal", TID)] == [
        ("active", "suspended"), ("suspended", "disabled"), ("disabled", "active")]
    event = store.events(TID, kind="status_change")[1]
    assert (event.tid, event.code, event.detail["entity"], event.detail["reason"]) == (TID, "disabled", "terminal", "lost device")
    assert reg.allow_types(store, TID, "void,sale") == "sale,void"
    assert store.get_terminal(TID).allowed_types == "sale,void"
    with pytest.raises(InvalidValue, match="invalid transaction types: cashback"):
        reg.allow_types(store, TID, "sale,cashback")
    assert reg.allow_types(store, TID, "all") is None
    assert [c[0:3] for c in feed(store)] == [("registry", TID, MID)] * 5
    policy_events = store.events(TID, kind="policy_change")
    assert [(e.detail["old"], e.detail["new"]) for e in policy_events] == [(None, "sale,void"), ("sale,void", None)]
    with pytest.raises(NotFound):
        reg.disable_terminal(store, "29999999", "x")


def test_settlement_account_masked_with_status_history(registered: Store) -> None:
    store = registered
    with pytest.raises(NotFound, match="has no settlement account"):
        reg.set_account_status(store, MID, "invalid", "closed by bank")
    account = store.set_settlement_account(MID, "6222021234567890123", "工商银行", actor="ops")
    assert (account.number_masked, account.status) == ("6222***********0123", "valid")
    assert "1234567890" not in account.number_hash
    with pytest.raises(InvalidValue, match="reason is required"):
        reg.set_account_status(store, MID, "invalid", None)
    reg.set_account_status(store, MID, "invalid", "account closed by bank", actor="bank-feed")
    with pytest.raises(InvalidTransition, match="already invalid"):
        reg.set_account_status(store, MID, "invalid", "again")
    with pytest.raises(InvalidValue, match="8 to 32 digits"):
        store.set_settlement_account(MID, "12ab", "x")
    history = [(h.old, h.new, h.reason) for h in store.status_history("account", MID)]
    assert history[1:] == [("valid", "invalid", "account closed by bank")]
    assert store.events(kind="status_change")[-1].detail["entity"] == "account"


def test_device_asset_status_feeds_its_terminals(registered: Store) -> None:
    store = registered
    store.change_device_status("SN-LC-1", "lost", reason="reported stolen", actor="ops")
    assert store.get_device("SN-LC-1").status == "lost"
    assert feed(store)[-1] == ("registry", TID, None, "device lost")
    with pytest.raises(InvalidTransition):
        store.change_device_status("SN-LC-1", "lost")


def test_notify_host_rows_are_read_in_order(registered: Store) -> None:
    store = registered
    first = store.last_host_change_id()
    store.notify_host("require_sign_in", tid=TID)
    store.notify_host("pending", tid=TID, value="1")
    store.notify_host("registry")
    rows = store.host_changes_after(first)
    assert [(r.kind, r.tid, r.value) for r in rows] == [("require_sign_in", TID, None), ("pending", TID, "1"),
                                                          ("registry", None, None)]
    assert store.last_host_change_id() == rows[-1].id
    with pytest.raises(InvalidValue, match="host change kind bogus is invalid"):
        store.notify_host("bogus")


def test_operators_lock_after_the_policy_limit_and_unlock(registered: Store) -> None:
    store = registered
    operators.add_operator(store, TID, "01", "pass1234")
    row = store.find_operator(TID, "01")
    assert row is not None and b"pass1234" not in row.pw_hash and len(row.salt) == 16
    assert operators.verify_operator(store, TID, "01", "pass1234") == "ok"
    set_policy(store, "operator_max_failures", "3", actor="ops")
    assert [operators.verify_operator(store, TID, "01", "bad") for _ in range(3)] == ["wrong", "wrong", "locked"]
    assert operators.verify_operator(store, TID, "01", "pass1234") == "locked"
    locked = store.find_operator(TID, "01")
    assert locked is not None and (locked.status, locked.failures, locked.lock_source) == ("locked", 3, "tms")
    operators.unlock_operator(store, TID, "01", actor="supervisor")
    assert operators.verify_operator(store, TID, "01", "pass1234") == "ok"
    assert operators.verify_operator(store, TID, "02", "x") == "unknown"
    assert operators.record_operator_lock(store, TID, "01", "terminal") is True
    assert operators.record_operator_lock(store, TID, "01", "terminal") is False
    history = [(h.old, h.new, h.actor) for h in store.status_history("operator", f"{TID}/01")]
    assert history == [("active", "locked", "tms"), ("locked", "active", "supervisor"), ("active", "locked", "terminal")]
    with pytest.raises(InvalidValue, match="operator number must be 2 to 4 digits"):
        operators.add_operator(store, TID, "A", "pass1234")
    with pytest.raises(InvalidValue, match="4 to 12 letters or digits"):
        operators.add_operator(store, TID, "03", "x")


def test_old_feed_rows_are_pruned(registered: Store) -> None:
    from datetime import UTC, datetime, timedelta

    registered.notify_host("registry")
    assert registered.prune_host_changes(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert registered.prune_host_changes(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert registered.host_changes_after(0) == []


def test_raw_status_setters_still_leave_evidence(registered: Store) -> None:
    store = registered
    store.set_merchant_status(MID, "frozen", "legacy path")
    store.update_terminal(TID, status="disabled", status_reason="legacy")
    assert [(h.old, h.new, h.reason) for h in store.status_history("merchant", MID)] == [("pending", "frozen", "legacy path")]
    assert [(h.old, h.new, h.reason) for h in store.status_history("terminal", TID)] == [("active", "disabled", "legacy")]
    assert [e.detail["entity"] for e in store.events(kind="status_change")] == ["merchant", "terminal"]
