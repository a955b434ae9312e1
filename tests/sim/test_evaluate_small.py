"""A small evaluation: the simulator's scenarios scored against the real doctor.

Ten causes from every family, one variation each, in one simulated day among healthy
terminals (plus one terminal with two faults). The doctor must name the injected cause
first for most of them and leave healthy terminals alone.
"""

from __future__ import annotations

from pathlib import Path

from posdoctor.sim.evaluate import EvaluationConfig, plan_scenarios, run_evaluation

CAUSES = ["keys.tmk_mismatch", "txn.insufficient_funds", "status.merchant_frozen", "hw.card_reader",
          "config.wrong_tpdu", "net.dns_failure", "upgrade.keys_lost", "backend.policy_restriction",
          "txn.duplicate", "params.download_incomplete", "hw.printer"]
TOP1_AT_LEAST = 0.8
FALSE_POSITIVES_AT_MOST = 0.2


def test_scenarios_cover_every_cause_in_its_variations() -> None:
    config = EvaluationConfig(variations=2, seed=3)
    scenarios = plan_scenarios(config)
    placed = [spec for scenario in scenarios for spec in scenario.faults]
    from posdoctor.sim.faults import FAULTS

    for cause in FAULTS:
        assert sum(1 for s in placed if s.cause == cause) >= 2, cause
    for scenario in scenarios:
        tids = [s.tid for s in scenario.faults]
        assert all(tid is not None for tid in tids)
        assert scenario.terminals > len(set(tids)), "every day keeps healthy terminals"
    assert any(len(scenario.faults) > len({s.tid for s in scenario.faults}) for scenario in scenarios), \
        "some terminal carries two faults"


def test_doctor_names_injected_causes(tmp_path: Path) -> None:
    report = run_evaluation(EvaluationConfig(variations=1, seed=4, causes=CAUSES, home=tmp_path))
    data = report.to_json()
    assert data["scenarios"] >= len(CAUSES)
    assert set(data["per_cause"]) == set(CAUSES)
    assert report.top1 >= TOP1_AT_LEAST, data["confusion"]
    assert data["false_positive_rate"] <= FALSE_POSITIVES_AT_MOST, data["false_positive_causes"]
