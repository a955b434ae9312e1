"""A/B application slots on the emulated device's storage.

Layout under ``$POSDOCTOR_HOME/terminals/TID.slots/``:

- ``A.img`` / ``B.img``: the application image of each slot (the package bytes);
- ``A.json`` / ``B.json``: the slot's metadata (version, sha256, size, manifest), written
  after the image, so a slot without metadata is empty and one whose image does not hash
  to the metadata's sha256 is unreadable;
- ``boot.json``: the boot pointer ``{"active", "trial", "trial_boots", "previous"}``.

Every write is atomic (temporary file, fsync, ``os.replace``, directory fsync). The boot
logic is that of a bootloader with a boot limit of one: a slot activated for a trial boots
once; if the next boot finds the trial still not committed, it boots the previous slot.
An unreadable active slot also boots the other one. The terminal's configuration, keys
and batch (`TerminalState`, ``TID.json``) live outside the slots.

`CrashHook` is the fault-injection seam of the crash tests: every durable step calls
``crash(point)``, and a hook armed at the Nth point raises `SimulatedPowerLoss` there and
at every later point (nothing runs after a power loss).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posdoctor.terminal.storage import TERMINALS_DIR, _fsync_directory, write_atomic

__all__ = ["SLOTS", "SlotStore", "SlotInfo", "BootPointer", "BootResult", "BootError", "CrashHook",
           "SimulatedPowerLoss", "Crash", "no_crash", "slots_dir", "factory_image"]

SLOTS = ("A", "B")
Crash = Callable[[str], None]


def no_crash(point: str) -> None:
    """The hook of a device whose power never fails."""


class SimulatedPowerLoss(Exception):
    """Raised by an armed `CrashHook`: the emulated device lost power at `point`."""

    def __init__(self, point: str) -> None:
        super().__init__(f"power lost at {point}")
        self.point = point


@dataclass
class CrashHook:
    """Counts durable points; with `kill_at` = N, the Nth point and all later ones raise."""

    kill_at: int | None = None
    seen: int = 0
    points: list[str] = field(default_factory=list)
    dead: bool = False

    def __call__(self, point: str) -> None:
        self.seen += 1
        self.points.append(point)
        if self.dead or (self.kill_at is not None and self.seen >= self.kill_at):
            self.dead = True
            raise SimulatedPowerLoss(point)


class BootError(Exception):
    """No slot holds a readable application: the device does not boot (zh/en)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class SlotInfo:
    slot: str
    version: str
    sha256: str
    size: int
    manifest: dict[str, Any]
    replaced: str | None = None
    """The version this slot's install replaced (what an ordered rollback returns to)."""


@dataclass
class BootPointer:
    active: str = "A"
    trial: bool = False
    trial_boots: int = 0
    previous: str | None = None

    def to_json(self) -> bytes:
        return json.dumps({"active": self.active, "trial": self.trial, "trial_boots": self.trial_boots,
                           "previous": self.previous}).encode()


@dataclass(frozen=True)
class BootResult:
    slot: str
    version: str
    trial: bool
    fallback: str | None = None
    """Why the bootloader did not boot the pointer's slot: ``trial_not_committed`` or ``slot_unreadable``."""


def slots_dir(home: Path, tid: str) -> Path:
    return Path(home) / TERMINALS_DIR / f"{tid}.slots"


def other(slot: str) -> str:
    return "B" if slot == "A" else "A"


def factory_image(version: str) -> bytes:
    """The image a factory-fresh device carries in slot A."""
    return f"posdoctor emulated payment application {version}\n".encode()


