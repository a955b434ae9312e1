"""PAN hashing and PIN sealing under LMK-derived keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdoctor.store.cardsecrets import CardSecrets
from posdoctor.store.errors import InvalidValue

LMK_A = bytes(range(32))
LMK_B = bytes(range(1, 33))
PAN = "6222020000000000000"


def test_pan_hash_is_keyed_and_stable() -> None:
    first = CardSecrets(LMK_A).pan_hash(PAN)
    assert first == CardSecrets(LMK_A).pan_hash(PAN)
    assert len(first) == 64 and int(first, 16) >= 0
    assert CardSecrets(LMK_B).pan_hash(PAN) != first
    assert CardSecrets(LMK_A).pan_hash("4111111111111111") != first
    assert PAN not in first


def test_pan_hash_is_not_a_plain_sha256() -> None:
    import hashlib

    assert CardSecrets(LMK_A).pan_hash(PAN) != hashlib.sha256(PAN.encode()).hexdigest()


@given(st.text("0123456789", min_size=4, max_size=12))
def test_pin_seal_round_trip(pin: str) -> None:
    secrets = CardSecrets(LMK_A)
    pan_hash = secrets.pan_hash(PAN)
    sealed = secrets.seal_pin(pin, pan_hash)
    assert pin.encode() not in sealed
    assert secrets.unseal_pin(sealed, pan_hash) == pin


def test_sealing_is_randomised() -> None:
    secrets = CardSecrets(LMK_A)
    pan_hash = secrets.pan_hash(PAN)
    assert secrets.seal_pin("123456", pan_hash) != secrets.seal_pin("123456", pan_hash)


def test_pin_sealed_for_another_card_or_lmk_is_refused() -> None:
    secrets = CardSecrets(LMK_A)
    sealed = secrets.seal_pin("123456", secrets.pan_hash(PAN))
    message = "卡密码数据无法解密(LMK不符或数据损坏) / card PIN data cannot be unsealed (wrong LMK or corrupted)"
    with pytest.raises(InvalidValue) as err:
        secrets.unseal_pin(sealed, secrets.pan_hash("4111111111111111"))
    assert str(err.value) == message
    with pytest.raises(InvalidValue):
        CardSecrets(LMK_B).unseal_pin(sealed, secrets.pan_hash(PAN))
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidValue):
        secrets.unseal_pin(tampered, secrets.pan_hash(PAN))


@pytest.mark.parametrize("length", [0, 8, 24, 33])
def test_lmk_length_is_checked(length: int) -> None:
    with pytest.raises(InvalidValue, match="LMK must be 16 or 32 bytes"):
        CardSecrets(bytes(length))
