"""The emulator against the real host and store, end to end over loopback."""

from __future__ import annotations

import secrets

from e2esite import BALANCE, MID, PAN, PIN, TID, Site

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.host import provision_terminal
from posdoctor.terminal import Card, LinkConditions, TerminalFiles

CARD = Card(PAN, expiry="3012")
CHIP = Card(PAN, expiry="3012", chip=True)


async def test_full_lifecycle(any_site: Site) -> None:
    site = any_site
    app = site.terminal()
    assert app.self_check().ok
    app.inject_transport_key(site.sheet.tk)
    init = await app.initialise()
    assert [o.operation for o in init] == ["tmk_download", "param_download", "capk_download", "aid_download"]
    assert all(o.ok for o in init), [o.text for o in init]
    assert init[0].detail["kcv"] == site.sheet.tmk_kcv.hex().upper()
    assert app.state.merchant_name == "示例商户" and app.state.emv.capk_complete and app.state.emv.aid_complete
    app.state.comm.receive_timeout_s = 3.0

    signed = await app.sign_in()
    assert signed.ok and app.state.signed_in

    balance = await app.balance(CARD, PIN)
    assert (balance.ok, balance.balance) == (True, BALANCE)

    sale = await app.sale(CHIP, 1_000, PIN)
    assert sale.ok and sale.txn is not None and sale.txn.rrn
    second = await app.sale(CARD, 2_500, PIN)
    assert second.ok and second.txn is not None
    assert site.balance() == BALANCE - 3_500

    void = await app.void(sale.txn.stan)
    assert void.ok and void.txn is not None and site.balance() == BALANCE - 2_500

    refund = await app.refund(CARD, 500, second.txn.rrn, PIN)
    assert refund.ok and refund.txn is not None and site.balance() == BALANCE - 2_000

    refused = await app.sign_off()
    assert (refused.ok, refused.code) == (False, "local.settle_first")

    settled = await app.settle()
    assert (settled.ok, settled.code) == (True, "ok.settled"), settled.text
    assert settled.detail["debit_amount"] == 2_500 and settled.detail["credit_amount"] == 500
    assert app.state.txn_log == [] and app.state.batch == "000002"

    off = await app.sign_off()
    assert off.ok and not app.state.signed_in
    assert (await app.sale(CARD, 1, PIN)).message_zh == "请签到后再做交易"

    reloaded = TerminalFiles(site.home).load(TID)
    assert reloaded.batch == "000002" and not reloaded.signed_in
    stored = {(t.kind, t.stan): t.status for t in site.store.txns_in_batch(TID, 1)}
    assert stored[("sale", sale.txn.stan)] == "voided"
    assert stored[("sale", second.txn.stan)] == "approved"  # partly refunded
    assert stored[("void", void.txn.stan)] == stored[("refund", refund.txn.stan)] == "approved"


async def test_tmk_mismatch_fails_the_key_check(site: Site) -> None:
    app = site.terminal()
    app.inject_tmk(secrets.token_bytes(16))  # not the TMK the host holds
    outcome = await app.sign_in()
    assert (outcome.ok, outcome.code, outcome.message_zh) == (False, "keys.check_failed", "密钥校验失败，请重新下载主密钥")
    assert not app.state.signed_in
    assert outcome.events[-1].detail["key"] == "PIK"


async def test_injected_tmk_from_the_key_room_signs_in(site: Site) -> None:
    app = site.terminal()
    app.inject_tmk(site.sheet.tmk)
    assert (await app.sign_in()).ok


async def test_wrong_mac_key_gets_a0_and_signs_out(site: Site) -> None:
    app = await site.ready_terminal()
    app.keys.store("MAK", secrets.token_bytes(16), Algorithm.TDES)  # stale working key
    outcome = await app.sale(CARD, 100, PIN)
    assert (outcome.ok, outcome.response_code, outcome.message_zh) == (False, "A0", "MAC校验错,请重新签到")
    assert not app.state.signed_in and app.state.pending_reversal is None
    assert site.balance() == BALANCE
    assert (await app.sign_in()).ok and (await app.sale(CARD, 100, PIN)).ok


