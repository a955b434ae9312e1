"""What the host committed survives it: on SQLite and on PostgreSQL (`store` fixture)."""

from hostsite import BALANCE, HOST_CONFIG, PAN, PIN, TID, start_site

from posdoctor.host import HostServer


async def test_a_day_of_work_is_in_the_database(store, hsm):
    site = await start_site(store, hsm)
    try:
        terminal = site.terminal()
        await terminal.download_tmk()
        await terminal.sign_in()
        sale_msg = terminal.financial("0200", "000000", "22", 1000, PAN, PIN)
        sale = await terminal.exchange(sale_msg, mac=True)
        assert (await terminal.void(sale_msg, sale)).rc == "00"
        kept = await terminal.sale(PAN, 2000, PIN)
        assert (await terminal.refund(PAN, 500, kept["37"])).rc == "00"
        reversed_msg = terminal.financial("0200", "000000", "22", 300, PAN, PIN)
        await terminal.exchange(reversed_msg, mac=True)
        await terminal.reverse(reversed_msg)
        assert (await terminal.settle(debit=(2000, 1), credit=(500, 1))).rc == "00"
    finally:
        await site.host.stop()
    assert site.balance() == BALANCE - 1500
    txns = {(t.kind, t.amount): t.status for t in store.txns(TID)}
    assert txns == {("sale", 1000): "voided", ("void", 1000): "approved", ("sale", 2000): "approved",
                    ("refund", 500): "approved", ("sale", 300): "reversed"}
    [batch] = store.batches(TID)
    assert (batch.status, batch.flag, batch.debit_amount, batch.credit_amount) == ("settled", "1", 2000, 500)
    journal = store.journal(TID, limit=1000)
    assert len(journal) == 2 * 9  # every message in and out
    assert {k for k in store.get_terminal_keys(TID)} == {"TK", "TMK", "PIK", "MAK", "TDK"}


async def test_a_restarted_host_knows_keys_transactions_and_balances(store, hsm):
    site = await start_site(store, hsm)
    terminal = site.terminal()
    await terminal.download_tmk()
    await terminal.sign_in()
    sale_msg = terminal.financial("0200", "000000", "22", 1000, PAN, PIN)
    sale = await terminal.exchange(sale_msg, mac=True)
    await site.host.stop()

    host = HostServer(store, hsm, HOST_CONFIG)
    terminal.address = await host.start()
    try:
        assert (await terminal.exchange(sale_msg, mac=True)).rc == "94"  # still a duplicate
        assert (await terminal.void(sale_msg, sale)).rc == "00"  # signed in, original known
        assert (await terminal.sale(PAN, BALANCE + 1, PIN)).rc == "51"
        assert (await terminal.sale(PAN, BALANCE, PIN)).rc == "00"
    finally:
        await host.stop()
    assert site.balance() == 0


async def test_sign_off_and_require_sign_in_survive_a_restart(sqlite_store, hsm):
    site = await start_site(sqlite_store, hsm)
    terminal = site.terminal()
    await terminal.download_tmk()
    await terminal.sign_in("003")
    await terminal.management("0820", "002")
    await site.host.stop()
    assert set(sqlite_store.get_terminal_keys(TID)) == {"TK", "TMK"}

    host = HostServer(sqlite_store, hsm, HOST_CONFIG)
    terminal.address = await host.start()
    try:
        assert (await terminal.sale(PAN, 10, check=False)).rc == "77"
        await terminal.sign_in("004")
        assert (await terminal.sale(PAN, 10)).rc == "00"
        await host.require_sign_in(TID)
    finally:
        await host.stop()
    assert set(sqlite_store.get_terminal_keys(TID)) == {"TK", "TMK"}


class FlakyDatabase:
    """Commits through the store until `broken` is set."""

    def __init__(self, store) -> None:
        self.store, self.broken = store, False

    def __call__(self, writes):
        if self.broken:
            raise ConnectionError("database went away")
        return self.store.apply_host_batch(writes)


async def test_a_failed_commit_gets_no_answer_and_memory_resyncs_from_the_database(sqlite_store, hsm):
    database = FlakyDatabase(sqlite_store)
    site = await start_site(sqlite_store, hsm, committer=database)
    try:
        terminal = site.terminal()
        await terminal.download_tmk()
        await terminal.sign_in()
        assert (await terminal.sale(PAN, 1000, PIN)).rc == "00"
        database.broken = True
        lost = terminal.financial("0200", "000000", "22", 500, PAN, PIN)
        assert await terminal.roundtrip(terminal.frame(lost, mac=True)) is None  # no answer: never a false 00
        database.broken = False
        assert (await terminal.sale(PAN, 200, PIN)).rc == "00"  # held until the reload, then served
        assert (await terminal.reverse(lost)).rc == "00"  # the lost sale never happened
        account = site.host.registry.accounts[site.account_id]
        assert account.balance == site.balance() == BALANCE - 1200
        assert [e.detail["reason"] for e in sqlite_store.events(kind="registry_reloaded")] == [
            "a group commit failed"]
    finally:
        await site.host.stop()
