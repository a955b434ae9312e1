"""Configuration and key causes, from live evidence: real host, real terminals, faults
applied by changing the world (the terminal's keys, settings or the host's session)."""

from __future__ import annotations

import socket

from doctorkit import PIN, DoctorSite, card, dsite, tid_of  # noqa: F401

from posdoctor.doctor.diagnose import diagnose_terminal


async def test_tmk_mismatch_after_approved_sign_in(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    await dsite.broken_tmk(4, byte=3, mask=0x10)
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == "keys.tmk_mismatch"
    text = " ".join(ln.en for ln in diagnosis.top.evidence)  # type: ignore[union-attr]
    assert "answered 00 to sign_in" in text and "keys.check_failed" in text
    assert "signin_failed" in diagnosis.symptoms


async def test_tmk_missing_on_a_terminal_that_never_downloaded_it(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = dsite.terminal(4)
    assert not (await app.sign_in()).ok  # no TMK: refused locally
    dsite.report(4, self_check=True)
    assert dsite.cause(4) == "keys.tmk_missing"


async def test_mak_desync_from_stale_working_keys(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    stale = {k: v for k, v in app.state.keys.items() if k in ("PIK", "MAK", "TDK")}
    assert (await app.sign_in()).ok  # the host issues new keys
    app.state.keys.update(stale)  # the terminal restores the old ones
    outcome = await app.sale(card(), 1500, PIN)
    assert outcome.response_code == "A0"
    dsite.report(4)
    assert dsite.cause(4) == "keys.mak_desync"


async def test_resign_required_after_the_host_invalidates_the_session(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.settings.follow_host_requirements = False
    await dsite.host.require_sign_in(tid_of(4))
    outcome = await app.sale(card(), 1500, PIN)
    assert outcome.response_code == "77"
    dsite.report(4)
    assert dsite.cause(4) == "keys.resign_required"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_wrong_host_port_is_told_from_the_fleet_assignment(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.comm.port = _closed_port()
    assert not (await app.sale(card(), 1500, PIN)).ok
    assert not (await app.sign_in()).ok
    dsite.report(4)
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == "config.wrong_host"
    assert any(str(app.state.comm.port) in ln.en for ln in diagnosis.top.evidence)  # type: ignore[union-attr]


async def test_typo_in_the_terminal_id_is_not_an_unregistered_terminal(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.tid = "10000094"  # one digit wrong, not registered
    assert not (await app.sign_in()).ok
    dsite.report(4)
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == "config.wrong_terminal_id"
    assert any("10000094" in ln.en for ln in diagnosis.top.evidence)  # type: ignore[union-attr]


async def test_unregistered_terminal_on_an_unknown_device(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = dsite.terminal(9, tid="10000099")
    app.inject_transport_key(dsite.sheets[tid_of(1)].tk)
    app.inject_tmk(dsite.sheets[tid_of(1)].tmk)
    assert not (await app.sign_in()).ok
    assert diagnose_terminal(dsite.store, "10000099").cause == "status.terminal_unregistered"


async def test_a_healthy_terminal_has_no_findings(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    diagnosis = diagnose_terminal(dsite.store, tid_of(2))
    assert diagnosis.findings == [] and not diagnosis.failing
