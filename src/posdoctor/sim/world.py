"""The simulated world: the real host on loopback, the TMS, the store and the fleet.

`World.build(config)` opens a fresh store, registers merchants (898100000000001, ...,
`terminals_per_merchant` terminals each), terminals (10000001, ...) with their devices
and keys as the key room would (`provision_terminal`), test cards, then starts the real
`HostServer` on an ephemeral loopback port. Every terminal is a real `PaymentApp` whose
transport key (or, for some, the TMK) was injected; it reaches the host over real TCP.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host.config import HostConfig
from posdoctor.host.provision import provision_card, provision_terminal
from posdoctor.host.server import HostServer
from posdoctor.store import Store, open_store
from posdoctor.store.config import load_lmk
from posdoctor.store.db import downgrade, make_engine
from posdoctor.store.validate import luhn_complete
from posdoctor.sim.clock import SimClock, default_day
from posdoctor.sim.bulk import BANK, BULK_FROM, account_number, merchant_name, register_in_bulk
from posdoctor.sim.config import FIRST_MID, SimConfig, mid_of, tid_of
from posdoctor.sim.fleet import SimTerminal, new_terminal, serial_of, model_of
from posdoctor.sim.reports import ReportSink, SimTmsClient
from posdoctor.terminal import Card

__all__ = ["World", "CardPool", "HEALTHY_PIN", "DAY_START_S"]

HEALTHY_PIN = "123456"
SLOTS_DIR = "sim-slots"
"""Under the home: the emulated devices' A/B software slots (upgrade campaigns)."""
HEALTHY_CARDS = 16
DAY_START_S = 5.5 * 3600
HOST_TPDU_DESTINATION = "0003"
ISSUER_TIMEOUT_S = 1.0
RECEIVE_TIMEOUT = "10"
"""Parameter tag 12 the host hands out (seconds, real): short, the sockets are real."""
HOST_KEY_CACHE = 4096
"""Unwrapped keys the simulated host keeps ready (`posdoctor serve` keeps 65,536). A
terminal's keys are used in bursts (the MAC, the PIN and the answer's MAC of one
transaction), so a few thousand cover the keys in use; each kept key costs ~1.5 KB of
cipher contexts, 6 KB per terminal if every terminal's four keys stayed."""


@dataclass(frozen=True, slots=True)
class TestCard:
    card: Card
    pin: str


class CardPool:
    """The cards customers present: a shared healthy pool plus cards a fault issues."""

    def __init__(self, store: Store, hsm: SoftHSM) -> None:
        self.store = store
        self.hsm = hsm
        self.healthy: list[TestCard] = []
        self.special: dict[str, TestCard] = {}
        self._next = 0

    def _pan(self) -> str:
        self._next += 1
        return luhn_complete(f"622202{self._next:012d}")

    def issue_healthy(self, count: int) -> None:
        for i in range(count):
            pan = self._pan()
            provision_card(self.store, self.hsm, pan, HEALTHY_PIN, 10**10)
            self.healthy.append(TestCard(Card(pan, chip=i % 2 == 1), HEALTHY_PIN))

    def issue(self, key: str, *, balance: int = 10**9, single_limit: int | None = None,
              daily_limit: int | None = None, chip: bool = False) -> TestCard:
        pan = self._pan()
        provision_card(self.store, self.hsm, pan, HEALTHY_PIN, balance, single_limit=single_limit,
                       daily_limit=daily_limit)
        card = TestCard(Card(pan, chip=chip), HEALTHY_PIN)
        self.special[key] = card
        return card


