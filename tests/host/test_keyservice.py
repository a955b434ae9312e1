"""The HSM process issuing working keys: keys under the TMK with their check values,
wrapped under the host's LMK; another LMK refused; a dead process means the host makes
its keys itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.hsm import SoftHSM
from posdoctor.crypto.kcv import key_check_value
from posdoctor.host.keyservice import KeyService, KeyServiceError
from posdoctor.host.steps.keys import issue_keys
from posdoctor.store.config import load_lmk


@pytest.fixture
def hsm(home: Path) -> SoftHSM:
    return SoftHSM(load_lmk(home))


@pytest.fixture
def service(home: Path, hsm: SoftHSM) -> Iterator[KeyService]:
    made = KeyService(home)
    made.start(hsm.lmk_check)
    try:
        yield made
    finally:
        made.close()


def opened(tmk_clear: bytes, encrypted: bytes) -> bytes:
    return EcbCipher(Algorithm.TDES, tmk_clear).decrypt(encrypted)


async def test_keys_come_under_the_tmk_with_their_check_values(service: KeyService, hsm: SoftHSM) -> None:
    tmks = [hsm.generate_key(16) for _ in range(20)]
    results = await asyncio.gather(*(service.issue_under(tmk, 3) for tmk in tmks))  # batched together
    blobs = set()
    for tmk, issued in zip(tmks, results, strict=True):
        assert len(issued) == 3
        for key, encrypted in issued:
            clear = opened(hsm.reveal_for_key_room(tmk), encrypted)
            assert key_check_value(clear) == key.kcv == hsm.key_check_value(key)  # same LMK
            blobs.add(key.blob)
    assert len(blobs) == 60


async def test_a_tmk_that_does_not_open_fails_only_its_request(service: KeyService, hsm: SoftHSM) -> None:
    stranger = SoftHSM(b"\x01" * 16).generate_key(16)  # wrapped under another LMK
    good = hsm.generate_key(16)
    bad_result, good_result = await asyncio.gather(service.issue_under(stranger, 3), service.issue_under(good, 2),
                                                   return_exceptions=True)
    assert isinstance(bad_result, KeyServiceError) and "KeyUnwrapError" in str(bad_result)
    assert isinstance(good_result, list) and len(good_result) == 2


async def test_when_the_process_dies_the_host_makes_the_keys(service: KeyService, hsm: SoftHSM) -> None:
    tmk = hsm.generate_key(16)
    env = SimpleNamespace(keys=service, hsm=hsm)
    assert service.serves(tmk, 16, Algorithm.TDES)
    service._process.kill()
    service._process.join(5)
    with pytest.raises(KeyServiceError):
        await service.issue_under(tmk, 3)
    assert not service.running and not service.serves(tmk, 16, Algorithm.TDES)
    issued = await issue_keys(env, tmk, 3, 16, Algorithm.TDES)  # type: ignore[arg-type]
    for key, encrypted in issued:
        assert key_check_value(opened(hsm.reveal_for_key_room(tmk), encrypted)) == key.kcv


def test_only_double_length_3des_is_served(service: KeyService, hsm: SoftHSM) -> None:
    assert not service.serves(hsm.generate_key(16, Algorithm.SM4), 16, Algorithm.SM4)
    assert not service.serves(hsm.generate_key(16), 8, Algorithm.TDES)


def test_a_process_with_another_lmk_is_refused(home: Path) -> None:
    with pytest.raises(KeyServiceError, match="holds another LMK"):
        KeyService(home).start(b"\x00\x00\x00\x00")
