"""Balance, sale, void, refund, reversal over loopback, and every decline code."""

import asyncio
import itertools

import pytest
from hostsite import BALANCE, HOST_CONFIG, PAN, PIN, TID, Clock

from posdoctor.host import provision_card
from posdoctor.iso8583.fields import decode_balance

OTHER_PAN = "6228480000000000018"


async def test_sale_debits_and_carries_rrn_and_auth_code(site, signed_in):
    answer = await signed_in.sale(PAN, 1250, PIN)
    assert answer.rc == "00"
    assert len(answer["37"]) == 12 and len(answer["38"]) == 6
    assert "64" in answer.msg  # checked by the client against its MAK
    assert site.balance() == BALANCE - 1250
    [txn] = site.store.txns(TID)
    assert (txn.kind, txn.status, txn.amount, txn.rrn, txn.auth_code) == ("sale", "approved", 1250, answer["37"],
                                                                          answer["38"])


async def test_sale_without_pin_is_allowed(site, signed_in):
    assert (await signed_in.sale(PAN, 10)).rc == "00"


async def test_balance_inquiry(site, signed_in):
    await signed_in.sale(PAN, 500, PIN)
    answer = await signed_in.balance(PAN, PIN)
    assert answer.rc == "00"
    assert decode_balance(answer["54"]) == BALANCE - 500


async def test_balance_needs_the_pin(signed_in):
    assert (await signed_in.balance(PAN, None)).rc == "55"


async def test_wrong_pin_then_locked(site, signed_in):
    assert (await signed_in.sale(PAN, 100, "000000")).rc == "55"
    assert (await signed_in.sale(PAN, 100, PIN)).rc == "00"
    codes = [(await signed_in.sale(PAN, 100, "000000")).rc for _ in range(3)]
    assert codes == ["55", "55", "75"]
    assert (await signed_in.sale(PAN, 100, PIN)).rc == "75"
    assert site.store.get_card(site.card_id).pin_tries == 3


async def test_insufficient_funds_and_limits(site, signed_in):
    assert (await signed_in.sale(PAN, BALANCE + 1, PIN)).rc == "51"
    card = provision_card(site.store, None, OTHER_PAN, "1111", 1_000_000, single_limit=5_000, daily_limit=8_000)
    assert (await signed_in.sale(OTHER_PAN, 5_001, "1111")).rc == "61"
    assert (await signed_in.sale(OTHER_PAN, 5_000, "1111")).rc == "00"
    assert (await signed_in.sale(OTHER_PAN, 3_001, "1111")).rc == "61"
    assert (await signed_in.sale(OTHER_PAN, 3_000, "1111")).rc == "00"
    assert site.balance(card.account_id) == 1_000_000 - 8_000
    assert site.balance() == BALANCE


@pytest.mark.parametrize(("status", "expiry", "code"), [("active", "2001", "54"), ("expired", "3012", "54"),
                                                       ("lost", "3012", "14"), ("blocked", "3012", "14")])
async def test_card_states(site, signed_in, status, expiry, code):
    provision_card(site.store, None, OTHER_PAN, "1111", 5_000, expiry=expiry, status=status)
    assert (await signed_in.sale(OTHER_PAN, 100, "1111")).rc == code


async def test_unknown_card(signed_in):
    assert (await signed_in.sale("6222021234567890128", 100)).rc == "14"


async def test_duplicate(site, signed_in):
    msg = signed_in.financial("0200", "000000", "22", 300, PAN, PIN)
    assert (await signed_in.exchange(msg, mac=True)).rc == "00"
    assert (await signed_in.exchange(msg, mac=True)).rc == "94"
    assert site.balance() == BALANCE - 300


async def test_a_void_repeating_the_sales_stan_is_a_duplicate(site, signed_in):
    """Sale and void are both 0200 requests: one message number cannot serve both."""
    sale = signed_in.financial("0200", "000000", "22", 300, PAN, PIN)
    answer = await signed_in.exchange(sale, mac=True)
    assert answer.rc == "00"
    signed_in.stans = itertools.count(int(sale["11"]))  # a restored old state: the sale's STAN again
    void = signed_in.financial("0200", "200000", "23", 300, PAN, None)
    assert void["11"] == sale["11"]
    void["37"], void["61"] = answer["37"], sale["60"][2:8] + sale["11"]
    assert (await signed_in.exchange(void, mac=True)).rc == "94"
    assert site.balance() == BALANCE - 300  # the sale stands
    signed_in.stans = itertools.count(int(sale["11"]) + 5)
    assert (await signed_in.void(sale, answer)).rc == "00"  # with a STAN of its own it goes through
    assert site.balance() == BALANCE


