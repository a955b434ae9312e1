"""The cause catalog: every reason a POS terminal stops working, by stable ID.

The IDs are the contract of ``../shared/causes.md`` (kept exactly); the simulator
injects them, the doctor names them, JSON output and tests use them. ``family`` groups
causes for the rule modules; ``symptoms`` are what the merchant sees (from the seeds
each cause comes from); ``fleet`` marks causes that can hit many terminals at once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Cause", "CAUSES", "FAMILIES", "SYMPTOMS", "SEED_SYMPTOM", "get_cause", "cause_ids"]

# Seed document number -> the symptom it describes.
SEED_SYMPTOM: dict[str, str] = {
    "000": "init_failed",
    "001": "unusable",
    "002": "signin_failed",
    "003": "broken_after_upgrade",
    "004": "status_abnormal",
}

SYMPTOMS: dict[str, tuple[str, str]] = {
    "init_failed": ("终端初始化失败", "Terminal fails to initialise"),
    "unusable": ("个人POS机无法使用", "POS terminal cannot be used"),
    "signin_failed": ("无法签到", "Cannot sign in"),
    "broken_after_upgrade": ("升级后无法使用", "Unusable after an upgrade"),
    "status_abnormal": ("用户状态异常", "Account status abnormal"),
}

# family id -> (中文, English)
FAMILIES: dict[str, tuple[str, str]] = {
    "config": ("配置与密钥", "Configuration and keys"),
    "net": ("网络", "Network"),
    "backend": ("后台与政策", "Acquirer / backend"),
    "status": ("用户状态", "Registration and status"),
    "software": ("软件与升级", "Software and upgrade"),
    "hw": ("硬件与环境", "Hardware and environment"),
    "op": ("操作不当", "Operation"),
    "txn": ("交易与资金", "Transactions and funds"),
}


@dataclass(frozen=True, slots=True)
class Cause:
    id: str
    family: str
    zh: str
    en: str
    seeds: tuple[str, ...]
    fleet: bool = False

    @property
    def symptoms(self) -> tuple[str, ...]:
        return tuple(SEED_SYMPTOM[s] for s in self.seeds)

    def name(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


_ROWS: tuple[Cause, ...] = (
    Cause("config.wrong_host", "config", "主机IP/端口设置错误", "Wrong host IP address or port", ('000', '003')),
    Cause("config.wrong_tpdu", "config", "TPDU/报文头配置错误", "Wrong TPDU or message header setting", ('000',)),
    Cause("config.wrong_terminal_id", "config", "终端号/商户号录入错误", "Terminal ID or merchant ID entered wrongly", ('000', '004')),
    Cause("keys.tmk_missing", "config", "未下载主密钥", "Master key (TMK) not downloaded", ('000', '002')),
    Cause("keys.tmk_mismatch", "config", "主密钥不一致", "Master key differs from the host's", ('000', '002')),
    Cause("keys.mak_desync", "config", "工作密钥不同步", "Working keys out of step with the host", ('002', '004')),
    Cause("keys.resign_required", "config", "需要重新签到", "Sign-in required again", ('002',)),
    Cause("params.download_incomplete", "config", "参数/公钥下载不完整", "Parameter / public-key download incomplete", ('000',)),
    Cause("params.corrupt", "config", "参数文件损坏", "Parameter file corrupted", ('000', '003')),
    Cause("net.offline", "net", "网络未连接", "Network not connected", ('000', '001', '004')),
    Cause("net.dns_failure", "net", "域名解析失败", "Host name cannot be resolved", ('004',)),
    Cause("net.firewall_blocked", "net", "防火墙拦截端口", "Firewall blocks the host port", ('004',)),
    Cause("net.unstable", "net", "网络不稳定/信号弱", "Unstable network or weak signal", ('001', '002', '004')),
    Cause("net.host_overloaded", "net", "主机繁忙/网络拥堵", "Host busy or network congested", ('002',), fleet=True),
    Cause("backend.host_down", "backend", "收单后台故障", "Acquiring host down", ('003', '004'), fleet=True),
    Cause("backend.issuer_timeout", "backend", "发卡方超时", "Card issuer timed out", ('002',), fleet=True),
    Cause("backend.policy_restriction", "backend", "政策/业务限制", "Transaction type restricted by policy", ('002', '003')),
    Cause("status.terminal_unregistered", "status", "终端未登记", "Terminal not registered", ('004',)),
    Cause("status.terminal_disabled", "status", "终端已停用", "Terminal disabled", ('004',)),
    Cause("status.merchant_frozen", "status", "商户被冻结(风控)", "Merchant frozen by risk control", ('002', '004')),
    Cause("status.merchant_pending", "status", "商户资料审核未完成", "Merchant onboarding not approved yet", ('003',)),
    Cause("status.merchant_closed", "status", "商户已解约", "Merchant contract terminated", ('004',)),
    Cause("status.terminal_merchant_mismatch", "status", "终端与商户不匹配", "Terminal bound to a different merchant", ('004',)),
    Cause("status.device_not_whitelisted", "status", "设备序列号未登记", "Device serial number not registered", ('004',)),
    Cause("status.operator_locked", "status", "操作员被锁定", "Operator locked", ('001', '004')),
    Cause("status.settlement_account_invalid", "status", "结算账户异常", "Settlement account invalid", ('001', '002')),
    Cause("upgrade.download_corrupt", "software", "升级包下载不完整", "Upgrade package download incomplete or corrupt", ('003',)),
    Cause("upgrade.incompatible_model", "software", "硬件与新版软件不兼容", "New software incompatible with this hardware model", ('003',)),
    Cause("upgrade.firmware_defect", "software", "新版本存在缺陷", "Defect in the new software version", ('003',), fleet=True),
    Cause("upgrade.config_lost", "software", "升级后配置丢失", "Configuration lost by the upgrade", ('003',)),
    Cause("upgrade.keys_lost", "software", "升级后密钥丢失", "Keys lost by the upgrade", ('003',)),
    Cause("upgrade.batch_lost", "software", "升级导致未结算交易丢失", "Unsettled transactions lost by the upgrade", ('003',)),
    Cause("upgrade.version_blocked", "software", "软件版本过低被拒绝", "Software version below the required minimum", ('003',)),
    Cause("upgrade.not_applied", "software", "升级通知未执行", "Assigned upgrade not applied", ('003',)),
    Cause("sw.app_conflict", "software", "第三方软件冲突", "Conflict with a third-party app", ('000', '002', '004')),
    Cause("sw.crash", "software", "系统崩溃/死机", "System crash or freeze", ('003', '004')),
    Cause("sw.unauthorized_app", "software", "安装未授权软件", "Unauthorised software installed", ('001', '004')),
    Cause("hw.printer", "hw", "打印机故障/缺纸", "Printer fault or out of paper", ('000', '003', '004')),
    Cause("hw.card_reader", "hw", "读卡器故障", "Card reader fault", ('000', '002', '003', '004')),
    Cause("hw.keypad_touch", "hw", "键盘/触摸屏故障", "Keypad or touch screen fault", ('001', '004')),
    Cause("hw.storage", "hw", "存储器/内存卡损坏", "Storage or memory card damaged", ('000', '002')),
    Cause("hw.power", "hw", "电源不稳定/断电", "Unstable power or power loss", ('001', '002', '004'), fleet=True),
    Cause("hw.tamper", "hw", "安全模块触发锁机", "Security module tripped, terminal locked", ('004',)),
    Cause("op.wrong_password", "op", "操作员密码输入错误", "Operator password typed wrongly", ('001', '004')),
    Cause("op.not_signed_in", "op", "未签到即交易", "Transacting without signing in", ('000', '002')),
    Cause("op.settle_required", "op", "需先结算", "Settlement required first", ('002', '003')),
    Cause("op.bluetooth_pairing", "op", "蓝牙配对失败", "Bluetooth pairing failed", ('002',)),
    Cause("txn.insufficient_funds", "txn", "余额不足", "Insufficient funds on the card", ('002',)),
    Cause("txn.wrong_pin", "txn", "持卡人密码错误", "Cardholder PIN wrong", ('001', '004')),
    Cause("txn.limit_exceeded", "txn", "超出金额限制", "Amount above the card's limit", ('001', '002')),
    Cause("txn.reversal_pending", "txn", "交易失败但已扣款(冲正未完成)", "Charged but failed: reversal not completed", ('001',)),
    Cause("txn.settlement_unbalanced", "txn", "对账不平", "Settlement totals do not balance", ('001', '002')),
    Cause("txn.funds_delayed", "txn", "资金未到账(结算周期内)", "Funds not yet paid out (within the settlement cycle)", ('001',)),
    Cause("txn.duplicate", "txn", "重复交易", "Duplicate transaction", ('001',)),
)

CAUSES: dict[str, Cause] = {cause.id: cause for cause in _ROWS}


def get_cause(cause_id: str) -> Cause:
    """The catalog entry; ``KeyError`` with the unknown ID for a name not in the catalog."""
    try:
        return CAUSES[cause_id]
    except KeyError:
        raise KeyError(f"unknown cause ID {cause_id!r}") from None


def cause_ids(family: str | None = None) -> list[str]:
    return [c.id for c in _ROWS if family is None or c.family == family]