class World:
    """Everything that exists during a simulation run (see the module docstring)."""

    def __init__(self, config: SimConfig, store: Store, hsm: SoftHSM, home: Path) -> None:
        self.config = config
        self.store = store
        self.hsm = hsm
        self.home = home
        self.clock = SimClock(config.day or default_day(), DAY_START_S, config.speed)
        self.rng = random.Random(config.seed)
        self.link_rng = random.Random(config.seed ^ 0x5EED)
        self.host_config = HostConfig(
            port=0, accepted_tpdu_destinations=(HOST_TPDU_DESTINATION,), issuer_timeout_s=ISSUER_TIMEOUT_S,
            parameters={"12": RECEIVE_TIMEOUT}, idle_timeout_s=30.0, use_uvloop=False)
        self.host: HostServer | None = None
        self.port = 0
        self.terminals: list[SimTerminal] = []
        self.by_tid: dict[str, SimTerminal] = {}
        self.cards = CardPool(store, hsm)
        self.sink = ReportSink(store, self.clock.utc)
        self.tms: Any = None
        """The in-process `TmsService`, when the TMS provides one."""
        self.unregistered: set[str] = set()
        self.fresh: set[str] = set()
        """Terminals installed today: they download their master key, parameters, CAPK and
        AID at power-on. The others were installed before (key room TMK, tables kept)."""
        self.merchant_status: dict[str, str] = {}
        self.extra_merchants: set[str] = set()
        self.day: Any = None
        self.day_hooks: list[Any] = []
        """Called with the `Day` before it runs (fleet actions faults schedule)."""
        self._rule_96: int | None = None
        self._sheets: dict[str, Any] = {}
        self.host_stats: Counter[str] = Counter()
        self.campaigns: Any = None
        """The day's upgrade campaign (`sim.upgrades.Campaigns`) when the TMS has campaigns."""

    # --- building --------------------------------------------------------------------
    @staticmethod
    def open(config: SimConfig, home: Path) -> World:
        home.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(home / SLOTS_DIR, ignore_errors=True)  # last run's devices are gone
        url = config.db_url
        if url is None:
            path = home / f"simulation-{config.seed}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        elif config.reset:
            engine = make_engine(url)
            try:
                if inspect(engine).has_table("alembic_version"):
                    downgrade(engine, "base")  # the simulation owns this database
            finally:
                engine.dispose()
        store = open_store(url, home)
        return World(config, store, SoftHSM(load_lmk(home), cache_limit=HOST_KEY_CACHE), home)

    @property
    def db_url(self) -> str:
        return str(self.store.engine.url.render_as_string(hide_password=True))

    def register(self) -> None:
        """Merchants (with settlement accounts), cards and the acquirer's app policy."""
        self.cards.issue_healthy(HEALTHY_CARDS)
        self.set_app_policy()
        if len(self.terminals) >= BULK_FROM:
            self._sheets = register_in_bulk(self)
            return
        self._sheets = {}
        for mid in sorted({t.mid for t in self.terminals}):
            index = int(mid) - FIRST_MID
            self.store.add_merchant(mid, merchant_name(index), status=self.merchant_status.get(mid, "active"))
            self.store.set_settlement_account(mid, account_number(index), BANK, now=self.clock.utc())

    def set_app_policy(self) -> None:
        """The acquirer's list of apps allowed next to the payment app (TMS policy)."""
        try:
            from posdoctor.tms.policies import set_policy
        except ImportError:  # pragma: no cover - a TMS without policies
            return
        from posdoctor.sim.faults_device import ALLOWED_APPS

        set_policy(self.store, "allowed_apps", ALLOWED_APPS, actor="acquirer", reason="terminal security baseline")

    def create_terminals(self, listeners: tuple[Any, ...] = ()) -> None:
        config = self.config
        per_merchant = max(1, config.terminals_per_merchant)
        for index in range(config.terminals):
            tid = tid_of(index)
            mid = mid_of(index // per_merchant)
            term = new_terminal(index, tid, mid, index // max(1, config.terminals_per_site),
                                clock=self.clock.local, listeners=listeners, rng=self.link_rng)
            self.terminals.append(term)
            self.by_tid[tid] = term

    def provision(self) -> None:
        """Register each terminal (unless a fault keeps it unknown) and inject its keys."""
        for term in self.terminals:
            if term.tid in self.unregistered:
                term.app.inject_transport_key(bytes(self.rng.getrandbits(8) for _ in range(16)))
                continue
            sheet = self._sheets.get(term.tid) or provision_terminal(
                self.store, self.hsm, term.tid, term.mid, serial_of(term.index), model_of(term.index),
                now=self.clock.utc())
            term.app.inject_transport_key(sheet.tk)
            if term.tid not in self.fresh:
                term.app.inject_tmk(sheet.tmk)
            term.state.events.clear()  # the key room's own log stays in the key room
        self._sheets = {}

    async def install_tables(self) -> None:
        """Terminals installed before today hold the host's parameters, CAPK and AID: one
        of them downloads them (the installation), the others get the same tables."""
        installed = [t for t in self.terminals if t.tid not in self.fresh and t.tid not in self.unregistered]
        if not installed:
            return
        template = installed[0].app
        for step in (template.download_params, template.download_capk, template.download_aid):
            outcome = await step()
            if not outcome.ok:
                raise RuntimeError(f"installing the terminals' tables failed: {outcome.text}")
        source = template.state
        for term in installed[1:]:
            state = term.state
            state.params = source.params  # read-only: a download or a corruption replaces the dict
            state.params_complete = True
            state.merchant_name = source.merchant_name if term.mid == template.state.mid else state.merchant_name
            state.comm.receive_timeout_s = source.comm.receive_timeout_s
            state.settings.reversal_retries = source.settings.reversal_retries
            state.emv = source.emv.model_copy()  # the entry strings are shared, not copied
        for term in installed:
            term.state.events.clear()

    def attach_telemetry(self) -> None:
        from posdoctor.terminal.telemetry import Telemetry

        try:
            from posdoctor.tms.signing import public_key_hex

            tms_key = public_key_hex(self.home)
        except ImportError:  # pragma: no cover - a TMS without package signing
            tms_key = ""
        for term in self.terminals:
            term.state.tms_public_key = tms_key  # set at the factory: packages must be signed by it
            term.telemetry = Telemetry(term.state, term.device, term.app.events)

    def tms_client(self, term: SimTerminal) -> SimTmsClient:
        return SimTmsClient(self.sink, term, None)

    # --- the host --------------------------------------------------------------------
    async def start_host(self) -> None:
        first = not self.port
        config = self.host_config if first else self.host_config.model_copy(update={"port": self.port})
        self.host = HostServer(self.store, self.hsm, config, clock=self.clock.utc)
        _, self.port = await self.host.start()
        if first:  # the field engineer types the host's address into every terminal
            for term in self.terminals:
                term.state.comm.host, term.state.comm.port = "127.0.0.1", self.port

    async def stop_host(self) -> None:
        if self.host is not None:
            self.host_stats.update(self.host.stats)
            await self.host.stop()
            self.host = None

    def set_host_capacity(self, max_connections: int) -> None:
        self.host_config = self.host_config.model_copy(update={"max_connections": max_connections})

    def limit_host(self, max_connections: int | None) -> None:
        """Host capacity (connections it accepts); None: back to the configured one."""
        if self.host is not None:
            wanted = max_connections or self.host_config.max_connections
            self.host.config = self.host.config.model_copy(update={"max_connections": wanted})

    async def host_answers_96(self, on: bool) -> None:
        """The host's back end fails: every payment answered 96 (a rule on all terminals)."""
        if on:
            self._rule_96 = self.store.add_decline_rule(respond_code="96", note="simulated back-end failure").id
        elif self._rule_96 is not None:
            self.store.set_decline_rule_active(self._rule_96, False)
        await self.invalidate(None)

    async def invalidate(self, tid: str | None = None) -> None:
        if self.host is not None:
            await self.host.invalidate(tid)

    def enable_campaigns(self) -> None:
        """Upgrade campaigns, when this build's TMS and terminal have them."""
        try:
            from posdoctor.sim.upgrades import Campaigns

            self.campaigns = Campaigns(self)
        except ImportError:  # pragma: no cover - a TMS without campaigns
            self.campaigns = None

    async def run_upgrade(self, term: SimTerminal) -> None:
        if self.campaigns is not None:
            await self.campaigns.run_upgrade(term)

    def can(self, capability: str) -> bool:
        """Whether the TMS offers `capability` (`campaigns`) in this build."""
        if capability == "campaigns":
            return self.campaigns is not None
        return True

    def tally(self) -> dict[str, int]:
        """Fleet counts for progress and the summary."""
        txns = approved = failures = 0
        for term in self.terminals:
            for key, value in term.counts.items():
                failed = key.endswith("!")
                if key.rstrip("!") in ("sale", "void", "refund", "balance"):
                    txns += value
                    approved += 0 if failed else value
                if failed:
                    failures += value
        return {"txns": txns, "approved": approved, "failures": failures}

    async def after_day(self) -> None:
        """The TMS's end-of-day jobs: payouts of the settled batches are scheduled (or held)."""
        try:
            from posdoctor.tms.payouts import payout_tick
        except ImportError:  # pragma: no cover - older TMS without payouts
            return
        self.clock.advance_to(23.5 * 3600)
        await asyncio.to_thread(payout_tick, self.store, self.clock.utc())

    async def close(self) -> None:
        if self.host is not None:
            self.host_stats.update(self.host.stats)
        await self.stop_host()
        await self.sink.drain()
        self.store.engine.dispose()
