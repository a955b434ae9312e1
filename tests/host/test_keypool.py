"""The key pool: keys made in a child process under the host's LMK, each handed out
once, usable by the host's SoftHSM; another LMK is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.hsm import SoftHSM, WrappedKey
from posdoctor.crypto.kcv import key_check_value
from posdoctor.host.keypool import KeyPool
from posdoctor.store.config import load_lmk


@pytest.fixture
def pool(home: Path) -> Iterator[KeyPool]:
    made = KeyPool(home, low=50, batch=40)
    made.start(SoftHSM(load_lmk(home)).lmk_check)
    try:
        yield made
    finally:
        made.close()


def take_many(pool: KeyPool, count: int) -> list[WrappedKey]:
    keys: list[WrappedKey] = []
    deadline = time.monotonic() + 20
    while len(keys) < count and time.monotonic() < deadline:
        key = pool.take(Algorithm.TDES, 16)
        if key is None:
            time.sleep(0.01)  # the feeder is fetching the next batch
        else:
            keys.append(key)
    return keys


def test_pooled_keys_are_fresh_and_open_under_the_hosts_lmk(pool: KeyPool, home: Path) -> None:
    keys = take_many(pool, 200)  # several batches
    assert len(keys) == 200 and len({k.blob for k in keys}) == 200
    hsm = SoftHSM(load_lmk(home))
    for key in keys[:20]:
        assert (key.alg, key.length) == (Algorithm.TDES, 16)
        assert hsm.key_check_value(key) == key.kcv  # opens and its label is right


def test_only_double_length_3des_is_pooled(pool: KeyPool) -> None:
    assert pool.take(Algorithm.SM4, 16) is None
    assert pool.take(Algorithm.TDES, 8) is None


def test_issue_under_takes_from_the_supply_and_encrypts_under_the_kek(pool: KeyPool, home: Path) -> None:
    hsm = SoftHSM(load_lmk(home))
    tmk = hsm.generate_key(16)
    tmk_clear = hsm.reveal_for_key_room(tmk)
    take_many(pool, 1)  # the pool is filled
    hsm.supply = pool
    before = pool.handed_out
    key, encrypted = hsm.issue_under(tmk, 16, Algorithm.TDES)
    assert pool.handed_out == before + 1
    clear = EcbCipher(Algorithm.TDES, tmk_clear).decrypt(encrypted)
    assert key_check_value(clear) == key.kcv == hsm.key_check_value(key)


def test_without_a_supply_issue_under_makes_the_key_itself(home: Path) -> None:
    hsm = SoftHSM(load_lmk(home))
    tmk = hsm.generate_key(16, Algorithm.SM4)
    hsm.supply = lambda alg, length: None
    key, encrypted = hsm.issue_under(tmk, 16, Algorithm.SM4)
    clear = EcbCipher(Algorithm.SM4, hsm.reveal_for_key_room(tmk)).decrypt(encrypted)
    assert key_check_value(clear, Algorithm.SM4) == key.kcv


def test_a_key_maker_with_another_lmk_is_refused(home: Path) -> None:
    other = KeyPool(home)
    with pytest.raises(RuntimeError, match="holds another LMK"):
        other.start(b"\x00\x00\x00\x00")
