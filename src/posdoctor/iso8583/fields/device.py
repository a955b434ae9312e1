"""Device information (field 62 of the TMK download and, optionally, of a sign-in).

posdoctor's format: ASCII ``TTLLvalue...`` with 2-letter tags and 2-digit decimal
lengths. Known tags: ``SN`` serial, ``MD`` model, ``AV`` app version, ``FV`` firmware
version. Unknown well-formed tags are kept on decode (forward compatible).
"""

from __future__ import annotations

from collections.abc import Mapping

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields._util import check_bytes

__all__ = ["DEVICE_INFO_TAGS", "encode_device_info", "decode_device_info"]

_FIELD = "62"
_MAX_VALUE = 99

DEVICE_INFO_TAGS: dict[str, tuple[str, str]] = {
    "SN": ("设备序列号", "serial number"),
    "MD": ("终端型号", "model"),
    "AV": ("应用版本", "app version"),
    "FV": ("固件版本", "firmware version"),
}


def _is_tag(tag: str) -> bool:
    return len(tag) == 2 and tag.isascii() and tag.isalpha() and tag.isupper()


def _is_printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def encode_device_info(info: Mapping[str, str]) -> bytes:
    """{"SN": "...", "MD": "..."} -> ``SN08ABCD1234MD...`` ASCII bytes."""
    out = []
    for tag, value in info.items():
        if not isinstance(tag, str) or not _is_tag(tag):
            raise EncodeError(_FIELD, f"device info tag {tag!r} must be 2 uppercase letters")
        if not isinstance(value, str) or not _is_printable_ascii(value):
            raise EncodeError(_FIELD, f"device info {tag} must be printable ASCII")
        if len(value) > _MAX_VALUE:
            raise EncodeError(_FIELD, f"device info {tag} is {len(value)} characters, larger than {_MAX_VALUE}")
        out.append(f"{tag}{len(value):02d}{value}")
    return "".join(out).encode("ascii")


def decode_device_info(data: bytes) -> dict[str, str]:
    data = check_bytes(_FIELD, data)
    info: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        head = data[pos:pos + 4]
        if len(head) != 4:
            raise DecodeError(_FIELD, pos, "truncated device info tag and length")
        tag, length_text = head[:2].decode("latin-1"), head[2:].decode("latin-1")
        if not _is_tag(tag):
            raise DecodeError(_FIELD, pos, f"device info tag {tag!r} is not 2 uppercase letters")
        if not (length_text.isdigit() and length_text.isascii()):
            raise DecodeError(_FIELD, pos + 2, f"device info {tag} length {length_text!r} is not 2 digits")
        start, length = pos + 4, int(length_text)
        raw = data[start:start + length]
        if len(raw) != length:
            raise DecodeError(_FIELD, start, f"device info {tag} announces {length} bytes, only {len(raw)} left")
        text = raw.decode("latin-1")
        if not _is_printable_ascii(text):
            raise DecodeError(_FIELD, start, f"device info {tag} is not printable ASCII")
        if tag in info:
            raise DecodeError(_FIELD, pos, f"device info tag {tag} appears twice")
        info[tag] = text
        pos = start + length
    return info
