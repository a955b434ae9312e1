"""Campaigns: selection, waves, halt on the failure threshold, resume, cancel, rollback, window, stagger."""

from datetime import time, timedelta

import pytest

from tmsfleet import MID2, START
from posdoctor.store import InvalidValue, NotFound
from posdoctor.tms.campaign_reports import apply_upgrade_reports, next_target_state, upgrade_check
from posdoctor.tms.campaigns import (
    CampaignSettings,
    cancel_campaign,
    change_campaign,
    create_campaign,
    halt_campaign,
    in_window,
    parse_window,
    resume_campaign,
    rollback_campaign,
    start_campaign,
)


def _campaign(fleet, **settings):
    selection = {key: settings.pop(key) for key in ("models", "mids", "tids", "from_versions") if key in settings}
    campaign = create_campaign(fleet.store, "c", "2.0.0", settings=CampaignSettings(**settings),
                               now=START, **selection)
    return start_campaign(fleet.store, campaign.id, now=START)


def _offered(store, campaign, version="1.0.0", model="P1", now=START):
    return {t.tid: offer for t in store.campaign_targets(campaign.id)
            if (offer := upgrade_check(store, t.tid, version, model, now)) is not None}


def _finish(store, campaign_id, tids, ok=True, now=START):
    reports = []
    for tid in tids:
        if ok:
            reports += [(tid, {"campaign": campaign_id, "step": "download", "ok": True}, now),
                        (tid, {"campaign": campaign_id, "step": "commit", "ok": True}, now)]
        else:
            reports += [(tid, {"campaign": campaign_id, "step": "self_check", "ok": False,
                               "reason": "printer"}, now),
                        (tid, {"campaign": campaign_id, "step": "rollback", "ok": True}, now)]
    apply_upgrade_reports(store, reports)


def test_selection_by_model_merchant_version_and_list(fleet):
    p1 = fleet.add(4, model="P1")
    p2 = fleet.add(2, model="P2", first=10)
    other_mid = fleet.add(2, model="P1", mid=MID2, first=20)
    new = fleet.add(1, model="P1", version="2.0.0", first=30)
    old = fleet.add(1, model="P1", version="0.9.0", first=40)
    fleet.package(models=("P1", "P2"))
    store = fleet.store

    def targets(**selection):
        campaign = create_campaign(store, "sel", "2.0.0", now=START, **selection)
        try:
            start_campaign(store, campaign.id, now=START)
        except InvalidValue:
            return set()
        tids = {t.tid for t in store.campaign_targets(campaign.id)}
        cancel_campaign(store, campaign.id)
        return tids

    assert targets() == set(p1 + p2 + other_mid + old)  # already on 2.0.0 is left out
    assert targets(models=["P2"]) == set(p2)
    assert targets(mids=[MID2]) == set(other_mid)
    assert targets(from_versions=["0.9.0"]) == set(old)
    assert targets(tids=[p1[0], p2[0], new[0]]) == {p1[0], p2[0]}
    assert targets(models=["P9"]) == set()


def test_a_terminal_is_in_one_live_campaign_at_a_time(fleet):
    fleet.add(3)
    fleet.package()
    first = _campaign(fleet)
    second = create_campaign(fleet.store, "again", "2.0.0")
    with pytest.raises(InvalidValue, match="matches no terminal"):
        start_campaign(fleet.store, second.id)
    assert fleet.store.get_campaign(second.id).state == "draft"
    cancel_campaign(fleet.store, first.id)
    assert start_campaign(fleet.store, second.id).targeted == 3


def test_canary_wave_then_the_rest_then_completed(fleet):
    fleet.add(20)
    fleet.package()
    campaign = _campaign(fleet, canary_pct=10, min_sample=5)
    assert (campaign.state, campaign.wave, campaign.targeted, campaign.wave_size) == ("running", 1, 20, 2)
    offers = _offered(fleet.store, campaign)
    assert len(offers) == 2  # only the canary
    offer = next(iter(offers.values()))
    assert offer["action"] == "upgrade" and offer["package"]["version"] == "2.0.0"
    assert {t.state for t in fleet.store.campaign_targets(campaign.id, "offered")} == {"offered"}
    _finish(fleet.store, campaign.id, offers)
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.state, campaign.wave, campaign.succeeded) == ("running", 2, 2)
    rest = _offered(fleet.store, campaign)
    assert len(rest) == 18 and not set(rest) & set(offers)
    _finish(fleet.store, campaign.id, rest)
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.state, campaign.succeeded, campaign.failed) == ("completed", 20, 0)
    assert _offered(fleet.store, campaign) == {}
    states = [(e.detail["old"], e.code) for e in fleet.store.events(kind="campaign_state")]
    assert states == [(None, "draft"), ("draft", "running"), ("running", "running"), ("running", "completed")]


