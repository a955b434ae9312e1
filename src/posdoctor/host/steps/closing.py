"""Closing steps, run for every message: answer, MAC, journal (durable), send."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import lru_cache

from posdoctor.host.context import Context
from posdoctor.host.evidence import event_records, journal_records
from posdoctor.host.pipeline import HostEnv, Outcome, Step, ok
from posdoctor.host.results import response_code
from posdoctor.iso8583.codec import encode_message_with_layout, mac_input, with_mac
from posdoctor.iso8583.framing import Frame, ProcessingRequirement, answer_tpdu, encode_frame

ECHO_FIELDS = ("3", "4", "11", "22", "25", "41", "42", "49", "60")
"""Request fields copied into the answer (terminals check 3, 4, 11, 41, 42). The card
number is not sent back: the terminal does not need it."""
PENDING_ORDER = (
    ProcessingRequirement.SIGNIN, ProcessingRequirement.PARAMS, ProcessingRequirement.CAPK,
    ProcessingRequirement.AID, ProcessingRequirement.STATUS, ProcessingRequirement.TMS,
)
MAC_PLACEHOLDER = "0" * 16


@lru_cache(maxsize=4)
def _local_fields(epoch_second: int) -> tuple[str, str]:
    local = datetime.fromtimestamp(epoch_second).astimezone()
    return f"{local.hour:02d}{local.minute:02d}{local.second:02d}", f"{local.month:02d}{local.day:02d}"


def local_time_fields(now: datetime) -> tuple[str, str]:
    """Fields 12 (hhmmss) and 13 (MMDD) in the host's local time; made once a second."""
    return _local_fields(int(now.timestamp()))


def answer_mti(mti: str | None) -> str | None:
    """Request MTI + 10; None for something that is not a request or advice."""
    if not mti or len(mti) != 4 or not mti.isdigit() or int(mti[2]) % 2:
        return None
    return f"{int(mti) + 10:04d}"


def processing_requirement(ctx: Context) -> ProcessingRequirement:
    """What the answer's header asks of the terminal: a step's wish, else the registry flag."""
    if ctx.processing is not ProcessingRequirement.NONE:
        return ctx.processing
    if ctx.terminal is not None and ctx.terminal.pending:
        return next(p for p in PENDING_ORDER if p in ctx.terminal.pending)
    return ProcessingRequirement.NONE


class PrepareResponse(Step):
    """Answer dict: MTI + 10, echoed fields, 12/13/37, the step's fields, 39."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        frame = ctx.frame
        request = ctx.request if ctx.request is not None else ctx.partial
        mti = answer_mti(request.get("t"))
        if ctx.no_answer or frame is None or mti is None:
            return ok("nothing to answer: the connection closes")
        answer = {"t": mti}
        answer.update((f, request[f]) for f in ECHO_FIELDS if request.get(f))
        answer["12"], answer["13"] = local_time_fields(ctx.now)
        txn = ctx.txn
        answer["37"] = txn.rrn if txn is not None and txn.rrn else env.ids.next_rrn(ctx.now)
        if mti.startswith("08"):
            answer["32"] = env.config.acquirer_id
        answer.update(ctx.answer_fields)
        answer["39"] = response_code(ctx.result, forced_code=ctx.forced_code,
                                     issuer_timeout_code=env.config.issuer_timeout_code)
        if ctx.request is not None and ctx.request.get("64") and ctx.signon is not None:
            answer["64"] = MAC_PLACEHOLDER
        header = frame.header
        if header is not None:
            header = header.with_requirement(processing_requirement(ctx))
        ctx.answer = answer
        body, ctx.answer_layout = encode_message_with_layout(answer)
        ctx.answer_frame = Frame(answer_tpdu(frame.tpdu), header, body)
        return ok(f"answer {mti} with {answer['39']}")


class SignResponse(Step):
    """MAC of the answer under the session MAK when the request carried one."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        answer, frame, signon = ctx.answer, ctx.answer_frame, ctx.signon
        if answer is None or frame is None or "64" not in answer or signon is None:
            return ok("no MAC on this answer")
        mac = env.hsm.generate_mac(signon.mak, mac_input(frame.body), "cup_ecb", signon.alg)
        ctx.answer_frame = replace(frame, body=with_mac(frame.body, mac))
        answer["64"] = mac.hex().upper()
        return ok("answer MAC added")


class Journal(Step):
    """Journal rows, events and the message's writes, committed before anything is sent."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        rc = ctx.answer.get("39") if ctx.answer is not None else None
        txn = ctx.txn
        if txn is not None:
            if txn.status == "pending":
                txn.status = "declined"
            txn.rc = rc
            ctx.writes.append(txn.as_write())
        ctx.writes.extend(journal_records(ctx, rc, env.frame_config.header))
        ctx.writes.extend(event_records(ctx))
        await env.ledger.submit(ctx.writes)
        ctx.committed = True
        return ok(f"{len(ctx.writes)} writes committed")


class SendResponse(Step):
    """Write the answer; close when there is none or connections are short."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        session = ctx.session
        if ctx.answer_frame is None or not ctx.committed:
            session.closing = True
            return ok("closed without an answer")
        await session.send(encode_frame(ctx.answer_frame))
        if not env.config.persistent:
            session.closing = True
        return ok("answer sent")
