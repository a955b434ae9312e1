"""The upgrade agent against a scripted host (sign-in, settlement) and an in-memory TMS."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from termhost import PAN, PIN, Reply, answer, well_behaved
from upgradekit import NEW, OLD, ShelfTms, agent_for, batch, kcvs, make_terminal, package, reopen

from posdoctor.terminal import Card
from posdoctor.terminal.slots import SlotStore, slots_dir

GOOD_STEPS = [("download", True), ("verify", True), ("install", True), ("reboot", True), ("self_check", True),
              ("sign_in", True), ("commit", True)]


def codes(app) -> list[str]:
    return [e.code for e in app.state.events]


async def test_good_package_upgrades_and_keeps_keys_and_batch(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    assert (await app.sale(Card(PAN, "3012"), 1234, pin=PIN)).ok
    before_keys, before_batch = kcvs(app), batch(app)
    tms = ShelfTms(package(), )
    agent = agent_for(app, tms, tmp_path, chunk_size=3000)

    result = await agent.poll()

    assert (result.status, result.version) == ("upgraded", NEW)
    assert tms.steps() == GOOD_STEPS
    assert all(r["from_version"] == OLD and r["to_version"] == NEW and r["campaign"] == "C1" for r in tms.reports)
    assert [s for s, _ in tms.ranges][:3] == [0, 3000, 6000]
    assert app.state.app_version == NEW and kcvs(app) == before_keys and batch(app)[2] == before_batch[2]
    slots = SlotStore(slots_dir(tmp_path, app.state.tid))
    assert slots.summary() == {"active": "B", "trial": False, "versions": {"A": OLD, "B": NEW}}
    assert host.mtis()[-1] == "0800"  # the test sign-in went to the host
    again = reopen(tmp_path)
    assert again.state.app_version == NEW and kcvs(again) == before_keys
    assert (await agent_for(again, tms, tmp_path).poll()).status == "idle"
    assert "ok.upgrade" in codes(app)


async def test_corrupt_download_is_refused_and_retried_then_given_up(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package(), corrupt_at=100)
    agent = agent_for(app, tms, tmp_path)
    results = [await agent.poll() for _ in range(4)]
    assert [r.status for r in results] == ["retry", "retry", "failed", "failed"]
    assert results[0].reason == "sha256_mismatch"
    assert [(r["step"], r["ok"], r["attempt"]) for r in tms.reports if not r["ok"]] == [
        ("download", False, 1), ("download", False, 2), ("verify", False, 3)]
    assert app.state.app_version == OLD and codes(app).count("upgrade.verify_failed") == 3
    assert not (slots_dir(tmp_path, app.state.tid) / "download.part").exists()


async def test_signature_from_another_key_is_refused(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    data = package()
    tms = ShelfTms(data, signature=ShelfTms(package("010200")).signature)
    assert (await agent_for(app, tms, tmp_path).poll()).reason == "bad_signature"
    app.state.tms_public_key = ""
    tms2 = ShelfTms(data, campaign="C2")
    assert (await agent_for(app, tms2, tmp_path).poll()).reason == "no_tms_public_key"


async def test_package_for_another_model_is_refused_without_installing(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package(models=("N910",)))
    result = await agent_for(app, tms, tmp_path).poll()
    assert (result.status, result.reason) == ("refused", "incompatible_model")
    assert tms.steps() == [("download", True), ("verify", True), ("refused", False)]
    assert SlotStore(slots_dir(tmp_path, app.state.tid)).info("B") is None
    tms2 = ShelfTms(package(requires_model="N910", models=("EMU-100", "N910")), campaign="C2")
    assert (await agent_for(app, tms2, tmp_path).poll()).reason == "incompatible_model"
    tms3 = ShelfTms(package(from_versions=["000900"]), campaign="C3")
    assert (await agent_for(app, tms3, tmp_path).poll()).reason == "from_version"


async def test_defective_builds_roll_back_by_themselves(scripted, tmp_path: Path) -> None:
    host = await scripted()
    for defect, failing_step in (("self_check", "self_check"), ("sign_in", "sign_in"), ("crash", None)):
        home = tmp_path / defect
        app = make_terminal(home, host.port)
        before = kcvs(app)
        tms = ShelfTms(package(defect=defect))
        result = await agent_for(app, tms, home).poll()
        assert (result.status, result.reason) == ("rolled_back", defect)
        assert app.state.app_version == OLD and kcvs(app) == before
        assert tms.reports[-1]["step"] == "rollback" and tms.reports[-1]["ok"]
        if failing_step:
            assert (failing_step, False) in tms.steps()
        else:
            assert app.state.counters["crash"] == 1 and app.state.counters["watchdog"] == 1
        slots = SlotStore(slots_dir(home, app.state.tid))
        assert slots.summary()["active"] == "A" and not slots.in_trial()
        assert (await agent_for(reopen(home), tms, home).poll()).status == "failed"  # not tried again
        assert reopen(home).state.app_version == OLD


async def test_settle_first_settles_before_installing(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    assert (await app.sale(Card(PAN, "3012"), 500, pin=PIN)).ok
    tms = ShelfTms(package(settle_first=True))
    result = await agent_for(app, tms, tmp_path).poll()
    assert result.status == "upgraded"
    assert host.mtis().index("0500") < len(host.mtis()) - 1 and app.state.txn_log == []
    assert tms.steps()[0] == ("download", True)


async def test_failed_settlement_postpones(scripted, tmp_path: Path) -> None:
    def refuse_settlement(request):
        return Reply(answer(request, rc="96")) if request["t"] == "0500" else well_behaved(request)

    host = await scripted(refuse_settlement)
    app = make_terminal(tmp_path, host.port)
    assert (await app.sale(Card(PAN, "3012"), 500, pin=PIN)).ok
    tms = ShelfTms(package(settle_first=True))
    result = await agent_for(app, tms, tmp_path).poll()
    assert result.status == "postponed" and result.reason.startswith("settle_failed:")
    assert tms.steps() == [("postpone", True)] and len(app.state.txn_log) == 1
    assert app.state.app_version == OLD


async def test_window_and_not_before_postpone(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    noon = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    tms = ShelfTms(package(), window={"start": "23:00", "end": "05:00"})
    agent = agent_for(app, tms, tmp_path, clock=lambda: noon)
    assert (await agent.poll()).reason == "window"
    assert (await agent.poll()).reason == "window"
    assert tms.steps() == [("postpone", True)]  # reported once
    late = ShelfTms(package(), not_before=(noon + timedelta(hours=1)).isoformat())
    agent = agent_for(app, late, tmp_path, clock=lambda: noon)
    assert (await agent.poll()).reason == "not_before"
    night = datetime(2026, 1, 5, 23, 30, tzinfo=timezone.utc)
    assert (await agent_for(app, tms, tmp_path, clock=lambda: night).poll()).status == "upgraded"


async def test_download_resumes_where_it_stopped(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package(size=20000), fail_downloads=1, fail_after_bytes=8192)
    agent = agent_for(app, tms, tmp_path, chunk_size=4096)
    first = await agent.poll()
    assert (first.status, first.step) == ("retry", "download")
    assert tms.steps() == [("download", False)]
    served = len(tms.ranges)
    again = agent_for(reopen(tmp_path), tms, tmp_path, chunk_size=4096)  # after a power cut
    assert (await again.poll()).status == "upgraded"
    assert tms.ranges[served][0] == 8192  # resumed, not restarted


async def test_resets_reproduce_lost_keys_config_and_batch(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    assert (await app.sale(Card(PAN, "3012"), 500, pin=PIN)).ok
    tms = ShelfTms(package(resets=["config", "keys", "batch", "params"]))
    result = await agent_for(app, tms, tmp_path).poll()
    assert result.status == "upgraded"
    assert app.state.keys == {} and app.state.txn_log == [] and app.state.comm.port == 5800
    assert ("sign_in", True) in tms.steps() and "upgrade.reset" in codes(app)


async def test_ordered_rollback_boots_the_previous_version(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package())
    assert (await agent_for(app, tms, tmp_path).poll()).status == "upgraded"
    tms.rollback = True
    result = await agent_for(app, tms, tmp_path).poll()
    assert (result.status, result.version) == ("rolled_back", OLD)
    assert app.state.app_version == OLD and tms.reports[-1]["step"] == "rollback"
    assert (await agent_for(app, tms, tmp_path).poll()).status == "idle"  # nothing more to roll back


async def test_tms_down_is_an_event_and_reports_are_sent_later(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package(), down=True)
    agent = agent_for(app, tms, tmp_path)
    assert (await agent.poll()).status == "error"
    assert "tms.unreachable" in codes(app) and app.state.counters["tms_unreachable"] == 1


async def test_a_withdrawn_offer_drops_the_download_in_progress(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package(size=20000), fail_downloads=1, fail_after_bytes=8192)
    agent = agent_for(app, tms, tmp_path, chunk_size=4096)
    assert (await agent.poll()).status == "retry"
    tms.down = True  # offline: the job on storage goes on (and fails again here)
    assert (await agent.poll()).status == "retry"
    tms.down = False
    tms.withdrawn = True  # the campaign was halted
    assert (await agent.poll()).status == "idle"
    assert "upgrade.withdrawn" in codes(app) and app.state.app_version == OLD
    assert not (slots_dir(tmp_path, app.state.tid) / "download.part").exists()
    served = len(tms.ranges)
    tms.withdrawn = False  # resumed: a new job from the first byte
    assert (await agent.poll()).status == "upgraded"
    assert tms.ranges[served][0] == 0


async def test_a_package_whose_manifest_names_another_version_is_refused(scripted, tmp_path: Path) -> None:
    host = await scripted()
    app = make_terminal(tmp_path, host.port)
    tms = ShelfTms(package())
    tms.version = "010200"  # the offer says 010200, the signed file installs 010100
    result = await agent_for(app, tms, tmp_path).poll()
    assert (result.status, result.reason) == ("failed", "manifest:version_mismatch")
    assert app.state.app_version == OLD
