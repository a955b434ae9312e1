"""Working key block of the sign-in answer (field 62 of 0810), by 60.3.

| 60.3 | keys | key bytes | block bytes |
|---|---|---|---|
| 001 | PIK, MAK [, TDK] | 8 (single-length DES/TDES) | 24 or 36 |
| 003 | PIK, MAK | 16 (double-length TDES) | 40 |
| 004 | PIK, MAK, TDK | 16 | 60 |
| 006 | PIK, MAK [, TDK] | 16 (SM4) | 40 or 60 |

Each key is encrypted under the TMK and followed by a 4-byte check value. A single-length
MAK inside a double-length TDES block (003/004) has its second 8 bytes zero: the decoder
returns it as 8 bytes. SM4 keys (006) are always 16 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields._util import check_bytes

__all__ = ["WorkingKeyBlock", "KeyBlockLayout", "KEY_BLOCK_LAYOUTS", "encode_key_block", "decode_key_block"]

CHECK_VALUE_LEN = 4
_FIELD = "62"
_ZERO_HALF = bytes(8)


@dataclass(frozen=True)
class KeyBlockLayout:
    key_len: int
    key_counts: tuple[int, ...]
    sm4: bool = False

    def sizes(self) -> tuple[int, ...]:
        return tuple(n * (self.key_len + CHECK_VALUE_LEN) for n in self.key_counts)


KEY_BLOCK_LAYOUTS: dict[str, KeyBlockLayout] = {
    "001": KeyBlockLayout(8, (2, 3)),
    "003": KeyBlockLayout(16, (2,)),
    "004": KeyBlockLayout(16, (3,)),
    "006": KeyBlockLayout(16, (2, 3), sm4=True),
}


@dataclass(frozen=True)
class WorkingKeyBlock:
    """Keys as sent (encrypted under the TMK) with their check values; no TDK -> None."""

    pik: bytes
    pik_cv: bytes
    mak: bytes
    mak_cv: bytes
    tdk: bytes | None = None
    tdk_cv: bytes | None = None


def encode_key_block(keys: list[tuple[bytes, bytes]]) -> bytes:
    """[(encrypted key, check value), ...] in PIK, MAK, TDK order -> field 62 bytes.

    Keys are 8 or 16 bytes, check values 4. When 8- and 16-byte keys are mixed, each
    8-byte key is zero-extended to the double-length layout (single-length MAK).
    """
    if not 2 <= len(keys) <= 3:
        raise EncodeError(_FIELD, f"a key block holds 2 or 3 keys, got {len(keys)}")
    width = 16 if any(len(key) == 16 for key, _cv in keys) else 8
    block = bytearray()
    for index, (key, cv) in enumerate(keys):
        if not isinstance(key, (bytes, bytearray)) or not isinstance(cv, (bytes, bytearray)):
            raise EncodeError(_FIELD, f"key {index + 1} and its check value must be bytes")
        if len(key) not in (8, 16):
            raise EncodeError(_FIELD, f"key {index + 1} is {len(key)} bytes, expecting 8 or 16")
        if len(cv) != CHECK_VALUE_LEN:
            raise EncodeError(_FIELD, f"check value {index + 1} is {len(cv)} bytes, expecting {CHECK_VALUE_LEN}")
        block += bytes(key).ljust(width, b"\x00") + bytes(cv)
    return bytes(block)


def decode_key_block(nmi: str, data: bytes) -> WorkingKeyBlock:
    """Field 62 of a sign-in answer -> keys and check values, per the layout of 60.3 `nmi`."""
    data = check_bytes(_FIELD, data)
    layout = KEY_BLOCK_LAYOUTS.get(nmi)
    if layout is None:
        known = ", ".join(KEY_BLOCK_LAYOUTS)
        raise DecodeError(_FIELD, 0, f"60.3 {nmi!r} has no working key layout (known: {known})")
    if len(data) not in layout.sizes():
        expected = " or ".join(str(n) for n in layout.sizes())
        raise DecodeError(_FIELD, min(len(data), max(layout.sizes())),
                          f"key block for 60.3 {nmi} is {len(data)} bytes, expecting {expected}")
    step = layout.key_len + CHECK_VALUE_LEN
    parts = [(data[i:i + layout.key_len], data[i + layout.key_len:i + step]) for i in range(0, len(data), step)]
    (pik, pik_cv), (mak, mak_cv) = parts[0], parts[1]
    if layout.key_len == 16 and not layout.sm4 and mak[8:] == _ZERO_HALF:
        mak = mak[:8]
    tdk, tdk_cv = parts[2] if len(parts) == 3 else (None, None)
    return WorkingKeyBlock(pik, pik_cv, mak, mak_cv, tdk, tdk_cv)
