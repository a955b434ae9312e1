"""Automatic fixes end to end: a live fault, the diagnosis, dry-run, --apply, the audit
event and the check afterwards; where the host must act, the terminal then works."""

from __future__ import annotations

from doctorkit import PIN, DoctorSite, card, dsite, tid_of  # noqa: F401
from sqlalchemy import select

from posdoctor.doctor.diagnose import diagnose_terminal
from posdoctor.doctor.fixes import FixEnv, fix_json, run_fix
from posdoctor.store.models import Event


def audit_events(site: DoctorSite, tid: str) -> list[Event]:
    with site.store.engine.connect() as conn:
        return list(conn.execute(select(Event).where(Event.source == "doctor", Event.kind == "fix",
                                                     Event.tid == tid).order_by(Event.id)))


async def test_deliver_reversal_gives_the_money_back_exactly_once(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.settings.reversal_retries = 1
    before = dsite.balance() if hasattr(dsite, "balance") else dsite.store.get_account(dsite.account_id).balance
    app.link.conditions.drop_answers = 1  # the approval is lost on the way back
    assert not (await app.sale(card(), 4321, PIN)).ok
    app.link.conditions.down = True  # the shop closes: the reversal never reaches the host
    await app.sale(card(), 100, PIN)
    app.link.conditions.down = False
    dsite.report(4)
    charged = dsite.store.get_account(dsite.account_id).balance
    assert charged == before - 4321
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == "txn.reversal_pending"
    assert diagnosis.to_json()["findings"][0]["fix"]["name"] == "deliver_reversal"

    env = FixEnv(dsite.store, dsite.hsm)
    dry = run_fix(env, tid_of(4), "txn.reversal_pending")
    assert dry.dry_run and dry.ok and dry.plan["total"] == 4321
    assert dsite.store.get_account(dsite.account_id).balance == charged  # nothing moved

    done = run_fix(env, tid_of(4), "txn.reversal_pending", apply=True)
    assert done.ok, done.check
    assert done.check["balance_moved"] == {dsite.account_id: 4321}
    assert dsite.store.get_account(dsite.account_id).balance == before
    again = run_fix(env, tid_of(4), "txn.reversal_pending", apply=True)
    assert again.plan.get("blocked") and dsite.store.get_account(dsite.account_id).balance == before
    codes = [e.code for e in audit_events(dsite, tid_of(4))]
    assert codes == ["dry_run", "ok", "failed"]
    audit = audit_events(dsite, tid_of(4))[1].detail
    assert audit["cause"] == "txn.reversal_pending" and audit["action"] == "deliver_reversal"
    assert audit["dry_run"] is False and audit["check"]["ok"] is True


async def test_reissue_tmk_puts_a_new_master_key_in_place_and_tells_the_host(dsite: DoctorSite) -> None:
    env = FixEnv(dsite.store, dsite.hsm)
    old = dsite.store.get_terminal_keys(tid_of(5))["TMK"].kcv
    dry = run_fix(env, tid_of(5), "keys.tmk_mismatch")
    assert dry.action == "reissue_tmk" and dry.plan["old_kcv"] == old.hex().upper()
    assert dsite.store.get_terminal_keys(tid_of(5))["TMK"].kcv == old
    done = run_fix(env, tid_of(5), "keys.tmk_mismatch", apply=True)
    assert done.ok and done.check["new_tmk"]
    assert dsite.store.get_terminal_keys(tid_of(5))["TMK"].kcv != old
    assert {"registry", "require_sign_in"} <= set(done.check["host_changes"])


async def test_force_sign_in_goes_through_the_host_change_feed(dsite: DoctorSite) -> None:
    env = FixEnv(dsite.store, dsite.hsm)
    done = run_fix(env, tid_of(2), "keys.resign_required", apply=True)
    assert done.action == "force_sign_in" and done.ok
    changes = dsite.store.host_changes_after(0)
    assert any(c.kind == "require_sign_in" and c.tid == tid_of(2) for c in changes)


async def test_push_comm_params_sets_the_assigned_endpoint_as_a_terminal_override(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    env = FixEnv(dsite.store, dsite.hsm)
    done = run_fix(env, tid_of(4), "config.wrong_host", apply=True)
    assert done.action == "push_comm_params" and done.ok, done.check
    _version, params = dsite.store.effective_params(tid_of(4))
    assert (params["90"], params["91"]) == (dsite.address[0], str(dsite.address[1]))


async def test_release_payout_is_refused_while_the_account_is_still_invalid(dsite: DoctorSite) -> None:
    from datetime import UTC, datetime, timedelta

    from posdoctor.tms.payouts import payout_tick

    await dsite.healthy_fleet()
    app = dsite.apps[tid_of(1)]
    assert (await app.settle()).ok
    dsite.store.set_settlement_account("898100000000001", "6222000011112222", "测试银行")
    dsite.store.change_account_status("898100000000001", "invalid", reason="account closed by the bank")
    payout_tick(dsite.store, datetime.now(UTC) + timedelta(days=2))
    diagnosis = diagnose_terminal(dsite.store, tid_of(1), until=datetime.now(UTC) + timedelta(days=2, seconds=5))
    assert diagnosis.cause == "status.settlement_account_invalid"
    env = FixEnv(dsite.store, dsite.hsm)
    blocked = run_fix(env, tid_of(1), "status.settlement_account_invalid", apply=True)
    assert blocked.plan.get("blocked") and not blocked.ok and "not cleared" in blocked.plan["en"]
    dsite.store.change_account_status("898100000000001", "valid", reason="bank fixed it")
    done = run_fix(env, tid_of(1), "status.settlement_account_invalid", apply=True)
    assert done.ok, done.check
    assert not dsite.store.payouts("898100000000001", status=("held",))


def test_a_cause_without_a_software_fix_is_proposed_to_a_person(tmp_path) -> None:  # noqa: ANN001
    data = fix_json("10000001", "status.merchant_frozen")
    assert data["automatic"] is False and data["command"] is None
    assert data["needs_person"], "unfreezing needs a person"
