"""End of day: settlement 0500/201 with the batch totals, batch upload when unbalanced.

Totals follow the host's rule: debit = sales still standing (not voided or reversed),
credit = refunds. When the host answers flag 2 (unbalanced), every transaction of the
batch is uploaded (0320/201, up to 8 per message) and the upload ended (0320/202); the
batch is closed either way, as CUP terminals do. Flag 3 (error) keeps the batch.
"""

from __future__ import annotations

from posdoctor.iso8583.errors import DecodeError
from posdoctor.iso8583.fields import MAX_BATCH_ITEMS, BatchItem, ReconFlag, SettlementTotals
from posdoctor.terminal import builders
from posdoctor.terminal.checks import APPROVED
from posdoctor.terminal.errors import CommError, TerminalError
from posdoctor.terminal.events import EventKind
from posdoctor.terminal.messages import M
from posdoctor.terminal.payments import PaymentFlows
from posdoctor.terminal.state import TxnRecord
from posdoctor.terminal.outcome import Outcome
from posdoctor.terminal.transport import Channel

__all__ = ["EndOfDayFlows", "batch_totals"]

UPLOAD_KINDS = {"sale": "22", "void": "23", "refund": "25"}


def batch_totals(log: list[TxnRecord]) -> SettlementTotals:
    debit = [t.amount for t in log if t.kind == "sale" and t.status == "approved"]
    credit = [t.amount for t in log if t.kind == "refund" and t.status == "approved"]
    return SettlementTotals(sum(debit), len(debit), sum(credit), len(credit))


class EndOfDayFlows(PaymentFlows):
    async def _flow_settle(self, channel: Channel) -> Outcome:
        self.require_signed_in()
        await self.deliver_reversal(channel)
        state = self.state
        totals = batch_totals(state.txn_log)
        request = builders.settlement(state.next_stan(), self.ident(), totals, self.operator_number())
        answer = await self.exchange(channel, request, kind="settlement", mac=True)
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer)
        try:
            flag = SettlementTotals.decode(answer.msg.get("48", "")).flag
        except DecodeError as exc:
            raise CommError(M.UNPACK_ERROR, stage="unpack", field="48", reason=exc.reason) from None
        summary = {"batch": state.batch, "debit_amount": totals.debit_amount, "debit_count": totals.debit_count,
                   "credit_amount": totals.credit_amount, "credit_count": totals.credit_count, "flag": str(flag)}
        if flag == ReconFlag.ERROR or flag == ReconFlag.NONE:
            raise TerminalError(M.SETTLE_ERROR, **summary)
        message = M.SETTLED
        if flag == ReconFlag.UNBALANCED:
            await self._upload_batch(channel)
            message = M.SETTLED_UNBALANCED
        state.close_batch()
        self.save()
        self.events.record(EventKind.SETTLEMENT, message, next_batch=state.batch, **summary)
        return Outcome.of(EventKind.SETTLEMENT.value, True, message, response_code=APPROVED, **summary)

    async def _upload_batch(self, channel: Channel) -> None:
        items = [self._batch_item(t) for t in self.state.txn_log if t.status != "reversed"]
        size = min(self.state.settings.batch_upload_items, MAX_BATCH_ITEMS)
        for start in range(0, len(items), size):
            request = builders.batch_upload(self.state.next_stan(), self.ident(), items[start:start + size])
            answer = await self.exchange(channel, request, kind="batch_upload", mac=True)
            if answer.msg.get("39") != APPROVED:
                raise self.declined(answer, step="201", uploaded=start)
        request = builders.batch_upload_end(self.state.next_stan(), self.ident(), len(items))
        answer = await self.exchange(channel, request, kind="batch_upload", mac=True)
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer, step="202", uploaded=len(items))
        self.events.record(EventKind.BATCH_UPLOAD, M.BATCH_UPLOADED, items=len(items), batch=self.state.batch)

    def _batch_item(self, txn: TxnRecord) -> BatchItem:
        pan = self.open_pan(txn.pan_sealed)
        return BatchItem(pan, txn.stan, txn.amount, UPLOAD_KINDS[txn.kind])
