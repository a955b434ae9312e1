"""Response codes (field 39) of the CUP dialect: text, terminal action, likely causes.

`RESPONSE_CODES` holds the CUP table of the reference (section 7), partial approval
``10``, and the acquirer-specific codes seen in one Centerm build (06, 07, 08, 18, 19:
``acquirer_specific=True``; the CUP meaning of 06 "error" survives as a reversal
reason, see `REVERSAL_REASONS`). Cause IDs are those of ``causes.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["TerminalAction", "ResponseCode", "RESPONSE_CODES", "REVERSAL_REASONS", "describe",
           "describe_reversal_reason", "is_approved", "APPROVED"]

APPROVED = "00"


class TerminalAction(Enum):
    """What a terminal does on receiving the code."""

    ACCEPT = "accept"
    DECLINE = "decline"
    REENTER_PIN = "reenter_pin"
    SIGN_IN = "sign_in"
    DOWNLOAD_TMK = "download_tmk"
    UPDATE_APP = "update_app"
    CONTACT_TMS = "contact_tms"


@dataclass(frozen=True)
class ResponseCode:
    code: str
    zh: str
    en: str
    action: TerminalAction
    causes: tuple[str, ...] = ()
    acquirer_specific: bool = False


_A = TerminalAction
_MERCHANT = ("status.merchant_frozen", "status.merchant_pending", "status.merchant_closed",
             "config.wrong_terminal_id", "status.terminal_merchant_mismatch")

_TABLE: tuple[ResponseCode, ...] = (
    ResponseCode("00", "交易成功", "approved", _A.ACCEPT),
    ResponseCode("01", "请持卡人与发卡银行联系", "refer to card issuer", _A.DECLINE),
    ResponseCode("03", "无效商户", "invalid merchant", _A.DECLINE, _MERCHANT),
    ResponseCode("04", "没收卡", "pick up card", _A.DECLINE),
    ResponseCode("05", "身份认证失败", "cardholder verification failed", _A.DECLINE),
    ResponseCode("10", "部分批准", "partially approved", _A.ACCEPT),
    ResponseCode("12", "无效交易", "invalid transaction", _A.DECLINE, ("backend.policy_restriction",)),
    ResponseCode("13", "无效金额", "invalid amount", _A.DECLINE),
    ResponseCode("14", "无效卡号", "invalid card number", _A.DECLINE),
    ResponseCode("22", "故障怀疑/操作有误", "suspected malfunction or wrong operation", _A.DECLINE),
    ResponseCode("25", "没有原始交易", "original transaction not found", _A.DECLINE),
    ResponseCode("30", "报文格式错误", "message format error", _A.DECLINE,
                 ("config.wrong_tpdu", "upgrade.firmware_defect")),
    ResponseCode("40", "请求的功能尚不支持", "requested function not supported", _A.DECLINE,
                 ("backend.policy_restriction",)),
    ResponseCode("51", "余额不足", "insufficient funds", _A.DECLINE, ("txn.insufficient_funds",)),
    ResponseCode("54", "过期的卡", "expired card", _A.DECLINE),
    ResponseCode("55", "密码错", "incorrect PIN", _A.REENTER_PIN, ("txn.wrong_pin",)),
    ResponseCode("58", "发卡方不允许该卡在本终端进行此交易", "transaction not permitted on this terminal",
                 _A.DECLINE, ("backend.policy_restriction",)),
    ResponseCode("61", "超出金额限制", "amount limit exceeded", _A.DECLINE, ("txn.limit_exceeded",)),
    ResponseCode("64", "原始金额错误", "original amount incorrect", _A.DECLINE),
    ResponseCode("68", "发卡行响应超时", "issuer response timed out", _A.DECLINE, ("backend.issuer_timeout",)),
    ResponseCode("75", "密码错误次数超限", "PIN tries exceeded", _A.DECLINE, ("txn.wrong_pin",)),
    ResponseCode("77", "请重新签到再进行交易", "sign in again before transacting", _A.SIGN_IN,
                 ("keys.resign_required",)),
    ResponseCode("94", "重复交易", "duplicate transaction", _A.DECLINE, ("txn.duplicate",)),
    ResponseCode("95", "对帐不平", "reconciliation unbalanced", _A.DECLINE, ("txn.settlement_unbalanced",)),
    ResponseCode("96", "交换中心异常(系统故障)", "system malfunction at the switch", _A.DECLINE,
                 ("backend.host_down",)),
    ResponseCode("97", "终端未登记", "terminal not registered", _A.DECLINE,
                 ("status.terminal_unregistered", "config.wrong_terminal_id", "status.terminal_disabled")),
    ResponseCode("98", "发卡方超时", "issuer timed out (no answer)", _A.DECLINE, ("backend.issuer_timeout",)),
    ResponseCode("99", "PIN格式错,请重新签到", "PIN block format error, sign in again", _A.SIGN_IN,
                 ("keys.mak_desync", "keys.resign_required")),
    ResponseCode("A0", "MAC校验错,请重新签到", "MAC verification failed, sign in again", _A.SIGN_IN,
                 ("keys.mak_desync",)),
    ResponseCode("A7", "安全处理失败", "security processing failed", _A.DECLINE, ("keys.mak_desync",)),
    # acquirer-specific (one Centerm build, not CUP)
    ResponseCode("06", "终端信息更新,请重新签到", "terminal information updated, sign in again", _A.SIGN_IN,
                 ("keys.resign_required",), acquirer_specific=True),
    ResponseCode("07", "需要更新POS机程序", "POS application update required", _A.UPDATE_APP,
                 ("upgrade.version_blocked", "upgrade.not_applied"), acquirer_specific=True),
    ResponseCode("08", "无效的SN", "invalid device serial number", _A.DECLINE,
                 ("status.device_not_whitelisted",), acquirer_specific=True),
    ResponseCode("18", "重新下载主密钥", "download the master key again", _A.DOWNLOAD_TMK,
                 ("keys.tmk_missing", "keys.tmk_mismatch"), acquirer_specific=True),
    ResponseCode("19", "向TMS发起联机报到", "report to the TMS online", _A.CONTACT_TMS,
                 ("upgrade.not_applied",), acquirer_specific=True),
)

RESPONSE_CODES: dict[str, ResponseCode] = {rc.code: rc for rc in _TABLE}

REVERSAL_REASONS: dict[str, tuple[str, str]] = {
    "98": ("接收超时", "receive timeout"),
    "A0": ("应答MAC校验失败", "response MAC verification failed"),
    "06": ("应答解包错误", "response could not be unpacked"),
    "96": ("批准后终端故障", "terminal fault after approval"),
}
"""Field 39 of a 0400 reversal request: why the terminal reverses."""


def describe(code: str) -> ResponseCode:
    """The entry for `code`; an unknown code gets a generic decline entry (never KeyError)."""
    known = RESPONSE_CODES.get(code)
    if known is not None:
        return known
    return ResponseCode(str(code), f"未知应答码 {code}", f"unknown response code {code}", TerminalAction.DECLINE)


def describe_reversal_reason(code: str) -> tuple[str, str]:
    return REVERSAL_REASONS.get(code, (f"未知冲正原因 {code}", f"unknown reversal reason {code}"))


def is_approved(code: str) -> bool:
    return describe(code).action is TerminalAction.ACCEPT
