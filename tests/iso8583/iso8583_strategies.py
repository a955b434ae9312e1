"""Hypothesis strategies shared by the ISO 8583 property and fuzz tests."""

from __future__ import annotations

import string

from hypothesis import strategies as st

PRINTABLE = string.ascii_letters + string.digits + " -_./:#*"
CHINESE = "上海北京便利店超市餐饮商户测试中国银联有限公司"


def digits(min_size: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=min_size, max_size=min_size if max_size is None else max_size)


def no_trailing_space(alphabet: str, max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=min_size, max_size=max_size).map(str.rstrip)


def track(max_len: int) -> st.SearchStrategy[str]:
    return st.text("0123456789=", min_size=1, max_size=max_len)


def merchant_name() -> st.SearchStrategy[str]:
    return no_trailing_space(CHINESE + PRINTABLE, 20).filter(lambda s: len(s.encode("gbk")) <= 40)


def hex_bytes(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.binary(min_size=min_size, max_size=max_size).map(lambda b: b.hex().upper())


FIELD_VALUES: dict[str, st.SearchStrategy[str]] = {
    "2": digits(12, 19), "3": digits(6), "4": digits(12), "11": digits(6), "12": digits(6), "13": digits(4),
    "14": digits(4), "15": digits(4), "22": digits(3), "23": digits(3), "25": digits(2), "26": digits(2),
    "32": digits(1, 11), "35": track(37), "36": track(104),
    "37": st.text(PRINTABLE, min_size=12, max_size=12), "38": st.text(PRINTABLE, min_size=6, max_size=6),
    "39": st.text(string.ascii_uppercase + string.digits, min_size=2, max_size=2),
    "41": no_trailing_space(PRINTABLE, 8), "42": no_trailing_space(PRINTABLE, 15), "43": merchant_name(),
    "44": st.text(PRINTABLE, max_size=25), "48": digits(1, 999), "49": digits(3),
    "52": hex_bytes(8, 8), "53": digits(16), "54": st.text(PRINTABLE, max_size=40), "55": hex_bytes(1, 255),
    "60": digits(11, 17), "61": digits(1, 29), "62": hex_bytes(1, 512), "63": st.text(PRINTABLE, max_size=163),
    "64": hex_bytes(8, 8),
}


@st.composite
def messages(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.lists(st.sampled_from(sorted(FIELD_VALUES, key=int)), unique=True, max_size=20))
    msg = {"t": draw(digits(4))}
    for key in keys:
        msg[key] = draw(FIELD_VALUES[key])
    return msg