def test_failures_in_the_canary_halt_the_campaign(fleet):
    fleet.add(50)
    fleet.package()
    campaign = _campaign(fleet, canary_pct=20, threshold=0.2, min_sample=5)
    canary = list(_offered(fleet.store, campaign))
    assert len(canary) == 10
    _finish(fleet.store, campaign.id, canary[:3])          # 3 good
    _finish(fleet.store, campaign.id, canary[3:4], ok=False)  # 1 of 4 failed: not judged yet
    assert fleet.store.get_campaign(campaign.id).state == "running"
    _finish(fleet.store, campaign.id, canary[4:5], ok=False)  # 2 of 5 = 40% > 20%
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.state, campaign.failed, campaign.succeeded) == ("halted", 2, 3)
    assert "2/5" in campaign.state_reason
    assert _offered(fleet.store, campaign) == {}  # halted: nothing more is offered
    failed = fleet.store.campaign_target(campaign.id, canary[3])
    assert (failed.state, failed.last_step, failed.reason) == ("failed", "rollback", "printer")
    # in-flight canaries still report
    _finish(fleet.store, campaign.id, canary[5:8])
    assert fleet.store.get_campaign(campaign.id).succeeded == 6


def test_resume_judges_only_new_results_and_completes(fleet):
    fleet.add(10)
    fleet.package()
    campaign = _campaign(fleet, canary_pct=50, threshold=0.3, min_sample=2)
    canary = list(_offered(fleet.store, campaign))
    _finish(fleet.store, campaign.id, canary[:2], ok=False)
    assert fleet.store.get_campaign(campaign.id).state == "halted"
    campaign = resume_campaign(fleet.store, campaign.id, "fixed the printer driver")
    assert campaign.state == "running"
    _finish(fleet.store, campaign.id, canary[2:])
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.state, campaign.wave) == ("running", 2)
    _finish(fleet.store, campaign.id, _offered(fleet.store, campaign))
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.state, campaign.succeeded, campaign.failed) == ("completed", 8, 2)
    reasons = [e.detail["reason"] for e in fleet.store.events(kind="campaign_state") if e.code == "running"]
    assert "fixed the printer driver" in reasons


def test_operator_transitions_and_refusals(fleet):
    fleet.add(3)
    fleet.package()
    draft = create_campaign(fleet.store, "c", "2.0.0")
    with pytest.raises(InvalidValue, match="is draft; cannot halt"):
        halt_campaign(fleet.store, draft.id)
    started = start_campaign(fleet.store, draft.id)
    assert change_campaign(fleet.store, started.id, "pause").state == "paused"
    assert _offered(fleet.store, started) == {}
    assert resume_campaign(fleet.store, started.id).state == "running"
    assert halt_campaign(fleet.store, started.id).state == "halted"
    assert cancel_campaign(fleet.store, started.id).state == "cancelled"
    with pytest.raises(InvalidValue, match="cancelled; cannot resume"):
        resume_campaign(fleet.store, started.id)
    with pytest.raises(NotFound):
        halt_campaign(fleet.store, 999)
    with pytest.raises(NotFound):
        create_campaign(fleet.store, "c", "9.9.9")


def test_rollback_tells_upgraded_terminals_and_counts_them(fleet):
    fleet.add(10)
    fleet.package("1.0.0")  # the old version is a package too: offered for the way back
    fleet.package()
    campaign = _campaign(fleet, canary_pct=100)
    offers = list(_offered(fleet.store, campaign))
    _finish(fleet.store, campaign.id, offers[:6])
    _finish(fleet.store, campaign.id, offers[6:7], ok=False)
    campaign = rollback_campaign(fleet.store, campaign.id, "bad build")
    assert campaign.state == "rolled_back"
    upgraded = offers[0]
    answer = upgrade_check(fleet.store, upgraded, "2.0.0", "P1", START)
    assert answer["action"] == "rollback" and answer["to_version"] == "1.0.0"
    assert answer["package"]["version"] == "1.0.0"
    assert upgrade_check(fleet.store, offers[6], "1.0.0", "P1", START) is None  # rolled back itself
    assert upgrade_check(fleet.store, offers[8], "1.0.0", "P1", START) is None  # never upgraded
    apply_upgrade_reports(fleet.store, [
        (tid, {"campaign": campaign.id, "step": "rollback", "ok": True, "from_version": "2.0.0",
               "to_version": "1.0.0"}, START) for tid in offers[:6]])
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.succeeded, campaign.failed, campaign.rolled_back) == (0, 1, 6)
    assert upgrade_check(fleet.store, upgraded, "1.0.0", "P1", START) is None


