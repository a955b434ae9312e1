"""The one mapping from internal results to field 39."""

import pytest

from posdoctor.host.results import Result, response_code
from posdoctor.iso8583.codes import RESPONSE_CODES

EXPECTED = {
    Result.OK: "00", Result.FORMAT_ERROR: "30", Result.UNSUPPORTED: "40", Result.UNKNOWN_TERMINAL: "97",
    Result.TERMINAL_DISABLED: "97", Result.DEVICE_MISMATCH: "08", Result.MERCHANT_MISMATCH: "03",
    Result.MERCHANT_UNUSABLE: "03", Result.NOT_SIGNED_IN: "77", Result.MAC_INVALID: "A0",
    Result.KEY_UNAVAILABLE: "A7", Result.PIN_FORMAT: "99", Result.DUPLICATE: "94",
    Result.ORIGINAL_NOT_FOUND: "25", Result.ORIGINAL_NOT_USABLE: "12", Result.ORIGINAL_AMOUNT: "64",
    Result.INVALID_AMOUNT: "13", Result.RECORD_NOT_FOUND: "25", Result.UNKNOWN_CARD: "14",
    Result.CARD_EXPIRED: "54", Result.WRONG_PIN: "55", Result.PIN_TRIES_EXCEEDED: "75",
    Result.INSUFFICIENT_FUNDS: "51", Result.OVER_LIMIT: "61", Result.ISSUER_TIMEOUT: "98",
    Result.ISSUER_DECLINED: "05", Result.SYSTEM_ERROR: "96",
    Result.TXN_NOT_ALLOWED: "58", Result.APP_UPDATE_REQUIRED: "07",
}


@pytest.mark.parametrize("result", list(Result))
def test_every_result_has_a_known_code(result):
    code = response_code(result)
    assert code == EXPECTED[result]
    assert code in RESPONSE_CODES


def test_issuer_timeout_code_is_configurable():
    assert response_code(Result.ISSUER_TIMEOUT, issuer_timeout_code="68") == "68"


def test_forced_code_only_for_issuer_declines():
    assert response_code(Result.ISSUER_DECLINED, forced_code="58") == "58"
    assert response_code(Result.WRONG_PIN, forced_code="58") == "55"
