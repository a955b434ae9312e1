from datetime import UTC, datetime, timedelta

from posdoctor.host.identifiers import Identifiers

NOON = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_rrn_is_day_of_year_then_second_of_day_and_sequence():
    ids = Identifiers()
    assert ids.next_rrn(NOON) == "060" + "432000000"
    assert ids.next_rrn(NOON) == "060" + "432000001"
    assert ids.next_rrn(NOON + timedelta(seconds=1)) == "060" + "432010000"


def test_bursts_never_repeat_within_a_day():
    ids = Identifiers()
    issued = [ids.next_rrn(NOON) for _ in range(25_000)]
    issued += [ids.next_rrn(NOON + timedelta(seconds=1)) for _ in range(100)]
    assert len(set(issued)) == len(issued)
    assert all(len(r) == 12 and r.isdigit() for r in issued)


def test_new_day_restarts_the_sequence():
    ids = Identifiers()
    ids.next_rrn(NOON)
    assert ids.next_rrn(NOON + timedelta(days=1)) == "061" + "432000000"


def test_auth_codes_are_six_digits_and_change():
    ids = Identifiers()
    codes = [ids.next_auth_code() for _ in range(100)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(set(codes)) == 100
