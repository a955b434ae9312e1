"""Money steps: card, duplicate check, PIN, balance, sale, void, refund, reversal."""

from __future__ import annotations

from posdoctor.crypto.errors import CryptoError
from posdoctor.host.context import Context
from posdoctor.host.issuer import Decision
from posdoctor.host.pipeline import HostEnv, Outcome, Step, ok, refuse
from posdoctor.host.records import TxnState
from posdoctor.host.results import Result
from posdoctor.iso8583.errors import Iso8583Error
from posdoctor.iso8583.fields import Field60, SecurityControl, encode_balance
from posdoctor.iso8583.mask import mask_pan
from posdoctor.store.records import BatchOpened, ReversalRecord, TxnKey, TxnStatusChange

REVERSIBLE_KINDS = {"22": "sale", "23": "void", "25": "refund"}
"""60.1 of a 0400 -> the kind of transaction it reverses."""
PIN_FORMAT_ISO0 = "2"


def read_batch(ctx: Context) -> int:
    return int(Field60.decode(ctx.get("60") or "").batch)


def read_pan(ctx: Context) -> str | None:
    """PAN from field 2, else from track 2 (35) up to the separator."""
    pan = ctx.get("2")
    if pan:
        return pan
    track2 = ctx.get("35")
    if track2:
        return track2.split("=", 1)[0]
    return None


def decline(ctx: Context, decision: Decision) -> Outcome:
    ctx.forced_code = decision.code
    return refuse(decision.result, decision.reason)


def overtaken(txn: TxnState) -> Outcome:
    """The terminal reversed this request while the host was still working on it."""
    return refuse(Result.ISSUER_TIMEOUT, f"the terminal reversed this {txn.kind} while it was in flight")


def approve(ctx: Context, env: HostEnv, txn: TxnState) -> None:
    """Mark the message's transaction approved with an RRN and an authorisation code."""
    txn.status = "approved"
    txn.rrn = env.ids.next_rrn(ctx.now)
    txn.auth_code = env.ids.next_auth_code()
    env.registry.txns.index_rrn(txn)
    ctx.answer_fields["38"] = txn.auth_code


class ReadCard(Step):
    """The card number from field 2 or track 2 (35)."""

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        pan = read_pan(ctx)
        if pan is None:
            if self.optional:
                return ok("no card data sent")
            return refuse(Result.FORMAT_ERROR, "no card number (field 2 or 35)")
        if not (pan.isdigit() and 12 <= len(pan) <= 19):
            return refuse(Result.FORMAT_ERROR, "card number is not 12 to 19 digits")
        ctx.pan = pan
        return ok(f"card {mask_pan(pan)}")


REQUEST_MTI = {"balance": "0200", "sale": "0200", "void": "0200", "refund": "0220"}
"""A new request must not repeat the STAN of an earlier one of the same message type: a
void carrying a sale's STAN is the same 0200 message number sent again."""


class CheckDuplicate(Step):
    """Same TID + batch + STAN as an earlier request of the same message type (0200:
    balance, sale, void; 0220: refund) -> 94; else the transaction is reserved."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        mti = REQUEST_MTI.get(kind)
        self.same_type = (kind,) + tuple(k for k, t in REQUEST_MTI.items() if t == mti and k != kind)

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        try:
            batch = read_batch(ctx)
            amount = int(ctx.get("4") or 0)
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"field 60 or 4 unreadable: {exc}")
        stan = ctx.get("11") or ""
        book = env.registry.txns
        for kind in self.same_type:
            earlier = book.find(TxnKey(terminal.tid, batch, stan, kind))
            if earlier is not None:
                return refuse(
                    Result.DUPLICATE,
                    f"{self.kind} STAN {stan} of batch {batch:06d}: a {kind} with it was already received at "
                    f"{earlier.at:%H:%M:%S} ({earlier.status})",
                )
        if not book.batch(terminal.tid, batch):
            ctx.writes.append(BatchOpened(terminal.tid, batch, ctx.now))
        ctx.amount = amount
        ctx.txn = TxnState(terminal.tid, terminal.mid, batch, stan, self.kind, ctx.now, amount=amount)
        book.add(ctx.txn)
        return ok(f"first {self.kind} with STAN {stan} in batch {batch:06d}")


class LoadCard(Step):
    """The issuer knows the card, and it is active and not expired (14 / 54)."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        assert ctx.pan is not None
        card = await env.registry.find_card(ctx.pan)
        if card is None:
            return refuse(Result.UNKNOWN_CARD, f"card {mask_pan(ctx.pan)} is not issued here")
        decision = env.issuer.check_card(card, ctx.now)
        if not decision.approved:
            return decline(ctx, decision)
        ctx.card = card
        if ctx.txn is not None:
            ctx.txn.card_id, ctx.txn.account_id = card.id, card.account_id
            ctx.txn.pan_hash, ctx.txn.pan_masked = card.pan_hash, card.pan_masked
        return ok(f"card {card.pan_masked} active")


