"""Settlement (balanced / unbalanced), batch upload and the batch number."""

from hostsite import PAN, PIN, TID

from posdoctor.iso8583.fields import BatchItem, Field60, SettlementTotals


async def day_of_sales(terminal):
    """Sales of 1000, 2000 (voided) and 3000, a refund of 500 against the first."""
    first = await terminal.sale(PAN, 1000, PIN)
    void_me_msg = terminal.financial("0200", "000000", "22", 2000, PAN, PIN)
    void_me = await terminal.exchange(void_me_msg, mac=True)
    await terminal.void(void_me_msg, void_me)
    await terminal.sale(PAN, 3000, PIN)
    await terminal.refund(PAN, 500, first["37"])


async def test_balanced_settlement_closes_the_batch(site, signed_in):
    await day_of_sales(signed_in)
    answer = await signed_in.settle(debit=(4000, 2), credit=(500, 1))
    assert answer.rc == "00"
    totals = SettlementTotals.decode(answer["48"])
    assert (totals.debit_amount, totals.debit_count, totals.credit_amount, totals.credit_count, totals.flag) == (
        4000, 2, 500, 1, "1")
    [batch] = site.store.batches(TID)
    assert (batch.batch_no, batch.status, batch.flag, batch.debit_amount, batch.credit_count) == (1, "settled", "1",
                                                                                                   4000, 1)
    assert site.store.get_terminal(TID).batch_no == 2
    signed_in.batch = 2
    assert (await signed_in.sale(PAN, 10, PIN)).rc == "00"
    assert Field60.decode((await signed_in.sign_in())["60"]).batch == "000002"


async def test_repeated_settlement_meets_the_same_totals(signed_in):
    await day_of_sales(signed_in)
    first = await signed_in.settle(debit=(4000, 2), credit=(500, 1))
    again = await signed_in.settle(debit=(4000, 2), credit=(500, 1))
    assert SettlementTotals.decode(first["48"]).flag == SettlementTotals.decode(again["48"]).flag == "1"


async def test_unbalanced_settlement_then_batch_upload_names_the_differences(site, signed_in):
    sale_msg = signed_in.financial("0200", "000000", "22", 1000, PAN, PIN)
    await signed_in.exchange(sale_msg, mac=True)
    lost_msg = signed_in.financial("0200", "000000", "22", 2500, PAN, PIN)
    await signed_in.exchange(lost_msg, mac=True)
    answer = await signed_in.settle(debit=(1000, 1), credit=(0, 0))  # the terminal lost a sale
    assert answer.rc == "00"
    assert SettlementTotals.decode(answer["48"]).flag == "2"
    [unbalanced] = site.store.events(TID, kind="settlement_unbalanced")
    assert unbalanced.detail["host"] == "debit 2/3500, credit 0/0"
    items = [BatchItem(PAN, sale_msg["11"], 1000, "22"), BatchItem(PAN, "999999", 70, "22")]
    assert (await signed_in.batch_upload(items)).rc == "00"
    assert (await signed_in.batch_upload_end(2)).rc == "00"
    [upload] = site.store.events(TID, kind="batch_upload")
    assert upload.detail["host_only"] == [f"sale {lost_msg['11']}"]
    assert upload.detail["terminal_only"] == ["sale 999999"]
    assert upload.detail["amount_differs"] == []
    assert upload.detail["announced"] == 2
    journal = [j for j in site.store.journal(TID) if j.route == "batch_upload" and j.direction == "in"]
    assert PAN not in journal[0].fields["48"] and PAN not in (journal[0].raw_hex or "")


async def test_settlement_with_a_bad_field_48(signed_in):
    msg = {**signed_in.base("0500", "00", "201"), "48": "123"}
    assert (await signed_in.exchange(msg, mac=True)).rc == "30"


async def test_settlement_requires_sign_in(site):
    terminal = site.terminal()
    await terminal.download_tmk()
    terminal.mak = bytes(16)
    assert (await terminal.settle(debit=(0, 0), credit=(0, 0))).rc == "77"
