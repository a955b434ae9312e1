"""The cause catalog keeps every ID of the shared contract exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posdoctor.doctor.catalog import CAUSES, FAMILIES, SYMPTOMS, cause_ids, get_cause

CAUSES_MD = Path(__file__).resolve().parents[3] / "shared" / "causes.md"

# The contract's IDs, copied here so the test also runs where ../shared is absent.
CONTRACT_IDS = """
config.wrong_host config.wrong_tpdu config.wrong_terminal_id keys.tmk_missing
keys.tmk_mismatch keys.mak_desync keys.resign_required params.download_incomplete
params.corrupt net.offline net.dns_failure net.firewall_blocked net.unstable
net.host_overloaded backend.host_down backend.issuer_timeout backend.policy_restriction
status.terminal_unregistered status.terminal_disabled status.merchant_frozen
status.merchant_pending status.merchant_closed status.terminal_merchant_mismatch
status.device_not_whitelisted status.operator_locked status.settlement_account_invalid
upgrade.download_corrupt upgrade.incompatible_model upgrade.firmware_defect
upgrade.config_lost upgrade.keys_lost upgrade.batch_lost upgrade.version_blocked
upgrade.not_applied sw.app_conflict sw.crash sw.unauthorized_app hw.printer
hw.card_reader hw.keypad_touch hw.storage hw.power hw.tamper op.wrong_password
op.not_signed_in op.settle_required op.bluetooth_pairing txn.insufficient_funds
txn.wrong_pin txn.limit_exceeded txn.reversal_pending txn.settlement_unbalanced
txn.funds_delayed txn.duplicate
""".split()


def test_catalog_holds_every_contract_id() -> None:
    assert len(CONTRACT_IDS) == 54
    assert set(CONTRACT_IDS) <= set(CAUSES)


def test_catalog_matches_the_shared_file_when_present() -> None:
    if not CAUSES_MD.is_file():
        pytest.skip(f"{CAUSES_MD} not beside this checkout; the copied ID list was checked")
    text = CAUSES_MD.read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*([a-z]+\.[a-z_]+)\s*\|\s*([^|]+?)\s*\|", text, re.M)
    assert len(rows) == 54
    for cause_id, zh in rows:
        assert get_cause(cause_id).zh == zh


def test_every_cause_is_complete() -> None:
    for cause in CAUSES.values():
        assert cause.family in FAMILIES
        assert cause.zh and cause.en and cause.seeds
        assert all(symptom in SYMPTOMS for symptom in cause.symptoms)
    assert cause_ids("hw") == [
        "hw.printer", "hw.card_reader", "hw.keypad_touch", "hw.storage", "hw.power", "hw.tamper",
    ]


def test_unknown_cause_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown cause ID 'hw.toaster'"):
        get_cause("hw.toaster")