class VerifyPin(Step):
    """The ISO 9564-0 PIN block of field 52 under the session PIK (55 / 75 / 99)."""

    def __init__(self, *, required: bool) -> None:
        self.required = required

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        block_hex = ctx.get("52")
        if not block_hex:
            if self.required:
                return refuse(Result.WRONG_PIN, "PIN required but field 52 is missing")
            return ok("no PIN entered")
        card, signon, pan = ctx.card, ctx.signon, ctx.pan
        assert card is not None and signon is not None and pan is not None
        control = ctx.get("53")
        if control:
            pin_format = SecurityControl.decode(control).pin_format
            if pin_format != PIN_FORMAT_ISO0:
                return refuse(Result.PIN_FORMAT, f"PIN block format {pin_format} in field 53 is not ISO 9564-0 (2)")
        try:
            decision = env.issuer.verify_pin(card, signon, bytes.fromhex(block_hex), pan, ctx.writes)
        except CryptoError as exc:
            return refuse(Result.PIN_FORMAT, f"PIN block does not decode under the session PIK: {type(exc).__name__}")
        if not decision.approved:
            return decline(ctx, decision)
        return ok(decision.reason)


class QueryBalance(Step):
    """Balance inquiry: field 54 with the account balance."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        card, txn = ctx.card, ctx.txn
        assert card is not None and txn is not None
        decision = await env.issuer.apply_rules(txn.tid, card, 0)
        if not decision.approved:
            return decline(ctx, decision)
        balance = env.registry.accounts[card.account_id].balance
        ctx.answer_fields["54"] = encode_balance(balance)
        approve(ctx, env, txn)
        return ok("balance sent")


class Authorize(Step):
    """Sale: issuer rules, limits and funds, then the debit."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        card, txn = ctx.card, ctx.txn
        assert card is not None and txn is not None
        issuer = env.issuer
        decision = await issuer.apply_rules(txn.tid, card, txn.amount)
        if decision.approved:  # checked after any wait, right before the debit
            decision = issuer.check_debit(card, txn.amount, ctx.now)
        if not decision.approved:
            return decline(ctx, decision)
        if txn.status != "pending":
            return overtaken(txn)
        issuer.move_money(card.account_id, -txn.amount, ctx.writes)
        issuer.count_spending(card, txn.amount, ctx.now)
        approve(ctx, env, txn)
        return ok(f"approved, {txn.amount} debited")


class FindOriginal(Step):
    """The original sale by 61 (batch + STAN) on this terminal, else by RRN (37) -> 25."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        original = None
        reference = ctx.get("61") or ""
        if len(reference) >= 12 and reference[:12].isdigit():
            key = TxnKey(terminal.tid, int(reference[:6]), reference[6:12], "sale")
            original = env.registry.txns.find(key)
        rrn = ctx.get("37")
        if original is None and rrn:
            original = await env.registry.find_txn_by_rrn(rrn)
            if original is not None and (original.kind != "sale" or original.mid != terminal.mid):
                original = None
        if original is None:
            return refuse(Result.ORIGINAL_NOT_FOUND, f"no original sale for 61={reference or '-'} 37={rrn or '-'}")
        ctx.original = original
        return ok(f"original sale STAN {original.stan} of batch {original.batch_no:06d} ({original.status})")


class CheckOriginal(Step):
    """The original can still be voided (same terminal, same amount) or refunded."""

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        original, terminal = ctx.original, ctx.terminal
        assert original is not None and terminal is not None
        if ctx.pan is not None and env.registry.pan_hash(ctx.pan) != original.pan_hash:
            return refuse(Result.ORIGINAL_NOT_FOUND, "the card differs from the original sale's")
        if original.status not in ("approved", "refunded"):
            return refuse(Result.ORIGINAL_NOT_USABLE, f"original sale is {original.status}")
        if self.purpose == "void":
            return self._check_void(ctx, original, terminal.tid)
        refundable = original.amount - original.refunded
        if ctx.amount <= 0 or ctx.amount > refundable:
            return refuse(Result.ORIGINAL_AMOUNT, f"refund {ctx.amount} outside 1..{refundable} still refundable")
        return ok(f"{refundable} refundable")

    @staticmethod
    def _check_void(ctx: Context, original: TxnState, tid: str) -> Outcome:
        if original.tid != tid:
            return refuse(Result.ORIGINAL_NOT_FOUND, f"original sale was made on terminal {original.tid}")
        if original.status != "approved" or original.refunded:
            return refuse(Result.ORIGINAL_NOT_USABLE, "original sale was (partly) refunded")
        if ctx.amount != original.amount:
            return refuse(Result.ORIGINAL_AMOUNT, f"void amount {ctx.amount} differs from the sale's {original.amount}")
        return ok("original can be voided")


def _link_to_original(txn: TxnState, original: TxnState) -> None:
    txn.orig = original
    txn.card_id, txn.account_id = original.card_id, original.account_id
    txn.pan_hash, txn.pan_masked = original.pan_hash, original.pan_masked


class CancelOriginal(Step):
    """Void: the sale becomes voided and its amount goes back to the card."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        original, txn = ctx.original, ctx.txn
        assert original is not None and txn is not None and original.account_id is not None
        if txn.status != "pending":
            return overtaken(txn)
        original.status = "voided"
        ctx.writes.append(TxnStatusChange("voided", key=original.key))
        env.issuer.move_money(original.account_id, original.amount, ctx.writes)
        env.issuer.uncount_spending(original)
        _link_to_original(txn, original)
        approve(ctx, env, txn)
        return ok(f"sale voided, {original.amount} credited")


