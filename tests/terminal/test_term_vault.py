"""Sealing under the device key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdoctor.terminal.vault import DeviceVault, VaultError, new_device_key

VAULT = DeviceVault(bytes(range(32)))


@given(st.binary(min_size=0, max_size=64), st.sampled_from(["TMK", "MAK", "PAN"]))
def test_seal_open_round_trip(clear: bytes, purpose: str) -> None:
    assert VAULT.open(VAULT.seal(clear, purpose), purpose) == clear


def test_sealing_is_randomised() -> None:
    assert VAULT.seal(b"k" * 16, "TMK") != VAULT.seal(b"k" * 16, "TMK")


@pytest.mark.parametrize(
    ("sealed", "purpose", "reason"),
    [
        (VAULT.seal(b"x" * 16, "TMK"), "MAK", "does not open under this device key"),
        (DeviceVault(new_device_key()).seal(b"x" * 16, "TMK"), "TMK", "does not open under this device key"),
        ("zz", "TMK", "not hex"),
        ("00" * 20, "TMK", "too short"),
    ],
)
def test_open_refuses(sealed: str, purpose: str, reason: str) -> None:
    with pytest.raises(VaultError, match=reason):
        VAULT.open(sealed, purpose)


def test_flipped_bit_is_detected() -> None:
    sealed = bytearray(bytes.fromhex(VAULT.seal(b"y" * 16, "TMK")))
    sealed[-1] ^= 1
    with pytest.raises(VaultError):
        VAULT.open(sealed.hex(), "TMK")


def test_device_key_length_is_checked() -> None:
    with pytest.raises(ValueError, match="32"):
        DeviceVault(b"short")