class SlotStore:
    """The two slots and the boot pointer of one terminal."""

    def __init__(self, root: Path, crash: Crash = no_crash) -> None:
        self.root = Path(root)
        self.crash = crash

    # --- durable writes ----------------------------------------------------------------
    def write(self, name: str, data: bytes) -> None:
        self.crash(f"{name}:before")
        write_atomic(self.root / name, data)
        self.crash(f"{name}:after")

    def remove(self, name: str) -> None:
        self.crash(f"{name}:remove")
        path = self.root / name
        if path.exists():
            path.unlink()
            _fsync_directory(self.root)

    # --- reading -------------------------------------------------------------------------
    def pointer(self) -> BootPointer | None:
        try:
            raw = json.loads((self.root / "boot.json").read_bytes())
            pointer = BootPointer(raw["active"], bool(raw["trial"]), int(raw["trial_boots"]), raw.get("previous"))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        return pointer if pointer.active in SLOTS else None

    def info(self, slot: str) -> SlotInfo | None:
        """The slot's metadata if its image is complete and hashes right, else None."""
        try:
            meta = json.loads((self.root / f"{slot}.json").read_bytes())
            image = (self.root / f"{slot}.img").read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(meta, dict) or hashlib.sha256(image).hexdigest() != meta.get("sha256"):
            return None
        return SlotInfo(slot, str(meta.get("version", "")), meta["sha256"], len(image), dict(meta.get("manifest", {})),
                        meta.get("replaced"))

    def image(self, slot: str) -> bytes:
        return (self.root / f"{slot}.img").read_bytes()

    def active(self) -> str:
        pointer = self.pointer()
        return pointer.active if pointer else "A"

    def in_trial(self) -> bool:
        pointer = self.pointer()
        return bool(pointer and pointer.trial)

    def summary(self) -> dict[str, Any]:
        """What telemetry reports: active slot, trial flag, the version of each slot."""
        pointer = self.pointer() or BootPointer()
        slots = {s: (i.version if (i := self.info(s)) else None) for s in SLOTS}
        return {"active": pointer.active, "trial": pointer.trial, "versions": slots}

    # --- factory, install, trial, commit, rollback ---------------------------------------
    def ensure_factory(self, version: str) -> None:
        """A device seen for the first time gets slot A with `version` and the pointer on A."""
        if self.pointer() is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if self.info("A") is None:
            self.install("A", version, factory_image(version), {"version": version, "factory": True})
        self.write("boot.json", BootPointer().to_json())

    def install(self, slot: str, version: str, image: bytes, manifest: dict[str, Any], *,
                replaced: str | None = None) -> SlotInfo:
        """Write `image` into `slot` (never the booted one): metadata last."""
        pointer = self.pointer()
        if pointer is not None and pointer.active == slot:
            raise ValueError(f"slot {slot} is the active slot")
        self.remove(f"{slot}.json")
        self.write(f"{slot}.img", image)
        digest = hashlib.sha256(image).hexdigest()
        meta = {"version": version, "sha256": digest, "size": len(image), "manifest": manifest, "replaced": replaced}
        self.write(f"{slot}.json", json.dumps(meta, ensure_ascii=False).encode())
        return SlotInfo(slot, version, digest, len(image), manifest, replaced)

    def activate_trial(self, slot: str) -> None:
        """Boot `slot` once on the next boot; it must be committed during that boot."""
        pointer = self.pointer() or BootPointer()
        if pointer.active == slot and pointer.trial:
            return
        self.write("boot.json", BootPointer(slot, True, 0, pointer.active).to_json())

    def commit(self) -> None:
        pointer = self.pointer()
        if pointer is not None and pointer.trial:
            self.write("boot.json", BootPointer(pointer.active, False, 0, pointer.previous).to_json())

    def rollback(self) -> bool:
        """Point at the other (previous) slot if it is readable; False when there is none."""
        pointer = self.pointer() or BootPointer()
        target = pointer.previous if pointer.trial and pointer.previous else other(pointer.active)
        if self.info(target) is None:
            return False
        self.write("boot.json", BootPointer(target, False, 0, pointer.active).to_json())
        return True

    # --- the bootloader -------------------------------------------------------------------
    def boot(self) -> BootResult:
        """Choose and return the slot to run, updating the pointer as a bootloader does."""
        pointer = self.pointer()
        if pointer is None:
            pointer = self._recover_pointer()
        fallback = None
        if pointer.trial:
            if pointer.trial_boots >= 1 and pointer.previous and self.info(pointer.previous) is not None:
                pointer = BootPointer(pointer.previous, False, 0, pointer.active)
                self.write("boot.json", pointer.to_json())
                fallback = "trial_not_committed"
            else:
                pointer = BootPointer(pointer.active, True, pointer.trial_boots + 1, pointer.previous)
                self.write("boot.json", pointer.to_json())
        info = self.info(pointer.active)
        if info is None:
            spare = other(pointer.active)
            info = self.info(spare)
            if info is None:
                raise BootError("两个应用分区都无法读取,终端无法启动",
                                "neither application slot is readable: the terminal cannot boot")
            pointer = BootPointer(spare, False, 0, pointer.active)
            self.write("boot.json", pointer.to_json())
            fallback = "slot_unreadable"
        return BootResult(info.slot, info.version, pointer.trial, fallback)

    def _recover_pointer(self) -> BootPointer:
        """No pointer: boot the first readable slot (the factory one normally)."""
        for slot in SLOTS:
            if self.info(slot) is not None:
                pointer = BootPointer(slot)
                self.write("boot.json", pointer.to_json())
                return pointer
        raise BootError("应用分区为空,终端无法启动", "no application installed: the terminal cannot boot")
