"""The route table: keys, patterns, step names."""

import re

import pytest

from posdoctor.host.route import Route, find_route
from posdoctor.host.routes import CLOSING, INBOUND, ROUTES
from posdoctor.iso8583.routing import route_key

VERBS = ("Decode", "Select", "Check", "Load", "Find", "Verify", "Issue", "Download", "End", "Send", "List",
         "Record", "Read", "Query", "Authorize", "Cancel", "Refund", "Reverse", "Compare", "Prepare",
         "Sign", "Journal")


def message(mti: str, nmi: str = "000", proc: str = "000000", txn_type: str = "00") -> dict[str, str]:
    return {"t": mti, "3": proc, "25": "00", "60": f"{txn_type}000001{nmi}"}


@pytest.mark.parametrize(("msg", "name"), [
    (message("0800", "401"), "tmk_download"),
    (message("0800", "001"), "sign_in_001"),
    (message("0800", "003"), "sign_in_003"),
    (message("0800", "004"), "sign_in_004"),
    (message("0800", "006"), "sign_in_006"),
    (message("0820", "002"), "sign_off"),
    (message("0820", "301"), "echo"),
    (message("0820", "362"), "status_upload"),
    (message("0800", "360"), "param_download"),
    (message("0800", "364"), "param_download"),
    (message("0800", "361"), "param_download_end"),
    (message("0820", "372"), "capk_query"),
    (message("0800", "370"), "capk_download"),
    (message("0800", "371"), "capk_download_end"),
    (message("0820", "382"), "aid_query"),
    (message("0800", "380"), "aid_download"),
    (message("0800", "381"), "aid_download_end"),
    (message("0200", proc="310000", txn_type="01"), "balance"),
    (message("0200", proc="000000", txn_type="22"), "sale"),
    (message("0200", proc="200000", txn_type="23"), "void"),
    (message("0220", proc="200000", txn_type="25"), "refund"),
    (message("0400", proc="000000", txn_type="22"), "reversal"),
    (message("0400", proc="200000", txn_type="23"), "reversal"),
    (message("0500", "201"), "settlement"),
    (message("0320", "201"), "batch_upload"),
    (message("0320", "202"), "batch_upload_end"),
])
def test_messages_reach_their_route(msg, name):
    route = find_route(route_key(msg), ROUTES)
    assert route is not None and route.name == name


@pytest.mark.parametrize("msg", [message("0100", proc="030000", txn_type="10"), message("0800", "999"),
                                 message("0200", proc="000000", txn_type="20")])
def test_unoffered_functions_have_no_route(msg):
    assert find_route(route_key(msg), ROUTES) is None


def test_exact_keys_win_over_patterns():
    exact, pattern = Route("exact", ()), Route("pattern", ())
    table = {"0400.*": pattern, "0400.000000.00.22": exact}
    assert find_route("0400.000000.00.22", table) is exact
    assert find_route("0400.200000.00.23", table) is pattern
    assert find_route("0200.000000.00.22", table) is None


def test_step_names_are_verb_plus_noun():
    steps = {step for route in ROUTES.values() for step in route.steps} | set(INBOUND) | set(CLOSING)
    for step in steps:
        assert re.fullmatch(r"(?:[A-Z][a-z]+){1,3}", step.name), step.name
        assert step.name.startswith(VERBS), step.name


def test_money_routes_check_sign_in_and_mac_before_touching_money():
    for name in ("balance", "sale", "void", "refund", "reversal"):
        route = next(r for r in ROUTES.values() if r.name == name)
        names = [s.name for s in route.steps]
        assert names.index("CheckSignIn") < names.index("VerifyMac") < min(
            i for i, n in enumerate(names) if n in ("Authorize", "QueryBalance", "CancelOriginal",
                                                      "RefundOriginal", "ReverseOriginal"))
