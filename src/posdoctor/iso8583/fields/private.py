"""Field 60 (reserved private: type, batch, network management code...) and field 53."""

from __future__ import annotations

from dataclasses import dataclass

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields._util import check_digit_string, require_digits

__all__ = ["Field60", "SecurityControl", "PinFormat", "PinAlgorithm"]

_F60_FIXED = (("txn_type", 2), ("batch", 6), ("nmi", 3))
_F60_OPTIONAL = ("read_cap", "ic_cond", "partial")
_F60_MIN = 11


@dataclass(frozen=True)
class Field60:
    """60.1 transaction type (n2), 60.2 batch (n6), 60.3 network management code (n3),
    then optionally 60.4 read capability, 60.5 IC condition, 60.6 partial approval
    support (n1 each). Digits beyond 60.6 are kept verbatim in `extra`.
    """

    txn_type: str
    batch: str
    nmi: str
    read_cap: str = ""
    ic_cond: str = ""
    partial: str = ""
    extra: str = ""

    def encode(self) -> str:
        digits = "".join(require_digits("60", name, getattr(self, name), width) for name, width in _F60_FIXED)
        present = True
        for name in _F60_OPTIONAL:
            value = getattr(self, name)
            if value == "":
                present = False
                continue
            if not present:
                raise EncodeError("60", f"{name} is set but an earlier sub-field of 60.4-60.6 is empty")
            digits += require_digits("60", name, value, 1)
        if self.extra:
            if len(digits) < _F60_MIN + len(_F60_OPTIONAL):
                raise EncodeError("60", "extra digits need 60.4-60.6 to be set")
            if not (self.extra.isdigit() and self.extra.isascii()):
                raise EncodeError("60", f"extra must be digits, got {self.extra!r}")
            digits += self.extra
        return digits

    @classmethod
    def decode(cls, value: str) -> Field60:
        check_digit_string("60", value)
        if len(value) < _F60_MIN:
            raise DecodeError("60", len(value), f"field 60 has {len(value)} digits, needs at least {_F60_MIN} "
                                                "(60.1 type, 60.2 batch, 60.3 network management code)")
        parts, pos = {}, 0
        for name, width in _F60_FIXED:
            parts[name] = value[pos:pos + width]
            pos += width
        for name in _F60_OPTIONAL:
            parts[name] = value[pos:pos + 1]
            pos += 1
        return cls(**parts, extra=value[pos:])


class PinFormat:
    """53 digit 1."""

    NONE = "0"
    ISO_0 = "2"


class PinAlgorithm:
    """53 digit 2 (Centerm's mapping)."""

    DES = "0"
    TDES = "6"
    SM4 = "3"


@dataclass(frozen=True)
class SecurityControl:
    """Field 53 (n16): PIN format, encryption algorithm, track encryption, 13 reserved digits."""

    pin_format: str = PinFormat.ISO_0
    algorithm: str = PinAlgorithm.TDES
    track_enc: str = "0"
    reserved: str = "0" * 13

    def encode(self) -> str:
        return (require_digits("53", "pin_format", self.pin_format, 1)
                + require_digits("53", "algorithm", self.algorithm, 1)
                + require_digits("53", "track_enc", self.track_enc, 1)
                + require_digits("53", "reserved", self.reserved, 13))

    @classmethod
    def decode(cls, value: str) -> SecurityControl:
        check_digit_string("53", value)
        if len(value) != 16:
            raise DecodeError("53", min(len(value), 16), f"field 53 has {len(value)} digits, expecting 16")
        return cls(value[0], value[1], value[2], value[3:])
