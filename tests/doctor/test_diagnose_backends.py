"""The doctor on both backends (SQLite and PostgreSQL, the ``store`` fixture): the fleet
context's grouped queries and JSON field extraction, bulk loads, a fleet view and a fix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from doctorkit import PIN, DoctorSite, card, start_doctor_site, tid_of

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.doctor.diagnose import diagnose_fleet, diagnose_terminal
from posdoctor.doctor.fixes import FixEnv, run_fix
from posdoctor.store import Store


@pytest.fixture
async def both_site(store: Store, home: Path, lmk: bytes) -> AsyncIterator[DoctorSite]:
    site = await start_doctor_site(store, SoftHSM(lmk), home)
    try:
        yield site
    finally:
        await site.host.stop()


async def test_fleet_view_and_fix_on_each_backend(both_site: DoctorSite) -> None:
    site = both_site
    await site.healthy_fleet(4)
    app = site.apps[tid_of(4)]
    stale = {k: v for k, v in app.state.keys.items() if k in ("PIK", "MAK", "TDK")}
    assert (await app.sign_in()).ok
    app.state.keys.update(stale)
    assert (await app.sale(card(), 1200, PIN)).response_code == "A0"
    site.report(4)
    fleet = diagnose_fleet(site.store)
    assert fleet.by_cause == {"keys.mak_desync": 1}
    assert fleet.fleet.assigned_comm == (site.address[0], site.address[1])
    assert diagnose_terminal(site.store, tid_of(1)).findings == []
    done = run_fix(FixEnv(site.store, site.hsm), tid_of(4), "keys.mak_desync", apply=True)
    assert done.ok, done.check


def test_event_kinds_are_found_by_index_seeks_on_each_backend(store: Store) -> None:
    """The fleet context's list of event kinds (walked one index seek per kind)."""
    from posdoctor.doctor.fleet import _event_kinds
    from posdoctor.store.records import EventRecord

    with store.engine.connect() as conn:
        assert _event_kinds(conn) == []
    store.apply_host_batch([EventRecord(source="host", kind=kind)
                            for kind in ("self_check", "heartbeat", "mac_error", "self_check", "Z_upper", "a")])
    with store.engine.connect() as conn:
        kinds = _event_kinds(conn)  # in the database's collation order
    assert sorted(kinds) == sorted({"self_check", "heartbeat", "mac_error", "Z_upper", "a"})
    assert len(kinds) == len(set(kinds))
