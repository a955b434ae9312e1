"""Error types: hierarchy, attributes, text, pickling."""

from __future__ import annotations

import pickle

from posdoctor.iso8583.errors import DecodeError, EncodeError, FrameError, Iso8583Error


def test_error_text_and_attributes() -> None:
    decode = DecodeError("60", 27, "bad nibble", partial={"11": "000001"})
    assert str(decode) == "field 60 at byte 27: bad nibble"
    assert (decode.field, decode.pos, decode.reason, decode.partial) == ("60", 27, "bad nibble", {"11": "000001"})
    assert str(EncodeError("41", "too long")) == "field 41: too long"
    assert str(FrameError("TPDU is 3 bytes, expecting 5")) == "TPDU is 3 bytes, expecting 5"
    for error in (decode, EncodeError("41", "x"), FrameError("x")):
        assert isinstance(error, Iso8583Error)


def test_errors_survive_pickling() -> None:
    decode = pickle.loads(pickle.dumps(DecodeError("60", 27, "bad nibble", partial={"11": "000001"})))
    assert (decode.field, decode.pos, decode.reason, decode.partial) == ("60", 27, "bad nibble", {"11": "000001"})
    encode = pickle.loads(pickle.dumps(EncodeError("41", "too long")))
    assert (encode.field, encode.reason) == ("41", "too long")
    assert pickle.loads(pickle.dumps(FrameError("short"))).reason == "short"
