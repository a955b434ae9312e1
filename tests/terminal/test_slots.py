"""A/B slots: factory image, install into the inactive slot, trial boots, fallbacks, crash hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from posdoctor.terminal.slots import BootError, CrashHook, SimulatedPowerLoss, SlotStore


def fresh(tmp_path: Path, **kw) -> SlotStore:
    slots = SlotStore(tmp_path / "T.slots", **kw)
    slots.ensure_factory("1.0")
    return slots


def test_factory_device_boots_slot_a(tmp_path: Path) -> None:
    slots = fresh(tmp_path)
    boot = slots.boot()
    assert (boot.slot, boot.version, boot.trial, boot.fallback) == ("A", "1.0", False, None)
    assert slots.summary() == {"active": "A", "trial": False, "versions": {"A": "1.0", "B": None}}
    slots.ensure_factory("9.9")  # a known device keeps its slots
    assert slots.boot().version == "1.0"


def test_trial_boots_once_then_falls_back_unless_committed(tmp_path: Path) -> None:
    slots = fresh(tmp_path)
    slots.install("B", "2.0", b"image two", {"version": "2.0"})
    slots.activate_trial("B")
    first = slots.boot()
    assert (first.slot, first.version, first.trial) == ("B", "2.0", True)
    second = slots.boot()  # no commit during the trial boot
    assert (second.slot, second.version, second.fallback) == ("A", "1.0", "trial_not_committed")
    assert not slots.in_trial()
    slots.activate_trial("B")
    assert slots.boot().slot == "B"
    slots.commit()
    assert (slots.boot().slot, slots.boot().trial) == ("B", False)


def test_rollback_points_at_the_previous_slot(tmp_path: Path) -> None:
    slots = fresh(tmp_path)
    assert not slots.rollback()  # nothing to go back to
    slots.install("B", "2.0", b"two", {})
    slots.activate_trial("B")
    slots.boot()
    assert slots.rollback()
    assert slots.boot().version == "1.0"


def test_unreadable_active_slot_boots_the_other(tmp_path: Path) -> None:
    slots = fresh(tmp_path)
    slots.install("B", "2.0", b"two", {})
    slots.activate_trial("B")
    slots.boot()
    slots.commit()
    (slots.root / "B.img").write_bytes(b"bit rot")
    boot = slots.boot()
    assert (boot.slot, boot.version, boot.fallback) == ("A", "1.0", "slot_unreadable")
    (slots.root / "A.json").write_text("{not json")
    with pytest.raises(BootError) as err:
        slots.boot()
    assert "无法启动" in err.value.zh and "cannot boot" in err.value.en


def test_never_installs_into_the_active_slot(tmp_path: Path) -> None:
    slots = fresh(tmp_path)
    with pytest.raises(ValueError):
        slots.install("A", "2.0", b"two", {})


def test_half_written_slot_is_empty(tmp_path: Path) -> None:
    hook = CrashHook(kill_at=3)  # A.json:remove, A.img before/after... count from a fresh store
    slots = fresh(tmp_path)
    slots.crash = hook
    with pytest.raises(SimulatedPowerLoss):
        slots.install("B", "2.0", b"two", {})
    assert hook.dead and slots.info("B") is None
    with pytest.raises(SimulatedPowerLoss):
        hook("anything")  # nothing runs after a power loss
    slots.crash = CrashHook()
    assert slots.boot().version == "1.0"


def test_missing_pointer_recovers_to_a_readable_slot(tmp_path: Path) -> None:
    slots = fresh(tmp_path)
    (slots.root / "boot.json").unlink()
    assert slots.boot().slot == "A"
    empty = SlotStore(tmp_path / "empty")
    with pytest.raises(BootError):
        empty.boot()
