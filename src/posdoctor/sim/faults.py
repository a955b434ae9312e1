"""Fault injection: one `Fault` per cause of the catalog, changing the world only.

A fault never writes evidence: it changes what the world is (a terminal's settings,
keys, link, device or merchant habits; the registry and policies through the TMS's own
functions; the host's capacity; the power of a site) and the host, the TMS and the
terminals then produce the evidence while living through the day.

Hooks (each optional, sync or async) get a `Hit` (world, target terminal, variant, rng):

- `setup`: before anything is registered (merchant habits, cards, registration);
- `install`: after the host started, before power-on (settings typed wrong at install);
- `strike`: at a virtual time drawn from `window` (things that happen during the day);
- `plan`: adjust the terminal's planned day (e.g. make sure a sale follows the strike).

`FAULTS` maps every cause ID to its fault; `choose_targets` places faults by the seed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posdoctor.sim.plan import H

__all__ = ["Fault", "Hit", "Injection", "FAULTS", "register_faults", "MORNING", "BUSINESS", "BEFORE_OPEN",
           "INSTALL"]

Hook = Callable[["Hit"], Any]
BEFORE_OPEN = (7.55 * H, 7.95 * H)
"""After power-on and initialisation, before the shop opens."""
MORNING = (9.5 * H, 12.0 * H)
BUSINESS = (10.0 * H, 17.0 * H)
INSTALL = None
"""No strike: the fault is in place from power-on (`install`/`setup`)."""


@dataclass(frozen=True)
class Fault:
    cause: str
    what: str
    """The world change, in English."""
    scope: str = "terminal"
    """terminal | merchant | site | fleet: what `affected` covers."""
    variants: tuple[str, ...] = ("default",)
    setup: Hook | None = None
    install: Hook | None = None
    strike: Hook | None = None
    windows: tuple[tuple[float, float] | None, ...] = (None,)
    """Strike window per variant (the last one repeats); None: no strike."""
    plan: Hook | None = None
    needs: str | None = None
    """A TMS capability this fault needs (`campaigns`); skipped with a note without it."""
    prefers: Callable[[Any], bool] | None = None
    """Which terminals suit this fault when the seed chooses (e.g. mPOS only)."""

    def window(self, variant: int) -> tuple[float, float] | None:
        return self.windows[min(variant, len(self.windows) - 1)]


@dataclass
class Injection:
    """Ground truth for one injected fault (kept in the result, never in the store)."""

    cause: str
    tid: str
    variant: int
    variant_name: str
    scope: str
    at: str | None = None
    affected: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"cause": self.cause, "tid": self.tid, "variant": self.variant, "variant_name": self.variant_name,
                "scope": self.scope, "at": self.at, "affected": self.affected, "detail": self.detail}
        if self.skipped:
            data["skipped"] = self.skipped
        return data


@dataclass
class Hit:
    world: Any
    term: Any
    variant: int
    rng: random.Random
    injection: Injection

    @property
    def tid(self) -> str:
        return self.term.tid

    def note(self, **detail: Any) -> None:
        self.injection.detail.update(detail)

    def strike_at(self) -> float | None:
        offset = self.injection.detail.get("_strike_s")
        return float(offset) if offset is not None else None


FAULTS: dict[str, Fault] = {}


def register_faults(*faults: Fault) -> None:
    for fault in faults:
        if fault.cause in FAULTS:
            raise ValueError(f"two faults for {fault.cause}")
        FAULTS[fault.cause] = fault


async def call_hook(hook: Hook | None, hit: Hit) -> None:
    if hook is None:
        return
    result = hook(hit)
    if asyncio.iscoroutine(result):
        await result


def _load_definitions() -> None:
    from posdoctor.sim import faults_device, faults_keys, faults_registry, upgrades  # noqa: F401  (they register)


_load_definitions()
