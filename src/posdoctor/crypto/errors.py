"""Typed errors of ``posdoctor.crypto``, each with a Chinese and an English message.

``str(err)`` is ``"<中文> / <English>"`` (the convention of ``posdoctor.store.errors``);
the parts are ``err.zh`` and ``err.en``. No message ever contains key material, a PIN,
a PIN block or a PAN: only lengths, algorithm names and check values.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class: every error raised on purpose by ``posdoctor.crypto``."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh = zh
        self.en = en


def _join(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in values)


class KeyLengthError(CryptoError):
    """A key (or the LMK) has a length the operation does not accept."""

    def __init__(self, length: int, allowed: tuple[int, ...], what: str = "key") -> None:
        self.length = length
        self.allowed = tuple(allowed)
        self.what = what
        what_zh = "本地主密钥" if what == "LMK" else "密钥"
        super().__init__(
            f"{what_zh}长度{length}字节不合法(允许: {_join(self.allowed)})",
            f"{what} length {length} bytes is not allowed (allowed: {_join(self.allowed)})",
        )


class DataLengthError(CryptoError):
    """ECB data that is not a whole number of cipher blocks (no implicit padding)."""

    def __init__(self, length: int, block_size: int) -> None:
        self.length = length
        self.block_size = block_size
        super().__init__(
            f"数据长度{length}字节不是{block_size}字节分组的整数倍",
            f"data length {length} bytes is not a multiple of the {block_size}-byte block",
        )


class KeyAlgorithmError(CryptoError):
    """A key of the wrong algorithm for an operation (SM4 key for X9.19, mixed KEK...)."""

    def __init__(self, operation: str, expected: str, actual: str) -> None:
        self.operation = operation
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{operation}需要{expected}密钥, 实际为{actual}",
            f"{operation} needs a {expected} key, got {actual}",
        )


class MacError(CryptoError):
    """A MAC cannot be computed as asked (unknown scheme, bad MAC length)."""

    def __init__(self, reason: str, zh: str) -> None:
        self.reason = reason
        super().__init__(zh, reason)


class PinBlockError(CryptoError):
    """A PIN, PAN or PIN block is not acceptable for ISO 9564 format 0.

    ``kind`` says which input is at fault: ``"pin"``, ``"pan"``, ``"length"`` (the PIN
    block's byte length) or ``"format"`` (a decrypted block that is not format 0: usually
    a wrong PIK or a corrupted field 52).
    """

    def __init__(self, reason: str, zh: str | None = None, kind: str = "format") -> None:
        self.reason = reason
        self.kind = kind
        super().__init__(zh or "PIN块错误", reason)


class KeyUnwrapError(CryptoError):
    """A wrapped key blob does not open under this LMK, or does not match its labels."""

    def __init__(self, reason: str, zh: str) -> None:
        self.reason = reason
        super().__init__(zh, reason)


class KeyCheckError(CryptoError):
    """An imported key's check value differs from the one announced with it."""

    def __init__(self, expected: bytes, actual: bytes) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"密钥校验值不符: 期望{expected.hex().upper()}, 实际{actual.hex().upper()}",
            f"key check value mismatch: expected {expected.hex().upper()}, "
            f"got {actual.hex().upper()}",
        )


class KeyFormatError(CryptoError):
    """A stored ``WrappedKey`` record (dict form) is malformed."""

    def __init__(self, reason: str, zh: str) -> None:
        self.reason = reason
        super().__init__(zh, reason)
