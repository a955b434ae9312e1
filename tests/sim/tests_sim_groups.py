"""Fault groups for the evidence tests: (terminals, causes) per run."""

GROUPS: dict[str, tuple[int, list[str]]] = {
    "keys_net": (20, ["config.wrong_host", "config.wrong_tpdu", "config.wrong_terminal_id", "keys.tmk_missing",
                      "keys.tmk_mismatch", "keys.mak_desync", "keys.resign_required", "params.download_incomplete",
                      "params.corrupt", "net.offline", "net.dns_failure", "net.firewall_blocked", "net.unstable",
                      "backend.issuer_timeout"]),
    "status_txn": (24, ["backend.policy_restriction", "status.terminal_unregistered", "status.terminal_disabled",
                        "status.merchant_frozen", "status.merchant_pending", "status.merchant_closed",
                        "status.terminal_merchant_mismatch", "status.device_not_whitelisted",
                        "status.operator_locked", "status.settlement_account_invalid", "txn.funds_delayed",
                        "upgrade.version_blocked", "txn.insufficient_funds", "txn.wrong_pin", "txn.limit_exceeded",
                        "txn.reversal_pending", "txn.settlement_unbalanced", "txn.duplicate"]),
    "device_upgrade": (34, ["sw.app_conflict", "sw.crash", "sw.unauthorized_app", "hw.printer", "hw.card_reader",
                            "hw.keypad_touch", "hw.storage", "hw.power", "hw.tamper", "op.wrong_password",
                            "op.not_signed_in", "op.settle_required", "op.bluetooth_pairing",
                            "upgrade.download_corrupt", "upgrade.incompatible_model", "upgrade.firmware_defect",
                            "upgrade.config_lost", "upgrade.keys_lost", "upgrade.batch_lost",
                            "upgrade.not_applied"]),
}