async def test_mac_missing_or_wrong(site, signed_in):
    msg = signed_in.financial("0200", "000000", "22", 300, PAN, PIN)
    assert (await signed_in.exchange(msg)).rc == "A0"
    good_mak, signed_in.mak = signed_in.mak, bytes(16)
    assert (await signed_in.sale(PAN, 300, check=False)).rc == "A0"
    signed_in.mak = good_mak
    assert site.balance() == BALANCE


async def test_mac_can_be_made_optional(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"require_mac": False}))
    terminal = site.terminal()
    await terminal.download_tmk()
    await terminal.sign_in()
    answer = await terminal.exchange(terminal.financial("0200", "000000", "22", 300, PAN, PIN))
    assert answer.rc == "00" and "64" not in answer.msg


async def test_not_signed_in_and_expired_sign_in(make_site):
    clock = Clock()
    site = await make_site(HOST_CONFIG.model_copy(update={"session_ttl_s": 3600}), clock=clock)
    terminal = site.terminal()
    await terminal.download_tmk()
    terminal.mak = bytes(16)
    assert (await terminal.sale(PAN, 100, check=False)).rc == "77"
    await terminal.sign_in()
    clock.advance(3599)
    assert (await terminal.sale(PAN, 100)).rc == "00"
    clock.advance(2)
    assert (await terminal.sale(PAN, 100, check=False)).rc == "77"


async def test_require_sign_in(site, signed_in):
    await site.host.require_sign_in(TID)
    assert (await signed_in.sale(PAN, 100, check=False)).rc == "77"


async def test_void(site, signed_in):
    sale_msg = signed_in.financial("0200", "000000", "22", 700, PAN, PIN)
    sale = await signed_in.exchange(sale_msg, mac=True)
    assert (await signed_in.void(sale_msg, sale, amount=699)).rc == "64"
    assert (await signed_in.void(sale_msg, sale)).rc == "00"
    assert site.balance() == BALANCE
    assert (await signed_in.void(sale_msg, sale)).rc == "12"
    statuses = {t.kind: t.status for t in site.store.txns(TID) if t.status != "declined"}
    assert statuses == {"sale": "voided", "void": "approved"}


async def test_void_of_unknown_or_reversed_original(site, signed_in):
    ghost = signed_in.financial("0200", "000000", "22", 700, PAN, PIN)
    answer = await signed_in.sale(PAN, 1, PIN)
    fake = type(answer)({**answer.msg, "37": "000000000000"}, answer.frame)
    assert (await signed_in.void(ghost, fake)).rc == "25"
    sale_msg = signed_in.financial("0200", "000000", "22", 700, PAN, PIN)
    sale = await signed_in.exchange(sale_msg, mac=True)
    assert (await signed_in.reverse(sale_msg)).rc == "00"
    assert (await signed_in.void(sale_msg, sale)).rc == "12"
    assert site.balance() == BALANCE - 1


async def test_refund_partial_and_over(site, signed_in):
    sale = await signed_in.sale(PAN, 1000, PIN)
    assert (await signed_in.refund(PAN, 400, sale["37"])).rc == "00"
    assert (await signed_in.refund(PAN, 601, sale["37"])).rc == "64"
    assert (await signed_in.refund(PAN, 600, sale["37"])).rc == "00"
    assert (await signed_in.refund(PAN, 1, sale["37"])).rc == "64"  # nothing left to refund
    assert site.balance() == BALANCE
    assert (await signed_in.refund(PAN, 1, "999999999999")).rc == "25"


async def test_refund_with_another_card_is_refused(site, signed_in):
    provision_card(site.store, None, OTHER_PAN, "1111", 5_000)
    sale = await signed_in.sale(PAN, 1000, PIN)
    assert (await signed_in.refund(OTHER_PAN, 100, sale["37"])).rc == "25"


async def test_reversal_restores_once_and_unknown_originals_are_00(site, signed_in):
    sale_msg = signed_in.financial("0200", "000000", "22", 900, PAN, PIN)
    assert (await signed_in.exchange(sale_msg, mac=True)).rc == "00"
    assert (await signed_in.reverse(sale_msg)).rc == "00"
    assert (await signed_in.reverse(sale_msg)).rc == "00"
    assert site.balance() == BALANCE
    never_sent = signed_in.financial("0200", "000000", "22", 900, PAN, PIN)
    assert (await signed_in.reverse(never_sent)).rc == "00"
    assert site.balance() == BALANCE
    reversals = site.store.reversals(TID)
    assert [(r.stan, r.reason, r.orig_txn_id is not None) for r in reversals] == [
        (sale_msg["11"], "98", True), (sale_msg["11"], "98", True), (never_sent["11"], "98", False)]


