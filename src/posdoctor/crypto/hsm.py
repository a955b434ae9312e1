"""A software HSM: keys leave it only wrapped under the local master key (LMK).

Wrapping: the LMK (16 or 32 bytes, read by the store layer) is never used directly;
HKDF-SHA256 (info ``posdoctor/hsm/key-wrap/v1``) derives a 32-byte AES-256-GCM key from
it. A blob is ``01`` (format version) + a random 12-byte nonce + the AES-GCM ciphertext
and tag of the clear key; the associated data binds the key's algorithm and length, so
a blob cannot be relabelled. Unwrapping also recomputes the check value and refuses a
``WrappedKey`` whose ``kcv`` label does not match.

Speed: the host verifies a MAC and a PIN block per sale at thousands of sales a second,
so each unwrapped key is cached by blob with its ready :class:`EcbCipher` (OpenSSL
contexts kept alive). Clear keys stay inside the ``SoftHSM`` object; the only clear
export is :meth:`SoftHSM.reveal_for_key_room`.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from posdoctor.crypto.ciphers import Algorithm, EcbCipher, check_key_length
from posdoctor.crypto.errors import (
    KeyAlgorithmError,
    KeyCheckError,
    KeyFormatError,
    KeyLengthError,
    KeyUnwrapError,
    PinBlockError,
)
from posdoctor.crypto.kcv import KCV_LENGTH, check_value_with
from posdoctor.crypto.randompool import random_bytes
from posdoctor.crypto.mac import (
    cup_ecb_mac_with,
    generate_mac_x919,
    macs_equal,
    require_x919_algorithm,
    unknown_scheme,
)
from posdoctor.crypto.pin import (
    BLOCK_BAD_LENGTH,
    check_pan,
    cipher_block,
    decode_pinblock_iso_0,
    encode_pinblock_iso_0,
    encrypted_block_length,
    open_pinblock_with,
    seal_pinblock_with,
)

LMK_LENGTHS = (16, 32)
BLOB_VERSION = 1
_NONCE = 12
_TAG = 16
_WRAP_INFO = b"posdoctor/hsm/key-wrap/v1"
_CHECK_INFO = b"posdoctor/hsm/lmk-check/v1"
DEFAULT_CACHE_LIMIT = 65536


@dataclass(frozen=True, slots=True, repr=False)
class WrappedKey:
    """A key encrypted under the LMK, safe to store and log (its repr shows the KCV only)."""

    blob: bytes
    kcv: bytes
    alg: Algorithm
    length: int

    def __repr__(self) -> str:
        return f"WrappedKey(alg={self.alg.name}, length={self.length}, kcv={self.kcv.hex().upper()})"

    def __reduce__(self) -> tuple[type[WrappedKey], tuple[bytes, bytes, Algorithm, int]]:
        """Plain (class, fields) pickling: cheaper than the slots default (commit process)."""
        return WrappedKey, (self.blob, self.kcv, self.alg, self.length)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: hex strings, the algorithm's name and the length."""
        return {
            "blob": self.blob.hex().upper(),
            "kcv": self.kcv.hex().upper(),
            "alg": self.alg.name,
            "length": self.length,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WrappedKey:
        """Inverse of :meth:`to_dict`; raises :class:`KeyFormatError` on a bad record."""
        missing = [name for name in ("blob", "kcv", "alg", "length") if name not in data]
        if missing:
            raise KeyFormatError(
                f"wrapped key record lacks {', '.join(missing)}",
                f"密钥记录缺少字段: {', '.join(missing)}",
            )
        alg_name, length = data["alg"], data["length"]
        if alg_name not in Algorithm.__members__:
            raise KeyFormatError(f"unknown key algorithm {alg_name!r}", f"未知的密钥算法 {alg_name!r}")
        if not isinstance(length, int) or isinstance(length, bool):
            raise KeyFormatError("key length must be an integer", "密钥长度必须是整数")
        return cls(
            blob=_hex_field(data["blob"], "blob"),
            kcv=_hex_field(data["kcv"], "kcv"),
            alg=Algorithm[alg_name],
            length=length,
        )


def _hex_field(value: Any, name: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise KeyFormatError(f"{name} is not a hex string", f"{name} 不是十六进制字符串") from None


class _LoadedKey:
    """An unwrapped key and its ready cipher; lives only in the HSM's cache."""

    __slots__ = ("alg", "length", "clear", "cipher", "kcv")

    def __init__(self, alg: Algorithm, clear: bytes, cipher: EcbCipher, kcv: bytes) -> None:
        self.alg = alg
        self.length = len(clear)
        self.clear = clear
        self.cipher = cipher
        self.kcv = kcv

    def __repr__(self) -> str:
        return f"_LoadedKey({self.alg.name}, kcv={self.kcv.hex().upper()})"


def _derive(lmk: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(lmk)


def _associated_data(alg: Algorithm, length: int) -> bytes:
    return b"posdoctor-key|%s|%d" % (alg.name.encode("ascii"), length)


_ASSOCIATED = {(alg, length): _associated_data(alg, length) for alg in Algorithm for length in alg.key_lengths}
"""The associated data of every valid (algorithm, length), made once."""


_ODD_PARITY = bytes(b & 0xFE | (bin(b & 0xFE).count("1") + 1) % 2 for b in range(256))
"""Each byte value with its low bit set so that its number of one bits is odd."""


def _with_odd_parity(key: bytes) -> bytes:
    """DES convention: each byte's low bit makes its number of one bits odd."""
    return key.translate(_ODD_PARITY)


class SoftHSM:
    """Key generation, wrapping, translation, MAC and PIN work under one LMK."""

    __slots__ = ("_aead", "_cache", "_cache_limit", "_prepared", "lmk_check")

    def __init__(self, lmk: bytes, *, cache_limit: int = DEFAULT_CACHE_LIMIT) -> None:
        if len(lmk) not in LMK_LENGTHS:
            raise KeyLengthError(len(lmk), LMK_LENGTHS, what="LMK")
        self._aead = AESGCM(_derive(lmk, _WRAP_INFO, 32))
        self._cache: OrderedDict[bytes, _LoadedKey] = OrderedDict()
        """Oldest first; evicting from the front of a plain dict rescans the deleted
        slots each time (quadratic once a sign-in storm fills the cache)."""
        self._cache_limit = max(1, cache_limit)
        #: 4 bytes telling LMKs apart (HKDF output, reveals nothing of the LMK)
        self.lmk_check: bytes = _derive(lmk, _CHECK_INFO, 4)
        self._prepared: dict[tuple[Algorithm, int], deque[tuple[bytes, WrappedKey]]] = {}
        """Keys made ahead by `prepare_keys` (clear and wrapped), each handed out once."""

    def __repr__(self) -> str:
        return f"SoftHSM(lmk_check={self.lmk_check.hex().upper()}, cached_keys={len(self._cache)})"

    def __reduce__(self) -> object:
        raise TypeError("SoftHSM holds clear keys and cannot be pickled")

    # --- keys ---------------------------------------------------------------------
    def generate_key(self, length: int = 16, alg: Algorithm = Algorithm.TDES) -> WrappedKey:
        """A new random key (3DES keys get odd parity), returned wrapped."""
        if length not in alg.key_lengths:
            raise KeyLengthError(length, alg.key_lengths)
        clear = random_bytes(length)
        if alg is Algorithm.TDES:
            clear = _with_odd_parity(clear)
        return self._wrap(clear, alg)

    def issue_under(self, kek: WrappedKey, count: int, length: int = 16,
                    alg: Algorithm = Algorithm.TDES) -> list[tuple[WrappedKey, bytes]]:
        """`count` new keys, each with its encryption under ``kek`` (working keys at
        sign-in; an HSM's "generate key, export under the TMK" command).

        Keys made ahead with `prepare_keys` are used first, each once. The new keys are
        not loaded: a key's cipher is made when it is first used, as after a restart.
        """
        if length not in alg.key_lengths:
            raise KeyLengthError(length, alg.key_lengths)
        _require_same_algorithm("export under a KEK", kek.alg, alg)
        under = self._load(kek).cipher
        stock = self._prepared.get((alg, length))
        issued = []
        for _ in range(count):
            clear, key = stock.popleft() if stock else self._make(length, alg)
            issued.append((key, under.encrypt(clear)))
        return issued

    def prepare_keys(self, count: int, length: int = 16, alg: Algorithm = Algorithm.TDES) -> None:
        """Make `count` keys ahead for `issue_under` (kept inside this object)."""
        if length not in alg.key_lengths:
            raise KeyLengthError(length, alg.key_lengths)
        self._prepared.setdefault((alg, length), deque()).extend(self._make(length, alg) for _ in range(count))

    def prepared(self, length: int = 16, alg: Algorithm = Algorithm.TDES) -> int:
        """How many keys of this kind are made ahead."""
        return len(self._prepared.get((alg, length), ()))

    def _make(self, length: int, alg: Algorithm) -> tuple[bytes, WrappedKey]:
        """A new clear key and its wrapped form; nothing is cached."""
        clear = random_bytes(length)
        if alg is Algorithm.TDES:
            clear = _with_odd_parity(clear)
        kcv = check_value_with(EcbCipher(alg, clear), KCV_LENGTH)
        return clear, WrappedKey(blob=self._seal(clear, alg), kcv=kcv, alg=alg, length=length)

    def import_key(self, clear: bytes, alg: Algorithm = Algorithm.TDES) -> WrappedKey:
        """Wrap a clear key given by an operator or a test."""
        check_key_length(alg, clear)
        return self._wrap(bytes(clear), alg)

    def export_under(self, kek: WrappedKey, key: WrappedKey) -> bytes:
        """``key`` encrypted under ``kek`` in ECB (TMK under a TK, PIK/MAK under a TMK).

        Both keys must be of the same algorithm (a 3DES key under a 3DES KEK, SM4 under
        SM4); a single-length 3DES key under a double-length KEK is fine.
        """
        wrapping, inner = self._load(kek), self._load(key)
        _require_same_algorithm("export under a KEK", kek.alg, key.alg)
        return wrapping.cipher.encrypt(inner.clear)

    def import_under(
        self,
        kek: WrappedKey,
        encrypted: bytes,
        alg: Algorithm | None = None,
        expected_kcv: bytes | None = None,
    ) -> WrappedKey:
        """Decrypt a key sent under ``kek`` and wrap it under the LMK.

        ``alg`` defaults to the KEK's (and must equal it); if ``expected_kcv`` is given
        (the check value sent with the key) a mismatch raises :class:`KeyCheckError`.
        """
        wrapping = self._load(kek)
        alg = kek.alg if alg is None else alg
        _require_same_algorithm("import under a KEK", kek.alg, alg)
        check_key_length(alg, encrypted)
        clear = wrapping.cipher.decrypt(bytes(encrypted))
        cipher = EcbCipher(alg, clear)
        if expected_kcv is not None:
            actual = check_value_with(cipher, len(expected_kcv))
            if not hmac.compare_digest(actual, bytes(expected_kcv)):
                raise KeyCheckError(bytes(expected_kcv), actual)
        return self._wrap(clear, alg, cipher)

    def key_check_value(self, key: WrappedKey) -> bytes:
        """The 4-byte check value recomputed from the clear key."""
        return self._load(key).kcv

    def reveal_for_key_room(self, key: WrappedKey) -> bytes:
        """The clear key: the one deliberate clear export (``terminal add --tmk-out``)."""
        return self._load(key).clear

    def forget_cached_keys(self) -> None:
        """Drop every unwrapped key from memory (they reload from their blobs)."""
        self._cache.clear()

    # --- MAC ----------------------------------------------------------------------
    def generate_mac(
        self, mak: WrappedKey, data: bytes, scheme: str = "cup_ecb", alg: Algorithm | None = None
    ) -> bytes:
        """The 8-byte field-64 MAC of ``data`` (``"cup_ecb"`` or ``"x919"``)."""
        loaded = self._load(mak)
        if alg is not None:
            _require_same_algorithm("MAC", alg, mak.alg)
        if scheme == "cup_ecb":
            return cup_ecb_mac_with(loaded.cipher, data)
        if scheme == "x919":
            require_x919_algorithm(mak.alg)
            return generate_mac_x919(loaded.clear, data)
        raise unknown_scheme(scheme)

    def verify_mac(
        self,
        mak: WrappedKey,
        data: bytes,
        mac: bytes,
        scheme: str = "cup_ecb",
        alg: Algorithm | None = None,
    ) -> bool:
        """True if ``mac`` is right for ``data``; constant-time comparison."""
        return macs_equal(self.generate_mac(mak, data, scheme, alg), mac)

    # --- PIN ----------------------------------------------------------------------
    def encrypt_pin(self, pik: WrappedKey, pin: str, pan: str) -> bytes:
        """Field 52 for ``pin`` under ``pik`` (what a PIN pad would send)."""
        return seal_pinblock_with(self._load(pik).cipher, encode_pinblock_iso_0(pin, pan))

    def verify_pin(self, pik: WrappedKey, block: bytes, pan: str, expected_pin: str) -> bool:
        """True if field 52 ``block`` under ``pik`` carries ``expected_pin`` for ``pan``.

        The decrypted block is compared, in constant time, with the block the expected
        PIN makes, so a block that does not decode (wrong PIK, garbage) is simply False.
        Raises :class:`PinBlockError` for a PAN or expected PIN that cannot make a format
        0 block, or a ``block`` of the wrong length (8 bytes for 3DES, 16 for SM4).
        """
        loaded = self._load(pik)
        wanted = cipher_block(encode_pinblock_iso_0(expected_pin, pan), loaded.alg)
        if len(block) != len(wanted):
            en, zh, kind = BLOCK_BAD_LENGTH
            size = encrypted_block_length(loaded.alg)
            raise PinBlockError(en.format(n=size), zh.format(n=size), kind)
        return hmac.compare_digest(loaded.cipher.decrypt(bytes(block)), wanted)

    def translate_pin(self, pik_from: WrappedKey, pik_to: WrappedKey, block: bytes, pan: str) -> bytes:
        """Re-encrypt field 52 from ``pik_from`` to ``pik_to`` (algorithms may differ).

        The block must decode as format 0 for ``pan`` (else :class:`PinBlockError`), so a
        wrong source key is caught here instead of at the issuer.
        """
        check_pan(pan)
        source, target = self._load(pik_from), self._load(pik_to)
        clear = open_pinblock_with(source.cipher, block)
        decode_pinblock_iso_0(clear, pan)
        return seal_pinblock_with(target.cipher, clear)

    # --- wrapping -----------------------------------------------------------------
    def _wrap(self, clear: bytes, alg: Algorithm, cipher: EcbCipher | None = None) -> WrappedKey:
        cipher = cipher or EcbCipher(alg, clear)
        blob = self._seal(clear, alg)
        loaded = _LoadedKey(alg, clear, cipher, check_value_with(cipher, KCV_LENGTH))
        self._remember(blob, loaded)
        return WrappedKey(blob=blob, kcv=loaded.kcv, alg=alg, length=len(clear))

    def _seal(self, clear: bytes, alg: Algorithm) -> bytes:
        """The blob of a clear key: version, nonce, AES-GCM under the LMK-derived key."""
        nonce = random_bytes(_NONCE)
        return bytes((BLOB_VERSION,)) + nonce + self._aead.encrypt(nonce, clear, _ASSOCIATED[alg, len(clear)])

    def _load(self, key: WrappedKey) -> _LoadedKey:
        loaded = self._cache.get(key.blob)
        if loaded is None:
            loaded = self._unwrap(key)
            self._remember(key.blob, loaded)
        elif loaded.alg is not key.alg or loaded.length != key.length or loaded.kcv != key.kcv:
            raise _labels_mismatch()
        return loaded

    def _unwrap(self, key: WrappedKey) -> _LoadedKey:
        clear = self._open(key)
        cipher = EcbCipher(key.alg, clear)
        kcv = check_value_with(cipher, KCV_LENGTH)
        if not hmac.compare_digest(kcv, key.kcv):
            raise _labels_mismatch()
        return _LoadedKey(key.alg, clear, cipher, kcv)

    def _open(self, key: WrappedKey) -> bytes:
        """The clear key inside a blob (AES-GCM checks blob, algorithm and length)."""
        blob = key.blob
        if len(blob) < 1 + _NONCE + _TAG or blob[0] != BLOB_VERSION:
            raise KeyUnwrapError("not a posdoctor key blob (format version 1)", "不是posdoctor密钥数据(格式版本1)")
        nonce, sealed = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        try:
            associated = _ASSOCIATED.get((key.alg, key.length)) or _associated_data(key.alg, key.length)
            clear = self._aead.decrypt(nonce, sealed, associated)
        except InvalidTag:
            raise KeyUnwrapError(
                "key blob does not open under this LMK (other LMK, or blob or labels altered)",
                "密钥数据无法用本地主密钥解开(主密钥不同, 或数据/标签被改动)",
            ) from None
        return clear

    def _remember(self, blob: bytes, loaded: _LoadedKey) -> None:
        if len(self._cache) >= self._cache_limit:
            self._cache.popitem(last=False)
        self._cache[blob] = loaded


def _labels_mismatch() -> KeyUnwrapError:
    return KeyUnwrapError(
        "wrapped key labels (algorithm, length or check value) do not match its blob",
        "密钥标签(算法、长度或校验值)与密钥数据不符",
    )


def _require_same_algorithm(operation: str, expected: Algorithm, actual: Algorithm) -> None:
    if expected is not actual:
        raise KeyAlgorithmError(operation, expected.name, actual.name)
