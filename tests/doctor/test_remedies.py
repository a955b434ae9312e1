"""Remedies: one complete, bilingual remedy for every cause in the catalog."""

from __future__ import annotations

import json
import re

import pytest

from posdoctor.doctor import remedies
from posdoctor.doctor.catalog import CAUSES
from posdoctor.doctor.remedies import AUTO_FIXES, RemedyError, _parse, all_remedies, get_remedy

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_catalog_cause_has_a_remedy_and_no_extra() -> None:
    assert set(all_remedies()) == set(CAUSES)
    assert len(all_remedies()) >= 54


@pytest.mark.parametrize("cause_id", sorted(CAUSES))
def test_remedy_is_complete_in_both_languages(cause_id: str) -> None:
    out = get_remedy(cause_id).to_json()
    assert set(out) == {"explanation", "merchant_steps", "operator_steps", "auto_fix", "needs_person", "collect"}
    assert HAN.search(out["explanation"]["zh"]) and not HAN.search(out["explanation"]["en"])
    for key in ("merchant_steps", "operator_steps", "collect"):
        zh, en = out[key]["zh"], out[key]["en"]
        assert zh and len(zh) == len(en)
        assert all(HAN.search(s) for s in zh)
        assert not any(HAN.search(s) for s in en)
    assert out["auto_fix"] is None or out["auto_fix"] in AUTO_FIXES
    for person in out["needs_person"]:
        assert person["action"] and HAN.search(person["zh"]) and person["en"]
    json.dumps(out, ensure_ascii=False)


def test_to_json_with_one_language_keeps_only_it() -> None:
    out = get_remedy("keys.tmk_mismatch").to_json("en")
    assert set(out["explanation"]) == {"en"}
    assert set(out["merchant_steps"]) == {"en"}
    assert out["auto_fix"] == "reissue_tmk"
    with pytest.raises(ValueError):
        get_remedy("keys.tmk_mismatch").to_json("fr")


def test_software_fixes_and_person_actions_where_expected() -> None:
    expected = {
        "config.wrong_host": "push_comm_params", "config.wrong_tpdu": "push_comm_params",
        "keys.tmk_missing": "reissue_tmk", "keys.mak_desync": "force_sign_in",
        "params.download_incomplete": "push_params", "upgrade.firmware_defect": "rollback_campaign",
        "upgrade.incompatible_model": "halt_campaign", "txn.reversal_pending": "deliver_reversal",
        "status.settlement_account_invalid": "release_payout", "upgrade.keys_lost": "reissue_tmk",
    }
    for cause, fix in expected.items():
        assert get_remedy(cause).auto_fix == fix, cause
    used = {r.auto_fix for r in all_remedies().values()} - {None}
    assert used == set(AUTO_FIXES)
    frozen = get_remedy("status.merchant_frozen")
    assert frozen.auto_fix is None
    assert [p.action for p in frozen.needs_person] == ["unfreeze_merchant"]


def test_unknown_cause_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="no.such"):
        get_remedy("no.such")


@pytest.mark.parametrize("broken, message", [
    ({"explanation_zh": ""}, "explanation_zh"),
    ({"merchant_en": ["only one"]}, "differ in length"),
    ({"auto_fix": "format_disk"}, "unknown auto_fix"),
    ({"collect_zh": []}, "collect_zh"),
    ({"needs_person": [{"action": "x", "zh": "人"}]}, "en"),
])
def test_malformed_remedy_data_is_refused(broken: dict, message: str) -> None:
    good = {
        "explanation_zh": "说明", "explanation_en": "why",
        "merchant_zh": ["一", "二"], "merchant_en": ["one", "two"],
        "operator_zh": ["一"], "operator_en": ["one"],
        "collect_zh": ["一"], "collect_en": ["one"],
    }
    assert _parse("hw.printer", good).auto_fix is None
    with pytest.raises(RemedyError, match=message):
        _parse("hw.printer", {**good, **broken})


def test_remedy_data_ships_as_package_data() -> None:
    from importlib import resources
    names = {p.name for p in (resources.files("posdoctor.doctor") / "data").iterdir()}
    assert set(remedies._DATA_FILES) <= names
