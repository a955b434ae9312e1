"""Registration/status and backend causes, live: the registry is changed the way the TMS
changes it (lifecycle functions), the host is told, the terminal meets the refusal; the
registry state tells the 03 and 97 look-alikes apart."""

from __future__ import annotations

import pytest
from doctorkit import MID, MID2, PIN, DoctorSite, card, dsite, tid_of  # noqa: F401

from posdoctor.doctor.diagnose import diagnose_terminal


async def _refused_sale(site: DoctorSite, n: int, code: str) -> None:
    app = site.apps[tid_of(n)]
    outcome = await app.sale(card(), 2500, PIN)
    assert outcome.response_code == code, outcome.text
    site.report(n)


@pytest.mark.parametrize(("status", "cause"), [("frozen", "status.merchant_frozen"),
                                               ("closed", "status.merchant_closed")])
async def test_merchant_status_decides_what_03_means(dsite: DoctorSite, status: str, cause: str) -> None:
    await dsite.healthy_fleet(4)
    dsite.store.change_merchant_status(MID, status, reason="风控 risk review", actor="ops")
    await dsite.host.invalidate()
    await _refused_sale(dsite, 4, "03")
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == cause
    assert any(status in ln.en for ln in diagnosis.top.evidence)  # type: ignore[union-attr]
    assert "status_abnormal" in diagnosis.symptoms


async def test_pending_merchant(dsite: DoctorSite) -> None:
    dsite.store.add_merchant("898100000000009", "新商户", status="pending")
    from posdoctor.host import provision_terminal

    sheet = provision_terminal(dsite.store, dsite.hsm, "10000009", "898100000000009", "SN0009", "N910")
    dsite.sheets["10000009"] = sheet
    await dsite.host.invalidate()
    await dsite.healthy_fleet(3)
    app = dsite.terminal(9)
    app.state.mid = "898100000000009"
    app.inject_transport_key(sheet.tk)
    await app.initialise()
    dsite.report(9)
    assert diagnose_terminal(dsite.store, "10000009").cause == "status.merchant_pending"


async def test_terminal_disabled_is_97_for_a_known_tid(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    dsite.store.change_terminal_status(tid_of(4), "disabled", reason="风控停机", actor="ops")
    await dsite.host.invalidate(tid_of(4))
    await _refused_sale(dsite, 4, "97")
    assert diagnose_terminal(dsite.store, tid_of(4)).cause == "status.terminal_disabled"


async def test_tid_rebound_to_another_merchant(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    dsite.store.update_terminal(tid_of(4), mid=MID2)
    await dsite.host.invalidate()
    await _refused_sale(dsite, 4, "03")
    assert diagnose_terminal(dsite.store, tid_of(4)).cause == "status.terminal_merchant_mismatch"


async def test_mid_typo_is_a_wrong_id_not_a_rebinding(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    dsite.apps[tid_of(4)].state.mid = "898100000000077"  # not a registered merchant
    await _refused_sale(dsite, 4, "03")
    assert diagnose_terminal(dsite.store, tid_of(4)).cause == "config.wrong_terminal_id"


async def test_swapped_device_is_not_whitelisted(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(3)
    app = await dsite.initialised(4)
    app.state.serial = app.device.serial = "SWP00000004"
    app.state.settings.signin_device_info = True
    assert not (await app.sign_in()).ok
    dsite.report(4)
    assert diagnose_terminal(dsite.store, tid_of(4)).cause == "status.device_not_whitelisted"


async def test_policy_restriction_names_the_recorded_policy_change(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    dsite.store.set_terminal_allowed_types(tid_of(4), ["balance", "void", "refund"], actor="ops")
    await dsite.host.invalidate(tid_of(4))
    await _refused_sale(dsite, 4, "58")
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == "backend.policy_restriction"
    assert any("policy_change" in ln.en for ln in diagnosis.top.evidence)  # type: ignore[union-attr]


async def test_issuer_timeout_from_a_slow_issuer(tmp_path, home, lmk) -> None:  # noqa: ANN001
    from doctorkit import HOST_CONFIG, start_doctor_site

    from posdoctor.crypto.hsm import SoftHSM
    from posdoctor.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'issuer.db'}", home=home)
    config = HOST_CONFIG.model_copy(update={"issuer_timeout_s": 0.1})
    site = await start_doctor_site(store, SoftHSM(lmk), home, config=config)
    try:
        store.add_decline_rule(tid=tid_of(4), delay_ms=300, note="slow issuer")
        await site.host.invalidate()
        await site.healthy_fleet(3)
        app = await site.ready(4)
        outcome = await app.sale(card(), 2500, PIN)
        assert outcome.response_code == "98", outcome.text
        site.report(4)
        diagnosis = diagnose_terminal(store, tid_of(4))
        assert diagnosis.cause == "backend.issuer_timeout"
    finally:
        await site.host.stop()
        store.close()
