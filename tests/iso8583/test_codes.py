"""Response code table: completeness, actions, and cause IDs that exist in causes.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posdoctor.doctor.catalog import CAUSES

from posdoctor.iso8583.codes import (
    REVERSAL_REASONS,
    RESPONSE_CODES,
    ResponseCode,
    TerminalAction,
    describe,
    describe_reversal_reason,
    is_approved,
)

CAUSES_MD = Path(__file__).resolve().parents[3] / "shared" / "causes.md"
CUP_CODES = ("00 01 03 04 05 12 13 14 22 25 30 40 51 54 55 58 61 64 68 75 77 94 95 96 97 98 99 A0 A7").split()
ACQUIRER_CODES = ("06", "07", "08", "18", "19")


def test_every_reference_code_is_present_with_both_languages() -> None:
    for code in (*CUP_CODES, *ACQUIRER_CODES):
        entry = RESPONSE_CODES[code]
        assert entry.code == code
        assert entry.zh and entry.en and entry.zh != entry.en
        assert entry.acquirer_specific is (code in ACQUIRER_CODES)


@pytest.mark.parametrize(("code", "action"), [
    ("00", TerminalAction.ACCEPT), ("51", TerminalAction.DECLINE), ("55", TerminalAction.REENTER_PIN),
    ("77", TerminalAction.SIGN_IN), ("A0", TerminalAction.SIGN_IN), ("99", TerminalAction.SIGN_IN),
    ("18", TerminalAction.DOWNLOAD_TMK), ("07", TerminalAction.UPDATE_APP), ("75", TerminalAction.DECLINE),
])
def test_terminal_actions(code: str, action: TerminalAction) -> None:
    assert describe(code).action is action


@pytest.mark.parametrize(("code", "causes"), [
    ("51", {"txn.insufficient_funds"}),
    ("97", {"status.terminal_unregistered", "config.wrong_terminal_id"}),
    ("03", {"status.merchant_frozen", "status.merchant_pending", "status.merchant_closed", "config.wrong_terminal_id"}),
    ("A0", {"keys.mak_desync"}),
    ("77", {"keys.resign_required"}),
    ("98", {"backend.issuer_timeout"}),
    ("68", {"backend.issuer_timeout"}),
    ("96", {"backend.host_down"}),
    ("58", {"backend.policy_restriction"}),
    ("40", {"backend.policy_restriction"}),
    ("55", {"txn.wrong_pin"}),
    ("75", {"txn.wrong_pin"}),
    ("61", {"txn.limit_exceeded"}),
    ("94", {"txn.duplicate"}),
    ("95", {"txn.settlement_unbalanced"}),
])
def test_codes_name_their_causes(code: str, causes: set[str]) -> None:
    assert causes <= set(RESPONSE_CODES[code].causes)


def test_unknown_code_gets_a_generic_decline() -> None:
    entry = describe("Z9")
    assert entry == ResponseCode("Z9", "未知应答码 Z9", "unknown response code Z9", TerminalAction.DECLINE)
    assert not is_approved("Z9")
    assert is_approved("00") and is_approved("10") and not is_approved("05")


def test_reversal_reasons() -> None:
    assert set(REVERSAL_REASONS) == {"98", "A0", "06", "96"}
    assert describe_reversal_reason("98") == ("接收超时", "receive timeout")
    assert describe_reversal_reason("17") == ("未知冲正原因 17", "unknown reversal reason 17")


def _catalog_ids(text: str) -> set[str]:
    ids = set()
    for line in text.splitlines():
        match = re.match(r"\|\s*([a-z]+\.[a-z_]+)\s*\|", line)
        if match:
            ids.add(match[1])
    return ids


def test_every_referenced_cause_exists_in_the_catalog() -> None:
    referenced = {cause for entry in RESPONSE_CODES.values() for cause in entry.causes}
    assert referenced  # the table does name causes
    assert referenced - set(CAUSES) == set()
    if CAUSES_MD.is_file():  # the shared contract, when this checkout sits beside it
        assert referenced - _catalog_ids(CAUSES_MD.read_text(encoding="utf-8")) == set()
