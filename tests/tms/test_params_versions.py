"""Versioned parameters (template < merchant < terminal) and policies, with their evidence."""

from __future__ import annotations

import pytest

from posdoctor.store import InvalidValue, NotFound, Store
from posdoctor.tms import params
from posdoctor.tms.policies import Policies, load_policies, parse_policy, policy_table, set_policy, version_below

MID, MID2 = "898100000000201", "898100000000202"
TID, TID2, TID3 = "30000001", "30000002", "30000003"


@pytest.fixture
def fleet(store: Store) -> Store:
    store.add_merchant(MID, "参数商户一")
    store.add_merchant(MID2, "参数商户二")
    store.add_terminal(TID, MID, "SN-P-1")
    store.add_terminal(TID2, MID, "SN-P-2")
    store.add_terminal(TID3, MID2, "SN-P-3")
    return store


def test_layers_override_and_versions_move_only_where_they_apply(fleet: Store) -> None:
    store = fleet
    assert params.effective_params(store, TID) == (0, {})
    v1 = params.set_param(store, "receive_timeout", "30", actor="ops")
    v2 = params.set_param(store, "12", "45", mid=MID, actor="ops")
    v3 = params.set_param(store, "tip", "1", tid=TID2, actor="ops")
    assert (v1, v2, v3) == (1, 2, 3)
    assert params.effective_params(store, TID) == (2, {"12": "45"})
    assert params.effective_params(store, TID2) == (3, {"12": "45", "18": "1"})
    assert params.effective_params(store, TID3) == (1, {"12": "30"})
    v4 = params.set_param(store, "12", None, mid=MID)  # removing the override moves the version too
    assert params.effective_params(store, TID) == (v4, {"12": "30"})
    events = store.events(kind="param_change")
    assert [(e.code, e.detail["scope"], e.detail["old"], e.detail["new"], e.detail["version"]) for e in events] == [
        ("12", "template", None, "30", 1), ("12", "merchant", None, "45", 2), ("18", "terminal", None, "1", 3),
        ("12", "merchant", "45", None, 4)]
    assert [(c.kind, c.tid, c.mid, c.value) for c in store.host_changes_after(0) if c.kind == "params"] == [
        ("params", None, None, "1"), ("params", None, MID, "2"), ("params", TID2, None, "3"), ("params", None, MID, "4")]
    report = params.params_report(store, TID2)
    assert report["stale"] is True and report["downloaded_version"] is None
    assert report["params"] == [{"tag": "12", "name": "receive_timeout", "value": "30", "from": "template"},
                                {"tag": "18", "name": "tip", "value": "1", "from": "terminal"}]
    store.record_terminal_report(TID2, params_version=4)
    assert params.params_report(store, TID2)["stale"] is False


BAD_PARAMS = [("99", "1", "unknown parameter 99"), ("timeout", "1", "unknown parameter timeout"),
              ("12", "123", "parameter 12 \\(receive timeout \\(s\\)\\) value is invalid"),
              ("receive_timeout", "ab", "value is invalid")]


def test_bad_parameters_are_refused_and_change_nothing(fleet: Store) -> None:
    for key, value, message in BAD_PARAMS:
        with pytest.raises(InvalidValue, match=message):
            params.set_param(fleet, key, value)
    assert fleet.param_rows() == [] and {c.kind for c in fleet.host_changes_after(0)} == {"registry"}


def test_parameter_owner_must_exist(fleet: Store) -> None:
    with pytest.raises(NotFound):
        params.set_param(fleet, "12", "30", tid="39999999")
    with pytest.raises(InvalidValue, match="not both"):
        fleet.set_param("12", "30", mid=MID, tid=TID)


def test_policies_parse_store_record_and_default(fleet: Store) -> None:
    store = fleet
    assert load_policies(store) == Policies()
    set_policy(store, "min_app_version", "1.2.0", actor="ops", reason="CVE fix")
    set_policy(store, "mcc.5411", "sale, balance", actor="ops")
    set_policy(store, "signin_requires_serial", "yes", actor="ops")
    set_policy(store, "min_app_version", "010300", actor="ops2")
    policies = load_policies(store)
    assert (policies.min_app_version, policies.signin_requires_serial) == ("010300", True)
    assert policies.kinds_for_mcc("5411") == ("sale", "balance") and policies.kinds_for_mcc("5812") is None
    events = store.events(kind="policy_change")
    assert [(e.code, e.detail["old"], e.detail["new"], e.detail["actor"]) for e in events] == [
        ("min_app_version", None, "1.2.0", "ops"), ("mcc.5411", None, ["sale", "balance"], "ops"),
        ("signin_requires_serial", None, True, "ops"), ("min_app_version", "1.2.0", "010300", "ops2")]
    assert events[0].detail["reason"] == "CVE fix"
    set_policy(store, "min_app_version", "none", actor="ops")
    assert load_policies(store).min_app_version is None
    table = {row["name"]: row for row in policy_table(store)}
    assert table["min_app_version"]["default"] is True and table["mcc.5411"]["value"] == ["sale", "balance"]
    assert [c.kind for c in store.host_changes_after(0) if c.kind != "registry"] == ["policy"] * 5


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [("max_speed", "1", "unknown policy max_speed"), ("min_app_version", "v2", "version must look like"),
     ("signin_requires_serial", "maybe", "must be true or false"), ("mcc.5411", "sale,cashback", "cashback"),
     ("operator_max_failures", "0", "1 to 99"), ("allowed_apps", "a b", "app names")],
)
def test_bad_policies_are_refused(name: str, text: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message) as err:
        parse_policy(name, text)
    assert err.value.zh


@pytest.mark.parametrize(
    ("version", "minimum", "below"),
    [("010000", "1.2.0", True), ("010200", "1.2.0", False), ("1.10", "1.9.9", False), ("1.2", "1.2.0", False),
     ("2.0.0", "010300", False), ("1.2.9", "1.3", True)],
)
def test_version_comparison(version: str, minimum: str, below: bool) -> None:
    assert version_below(version, minimum) is below