async def test_unknown_terminal_gets_97(site: Site) -> None:
    app = site.terminal(tid="19999999", serial="SN9999")
    app.inject_tmk(secrets.token_bytes(16))
    outcome = await app.sign_in()
    assert (outcome.ok, outcome.response_code, outcome.message_zh) == (False, "97", "终端未登记")


async def test_dropped_answer_is_reversed_before_the_next_sale(site: Site) -> None:
    conditions = LinkConditions()
    app = await site.ready_terminal(conditions=conditions)
    app.state.comm.receive_timeout_s = 0.5
    conditions.drop_answers = 1
    lost = await app.sale(CARD, 3_000, PIN)
    assert (lost.ok, lost.message_zh) == (False, "接收数据失败")
    assert site.balance() == BALANCE - 3_000  # the host approved it
    pending = app.state.pending_reversal
    assert pending is not None and pending.reason == "98"

    nxt = await app.sale(CARD, 100, PIN)
    assert nxt.ok
    codes = [e.code for e in nxt.events]
    assert codes.index("reversal.done") < codes.index("ok.approved")
    assert site.balance() == BALANCE - 100  # money restored, only the new sale stands
    reversals = site.store.reversals(TID)
    assert [(r.stan, r.reason) for r in reversals] == [(pending.stan, "98")]


async def test_unbalanced_settlement_uploads_the_batch(site: Site) -> None:
    app = await site.ready_terminal()
    for amount in (100, 200, 300):
        assert (await app.sale(CARD, amount, PIN)).ok
    lost = app.state.txn_log.pop(1)  # the terminal lost a transaction (upgrade.batch_lost)
    outcome = await app.settle()
    assert (outcome.ok, outcome.code, outcome.detail["flag"]) == (True, "ok.settled_unbalanced", "2")
    upload = next(e for e in outcome.events if e.code == "ok.batch_upload")
    assert upload.detail["items"] == 2
    events = site.store.events(TID, kind="batch_upload")
    assert events and events[-1].detail["host_only"] == [f"sale {lost.stan}"]
    assert events[-1].detail["terminal_only"] == [] and events[-1].detail["items"] == 2
    assert app.state.txn_log == []


async def test_sign_off_refused_while_unsettled(site: Site) -> None:
    app = await site.ready_terminal()
    assert (await app.sale(CARD, 100, PIN)).ok
    outcome = await app.sign_off()
    assert (outcome.ok, outcome.message_zh, outcome.detail["unsettled"]) == (False, "有未结算交易,请先结算", 1)
    assert app.state.signed_in


async def test_host_requested_sign_in_is_followed(site: Site) -> None:
    app = await site.ready_terminal()
    await site.host.require_sign_in(TID)
    outcome = await app.sale(CARD, 100, PIN)
    assert outcome.response_code == "77"
    assert [f.operation for f in outcome.follow_ups] == ["sign_in"] and outcome.follow_ups[0].ok
    assert (await app.sale(CARD, 100, PIN)).ok


async def test_wrong_merchant_is_refused(site: Site) -> None:
    app = site.terminal(mid="898100000000999")
    app.inject_tmk(site.sheet.tmk)
    outcome = await app.sign_in()
    assert (outcome.response_code, outcome.message_zh) == ("03", "无效商户")
    assert MID != app.state.mid


async def test_sm4_terminal_signs_in_with_006_and_macs_with_sm4(site: Site) -> None:
    sheet = provision_terminal(site.store, site.hsm, "10000002", MID, "SN0002", "N910", alg=Algorithm.SM4)
    await site.host.invalidate()
    app = site.terminal(tid="10000002", serial="SN0002")
    app.state.settings.signin_mode = "006"
    app.inject_transport_key(sheet.tk)
    assert all(o.ok for o in await app.initialise())
    assert app.keys.alg("TMK") is Algorithm.SM4
    signed = await app.sign_in()
    assert signed.ok and app.keys.alg("MAK") is Algorithm.SM4
    app.state.comm.receive_timeout_s = 3.0
    sale = await app.sale(CARD, 700)  # no PIN: the CUP field 52 holds 8 bytes, an SM4 block is 16
    assert sale.ok, sale.text
    assert site.balance() == BALANCE - 700
