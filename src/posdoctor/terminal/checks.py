"""The checks a CUP terminal makes on every answer before believing it.

In order: MTI = request MTI + 10 (解包消息码不符), field 3 (处理码不符), 11 (流水号不符),
41 (终端号不符), 42 when approved (商户号不符), amount when approved (金额不符; not for a
partial approval, 10); then, for an approved answer to a MAC'ed request, the MAC
(MAC校验失败). A mismatch means the answer cannot be trusted: a reversible request is
reversed with reason 06 (A0 for the MAC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from posdoctor.iso8583.codec import mac_input
from posdoctor.iso8583.errors import DecodeError
from posdoctor.terminal.errors import ResponseCheckError
from posdoctor.terminal.messages import M, Message

__all__ = ["expected_answer_mti", "check_answer_fields", "check_answer_mac", "APPROVED", "PARTIAL"]

APPROVED = "00"
PARTIAL = "10"
_UNPACK_REASON = "06"

_ALWAYS: tuple[tuple[str, Message], ...] = (("11", M.STAN_MISMATCH), ("41", M.TID_MISMATCH))


def expected_answer_mti(mti: str) -> str:
    return f"{int(mti) + 10:04d}"


def _mismatch(message: Message, field: str, sent: str | None, got: str | None) -> ResponseCheckError:
    # values are STAN/TID/MID/codes/amounts only: nothing secret is compared here
    return ResponseCheckError(message, field=field, reversal_reason=_UNPACK_REASON, sent=sent, received=got)


def check_answer_fields(request: Mapping[str, str], answer: Mapping[str, str]) -> None:
    """Raise `ResponseCheckError` for the first field of `answer` that does not fit."""
    want_mti = expected_answer_mti(request["t"])
    if answer.get("t") != want_mti:
        raise _mismatch(M.MTI_MISMATCH, "t", want_mti, answer.get("t"))
    rc = answer.get("39")
    approved = rc in (APPROVED, PARTIAL)
    if "3" in request and (approved or "3" in answer) and answer.get("3") != request["3"]:
        raise _mismatch(M.PROCESSING_MISMATCH, "3", request["3"], answer.get("3"))
    for field, message in _ALWAYS:
        if field in request and answer.get(field) != request[field]:
            raise _mismatch(message, field, request[field], answer.get(field))
    if rc == APPROVED and "42" in request and answer.get("42") != request["42"]:
        raise _mismatch(M.MID_MISMATCH, "42", request["42"], answer.get("42"))
    if rc == APPROVED and "4" in request and answer.get("4") != request["4"]:
        raise _mismatch(M.AMOUNT_MISMATCH, "4", request["4"], answer.get("4"))


def check_answer_mac(body: bytes, answer: Mapping[str, str], mac_matches: Callable[[bytes, bytes], bool],
                     *, required: bool) -> None:
    """An approved answer's field 64 must be the MAC of its body (when `required`, present)."""
    if answer.get("39") != APPROVED:
        return
    mac_hex = answer.get("64")
    if mac_hex is None:
        if required:
            raise ResponseCheckError(M.MAC_FAILED, field="64", reversal_reason="A0", reason="answer has no MAC")
        return
    try:
        data = mac_input(body)
    except DecodeError:
        raise ResponseCheckError(M.MAC_FAILED, field="64", reversal_reason="A0", reason="no MAC block") from None
    if not mac_matches(data, bytes.fromhex(mac_hex)):
        raise ResponseCheckError(M.MAC_FAILED, field="64", reversal_reason="A0", reason="MAC differs")
