"""SoftHSM and WrappedKey: wrapping under the LMK, key exchange, MAC and PIN services."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psec.des import adjust_key_parity

from posdoctor.crypto.ciphers import Algorithm, sm4_encrypt_ecb, tdes_decrypt_ecb, tdes_encrypt_ecb
from posdoctor.crypto.errors import (
    CryptoError,
    KeyAlgorithmError,
    KeyCheckError,
    KeyFormatError,
    KeyLengthError,
    KeyUnwrapError,
    MacError,
    PinBlockError,
)
from posdoctor.crypto.hsm import SoftHSM, WrappedKey
from posdoctor.crypto.kcv import key_check_value
from posdoctor.crypto.mac import generate_mac_cup_ecb, generate_mac_x919
from posdoctor.crypto.pin import decrypt_pinblock, encrypt_pinblock

LMK = bytes(range(32))
OTHER_LMK = bytes(range(1, 33))
KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
WORKING = bytes.fromhex("1111111111111111FEFEFEFEFEFEFEFE")
PAN = "4000001234562000"
BODY = bytes.fromhex("0200702406C020C09A111662258801234567890000000000000001000000123021")

UNWRAP_FAILED = (
    "密钥数据无法用本地主密钥解开(主密钥不同, 或数据/标签被改动) / "
    "key blob does not open under this LMK (other LMK, or blob or labels altered)"
)
LABELS_MISMATCH = (
    "密钥标签(算法、长度或校验值)与密钥数据不符 / "
    "wrapped key labels (algorithm, length or check value) do not match its blob"
)


@pytest.fixture
def hsm() -> SoftHSM:
    return SoftHSM(LMK)


# --- WrappedKey -----------------------------------------------------------------------
def test_wrapped_key_repr_shows_only_the_check_value(hsm: SoftHSM) -> None:
    key = hsm.import_key(KEY)
    assert repr(key) == "WrappedKey(alg=TDES, length=16, kcv=08D7B4FB)"
    assert str(key) == repr(key)
    assert f"{key}" == repr(key)


def test_wrapped_key_dict_round_trip(hsm: SoftHSM) -> None:
    key = hsm.import_key(KEY, Algorithm.SM4)
    record = json.loads(json.dumps(key.to_dict()))
    assert record["alg"] == "SM4" and record["length"] == 16 and record["kcv"] == "2677F46B"
    assert record["blob"] == key.blob.hex().upper()
    again = WrappedKey.from_dict(record)
    assert again == key
    assert SoftHSM(LMK).reveal_for_key_room(again) == KEY


def _record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"blob": "01" + "00" * 40, "kcv": "08D7B4FB", "alg": "TDES", "length": 16}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_record(blob=None), "密钥记录缺少字段: blob / wrapped key record lacks blob"),
        ({}, "密钥记录缺少字段: blob, kcv, alg, length / wrapped key record lacks blob, kcv, alg, length"),
        (_record(alg="AES"), "未知的密钥算法 'AES' / unknown key algorithm 'AES'"),
        (_record(length="16"), "密钥长度必须是整数 / key length must be an integer"),
        (_record(length=True), "密钥长度必须是整数 / key length must be an integer"),
        (_record(blob="XYZ"), "blob 不是十六进制字符串 / blob is not a hex string"),
        (_record(kcv=1234), "kcv 不是十六进制字符串 / kcv is not a hex string"),
    ],
)
def test_wrapped_key_from_dict_refusals(record: dict[str, object], message: str) -> None:
    with pytest.raises(KeyFormatError) as info:
        WrappedKey.from_dict(record)
    assert str(info.value) == message


# --- LMK and wrapping ---------------------------------------------------------------
@pytest.mark.parametrize("size", [16, 32])
def test_accepted_lmk_lengths(size: int) -> None:
    hsm = SoftHSM(bytes(size))
    assert hsm.reveal_for_key_room(hsm.import_key(KEY)) == KEY


@pytest.mark.parametrize("size", [0, 8, 24, 48])
def test_refused_lmk_lengths(size: int) -> None:
    with pytest.raises(KeyLengthError) as info:
        SoftHSM(bytes(size))
    assert str(info.value) == (
        f"本地主密钥长度{size}字节不合法(允许: 16, 32) / LMK length {size} bytes is not allowed (allowed: 16, 32)"
    )
    assert info.value.what == "LMK"


def test_lmk_check_tells_lmks_apart() -> None:
    assert SoftHSM(LMK).lmk_check == SoftHSM(LMK).lmk_check
    assert SoftHSM(LMK).lmk_check != SoftHSM(OTHER_LMK).lmk_check
    assert len(SoftHSM(LMK).lmk_check) == 4


def test_blob_layout_and_freshness(hsm: SoftHSM) -> None:
    first, second = hsm.import_key(KEY), hsm.import_key(KEY)
    assert first.blob[0] == 1
    assert len(first.blob) == 1 + 12 + 16 + 16
    assert first.blob != second.blob  # random nonce per wrap
    assert KEY not in first.blob and KEY[:8] not in first.blob
    assert (first.kcv, first.alg, first.length) == (bytes.fromhex("08D7B4FB"), Algorithm.TDES, 16)


def test_a_fresh_hsm_with_the_same_lmk_opens_stored_keys(hsm: SoftHSM) -> None:
    stored = WrappedKey.from_dict(hsm.import_key(KEY).to_dict())
    assert SoftHSM(LMK).key_check_value(stored) == bytes.fromhex("08D7B4FB")
    assert SoftHSM(LMK).reveal_for_key_room(stored) == KEY


def test_another_lmk_cannot_open_a_key(hsm: SoftHSM) -> None:
    key = hsm.import_key(KEY)
    with pytest.raises(KeyUnwrapError) as info:
        SoftHSM(OTHER_LMK).reveal_for_key_room(key)
    assert str(info.value) == UNWRAP_FAILED


def _relabel(key: WrappedKey, **changes: object) -> WrappedKey:
    fields = {"blob": key.blob, "kcv": key.kcv, "alg": key.alg, "length": key.length}
    fields.update(changes)
    return WrappedKey(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("cached", [True, False])
def test_tampering_is_refused(hsm: SoftHSM, cached: bool) -> None:
    key = hsm.import_key(KEY)
    reader = hsm if cached else SoftHSM(LMK)
    flipped = bytearray(key.blob)
    flipped[-1] ^= 1
    cases = [
        (_relabel(key, blob=bytes(flipped)), UNWRAP_FAILED),
        (_relabel(key, alg=Algorithm.SM4), LABELS_MISMATCH if cached else UNWRAP_FAILED),
        (_relabel(key, length=24), LABELS_MISMATCH if cached else UNWRAP_FAILED),
        (_relabel(key, kcv=bytes.fromhex("08D7B4FC")), LABELS_MISMATCH),
        (_relabel(key, blob=b"\x02" + key.blob[1:]), "不是posdoctor密钥数据(格式版本1) / not a posdoctor key blob (format version 1)"),
        (_relabel(key, blob=key.blob[:20]), "不是posdoctor密钥数据(格式版本1) / not a posdoctor key blob (format version 1)"),
    ]
    for bad, message in cases:
        with pytest.raises(KeyUnwrapError) as info:
            reader.generate_mac(bad, BODY)
        assert str(info.value) == message


def test_cache_limit_evicts_and_reloads() -> None:
    hsm = SoftHSM(LMK, cache_limit=2)
    keys = [hsm.import_key(bytes([i]) * 16) for i in range(1, 5)]
    assert "cached_keys=2" in repr(hsm)
    for i, key in enumerate(keys, start=1):
        assert hsm.reveal_for_key_room(key) == bytes([i]) * 16
    hsm.forget_cached_keys()
    assert "cached_keys=0" in repr(hsm)
    assert hsm.key_check_value(keys[0]) == key_check_value(bytes([1]) * 16)


# --- generate / import --------------------------------------------------------------
@pytest.mark.parametrize(("length", "alg"), [(8, Algorithm.TDES), (16, Algorithm.TDES), (24, Algorithm.TDES), (16, Algorithm.SM4)])
def test_generate_key(hsm: SoftHSM, length: int, alg: Algorithm) -> None:
    key = hsm.generate_key(length, alg)
    clear = hsm.reveal_for_key_room(key)
    assert (key.length, key.alg, len(clear)) == (length, alg, length)
    assert key.kcv == key_check_value(clear, alg) == hsm.key_check_value(key)
    if alg is Algorithm.TDES:
        assert clear == adjust_key_parity(clear)  # odd parity, as psec computes it
    assert hsm.generate_key(length, alg).blob != key.blob


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.generate_key(12), "密钥长度12字节不合法(允许: 8, 16, 24) / key length 12 bytes is not allowed (allowed: 8, 16, 24)"),
        (lambda h: h.generate_key(8, Algorithm.SM4), "密钥长度8字节不合法(允许: 16) / key length 8 bytes is not allowed (allowed: 16)"),
        (lambda h: h.import_key(bytes(10)), "密钥长度10字节不合法(允许: 8, 16, 24) / key length 10 bytes is not allowed (allowed: 8, 16, 24)"),
        (lambda h: h.import_key(bytes(24), Algorithm.SM4), "密钥长度24字节不合法(允许: 16) / key length 24 bytes is not allowed (allowed: 16)"),
    ],
)
def test_key_length_refusals(hsm: SoftHSM, call, message: str) -> None:
    with pytest.raises(KeyLengthError) as info:
        call(hsm)
    assert str(info.value) == message


# --- export_under / import_under ----------------------------------------------------
def test_export_under_known_answer(hsm: SoftHSM) -> None:
    tmk, pik = hsm.import_key(KEY), hsm.import_key(WORKING)
    exported = hsm.export_under(tmk, pik)
    assert exported == tdes_encrypt_ecb(KEY, WORKING)
    assert exported.hex().upper() == "9B3A7B883A100F7336231AE1A4ABDC5F"
    assert tdes_decrypt_ecb(KEY, exported) == WORKING


def test_export_under_sm4(hsm: SoftHSM) -> None:
    tmk, mak = hsm.import_key(KEY, Algorithm.SM4), hsm.import_key(WORKING, Algorithm.SM4)
    assert hsm.export_under(tmk, mak) == sm4_encrypt_ecb(KEY, WORKING)


def test_import_under_checks_the_check_value(hsm: SoftHSM) -> None:
    tmk = hsm.import_key(KEY)
    sent = tdes_encrypt_ecb(KEY, WORKING)
    kcv = key_check_value(WORKING)
    key = hsm.import_under(tmk, sent, expected_kcv=kcv)
    assert (key.kcv, key.alg, key.length) == (kcv, Algorithm.TDES, 16)
    assert hsm.reveal_for_key_room(key) == WORKING
    assert hsm.import_under(tmk, sent, Algorithm.TDES, expected_kcv=kcv[:3]).kcv == kcv
    with pytest.raises(KeyCheckError) as info:
        hsm.import_under(tmk, sent, expected_kcv=bytes.fromhex("01020304"))
    assert str(info.value) == (
        f"密钥校验值不符: 期望01020304, 实际{kcv.hex().upper()} / "
        f"key check value mismatch: expected 01020304, got {kcv.hex().upper()}"
    )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda h, t, s: h.export_under(t, s), KeyAlgorithmError,
         "export under a KEK需要TDES密钥, 实际为SM4 / export under a KEK needs a TDES key, got SM4"),
        (lambda h, t, s: h.import_under(t, bytes(16), Algorithm.SM4), KeyAlgorithmError,
         "import under a KEK需要TDES密钥, 实际为SM4 / import under a KEK needs a TDES key, got SM4"),
        (lambda h, t, s: h.import_under(t, bytes(12)), KeyLengthError,
         "密钥长度12字节不合法(允许: 8, 16, 24) / key length 12 bytes is not allowed (allowed: 8, 16, 24)"),
        (lambda h, t, s: h.import_under(s, bytes(8)), KeyLengthError,
         "密钥长度8字节不合法(允许: 16) / key length 8 bytes is not allowed (allowed: 16)"),
    ],
)
def test_key_exchange_refusals(hsm: SoftHSM, call, error: type[CryptoError], message: str) -> None:
    tdes_kek, sm4_key = hsm.import_key(KEY), hsm.import_key(WORKING, Algorithm.SM4)
    with pytest.raises(error) as info:
        call(hsm, tdes_kek, sm4_key)
    assert str(info.value) == message


@settings(max_examples=40, deadline=None)
@given(
    alg_and_lengths=st.sampled_from([(Algorithm.TDES, 16, 8), (Algorithm.TDES, 16, 16), (Algorithm.TDES, 24, 24), (Algorithm.SM4, 16, 16)]),
    seed=st.binary(min_size=48, max_size=48),
)
def test_export_import_round_trip(alg_and_lengths: tuple[Algorithm, int, int], seed: bytes) -> None:
    alg, kek_len, key_len = alg_and_lengths
    sender, receiver = SoftHSM(LMK), SoftHSM(OTHER_LMK)
    kek_clear, key_clear = seed[:kek_len], seed[24 : 24 + key_len]
    kek_a, kek_b = sender.import_key(kek_clear, alg), receiver.import_key(kek_clear, alg)
    key = sender.import_key(key_clear, alg)
    moved = receiver.import_under(kek_b, sender.export_under(kek_a, key), expected_kcv=key.kcv)
    assert receiver.reveal_for_key_room(moved) == key_clear
    assert moved.kcv == key.kcv and moved.length == key_len


@settings(max_examples=40, deadline=None)
@given(alg=st.sampled_from(Algorithm), clear=st.binary(min_size=16, max_size=16))
def test_wrap_unwrap_round_trip(alg: Algorithm, clear: bytes) -> None:
    stored = SoftHSM(LMK).import_key(clear, alg).to_dict()
    reopened = SoftHSM(LMK)
    assert reopened.reveal_for_key_room(WrappedKey.from_dict(stored)) == clear
    assert reopened.key_check_value(WrappedKey.from_dict(stored)) == key_check_value(clear, alg)


# --- MAC ------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", list(Algorithm))
def test_mac_matches_the_pure_functions(hsm: SoftHSM, alg: Algorithm) -> None:
    mak = hsm.import_key(KEY, alg)
    mac = hsm.generate_mac(mak, BODY, "cup_ecb", alg)
    assert mac == generate_mac_cup_ecb(KEY, BODY, alg)
    assert hsm.verify_mac(mak, BODY, mac)
    assert hsm.verify_mac(mak, BODY, mac, "cup_ecb", alg)
    assert not hsm.verify_mac(mak, BODY + b"\x00\x01", mac)
    assert not hsm.verify_mac(mak, BODY, mac[:7])


def test_x919_in_the_hsm(hsm: SoftHSM) -> None:
    mak = hsm.import_key(KEY)
    mac = hsm.generate_mac(mak, BODY, "x919")
    assert mac == generate_mac_x919(KEY, BODY)
    assert hsm.verify_mac(mak, BODY, mac, "x919")
    assert not hsm.verify_mac(mak, BODY, mac, "cup_ecb")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda h, t, s: h.generate_mac(s, BODY, "x919"), KeyAlgorithmError,
         "X9.19 MAC需要TDES密钥, 实际为SM4 / X9.19 MAC needs a TDES key, got SM4"),
        (lambda h, t, s: h.verify_mac(t, BODY, b"12345678", "cup_ecb", Algorithm.SM4), KeyAlgorithmError,
         "MAC需要SM4密钥, 实际为TDES / MAC needs a SM4 key, got TDES"),
        (lambda h, t, s: h.verify_mac(t, BODY, b"12345678", "retail"), MacError,
         "未知的MAC算法 'retail' (支持: cup_ecb, x919) / unknown MAC scheme 'retail' (known: cup_ecb, x919)"),
    ],
)
def test_mac_refusals(hsm: SoftHSM, call, error: type[CryptoError], message: str) -> None:
    tdes_mak, sm4_mak = hsm.import_key(KEY), hsm.import_key(KEY, Algorithm.SM4)
    with pytest.raises(error) as info:
        call(hsm, tdes_mak, sm4_mak)
    assert type(info.value) is error
    assert str(info.value) == message


# --- PIN ------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", list(Algorithm))
def test_verify_pin(hsm: SoftHSM, alg: Algorithm) -> None:
    pik = hsm.import_key(KEY, alg)
    block = encrypt_pinblock(KEY, "1234", PAN, alg)
    assert hsm.encrypt_pin(pik, "1234", PAN) == block
    assert hsm.verify_pin(pik, block, PAN, "1234")
    assert not hsm.verify_pin(pik, block, PAN, "1235")
    assert not hsm.verify_pin(pik, block, PAN, "12345")
    assert not hsm.verify_pin(pik, block, "4000001234563000", "1234")  # other account
    assert not hsm.verify_pin(pik, bytes(len(block)), PAN, "1234")  # garbage: no exception
    other = hsm.generate_key(16, alg)
    assert not hsm.verify_pin(other, block, PAN, "1234")


@pytest.mark.parametrize(
    ("block", "pan", "expected", "message"),
    [
        (bytes(16), PAN, "1234", "PIN块必须为8字节 / PIN block must be 8 bytes"),
        (bytes(8), "4000", "1234", "卡号必须为13到19位数字 / PAN must be 13 to 19 digits"),
        (bytes(8), PAN, "12", "PIN必须为4到12位数字 / PIN must be 4 to 12 digits"),
    ],
)
def test_verify_pin_refusals(hsm: SoftHSM, block: bytes, pan: str, expected: str, message: str) -> None:
    with pytest.raises(PinBlockError) as info:
        hsm.verify_pin(hsm.import_key(KEY), block, pan, expected)
    assert str(info.value) == message


@pytest.mark.parametrize(("alg_from", "alg_to"), [(a, b) for a in Algorithm for b in Algorithm])
def test_translate_pin(hsm: SoftHSM, alg_from: Algorithm, alg_to: Algorithm) -> None:
    pik_from, pik_to = hsm.import_key(KEY, alg_from), hsm.import_key(WORKING, alg_to)
    block = encrypt_pinblock(KEY, "987654", PAN, alg_from)
    translated = hsm.translate_pin(pik_from, pik_to, block, PAN)
    assert translated == encrypt_pinblock(WORKING, "987654", PAN, alg_to)
    assert decrypt_pinblock(WORKING, translated, PAN, alg_to) == "987654"


def test_translate_pin_refuses_a_block_under_another_key(hsm: SoftHSM) -> None:
    right, wrong = hsm.import_key(KEY), hsm.import_key(WORKING)
    block = encrypt_pinblock(WORKING, "1234", PAN)  # made under the other key
    with pytest.raises(PinBlockError) as info:
        hsm.translate_pin(right, wrong, block, PAN)
    assert info.value.kind == "format"
    assert hsm.translate_pin(wrong, right, block, PAN) == encrypt_pinblock(KEY, "1234", PAN)


@settings(max_examples=40, deadline=None)
@given(
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
    alg=st.sampled_from(Algorithm),
)
def test_pin_round_trip_in_the_hsm(pin: str, pan: str, alg: Algorithm) -> None:
    hsm = SoftHSM(LMK)
    pik = hsm.import_key(KEY, alg)
    block = hsm.encrypt_pin(pik, pin, pan)
    assert hsm.verify_pin(pik, block, pan, pin)
    assert decrypt_pinblock(KEY, block, pan, alg) == pin


# --- nothing clear leaks ------------------------------------------------------------
def test_repr_and_str_never_show_clear_keys() -> None:
    hsm = SoftHSM(LMK)
    keys = [hsm.import_key(KEY), hsm.import_key(WORKING, Algorithm.SM4), hsm.generate_key(24)]
    hsm.generate_mac(keys[0], BODY)
    secrets = [KEY, WORKING, hsm.reveal_for_key_room(keys[2]), LMK]
    texts = [repr(hsm), str(hsm)] + [repr(k) for k in keys] + [str(k) for k in keys]
    texts += [repr(keys), str(keys), repr({"tmk": keys[0]})]
    for text in texts:
        for secret in secrets:
            for piece in (secret.hex(), secret.hex().upper(), secret[:8].hex().upper()):
                assert piece not in text
            assert repr(secret) not in text
    assert repr(hsm).startswith("SoftHSM(lmk_check=")


def test_hsm_and_its_state_cannot_be_pickled(hsm: SoftHSM) -> None:
    hsm.import_key(KEY)
    with pytest.raises(TypeError):
        pickle.dumps(hsm)
    assert not hasattr(hsm, "__dict__")  # slots: nothing to dump by vars()
