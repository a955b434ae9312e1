"""Route keys for every message kind the host handles."""

from __future__ import annotations

import pytest

from posdoctor.iso8583.errors import DecodeError
from posdoctor.iso8583.routing import route_key


@pytest.mark.parametrize(("msg", "key"), [
    ({"t": "0800", "60": "00000001004"}, "0800.004"),
    ({"t": "0800", "60": "00000001006"}, "0800.006"),
    ({"t": "0800", "60": "00000000401"}, "0800.401"),
    ({"t": "0800", "60": "00000001360"}, "0800.360"),
    ({"t": "0820", "60": "00000001002"}, "0820.002"),
    ({"t": "0820", "60": "00000001301"}, "0820.301"),
    ({"t": "0820", "60": "00000001372"}, "0820.372"),
    ({"t": "0500", "60": "00000001201"}, "0500.201"),
    ({"t": "0320", "60": "00000001201"}, "0320.201"),
    ({"t": "0320", "60": "00000001202"}, "0320.202"),
    ({"t": "0200", "3": "000000", "25": "00", "60": "22000001000"}, "0200.000000.00.22"),
    ({"t": "0200", "3": "200000", "25": "00", "60": "23000001000"}, "0200.200000.00.23"),
    ({"t": "0200", "3": "310000", "25": "00", "60": "01000001000"}, "0200.310000.00.01"),
    ({"t": "0220", "3": "200000", "25": "00", "60": "25000001000"}, "0220.200000.00.25"),
    ({"t": "0100", "3": "030000", "25": "06", "60": "10000001000"}, "0100.030000.06.10"),
    ({"t": "0400", "3": "000000", "25": "00", "60": "22000001000"}, "0400.000000.00.22"),
    ({"t": "0810", "60": "00000001004"}, "0810.004"),
    ({"t": "0600", "60": "00000001004"}, "0600"),
])
def test_route_key(msg: dict[str, str], key: str) -> None:
    assert route_key(msg) == key


@pytest.mark.parametrize(("msg", "field", "reason"), [
    ({}, "t", "MTI '' is not 4 digits"),
    ({"t": "08X0"}, "t", "MTI '08X0' is not 4 digits"),
    ({"t": "0800"}, "60", "0800 needs field 60 with 60.1-60.3 (11 digits) to be routed, got ''"),
    ({"t": "0800", "60": "00000001"}, "60",
     "0800 needs field 60 with 60.1-60.3 (11 digits) to be routed, got '00000001'"),
    ({"t": "0200", "25": "00", "60": "22000001000"}, "3", "0200 needs field 3 (6 digits) to be routed, got ''"),
    ({"t": "0200", "3": "000000", "60": "22000001000"}, "25", "0200 needs field 25 (2 digits) to be routed, got ''"),
])
def test_route_key_errors(msg: dict[str, str], field: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        route_key(msg)
    assert (info.value.field, info.value.pos, info.value.reason) == (field, 0, reason)
