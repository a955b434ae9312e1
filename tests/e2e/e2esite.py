"""The real acquiring host on an ephemeral port, a real store, and real emulated terminals.

Nothing here talks to the host except `posdoctor.terminal` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host import HostConfig, HostServer, KeyRoomSheet, provision_card, provision_terminal
from posdoctor.store import Store
from posdoctor.terminal import Device, LinkConditions, PaymentApp, TcpLink, TerminalFiles, new_state

MID = "898100000000001"
MERCHANT = "示例商户"
TID = "10000001"
SERIAL = "SN0001"
MODEL = "N910"
PAN = "6222020000000000000"
PIN = "123456"
BALANCE = 100_000

HOST_CONFIG = HostConfig(port=0, commit_interval_s=0.0005, idle_timeout_s=5.0)


@dataclass
class Site:
    store: Store
    hsm: SoftHSM
    host: HostServer
    address: tuple[str, int]
    sheet: KeyRoomSheet
    account_id: int
    home: Path
    apps: list[PaymentApp] = field(default_factory=list)

    def balance(self) -> int:
        return self.store.get_account(self.account_id).balance

    def terminal(self, tid: str = TID, serial: str = SERIAL, mid: str = MID, *,
                 conditions: LinkConditions | None = None, receive_timeout_s: float = 3.0) -> PaymentApp:
        """A factory-fresh emulated terminal saved under the site's home, pointed at the host."""
        files = TerminalFiles(self.home)
        state = new_state(tid, serial, mid=mid, model=MODEL)
        state.comm.host, state.comm.port = self.address
        state.comm.connect_timeout_s, state.comm.receive_timeout_s = 2.0, receive_timeout_s
        device = Device(serial, MODEL, device_key=files.device_key(tid))
        app = PaymentApp(state, device, link=TcpLink(conditions), persist=files.save)
        self.apps.append(app)
        return app

    async def ready_terminal(self, **kw: object) -> PaymentApp:
        """TK injected, TMK/parameters/CAPK/AID downloaded, signed in."""
        app = self.terminal(**kw)  # type: ignore[arg-type]
        app.inject_transport_key(self.sheet.tk)
        outcomes = await app.initialise()
        assert all(o.ok for o in outcomes), [o.text for o in outcomes]
        receive = app.state.comm.receive_timeout_s
        signed = await app.sign_in()
        assert signed.ok, signed.text
        app.state.comm.receive_timeout_s = min(receive, 3.0)  # the downloaded parameter says 60 s
        return app


async def start_site(store: Store, hsm: SoftHSM, home: Path) -> Site:
    store.add_merchant(MID, MERCHANT)
    sheet = provision_terminal(store, hsm, TID, MID, SERIAL, MODEL)
    card = provision_card(store, hsm, PAN, PIN, BALANCE, expiry="3012")
    host = HostServer(store, hsm, HOST_CONFIG)
    address = await host.start()
    return Site(store, hsm, host, address, sheet, card.account_id, home)
