"""A provisioned site for host tests: one merchant, one terminal, one card, a host."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hostclient import TestTerminal

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host import HostConfig, HostServer, KeyRoomSheet, provision_card, provision_terminal
from posdoctor.store import Store

MID = "898100000000001"
TID = "10000001"
SERIAL = "SN0001"
PAN = "6222020000000000000"
PIN = "123456"
BALANCE = 100_000


class Clock:
    """A settable clock for the host (`HostServer(clock=...)`)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Site:
    """A host with one merchant, one terminal and one card, and a terminal for it."""

    store: Store
    hsm: SoftHSM
    host: HostServer
    address: tuple[str, int]
    sheet: KeyRoomSheet
    card_id: int
    account_id: int

    def terminal(self, **kw: object) -> TestTerminal:
        params = {"tid": TID, "mid": MID, "serial": SERIAL, "tk": self.sheet.tk, **kw}
        return TestTerminal(self.address, **params)  # type: ignore[arg-type]

    def balance(self, account_id: int | None = None) -> int:
        return self.store.get_account(account_id or self.account_id).balance


def provision(store: Store, hsm: SoftHSM) -> tuple[KeyRoomSheet, int, int]:
    store.add_merchant(MID, "示例商户")
    sheet = provision_terminal(store, hsm, TID, MID, SERIAL, "N910")
    card = provision_card(store, hsm, PAN, PIN, BALANCE, expiry="3012")
    return sheet, card.card_id, card.account_id


HOST_CONFIG = HostConfig(port=0, commit_interval_s=0.0005, idle_timeout_s=5.0)


async def start_site(store: Store, hsm: SoftHSM, config: HostConfig = HOST_CONFIG, **kw: object) -> Site:
    sheet, card_id, account_id = provision(store, hsm)
    host = HostServer(store, hsm, config, **kw)  # type: ignore[arg-type]
    address = await host.start()
    return Site(store, hsm, host, address, sheet, card_id, account_id)


