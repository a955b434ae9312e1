"""Every message the emulated terminal shows a merchant, in Chinese and English.

Each `Message` has a stable dotted `code` (used in events, JSON output and tests), the
Chinese text a real CUP terminal shows and an English translation. Failure texts are the
strings of the reference's section 8 (``cup8583.md``) wherever the reference has one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Message", "M", "UPGRADE_MESSAGES", "TMS_MESSAGES", "MESSAGES", "by_code"]


@dataclass(frozen=True, slots=True)
class Message:
    code: str
    zh: str
    en: str

    def __str__(self) -> str:
        return f"{self.zh} / {self.en}"


class M:
    """The catalogue, by name."""

    # --- communication (section 8) ---------------------------------------------------
    UNKNOWN_HOST = Message("comm.unknown_host", "未知主机异常", "Unknown host: the host name cannot be resolved")
    CONNECT_TIMEOUT = Message("comm.connect_timeout", "连接超时", "Connection to the host timed out")
    CONNECT_FAILED = Message("comm.connect_failed", "连接主机异常", "Cannot connect to the host")
    LINK_DOWN = Message("comm.link_down", "网络未连接", "Network link is down")
    RECEIVE_FAILED = Message("comm.receive_failed", "接收数据失败", "No answer received from the host")
    RECEIVE_ERROR = Message("comm.receive_error", "接收数据错误",
                            "Answer received incompletely (length does not match)")
    PACK_ERROR = Message("comm.pack_error", "组包异常", "The request message could not be built")
    UNPACK_ERROR = Message("comm.unpack_error", "解包异常", "The answer could not be parsed")

    # --- response checks (section 8) -------------------------------------------------
    MTI_MISMATCH = Message("check.mti", "解包消息码不符", "Answer message type does not match the request")
    PROCESSING_MISMATCH = Message("check.processing_code", "处理码不符",
                                  "Answer processing code does not match the request")
    STAN_MISMATCH = Message("check.stan", "流水号不符", "Answer trace number (STAN) does not match the request")
    TID_MISMATCH = Message("check.tid", "终端号不符", "Answer terminal ID does not match this terminal")
    MID_MISMATCH = Message("check.mid", "商户号不符", "Answer merchant ID does not match this terminal")
    AMOUNT_MISMATCH = Message("check.amount", "金额不符", "Answer amount does not match the request")
    MAC_FAILED = Message("check.mac", "MAC校验失败", "Answer MAC verification failed")

    # --- keys ------------------------------------------------------------------------
    KEY_CHECK_FAILED = Message("keys.check_failed", "密钥校验失败，请重新下载主密钥",
                               "Key check value failed, download the master key again")
    NO_TMK = Message("keys.no_tmk", "请下载主密钥", "Please download the master key")
    NO_TRANSPORT_KEY = Message("keys.no_transport_key", "无传输密钥,请联系收单机构注入",
                               "No transport key: ask the acquirer to inject it")
    KEY_STORE_UNREADABLE = Message("keys.unreadable", "密钥读取失败,请重新下载主密钥",
                                   "Stored keys cannot be read, download the master key again")

    # --- local refusals ----------------------------------------------------------------
    NOT_SIGNED_IN = Message("local.not_signed_in", "请签到后再做交易", "Please sign in before transacting")
    BATCH_FULL = Message("local.batch_full", "交易已满,请结算", "Transaction log is full, please settle")
    NO_CAPK = Message("local.no_capk", "请先下载CAPK参数", "Please download the CA public keys first")
    NO_EMV = Message("local.no_emv", "请先下载EMV参数", "Please download the EMV (AID) parameters first")
    ORIGINAL_MISSING = Message("local.original_missing", "原交易不存在", "Original transaction not found")
    ORIGINAL_NOT_VOIDABLE = Message("local.original_not_voidable", "原交易不能撤销",
                                    "Original transaction cannot be voided")
    SETTLE_FIRST = Message("local.settle_first", "有未结算交易,请先结算",
                           "Unsettled transactions exist, please settle first")
    INVALID_AMOUNT = Message("local.invalid_amount", "金额无效", "Invalid amount")
    INVALID_CARD = Message("local.invalid_card", "无效卡号", "Invalid card number")
    INVALID_PIN = Message("local.invalid_pin", "密码格式错误,请重新输入", "PIN must be 4 to 12 digits, enter it again")
    OPERATOR_LOCKED = Message("local.operator_locked", "操作员已被锁定,请联系主管",
                              "Operator is locked, ask the supervisor")
    WRONG_PASSWORD = Message("local.wrong_password", "操作员密码错误", "Wrong operator password")
    UNKNOWN_OPERATOR = Message("local.unknown_operator", "操作员不存在", "No such operator")
    NO_OPERATOR = Message("local.no_operator", "请先登录操作员", "Please log in an operator first")

    # --- reversal (section 8) --------------------------------------------------------
    REVERSING = Message("reversal.in_progress", "冲正中", "Reversal in progress")
    REVERSAL_DONE = Message("reversal.done", "冲正成功", "Reversal accepted by the host")
    REVERSAL_FAILED = Message("reversal.failed", "冲正不成功,请与客服联系",
                              "Reversal failed, please contact customer service")
    REVERSAL_SAVED = Message("reversal.saved", "已保存冲正记录", "Reversal record saved")

    # --- hardware --------------------------------------------------------------------
    SELF_CHECK_OK = Message("device.self_check_ok", "自检通过", "Self-check passed")
    SELF_CHECK_FAILED = Message("device.self_check_failed", "自检失败", "Self-check failed")
    PRINTER_FAULT = Message("device.printer", "打印机故障或缺纸", "Printer fault or out of paper")
    CARD_READER_FAULT = Message("device.card_reader", "读卡失败,请检查读卡器", "Card read failed, check the card reader")
    KEYPAD_FAULT = Message("device.keypad", "键盘故障", "Keypad fault")
    STORAGE_FAULT = Message("device.storage", "存储器故障", "Storage fault")
    POWER_FAULT = Message("device.power", "电源异常", "Power supply fault")
    TAMPERED = Message("device.tamper", "安全模块触发,终端已锁定", "Security module triggered, terminal locked")

    # --- successes -------------------------------------------------------------------
    TMK_DOWNLOADED = Message("ok.tmk_download", "主密钥下载成功", "Master key downloaded")
    TMK_INJECTED = Message("ok.tmk_injected", "主密钥已注入", "Master key injected")
    TK_INJECTED = Message("ok.tk_injected", "传输密钥已注入", "Transport key injected")
    STATUS_UPLOADED = Message("ok.status_upload", "终端状态上送成功", "Terminal status uploaded")
    PARAMS_DOWNLOADED = Message("ok.params", "参数下载成功", "Parameters downloaded")
    CAPK_DOWNLOADED = Message("ok.capk", "公钥下载成功", "CA public keys downloaded")
    AID_DOWNLOADED = Message("ok.aid", "IC卡参数下载成功", "IC card (AID) parameters downloaded")
    SIGNED_IN = Message("ok.sign_in", "签到成功", "Signed in")
    SIGNED_OFF = Message("ok.sign_off", "签退成功", "Signed off")
    ECHO_OK = Message("ok.echo", "回响测试成功", "Echo test succeeded")
    APPROVED = Message("ok.approved", "交易成功", "Transaction approved")
    SETTLED = Message("ok.settled", "结算成功,对账平", "Settled, totals balanced")
    SETTLED_UNBALANCED = Message("ok.settled_unbalanced", "结算完成,对账不平,已批上送",
                                 "Settled, totals unbalanced: details uploaded")
    SETTLE_ERROR = Message("settle.error", "结算失败,对账出错", "Settlement failed: reconciliation error")
    BATCH_UPLOADED = Message("ok.batch_upload", "批上送完成", "Batch upload complete")
    OPERATOR_LOGGED_IN = Message("ok.operator_login", "操作员登录成功", "Operator logged in")
    SELF_CHECK_RECORDED = Message("ok.self_check", "自检完成", "Self-check complete")

    # --- host-driven -----------------------------------------------------------------
    HOST_DECLINED = Message("host.declined", "交易失败", "Declined by the host")
    HOST_REQUIRES = Message("host.requirement", "主机要求后续处理", "The host requested a follow-up action")
    SIGN_IN_AGAIN = Message("host.sign_in_again", "请重新签到", "Please sign in again")
    DOWNLOAD_INCOMPLETE = Message("host.download_incomplete", "下载未完成", "Download did not complete")


class UPGRADE_MESSAGES:
    POSTPONED = Message("upgrade.postponed", "升级已推迟", "Upgrade postponed")
    SETTLE_FAILED = Message("upgrade.settle_failed", "升级前结算失败,升级推迟",
                            "Settlement before the upgrade failed: upgrade postponed")
    DOWNLOAD_FAILED = Message("upgrade.download_failed", "升级包下载失败", "Upgrade package download failed")
    VERIFY_FAILED = Message("upgrade.verify_failed", "升级包校验失败(校验值或签名不符)",
                            "Upgrade package failed verification (checksum or signature)")
    REFUSED = Message("upgrade.refused", "升级包不适用于本终端", "The upgrade package does not fit this terminal")
    INSTALLED = Message("ok.upgrade_installed", "升级包已安装,重启中", "Upgrade installed, rebooting")
    SELF_CHECK_FAILED = Message("upgrade.self_check_failed", "升级后自检失败", "Self-check failed after the upgrade")
    SIGN_IN_FAILED = Message("upgrade.sign_in_failed", "升级后签到测试失败", "Test sign-in failed after the upgrade")
    CRASHED = Message("upgrade.crash", "新版本启动后崩溃", "The new version crashed on start")
    ROLLED_BACK = Message("upgrade.rolled_back", "升级失败,已回退到原版本",
                          "Upgrade failed: back on the previous version")
    COMMITTED = Message("ok.upgrade", "升级成功", "Upgrade complete")
    ROLLBACK_ORDERED = Message("upgrade.rollback_ordered", "按平台要求已回退版本",
                               "Rolled back to the previous version as the TMS asked")
    BOOT_FALLBACK = Message("upgrade.boot_fallback", "启动分区异常,已从备用分区启动",
                            "The boot slot failed: started from the other slot")
    RESET = Message("upgrade.reset", "升级重置了终端数据", "The upgrade reset terminal data")
    WITHDRAWN = Message("upgrade.withdrawn", "平台已撤回升级,未安装", "The TMS withdrew the upgrade: not installed")


class TMS_MESSAGES:
    UNREACHABLE = Message("tms.unreachable", "无法连接终端管理平台", "Cannot reach the TMS")
    TIMEOUT = Message("tms.timeout", "终端管理平台响应超时", "The TMS did not answer in time")
    REFUSED = Message("tms.refused", "终端管理平台拒绝了本设备", "The TMS refused this device")
    BAD_ANSWER = Message("tms.bad_answer", "终端管理平台应答异常", "The TMS answer could not be used")


MESSAGES: dict[str, Message] = {
    value.code: value
    for group in (M, UPGRADE_MESSAGES, TMS_MESSAGES)
    for value in vars(group).values()
    if isinstance(value, Message)
}


def by_code(code: str) -> Message:
    """The message with this code (KeyError for an unknown one: codes are a closed set)."""
    return MESSAGES[code]