async def test_reversal_of_a_void_debits_again(site, signed_in):
    sale_msg = signed_in.financial("0200", "000000", "22", 900, PAN, PIN)
    sale = await signed_in.exchange(sale_msg, mac=True)
    void_msg = signed_in.financial("0200", "200000", "23", 900, PAN, None)
    void_msg.update({"37": sale["37"], "61": sale_msg["60"][2:8] + sale_msg["11"]})
    assert (await signed_in.exchange(void_msg, mac=True)).rc == "00"
    assert site.balance() == BALANCE
    assert (await signed_in.reverse(void_msg)).rc == "00"
    assert site.balance() == BALANCE - 900
    assert (await signed_in.void(sale_msg, sale)).rc == "00"  # the sale stands again, so it can be voided
    assert site.balance() == BALANCE


async def test_reversal_needs_a_valid_mac(site, signed_in):
    sale_msg = signed_in.financial("0200", "000000", "22", 900, PAN, PIN)
    await signed_in.exchange(sale_msg, mac=True)
    reversal = {**{k: v for k, v in sale_msg.items() if k not in ("35", "52", "53")}, "t": "0400", "39": "98"}
    assert (await signed_in.exchange(reversal)).rc == "A0"
    assert site.balance() == BALANCE - 900


async def test_decline_rules_force_codes_and_time_out(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"issuer_timeout_s": 0.05}))
    site.store.add_decline_rule(respond_code="58", amount_pattern="*58")
    site.store.add_decline_rule(delay_ms=2_000, amount_eq=98)
    await site.host.invalidate()
    terminal = site.terminal()
    await terminal.download_tmk()
    await terminal.sign_in()
    assert (await terminal.sale(PAN, 158, PIN)).rc == "58"
    assert (await terminal.sale(PAN, 98, PIN)).rc == "98"
    assert (await terminal.sale(PAN, 100, PIN)).rc == "00"
    assert site.balance() == BALANCE - 100
    [entry] = [j for j in site.store.journal(TID) if j.direction == "in" and j.rc == "98"]
    assert [s for s in entry.steps if s["verdict"] != "ok"] == [
        {"step": "Authorize", "verdict": "refused", "reason": "issuer gave no answer within 0.05s (rule 2 delays 2s)"}]


async def test_issuer_timeout_code_68(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"issuer_timeout_s": 0.02, "issuer_timeout_code": "68"}))
    site.store.add_decline_rule(delay_ms=1_000)
    await site.host.invalidate()
    terminal = site.terminal()
    await terminal.download_tmk()
    await terminal.sign_in()
    assert (await terminal.sale(PAN, 100, PIN)).rc == "68"


async def test_pin_block_format_other_than_iso_0(signed_in):
    msg = signed_in.financial("0200", "000000", "22", 100, PAN, PIN)
    msg["53"] = "1600000000000000"
    assert (await signed_in.exchange(msg, mac=True)).rc == "99"


async def test_zero_amount_is_invalid(site, signed_in):
    assert (await signed_in.sale(PAN, 0, PIN)).rc == "13"
    assert site.balance() == BALANCE


async def test_overlapping_reloads_hold_messages_until_the_last_one_is_done(site, signed_in):
    """Two reloads at once (two policy changes): the first must not let payments through
    while the second still reads, or the second's snapshot drops what they approved."""
    registry, load = site.host.registry, site.host.registry.load
    release, calls = asyncio.Event(), []

    async def slow_second_load() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            await release.wait()
        await load()

    registry.load = slow_second_load
    try:
        first = asyncio.create_task(site.host.invalidate())
        second = asyncio.create_task(site.host.invalidate())
        await first
        sale = asyncio.create_task(signed_in.sale(PAN, 700, PIN))
        await asyncio.sleep(0.2)
        assert calls == [0, 1] and not sale.done()  # held while the second reload reads
        release.set()
        await second
        assert (await sale).rc == "00"
    finally:
        registry.load = load
    [txn] = site.host.registry.txns.batch(TID, 1)
    assert (txn.kind, txn.amount, txn.status) == ("sale", 700, "approved")
