"""End of day: settlement (0500/201) and batch upload (0320/201, 202)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from posdoctor.host.context import Context
from posdoctor.host.pipeline import HostEnv, Outcome, Step, ok, refuse
from posdoctor.host.records import BatchUploadState, Totals, TxnState
from posdoctor.host.results import Result
from posdoctor.host.steps.money import read_batch
from posdoctor.iso8583.errors import Iso8583Error
from posdoctor.iso8583.fields import (
    ReconFlag,
    SettlementTotals,
    decode_batch_end,
    decode_batch_items,
)
from posdoctor.iso8583.mask import mask_pan
from posdoctor.store.records import BatchClosed, TerminalBatchChange

UPLOAD_KINDS = {"22": "sale", "23": "void", "25": "refund"}
SETTLED_STATUSES = ("approved", "refunded", "voided")
"""Statuses of transactions that were approved and not reversed."""


def batch_totals(txns: Iterable[TxnState]) -> Totals:
    """Debit = sales still standing (approved or refunded); credit = approved refunds.

    A voided sale and its void both drop out; a reversed transaction never counts.
    """
    debit_amount = debit_count = credit_amount = credit_count = 0
    for txn in txns:
        if txn.kind == "sale" and txn.status in ("approved", "refunded"):
            debit_amount += txn.amount
            debit_count += 1
        elif txn.kind == "refund" and txn.status == "approved":
            credit_amount += txn.amount
            credit_count += 1
    return Totals(debit_amount, debit_count, credit_amount, credit_count)


class CompareTotals(Step):
    """Settlement: the terminal's totals in 48 against the host's; flag 1 or 2."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        try:
            sent = SettlementTotals.decode(ctx.get("48") or "")
            batch = read_batch(ctx)
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"settlement field 48 or 60 unreadable: {exc}")
        if terminal.settled is not None and terminal.settled[0] == batch:
            host = terminal.settled[1]  # a repeated settlement of the same batch
        else:
            host = batch_totals(await env.registry.batch_txns(terminal.tid, batch))
        theirs = Totals(sent.debit_amount, sent.debit_count, sent.credit_amount, sent.credit_count)
        flag = ReconFlag.BALANCED if theirs == host else ReconFlag.UNBALANCED
        ctx.answer_fields["48"] = replace(sent, flag=flag).encode()
        ctx.writes.append(BatchClosed(terminal.tid, batch, ctx.now, host.debit_amount, host.debit_count,
                                      host.credit_amount, host.credit_count, flag.value))
        self._close_batch(ctx, env, batch, host, balanced=flag is ReconFlag.BALANCED)
        if flag is ReconFlag.BALANCED:
            return ok(f"batch {batch:06d} balanced: {host}")
        ctx.add_event("settlement_unbalanced", "95", batch=batch, terminal=str(theirs), host=str(host))
        return ok(f"batch {batch:06d} unbalanced: terminal {theirs}; host {host}")

    @staticmethod
    def _close_batch(ctx: Context, env: HostEnv, batch: int, host: Totals, *, balanced: bool) -> None:
        terminal = ctx.terminal
        assert terminal is not None
        terminal.settled = (batch, host)
        if batch >= terminal.batch_no:
            terminal.batch_no = batch + 1
            ctx.writes.append(TerminalBatchChange(terminal.tid, batch + 1))
        if balanced:
            env.registry.txns.forget_batch(terminal.tid, batch)
        else:  # kept until the batch upload ends, to compare item by item
            terminal.upload = BatchUploadState(batch)


class RecordBatchUpload(Step):
    """0320/201: collect the terminal's items (PANs never reach the journal)."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        try:
            items = decode_batch_items(ctx.get("48") or "")
            batch = read_batch(ctx)
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"batch upload field 48 or 60 unreadable: {exc}")
        ctx.redact["48"] = "; ".join(f"{mask_pan(i.pan)} {i.stan} {i.amount} {i.kind}" for i in items)
        if terminal.upload is None or terminal.upload.batch_no != batch:
            terminal.upload = BatchUploadState(batch)
        for item in items:
            terminal.upload.items[(item.stan, UPLOAD_KINDS[item.kind])] = item.amount
        return ok(f"{len(items)} items of batch {batch:06d} received ({len(terminal.upload.items)} so far)")


class EndBatchUpload(Step):
    """0320/202: compare the uploaded items with the host's transactions; record it."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        try:
            batch = read_batch(ctx)
            announced = decode_batch_end(ctx.get("48")) if ctx.get("48") else None
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"batch upload end field 48 or 60 unreadable: {exc}")
        upload = terminal.upload
        if upload is None or upload.batch_no != batch:
            return ok(f"no batch upload of batch {batch:06d} in progress")
        host = {(t.stan, t.kind): t.amount for t in await env.registry.batch_txns(terminal.tid, batch)
                if t.status in SETTLED_STATUSES}
        theirs = upload.items
        host_only = sorted(f"{k} {s}" for s, k in host.keys() - theirs.keys())
        terminal_only = sorted(f"{k} {s}" for s, k in theirs.keys() - host.keys())
        amounts = sorted(f"{k} {s}" for (s, k) in host.keys() & theirs.keys() if host[(s, k)] != theirs[(s, k)])
        ctx.add_event("batch_upload", None, batch=batch, items=len(theirs), announced=announced,
                      host_only=host_only, terminal_only=terminal_only, amount_differs=amounts)
        env.registry.txns.forget_batch(terminal.tid, batch)
        terminal.upload = None
        return ok(f"{len(theirs)} items: {len(host_only)} only on the host, {len(terminal_only)} only on "
                  f"the terminal, {len(amounts)} amounts differ")
