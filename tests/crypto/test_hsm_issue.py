"""SoftHSM.issue_under / prepare_keys: keys made ahead are used first and once; every
key comes with its encryption under the KEK and a check value that matches."""

from __future__ import annotations

import pytest

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.errors import KeyAlgorithmError, KeyLengthError
from posdoctor.crypto.hsm import SoftHSM
from posdoctor.crypto.kcv import key_check_value

LMK = bytes(range(16))


def test_prepared_keys_are_used_first_and_once() -> None:
    hsm = SoftHSM(LMK)
    hsm.prepare_keys(4)
    assert hsm.prepared() == 4
    tmk = hsm.generate_key(16)
    first = hsm.issue_under(tmk, 3)
    assert hsm.prepared() == 1
    second = hsm.issue_under(tmk, 3)  # one prepared, two made on the spot
    assert hsm.prepared() == 0
    keys = [key for key, _ in first + second]
    assert len({key.blob for key in keys}) == 6
    tmk_cipher = EcbCipher(Algorithm.TDES, hsm.reveal_for_key_room(tmk))
    for key, encrypted in first + second:
        clear = tmk_cipher.decrypt(encrypted)
        assert key_check_value(clear) == key.kcv == hsm.key_check_value(key)
        assert all(bin(b).count("1") % 2 == 1 for b in clear)  # DES odd parity


def test_sm4_keys_under_an_sm4_kek() -> None:
    hsm = SoftHSM(LMK)
    kek = hsm.generate_key(16, Algorithm.SM4)
    (key, encrypted), = hsm.issue_under(kek, 1, 16, Algorithm.SM4)
    clear = EcbCipher(Algorithm.SM4, hsm.reveal_for_key_room(kek)).decrypt(encrypted)
    assert key_check_value(clear, Algorithm.SM4) == key.kcv and key.alg is Algorithm.SM4


def test_refusals() -> None:
    hsm = SoftHSM(LMK)
    with pytest.raises(KeyAlgorithmError):
        hsm.issue_under(hsm.generate_key(16), 1, 16, Algorithm.SM4)
    with pytest.raises(KeyLengthError):
        hsm.issue_under(hsm.generate_key(16), 1, 12)
    with pytest.raises(KeyLengthError):
        hsm.prepare_keys(1, 12)