class RefundOriginal(Step):
    """Refund: credit the card up to what the sale has left."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        original, txn = ctx.original, ctx.txn
        assert original is not None and txn is not None and original.account_id is not None
        if txn.status != "pending":
            return overtaken(txn)
        original.refunded += txn.amount
        if original.refunded == original.amount:
            original.status = "refunded"
            ctx.writes.append(TxnStatusChange("refunded", key=original.key))
        env.issuer.move_money(original.account_id, txn.amount, ctx.writes)
        _link_to_original(txn, original)
        approve(ctx, env, txn)
        return ok(f"{txn.amount} refunded")


class ReverseOriginal(Step):
    """0400: undo the original when it is known and not reversed yet; always 00."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        try:
            batch = read_batch(ctx)
            txn_type = Field60.decode(ctx.get("60") or "").txn_type
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"field 60 unreadable: {exc}")
        stan = ctx.get("11") or ""
        kind = REVERSIBLE_KINDS.get(txn_type)
        if kind is None:
            return ok(f"transaction type {txn_type} is not reversible: nothing to reverse")
        key = TxnKey(terminal.tid, batch, stan, kind)
        original = env.registry.txns.find(key)
        ctx.writes.append(ReversalRecord(
            terminal.tid, batch, stan, ctx.now, reason=ctx.get("39"),
            amount=int(ctx.get("4") or 0) or None, orig=key if original is not None else None,
        ))
        if original is None:
            return ok(f"no {kind} STAN {stan} in batch {batch:06d}: nothing to reverse")
        if original.status == "pending":
            original.status = "reversed"  # still in flight: it will not be approved now
            return ok(f"{kind} STAN {stan} reversed while in flight")
        if original.status != "approved" or original.refunded:
            state = original.status if not original.refunded else "partly refunded"
            return ok(f"{kind} STAN {stan} is {state}: nothing to reverse")
        undo_transaction(env, ctx, original)
        return ok(f"{kind} STAN {stan} reversed, {original.amount} restored")


def undo_transaction(env: HostEnv, ctx: Context, txn: TxnState) -> None:
    """Give back what an approved sale, void or refund moved."""
    assert txn.account_id is not None
    issuer, writes = env.issuer, ctx.writes
    if txn.kind == "sale":
        issuer.move_money(txn.account_id, txn.amount, writes)
        issuer.uncount_spending(txn)
    elif txn.kind == "void" and txn.orig is not None:
        issuer.move_money(txn.account_id, -txn.amount, writes)
        issuer.count_spending_again(txn.orig)
        txn.orig.status = "approved"
        writes.append(TxnStatusChange("approved", key=txn.orig.key))
    elif txn.kind == "refund" and txn.orig is not None:
        issuer.move_money(txn.account_id, -txn.amount, writes)
        txn.orig.refunded -= txn.amount
        if txn.orig.status == "refunded":
            txn.orig.status = "approved"
            writes.append(TxnStatusChange("approved", key=txn.orig.key))
    txn.status = "reversed"
    writes.append(TxnStatusChange("reversed", key=txn.key))
