"""The day's upgrade campaigns and the upgrade faults.

When the TMS has campaigns, the world registers signed packages and starts campaigns
through the TMS's own functions (`tms.firmware`, `tms.campaigns`): a healthy pilot
campaign for a share of the fleet, and one campaign per upgrade fault with the package
that fault needs (built for another model, resetting config/keys/batch, with a defect,
or allowed only in a night window). The terminals' real `UpgradeAgent` polls the
in-process `TmsService` (`LocalTmsClient`) and reports every step; a corrupt download
is the network's doing (`SimTmsClient` corrupts the bytes in transit).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from posdoctor.sim.faults import Fault, Hit, register_faults
from posdoctor.sim.fleet import MODELS
from posdoctor.sim.plan import H
from posdoctor.sim.planedit import add_sales_after, insert_action
from posdoctor.sim.world import SLOTS_DIR

log = logging.getLogger(__name__)

__all__ = ["Campaigns", "setup_campaigns", "PILOT_VERSION"]

PILOT_VERSION = "010100"
PAYLOAD_SIZE = 4096
MAX_POLLS = 8

# cause -> (package version, build options, campaign window)
PACKAGES: dict[str, tuple[str, dict[str, Any], str]] = {
    "upgrade.incompatible_model": ("010101", {"models": ["EMU-900"]}, "00:00-23:59"),
    "upgrade.config_lost": ("010102", {"resets": ["config"]}, "00:00-23:59"),
    "upgrade.keys_lost": ("010103", {"resets": ["keys"]}, "00:00-23:59"),
    "upgrade.batch_lost": ("010104", {"resets": ["batch"]}, "00:00-23:59"),
    "upgrade.not_applied": ("010105", {}, "02:00-03:00"),
    "upgrade.firmware_defect": ("010200", {"defect": "sign_in"}, "00:00-23:59"),
}


class Campaigns:
    """The TMS side of the day's upgrades, and each terminal's agent."""

    def __init__(self, world: Any) -> None:
        from posdoctor.tms.service import TmsService

        self.world = world
        self.service = TmsService(world.store, world.home, clock=world.clock.utc)
        self.groups: dict[str, list[str]] = {"pilot": []}
        """campaign key (cause or "pilot") -> target TIDs."""
        self.corrupt: dict[str, int] = {}
        """tid -> how many more downloads the network corrupts."""

    def add_targets(self, key: str, tids: list[str]) -> None:
        group = self.groups.setdefault(key, [])
        taken = {t for tids_ in self.groups.values() for t in tids_}
        group.extend(t for t in tids if t not in taken or t in group)

    def start(self) -> None:
        """Register the packages and start one campaign per group (before the day)."""
        from posdoctor.tms import campaigns, firmware

        store, home, now = self.world.store, self.world.home, self.world.clock.utc()
        for key, tids in self.groups.items():
            if not tids:
                continue
            version, options, window = PACKAGES.get(key, (PILOT_VERSION, {}, "00:00-23:59"))
            models = options.get("models", list(MODELS))
            data = firmware.build_package(version, models, payload_size=PAYLOAD_SIZE,
                                          resets=options.get("resets", ()), defect=options.get("defect"))
            firmware.add_package(store, home, data, version=version, models=list(MODELS))
            settings = campaigns.CampaignSettings(canary_pct=100.0, window=window, stagger_minutes=0)
            campaign = campaigns.create_campaign(store, f"sim {key}", version, tids=tids, settings=settings, now=now)
            campaigns.start_campaign(store, campaign.id, now=now)

    async def run_upgrade(self, term: Any) -> None:
        from posdoctor.terminal.upgrade import UpgradeAgent

        if term.agent is None:
            client = UpgradeClient(self, term)
            term.agent = UpgradeAgent(term.app, term.device, client, clock=term.app.clock,
                                      home=self.world.home / SLOTS_DIR, persist=lambda _state: None)
        result = None
        for _ in range(MAX_POLLS):
            result = await term.agent.poll()
            log.debug("upgrade poll %s: %s", term.tid, result)
            if result.status in ("idle", "upgraded", "rolled_back", "refused", "failed", "postponed", "error"):
                break
        term.count("upgrade", result is not None and result.status in ("upgraded", "idle"))


class UpgradeClient:
    """`LocalTmsClient` behind the terminal's network (power, link, corruption)."""

    __slots__ = ("campaigns", "term", "local")

    def __init__(self, campaigns: Campaigns, term: Any) -> None:
        from posdoctor.terminal.tmsclient import LocalTmsClient

        self.campaigns = campaigns
        self.term = term
        self.local = LocalTmsClient(campaigns.service, term.tid, term.state.serial)

    def _reachable(self) -> None:
        from posdoctor.terminal.tmsclient import TmsUnreachable

        if not self.term.powered or not self.term.tms_online:
            raise TmsUnreachable("no network link to the TMS")

    async def aclose(self) -> None:
        return None

    async def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._reachable()
        return await asyncio.to_thread(self.campaigns.service.heartbeat, self.term.tid, payload)

    async def upload_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._reachable()
        return await self.local.upload_status(payload)

    async def upload_logs(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        self._reachable()
        return await self.local.upload_logs(events)

    async def check_upgrade(self, version: str, model: str) -> dict[str, Any] | None:
        self._reachable()
        return await self.local.check_upgrade(version, model)

    async def download(self, package: dict[str, Any], start: int, end: int) -> bytes:
        self._reachable()
        data = await self.local.download(package, start, end)
        left = self.campaigns.corrupt.get(self.term.tid, 0)
        if left > 0 and data:
            self.campaigns.corrupt[self.term.tid] = left - 1
            data = bytes([data[0] ^ 0xFF]) + data[1:-1]  # a flipped byte and a lost one
        return data

    async def report_upgrade(self, report: dict[str, Any]) -> dict[str, Any]:
        self._reachable()
        return await self.local.report_upgrade(report)


def setup_campaigns(world: Any) -> None:
    """Choose the pilot group and start the campaigns (called after registration)."""
    campaigns = world.campaigns
    if campaigns is None:
        return
    share = world.config.upgrade_share
    step = max(1, round(1 / share)) if share > 0 else 0
    pilot = [t.tid for t in world.terminals if step and t.index % step == step // 2 and not t.causes]
    campaigns.add_targets("pilot", pilot)
    campaigns.start()
    targeted = {tid for tids in campaigns.groups.values() for tid in tids}
    for term in world.terminals:
        if term.tid in targeted and not any(a[1] == "upgrade" for a in term.plan):
            insert_action(term, 13.0 * H + (term.index % 90) * 60, "upgrade")


# --- the upgrade faults -----------------------------------------------------------------------
def _target(hit: Hit, key: str) -> None:
    hit.world.campaigns.add_targets(key, [hit.tid])
    add_sales_after(hit.term, 14.6 * H, 2, gap_s=1800)


def corrupt_download(hit: Hit) -> None:
    hit.world.campaigns.add_targets("pilot", [hit.tid])
    hit.world.campaigns.corrupt[hit.tid] = 99 if hit.variant == 0 else 2
    add_sales_after(hit.term, 14.6 * H, 1)


def defect_group(hit: Hit) -> None:
    world = hit.world
    size = max(4, len(world.terminals) // 25)
    free = [t.tid for t in world.terminals if not t.causes and t.tid != hit.tid]
    group = [hit.tid] + [free[(i * 7 + hit.variant) % len(free)] for i in range(min(size - 1, len(free)))]
    group = list(dict.fromkeys(group))
    world.campaigns.add_targets("upgrade.firmware_defect", group)
    for tid in group:
        add_sales_after(world.by_tid[tid], 14.6 * H, 2, gap_s=1800)
    hit.injection.affected = group
    hit.note(group=len(group), version=PACKAGES["upgrade.firmware_defect"][0])


def busy_terminal(hit: Hit) -> None:
    _target(hit, "upgrade.not_applied")
    for k in range(3):  # the agent asks again in the afternoon: still outside the window
        insert_action(hit.term, 15.0 * H + k * 2 * H, "upgrade")


def unsettled_upgrade(hit: Hit) -> None:
    _target(hit, "upgrade.batch_lost")
    add_sales_after(hit.term, 10.0 * H, 3, gap_s=1800)


register_faults(
    Fault("upgrade.download_corrupt", "the package corrupted or truncated on the way to the terminal",
          variants=("every-attempt", "first-attempts"), setup=corrupt_download, needs="campaigns"),
    Fault("upgrade.incompatible_model", "a package built for another model pushed to the terminal",
          setup=lambda hit: _target(hit, "upgrade.incompatible_model"), needs="campaigns"),
    Fault("upgrade.firmware_defect", "a new version that fails its sign-in step, rolled out to a group",
          scope="fleet", setup=defect_group, needs="campaigns"),
    Fault("upgrade.config_lost", "an upgrade package that resets the comm settings",
          setup=lambda hit: _target(hit, "upgrade.config_lost"), needs="campaigns"),
    Fault("upgrade.keys_lost", "an upgrade package that wipes the keys",
          setup=lambda hit: _target(hit, "upgrade.keys_lost"), needs="campaigns"),
    Fault("upgrade.batch_lost", "an upgrade without settling first that loses the batch",
          setup=unsettled_upgrade, needs="campaigns"),
    Fault("upgrade.not_applied", "an upgrade only allowed at night while the terminal is off",
          setup=busy_terminal, needs="campaigns"),
)
