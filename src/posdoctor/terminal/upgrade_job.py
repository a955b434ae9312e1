"""The upgrade agent's records: messages, the job on storage, poll results, the window
check, the resumable download file, and what a package's ``resets`` wipe.

Files in ``TID.slots/``: ``upgrade.json`` (`UpgradeRecord`: the current `UpgradeJob` and
the versions given up), ``download.part`` (the bytes so far) and ``download.json``
(``{"version", "sha256", "offset"}``: how many bytes are acknowledged; bytes past it are
cut off on resume).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any

from pydantic import BaseModel, Field

from posdoctor.terminal.slots import SlotStore
from posdoctor.terminal.state import AppSettings, CommSettings, EmvTables, TerminalState

__all__ = ["UpgradeJob", "UpgradeRecord", "PollResult", "job_key", "in_window",
           "not_before_passed", "DownloadFile", "reset_terminal_data"]


class UpgradeJob(BaseModel):
    campaign: int | str | None = None
    from_version: str
    to_version: str
    package: dict[str, Any]
    phase: str = "download"
    """``download`` (incl. verify) -> ``installed`` -> ``trial`` -> (``rolling_back``)."""
    attempt: int = 1
    slot: str | None = None
    reason: str | None = None
    manifest: dict[str, Any] = Field(default_factory=dict)


class UpgradeRecord(BaseModel):
    job: UpgradeJob | None = None
    failed: dict[str, str] = Field(default_factory=dict)
    """``campaign:version`` -> why it will not be tried again."""


@dataclass(frozen=True)
class PollResult:
    status: str
    """idle, postponed, upgraded, rolled_back, refused, failed, retry, error."""
    step: str | None = None
    reason: str | None = None
    version: str | None = None


def job_key(campaign: int | str | None, version: str) -> str:
    return f"{campaign or '-'}:{version}"


def in_window(window: dict[str, str] | None, now: datetime) -> bool:
    """Inside ``{"start": "HH:MM", "end": "HH:MM"}``, both minutes included (the terminal's
    local time; ``end < start`` spans midnight). No window: always."""
    if not window or not window.get("start") or not window.get("end"):
        return True
    start, end = time.fromisoformat(window["start"]), time.fromisoformat(window["end"])
    current = now.time().replace(second=0, microsecond=0, tzinfo=None)
    return start <= current <= end if start <= end else (current >= start or current <= end)


def not_before_passed(value: str | None, now: datetime) -> bool:
    """``not_before`` (ISO; UTC when it carries no offset) is absent or past."""
    if not value:
        return True
    moment = datetime.fromisoformat(value)
    return now >= (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


class DownloadFile:
    """``download.part`` + ``download.json`` of one terminal (writes through the crash hook)."""

    def __init__(self, slots: SlotStore) -> None:
        self.slots = slots
        self.part = slots.root / "download.part"
        self.meta = {"version": "", "sha256": ""}

    def open(self, version: str, sha256: str, size: int) -> int:
        """The acknowledged offset for this package (0 for another one); cuts the rest."""
        try:
            meta = json.loads((self.slots.root / "download.json").read_bytes())
        except (FileNotFoundError, ValueError):
            meta = {}
        same = meta.get("sha256") == sha256 and meta.get("version") == version
        offset = min(int(meta.get("offset", 0)), size) if same else 0
        self.meta = {"version": version, "sha256": sha256}
        self.slots.crash("download:open")
        self.part.parent.mkdir(parents=True, exist_ok=True)
        with self.part.open("a+b") as handle:
            handle.truncate(offset)  # bytes past the acknowledged offset were never acknowledged
        return offset

    def append(self, offset: int, chunk: bytes) -> int:
        """Write `chunk` at `offset`, fsync, then acknowledge the new offset."""
        with self.part.open("r+b") as handle:
            handle.seek(offset)
            handle.write(chunk)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
        self.slots.crash("download.part:written")
        offset += len(chunk)
        self.slots.write("download.json", json.dumps({**self.meta, "offset": offset}).encode())
        return offset

    def read(self) -> bytes:
        return self.part.read_bytes()

    def discard(self) -> None:
        self.slots.remove("download.json")
        self.slots.remove("download.part")


def reset_terminal_data(state: TerminalState, resets: list[str]) -> None:
    """What a package's ``resets`` wipe at the new version's first start."""
    if "config" in resets:
        state.comm, state.settings = CommSettings(), AppSettings()
    if "keys" in resets:
        state.keys.clear()
        state.sign_out()
    if "batch" in resets:
        state.txn_log.clear()
        state.pending_reversal = None
    if "params" in resets:
        state.params.clear()
        state.params_complete = False
        state.emv = EmvTables()
