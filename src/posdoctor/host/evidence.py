"""Journal and event records, masked: no clear PAN, track, PIN block or key leaves here.

Journal `fields` go through `iso8583.mask.mask_fields`; the raw hex is the frame's TPDU
and header followed by `mask_body_hex(body)` (sensitive field bytes starred in place).
A route may replace a field the masking does not know about (`Context.redact`, e.g.
the PANs inside a batch upload's field 48): its body is kept only up to the bitmap.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from posdoctor.host.context import Context, StepVerdict
from posdoctor.iso8583.codec import Layout
from posdoctor.iso8583.framing import HEADER_LEN, TPDU_LEN, Frame, Header
from posdoctor.iso8583.mask import HIDDEN_FIELDS, mask_body_hex, mask_fields
from posdoctor.store.records import EventRecord, JournalRecord

SENSITIVE_FIELDS = ("2", "35", "36", *HIDDEN_FIELDS)
MTI_AND_BITMAP = 10


def masked_fields(msg: dict[str, str], redact: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = mask_fields(msg)
    fields.update(redact)
    return fields


def masked_raw_hex(frame: Frame, msg: dict[str, str] | None, redact: dict[str, str],
                   layout: Layout | None = None) -> str:
    head = _head_hex(frame.tpdu, frame.header)
    body = frame.body
    if msg is None or redact:
        visible = body[:MTI_AND_BITMAP].hex().upper()
        return head + visible + "*" * (2 * len(body) - len(visible))
    if any(key in msg for key in SENSITIVE_FIELDS):
        return head + mask_body_hex(body, layout)
    return head + body.hex().upper()


@lru_cache(maxsize=1024)
def _head_hex(tpdu: bytes, header: Header | None) -> str:
    """TPDU and header as hex: a few hundred distinct pairs a day, made once each."""
    return (tpdu + (header.encode() if header is not None else b"")).hex().upper()


def undecodable_raw_hex(payload: bytes, header: bool) -> str:
    """A payload that did not frame: TPDU, header, MTI and bitmap, the rest starred."""
    keep = TPDU_LEN + (HEADER_LEN if header else 0) + MTI_AND_BITMAP
    visible = payload[:keep].hex().upper()
    return visible + "*" * (2 * len(payload) - len(visible))


def journal_records(ctx: Context, rc: str | None, header: bool) -> list[JournalRecord]:
    """The "in" row (request, step verdicts, outcome) and, when answered, the "out" row."""
    request = ctx.request
    route = ctx.route.name if ctx.route is not None else (ctx.route_key or None)
    common: dict[str, Any] = {"at": ctx.now, "tid": ctx.tid, "mid": ctx.mid, "route": route,
                              "stan": (request or {}).get("11"), "rc": rc, "peer": ctx.session.peer}
    if ctx.frame is None:
        raw_in = undecodable_raw_hex(ctx.payload, header)
    else:
        raw_in = masked_raw_hex(ctx.frame, request, ctx.redact, ctx.request_layout)
    rows = [JournalRecord(
        direction="in", mti=(request or {}).get("t"),
        steps=[_journal_step(verdict) for verdict in ctx.verdicts],
        fields=masked_fields(request, ctx.redact) if request else {"length": len(ctx.payload)},
        raw_hex=raw_in, **common,
    )]
    if ctx.answer is not None and ctx.answer_frame is not None:
        rows.append(JournalRecord(
            direction="out", mti=ctx.answer.get("t"),
            latency_ms=round((time.perf_counter() - ctx.started) * 1000, 3),
            fields=masked_fields(ctx.answer, {}),
            raw_hex=masked_raw_hex(ctx.answer_frame, ctx.answer, {}, ctx.answer_layout), **common,
        ))
    return rows


_PASSED_ROWS: dict[StepVerdict, dict[str, str]] = {}


def _journal_step(verdict: StepVerdict) -> dict[str, str]:
    """A verdict's journal form; a plain pass is one shared dict per step (never mutated)."""
    row = _PASSED_ROWS.get(verdict)
    if row is None:
        row = verdict.as_dict()
        if verdict.verdict == "ok" and not verdict.reason:
            _PASSED_ROWS[verdict] = row
    return row


def event_records(ctx: Context) -> list[EventRecord]:
    tid = ctx.tid
    return [
        EventRecord(source="host", kind=e["kind"], at=ctx.now, tid=tid, code=e["code"],
                    detail={**e["detail"], "peer": ctx.session.peer})
        for e in ctx.events
    ]
