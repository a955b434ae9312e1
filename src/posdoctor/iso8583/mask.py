"""Masking for logs, journals and screens: no full PAN, track, PIN block or key leaves.

- `mask_pan`: first 6 and last 4 digits kept (everything masked for 10 digits or less).
- `mask_fields`: a copy of a message safe to log: 2 masked like a PAN, 35/36 keep only
  the masked PAN part, 14 (expiry), 52, 55, 62 become ``*`` of the same length.
- `mask_body_hex`: the hex of an encoded body with the same fields starred in place.
"""

from __future__ import annotations

from collections.abc import Mapping

import iso8583

from posdoctor.iso8583.codec import Layout, data_layout
from posdoctor.iso8583.spec import CUP_SPEC

__all__ = ["mask_pan", "mask_track", "mask_fields", "mask_body_hex", "HIDDEN_FIELDS"]

HIDDEN_FIELDS = ("14", "52", "55", "62")
"""Replaced entirely by stars: expiry, PIN block, ICC data, keys/parameters."""
_PAN_FIELDS = ("2",)
_TRACK_FIELDS = ("35", "36")
_KEEP_HEAD, _KEEP_TAIL = 6, 4
_MASKED_IN_PLACE = (*_PAN_FIELDS, *_TRACK_FIELDS, *HIDDEN_FIELDS)


def mask_pan(pan: str) -> str:
    if len(pan) <= _KEEP_HEAD + _KEEP_TAIL:
        return "*" * len(pan)
    return pan[:_KEEP_HEAD] + "*" * (len(pan) - _KEEP_HEAD - _KEEP_TAIL) + pan[-_KEEP_TAIL:]


def mask_track(track: str) -> str:
    """Track 2/3 data: the PAN before the separator masked, everything after it starred."""
    for separator in ("=", "D"):
        if separator in track:
            pan, rest = track.split(separator, 1)
            return mask_pan(pan) + "=" + "*" * len(rest)
    return "*" * len(track)


def mask_fields(msg: Mapping[str, str]) -> dict[str, str]:
    """A copy of `msg` that is safe to log or store in the journal."""
    safe = dict(msg)
    for key in _PAN_FIELDS:
        if key in safe:
            safe[key] = mask_pan(str(safe[key]))
    for key in _TRACK_FIELDS:
        if key in safe:
            safe[key] = mask_track(str(safe[key]))
    for key in HIDDEN_FIELDS:
        if key in safe:
            safe[key] = "*" * len(str(safe[key]))
    return safe


def mask_body_hex(body: bytes, layout: Layout | None = None) -> str:
    """Uppercase hex of an encoded body with PAN, tracks, PIN block, ICC data, 62 and 14
    starred in place. A body that does not decode keeps only its MTI and bitmap visible.

    `layout` (from `decode_message_with_layout` / `encode_message_with_layout` of these
    very bytes) saves decoding the body again.
    """
    text = bytes(body).hex().upper()
    if layout is None:
        try:
            _doc, enc = iso8583.decode(bytes(body), CUP_SPEC)
        except (iso8583.DecodeError, KeyError):
            visible = min(len(text), 20)
            return text[:visible] + "*" * (len(text) - visible)
        layout = data_layout(enc)
    spans = sorted((layout[key][0] * 2, layout[key][1] * 2, key) for key in _MASKED_IN_PLACE if key in layout)
    if not spans:
        return text
    parts, pos = [], 0
    for start, digits, key in spans:
        parts.append(text[pos:start])
        parts.append(mask_pan(text[start:start + digits]) if key in _PAN_FIELDS else "*" * digits)
        pos = start + digits
    parts.append(text[pos:])
    return "".join(parts)
