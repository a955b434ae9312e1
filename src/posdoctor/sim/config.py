"""What a simulation run is asked to do: `SimConfig` and the `--fault CAUSE[@TID]` spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

__all__ = ["SimConfig", "FaultSpec", "parse_fault_spec", "FIRST_TID", "FIRST_MID", "tid_of", "mid_of",
           "Progress"]

FIRST_TID = 10000001
FIRST_MID = 898100000000001

Progress = Callable[[dict], None]
"""Called with a snapshot: {"phase", "clock", "done", "total", "txns", "failures", ...}."""


def tid_of(index: int) -> str:
    return str(FIRST_TID + index)


def mid_of(merchant_index: int) -> str:
    return str(FIRST_MID + merchant_index)


@dataclass(frozen=True)
class FaultSpec:
    """One fault to inject: `cause` on `tid` (None: the seed chooses), with `variant`
    (None: the seed chooses among the fault's variations)."""

    cause: str
    tid: str | None = None
    variant: int | None = None

    def __str__(self) -> str:
        return self.cause + (f"@{self.tid}" if self.tid else "")


def parse_fault_spec(text: str) -> FaultSpec:
    """``CAUSE``, ``CAUSE@TID`` or ``CAUSE@TID#VARIANT`` -> `FaultSpec` (ValueError on junk)."""
    text = text.strip()
    variant = None
    if "#" in text:
        text, _, raw = text.partition("#")
        if not raw.isdigit():
            raise ValueError(f"variant must be a number: {raw!r}")
        variant = int(raw)
    cause, _, tid = text.partition("@")
    if not cause:
        raise ValueError("empty cause")
    if tid and not (len(tid) == 8 and tid.isdigit()):
        raise ValueError(f"TID must be 8 digits: {tid!r}")
    return FaultSpec(cause, tid or None, variant)


@dataclass
class SimConfig:
    terminals: int = 20
    seed: int = 1
    faults: list[FaultSpec] = field(default_factory=list)
    db_url: str | None = None
    """Database URL; None: a fresh SQLite file under `home`."""
    home: Path | None = None
    """Where the LMK, the TMS signing key and the default database live (POSDOCTOR_HOME)."""
    speed: float | None = None
    """Virtual seconds per real second; None: event-driven, as fast as the work allows."""
    terminals_per_merchant: int = 1
    terminals_per_site: int = 20
    """A site (a mall, a street) shares power and network: site-wide faults hit all of it."""
    concurrency: int = 48
    """At most this many terminals work (hold a connection) at the same time."""
    txns_per_terminal: float = 5.0
    """Mean number of card transactions per terminal in the business day (Poisson)."""
    heartbeats: int = 4
    fresh_share: float = 0.1
    """Share of terminals installed today (full initialisation at power-on); the others
    were installed before and keep their keys and tables."""
    upgrade_share: float = 0.02
    """Share of the fleet in the day's upgrade campaign (pilot group), when the TMS has campaigns."""
    day: date | None = None
    reset: bool = True
    """Start from an empty database (the simulation owns it)."""
    progress: Progress | None = None
