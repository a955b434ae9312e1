"""Money is conserved across random sequences of sale, void, refund, reversal and repeats.

Invariant: card balances + sales still standing - refunds still standing = what the
cards held at the start, in the database and in the host's memory alike.
"""

from dataclasses import dataclass, field

from hostsite import BALANCE, PAN, PIN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdoctor.host import provision_card

CARDS = [(PAN, PIN), ("6228480000000000018", "1111")]
SMALL_BALANCE = 3_000

operations = st.lists(st.one_of(
    st.tuples(st.just("sale"), st.integers(0, 1), st.integers(1, 2_500)),
    st.tuples(st.just("void"), st.integers(0, 50)),
    st.tuples(st.just("refund"), st.integers(0, 50), st.integers(1, 2_500)),
    st.tuples(st.just("reverse"), st.integers(0, 50)),
    st.tuples(st.just("repeat"), st.integers(0, 50)),
), min_size=1, max_size=14)


@dataclass
class Sent:
    msg: dict[str, str]
    answer: object
    done: list = field(default_factory=list)


def standing_money(store) -> int:
    total = 0
    for txn in store.txns(limit=100_000):
        if txn.kind == "sale" and txn.status in ("approved", "refunded"):
            total += txn.amount
        elif txn.kind == "refund" and txn.status == "approved":
            total -= txn.amount
    return total


async def run(terminal, op, history: list[Sent]) -> None:
    kind = op[0]
    if kind == "sale":
        pan, pin = CARDS[op[1]]
        msg = terminal.financial("0200", "000000", "22", op[2], pan, pin)
        history.append(Sent(msg, await terminal.exchange(msg, mac=True)))
        return
    if not history:
        return
    sent = history[op[1] % len(history)]
    if kind == "void" and sent.msg["t"] == "0200" and sent.msg["3"] == "000000":
        msg = terminal.financial("0200", "200000", "23", int(sent.msg["4"]), sent.msg["2"], None)
        msg.update({"37": sent.answer.get("37"), "61": sent.msg["60"][2:8] + sent.msg["11"]})
        history.append(Sent(msg, await terminal.exchange(msg, mac=True)))
    elif kind == "refund" and sent.msg["3"] == "000000" and sent.answer.rc == "00":
        msg = terminal.financial("0220", "200000", "25", op[2], sent.msg["2"], None)
        msg["37"] = sent.answer["37"]
        history.append(Sent(msg, await terminal.exchange(msg, mac=True)))
    elif kind == "reverse":
        await terminal.reverse(sent.msg)
    elif kind == "repeat":
        await terminal.exchange(sent.msg, mac=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_money_is_conserved(site, signed_in, ops):
    if site.store.find_card_by_pan(CARDS[1][0]) is None:
        provision_card(site.store, None, CARDS[1][0], CARDS[1][1], SMALL_BALANCE)
        await site.host.invalidate()
    signed_in.in_process = site.host
    accounts = [site.store.find_card_by_pan(pan).account_id for pan, _ in CARDS]
    start = BALANCE + SMALL_BALANCE
    history: list[Sent] = []
    for op in ops:
        await run(signed_in, op, history)
    in_db = [site.balance(a) for a in accounts]
    in_memory = [site.host.registry.accounts[a].balance for a in accounts]
    assert in_db == in_memory
    assert sum(in_db) + standing_money(site.store) == start
