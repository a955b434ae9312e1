"""Answer checks: each mismatch gives its exact section 8 string and reversal reason."""

from __future__ import annotations

import pytest
from termhost import MAK, answer, mac_body

from posdoctor.crypto.mac import verify_mac
from posdoctor.iso8583.codec import decode_message
from posdoctor.terminal.checks import check_answer_fields, check_answer_mac, expected_answer_mti
from posdoctor.terminal.errors import ResponseCheckError

REQUEST = {"t": "0200", "3": "000000", "4": "000000001000", "11": "000123", "41": "20000001",
           "42": "898100000000002", "64": "0" * 16}


def mac_ok(data: bytes, mac: bytes) -> bool:
    return verify_mac(MAK, data, mac)


@pytest.mark.parametrize(("mti", "answer_mti"), [("0200", "0210"), ("0800", "0810"), ("0820", "0830"),
                                                 ("0400", "0410"), ("0500", "0510"), ("0320", "0330")])
def test_expected_answer_mti(mti: str, answer_mti: str) -> None:
    assert expected_answer_mti(mti) == answer_mti


def test_matching_answer_passes() -> None:
    check_answer_fields(REQUEST, answer(REQUEST))


@pytest.mark.parametrize(
    ("change", "zh", "field"),
    [
        ({"t": "0230"}, "解包消息码不符", "t"),
        ({"3": "310000"}, "处理码不符", "3"),
        ({"11": "000124"}, "流水号不符", "11"),
        ({"11": None}, "流水号不符", "11"),
        ({"41": "20000002"}, "终端号不符", "41"),
        ({"42": "898100000000009"}, "商户号不符", "42"),
        ({"4": "000000001001"}, "金额不符", "4"),
        ({"3": None}, "处理码不符", "3"),
    ],
)
def test_each_mismatch_is_named(change: dict[str, str | None], zh: str, field: str) -> None:
    bad = {k: v for k, v in {**answer(REQUEST), **change}.items() if v is not None}
    with pytest.raises(ResponseCheckError) as caught:
        check_answer_fields(REQUEST, bad)
    assert caught.value.message.zh == zh
    assert caught.value.field == field
    assert caught.value.reversal_reason == "06"


def test_mti_is_checked_first() -> None:
    bad = {**answer(REQUEST), "t": "0810", "11": "999999"}
    with pytest.raises(ResponseCheckError, match="check.mti"):
        check_answer_fields(REQUEST, bad)


def test_declines_skip_merchant_and_amount_but_not_stan_or_tid() -> None:
    declined = {**answer(REQUEST, "51"), "42": "other", "4": "000000000001"}
    check_answer_fields(REQUEST, declined)
    without_3 = {k: v for k, v in answer(REQUEST, "51").items() if k != "3"}
    check_answer_fields(REQUEST, without_3)
    with pytest.raises(ResponseCheckError, match="check.tid"):
        check_answer_fields(REQUEST, {**answer(REQUEST, "51"), "41": "other"})


def test_partial_approval_skips_the_amount() -> None:
    check_answer_fields(REQUEST, {**answer(REQUEST, "10"), "4": "000000000500"})


def test_mac_of_approved_answer_is_verified() -> None:
    body = mac_body(answer(REQUEST), MAK)
    msg = decode_message(body)
    check_answer_mac(body, msg, mac_ok, required=True)
    tampered = body[:-9] + bytes([body[-9] ^ 1]) + body[-8:]
    with pytest.raises(ResponseCheckError) as caught:
        check_answer_mac(tampered, decode_message(tampered), mac_ok, required=True)
    assert (caught.value.message.zh, caught.value.reversal_reason) == ("MAC校验失败", "A0")


def test_missing_mac_fails_only_when_required() -> None:
    msg = {k: v for k, v in answer(REQUEST).items() if k != "64"}
    body = mac_body(msg, None)
    check_answer_mac(body, msg, mac_ok, required=False)
    with pytest.raises(ResponseCheckError, match="check.mac"):
        check_answer_mac(body, msg, mac_ok, required=True)


def test_declined_answers_are_not_mac_checked() -> None:
    msg = answer(REQUEST, "A0")
    check_answer_mac(mac_body(msg, bytes(16)), msg, mac_ok, required=True)
