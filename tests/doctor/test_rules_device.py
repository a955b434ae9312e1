"""Network, hardware, operation and transaction causes, live: the terminal's link, device,
operator or card is changed; the evidence is what the host and the terminal produce."""

from __future__ import annotations

import json
import random

from doctorkit import PAN, PIN, DoctorSite, card, dsite, tid_of  # noqa: F401

from posdoctor.doctor.diagnose import diagnose_terminal
from posdoctor.terminal import Peripheral


async def test_dns_failure(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.comm.host = "posp.invalid"
    assert not (await app.sale(card(), 1000, PIN)).ok
    dsite.report(4)
    assert dsite.cause(4) == "net.dns_failure"


async def test_firewall_drops_the_port_while_others_get_through(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.comm.connect_timeout_s = 0.2
    app.link.conditions.blackhole = True
    for _ in range(2):
        assert not (await app.sale(card(), 1000, PIN)).ok
    dsite.report(4)
    diagnosis = diagnose_terminal(dsite.store, tid_of(4))
    assert diagnosis.cause == "net.firewall_blocked"
    assert any("other terminals reached the host" in ln.en for ln in diagnosis.top.evidence)  # type: ignore[union-attr]


async def test_unstable_link_mixes_successes_and_timeouts(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4, receive_timeout_s=0.3)
    app.state.comm.receive_timeout_s = 0.3
    app.link.conditions.rng = random.Random(5)
    app.link.conditions.loss = 0.5
    app.device.signal_dbm = -105
    for _ in range(8):
        await app.sale(card(), 1000, PIN)
    app.link.conditions.loss = 0.0
    dsite.report(4)
    assert dsite.cause(4) == "net.unstable"


async def test_link_down(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.link.conditions.down = True
    for _ in range(2):
        assert not (await app.sale(card(), 1000, PIN)).ok
    app.link.conditions.down = False  # back up: the logs reach the TMS
    dsite.report(4)
    assert dsite.cause(4) == "net.offline"


async def test_printer_out_of_paper_and_tamper(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    dsite.devices[tid_of(2)].set_fault(Peripheral.PRINTER, "paper_out")
    dsite.report(2, self_check=True)
    assert dsite.cause(2) == "hw.printer"
    dsite.devices[tid_of(3)].trigger_tamper()
    await dsite.apps[tid_of(3)].sale(card(), 1000, PIN)
    dsite.report(3, self_check=True)
    assert dsite.cause(3) == "hw.tamper"  # not keys.tmk_missing, though the keys are gone


async def test_card_reader_fault(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    dsite.devices[tid_of(4)].set_fault(Peripheral.CARD_READER, "failed")
    assert not (await dsite.apps[tid_of(4)].sale(card(), 1000, PIN)).ok
    dsite.report(4)
    assert dsite.cause(4) == "hw.card_reader"


async def test_transacting_without_signing_in(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.initialised(4)
    assert not (await app.sale(card(), 1000, PIN)).ok
    dsite.report(4)
    assert dsite.cause(4) == "op.not_signed_in"


async def test_batch_full_means_settle_first(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    app.state.settings.batch_capacity = 2
    for _ in range(3):
        await app.sale(card(), 1000, PIN)
    dsite.report(4)
    assert dsite.cause(4) == "op.settle_required"


async def test_wrong_operator_password(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    app = await dsite.ready(4)
    assert not app.login("01", "9999").ok
    dsite.report(4)
    assert dsite.cause(4) == "op.wrong_password"


async def test_card_side_declines(dsite: DoctorSite) -> None:
    from posdoctor.host import provision_card

    await dsite.healthy_fleet(4)
    provision_card(dsite.store, dsite.hsm, "6222020000000000018", PIN, 500, expiry="3012")
    await dsite.host.invalidate()
    from posdoctor.terminal import Card

    poor = Card("6222020000000000018", "3012")
    assert (await dsite.apps[tid_of(1)].sale(poor, 9000, PIN)).response_code == "51"
    dsite.report(1)
    assert dsite.cause(1) == "txn.insufficient_funds"
    assert (await dsite.apps[tid_of(2)].sale(card(), 1000, "000000")).response_code == "55"
    dsite.report(2)
    assert dsite.cause(2) == "txn.wrong_pin"


async def test_duplicate_stan_after_a_restored_state(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    app = dsite.apps[tid_of(4)]
    app.state.stan -= 1  # an old state restored: the last STAN comes again
    assert (await app.sale(card(), 1000, PIN)).response_code == "94"
    dsite.report(4)
    assert dsite.cause(4) == "txn.duplicate"


async def test_settlement_unbalanced_when_a_sale_is_lost_on_the_terminal(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet(4)
    app = dsite.apps[tid_of(4)]
    assert (await app.sale(card(), 3000, PIN)).ok
    app.state.txn_log.pop()
    await app.settle()
    dsite.report(4)
    assert dsite.cause(4) == "txn.settlement_unbalanced"


async def test_pan_is_never_in_the_evidence_text(dsite: DoctorSite) -> None:
    await dsite.healthy_fleet()
    assert (await dsite.apps[tid_of(1)].sale(card(), 1000, "000000")).response_code == "55"
    dsite.report(1)
    diagnosis = diagnose_terminal(dsite.store, tid_of(1))
    assert diagnosis.cause == "txn.wrong_pin"  # the card's own decline is in the evidence
    text = json.dumps(diagnosis.to_json(), ensure_ascii=False)
    assert diagnosis.top.evidence and tid_of(1) in text  # type: ignore[union-attr]
    assert PAN not in text


async def test_a_sale_before_signing_in_put_right_at_the_counter_is_not_a_failure(dsite: DoctorSite) -> None:
    """The terminal asked for a sign-in, the merchant signed in and the next sale went
    through: the doctor still names it when asked, but the terminal is not failing."""
    from posdoctor.doctor.diagnose import diagnose_terminal

    await dsite.healthy_fleet()
    app = await dsite.initialised(4)
    assert not (await app.sale(card(), 1000, PIN)).ok
    assert (await app.sign_in()).ok
    dsite.report(4)
    before = diagnose_terminal(dsite.store, tid_of(4))
    assert (before.cause, before.failing) == ("op.not_signed_in", True)  # signed in, nothing paid yet
    assert (await app.sale(card(), 1000, PIN)).ok
    dsite.report(4)
    after = diagnose_terminal(dsite.store, tid_of(4))
    assert (after.cause, after.failing, after.top.resolved) == ("op.not_signed_in", False, True)
    assert "payments approved since" in after.top.evidence[-1].en