def test_stagger_spreads_not_before_over_the_period_and_window_is_passed(fleet):
    fleet.add(40)
    fleet.package()
    campaign = _campaign(fleet, canary_pct=100, stagger_minutes=60, window="22:30-04:00")
    offers = _offered(fleet.store, campaign)
    assert {o["window"]["start"] for o in offers.values()} == {"22:30"}
    assert {o["window"]["end"] for o in offers.values()} == {"04:00"}
    from datetime import datetime

    starts = sorted(datetime.fromisoformat(o["not_before"]) for o in offers.values())
    assert START <= starts[0] and starts[-1] < START + timedelta(minutes=60)
    assert starts[-1] - starts[0] > timedelta(minutes=30)  # spread, not all at once
    again = _offered(fleet.store, campaign)
    assert {t: o["not_before"] for t, o in again.items()} == {t: o["not_before"] for t, o in offers.items()}


def test_window_parsing_and_membership():
    assert parse_window("01:00-05:00") == ("01:00", "05:00")
    for bad in ("1:00-05:00", "24:00-01:00", "01:00", "01:60-02:00"):
        with pytest.raises(InvalidValue):
            parse_window(bad)
    assert in_window("01:00", "05:00", time(1, 0)) and in_window("01:00", "05:00", time(5, 0))
    assert not in_window("01:00", "05:00", time(5, 1))
    assert in_window("22:00", "02:00", time(23, 30)) and in_window("22:00", "02:00", time(1, 59))
    assert not in_window("22:00", "02:00", time(12, 0))


def test_bad_settings_are_refused(fleet):
    fleet.package()
    for bad in (dict(canary_pct=101), dict(threshold=1.5), dict(min_sample=0),
                dict(stagger_minutes=-1), dict(window="x")):
        with pytest.raises(InvalidValue):
            create_campaign(fleet.store, "c", "2.0.0", settings=CampaignSettings(**bad))
    with pytest.raises(InvalidValue, match="name"):
        create_campaign(fleet.store, " ", "2.0.0")
    assert fleet.store.list_campaigns() == []


def test_terminal_already_on_the_version_counts_as_succeeded(fleet):
    fleet.add(2)
    fleet.package()
    campaign = _campaign(fleet, canary_pct=100)
    tid = fleet.store.campaign_targets(campaign.id)[0].tid
    assert upgrade_check(fleet.store, tid, "2.0.0", "P1", START) is None
    assert fleet.store.campaign_target(campaign.id, tid).state == "succeeded"
    assert fleet.store.get_campaign(campaign.id).succeeded == 1


@pytest.mark.parametrize("current,step,ok,campaign_state,expected", [
    ("pending", "check", True, "running", "offered"),
    ("offered", "postpone", True, "running", "postponed"),
    ("postponed", "download", False, "running", "downloading"),
    ("downloading", "verify", False, "running", "failed"),
    ("installing", "sign_in", True, "running", "installing"),
    ("offered", "refused", False, "running", "failed"),
    ("installing", "commit", True, "running", "succeeded"),
    ("installing", "rollback", True, "running", "failed"),
    ("succeeded", "rollback", True, "rolled_back", "rolled_back"),
    ("failed", "rollback", True, "rolled_back", "failed"),
    ("succeeded", "rollback", False, "rolled_back", "succeeded"),
    ("succeeded", "download", True, "running", "succeeded"),
])
def test_target_state_machine(current, step, ok, campaign_state, expected):
    assert next_target_state(current, step, ok, campaign_state) == expected


def test_batch_checks_and_reports_match_single_calls(fleet, home, clock):
    from posdoctor.tms.service import TmsService

    fleet.add(30)
    fleet.package()
    campaign = _campaign(fleet, canary_pct=20, threshold=0.25, min_sample=4)
    service = TmsService(fleet.store, home, clock)
    tids = [t.tid for t in fleet.store.campaign_targets(campaign.id)]
    answers = service.upgrade_checks([(tid, "1.0.0", "P1") for tid in tids] + [("99999999", "1.0.0", "P1")])
    assert answers[-1] is None
    canary = [tid for tid, answer in zip(tids, answers, strict=False) if answer]
    assert len(canary) == 6
    assert all(service.upgrade_check(tid, "1.0.0", "P1") == answers[tids.index(tid)] for tid in canary)
    assert {t.tid for t in fleet.store.campaign_targets(campaign.id, "offered")} == set(canary)
    steps = [(tid, {"campaign": campaign.id, "step": step, "ok": not (tid in canary[:2] and step == "self_check")})
             for tid in canary for step in ("download", "install", "self_check")]
    steps += [(tid, {"campaign": campaign.id, "step": "commit" if tid not in canary[:2] else "rollback",
                     "ok": True}) for tid in canary]
    assert service.upgrade_reports(steps) == {"accepted": len(steps)}
    campaign = fleet.store.get_campaign(campaign.id)
    assert (campaign.state, campaign.succeeded, campaign.failed) == ("halted", 4, 2)  # 2/6 > 25 %
    assert len(fleet.store.events(kind="upgrade_report")) == len(steps)
    assert service.upgrade_checks([(tid, "1.0.0", "P1") for tid in tids]) == [None] * len(tids)
