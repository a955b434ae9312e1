"""Normalising merchants' words and typo-tolerant matching (pure functions)."""

from __future__ import annotations

import pytest

from posdoctor.doctor.ask_text import (char_ngrams, cjk_match, english_match, extract_codes,
                                       extract_message_codes, near, normalize, words)


@pytest.mark.parametrize("raw, expected", [
    ("签倒失败", "签到失败"),
    ("秘钥校验失败", "密钥校验失败"),
    ("ＭＡＣ校验错", "mac校验错"),
    ("刷卡后显示 A0 MAC 校验错", "刷卡后显示a0 mac校验错"),
    ("Can't  sign-in", "cannot sign in"),
    ("对帐不平", "对账不平"),
])
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("phrase, text, at_least, at_most", [
    ("密钥校验失败", "提示密钥校验失败了", 1.0, 1.0),
    ("签到失败", "签导失败", 0.9, 0.95),      # near-homophone: cheap
    ("签到失败", "签x失败", 0.7, 0.8),        # any other swap: one full edit
    ("签到", "签x", 0.0, 0.0),                # two characters allow only a homophone
    ("主密钥", "主米钥", 0.85, 0.95),
    ("打印机故障", "打印机坏了", 0.0, 0.0),   # two edits in five characters: no
    ("连接超时", "一直超时", 0.0, 0.0),
])
def test_cjk_match(phrase: str, text: str, at_least: float, at_most: float) -> None:
    assert at_least <= cjk_match(phrase, text) <= at_most


def test_english_match_needs_every_word_or_a_clear_majority() -> None:
    text = frozenset(words("the printer is out of paper again"))
    assert english_match(tuple(words("out of paper")), text) == 1.0
    assert english_match(tuple(words("printer")), frozenset(words("prnter broken"))) == pytest.approx(0.85)
    assert english_match(tuple(words("card reader broken")), frozenset(words("reader broken"))) == pytest.approx(0.4)
    assert english_match(tuple(words("card reader")), frozenset(words("card"))) == 0.0
    assert english_match((), text) == 0.0


def test_near_allows_one_typo_in_long_words_only() -> None:
    assert near("printer", "prnter") and near("timeout", "timeot")
    assert not near("pin", "pan") and not near("printer", "pointers")


@pytest.mark.parametrize("text, codes", [
    ("刷卡后显示a0 mac校验错", ["A0"]),
    ("签到报97，再刷又是03", ["97", "03"]),
    ("返回码51 51", ["51"]),
    ("等了30秒，10点开始，花了12元", []),
    ("端口5800，tpdu 6000030000", []),
    ("4g信号差", []),
    ("code 96 then a7", ["96", "A7"]),
])
def test_extract_codes(text: str, codes: list[str]) -> None:
    assert extract_codes(text) == codes


def test_extract_message_codes() -> None:
    assert extract_message_codes("saw comm.connect_timeout and host.rc.a0") == ["comm.connect_timeout", "host.rc.a0"]


def test_char_ngrams_mix_chinese_bigrams_and_english_stems() -> None:
    assert char_ngrams("签到失败 printers") == ["签到", "到失", "失败", "printer"]
