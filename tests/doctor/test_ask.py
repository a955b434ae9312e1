"""posdoctor ask: the labelled complaint set, codes, screen texts, typos, English, JSON."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache

import pytest

from posdoctor.doctor.ask import Matcher, ask, complaints, matcher
from posdoctor.doctor.catalog import CAUSES
from posdoctor.iso8583.codes import RESPONSE_CODES
from posdoctor.terminal.messages import MESSAGES

ROWS = complaints()


@lru_cache(maxsize=None)
def _top3(text: str) -> tuple[str, ...]:
    return tuple(f.cause for f in matcher().rank(text, top=3)[0])


def _accuracy(rows: list[dict]) -> tuple[float, float]:
    top1 = top3 = 0
    for row in rows:
        causes = _top3(row["text"])
        top1 += bool(causes) and causes[0] in row["causes"]
        top3 += any(c in row["causes"] for c in causes)
    return top1 / len(rows), top3 / len(rows)


def test_complaint_set_is_labelled_and_covers_every_cause() -> None:
    assert len(ROWS) >= 240
    assert {r["split"] for r in ROWS} == {"dev", "heldout"}
    assert all(r["lang"] in ("zh", "en") and r["text"].strip() and r["causes"] for r in ROWS)
    assert all(c in CAUSES for r in ROWS for c in r["causes"])
    for split in ("dev", "heldout"):
        primaries = Counter(r["causes"][0] for r in ROWS if r["split"] == split)
        assert set(primaries) == set(CAUSES), f"{split} misses {set(CAUSES) - set(primaries)}"
    assert len({r["text"] for r in ROWS}) == len(ROWS)
    assert sum(r["lang"] == "en" for r in ROWS) >= 60


def test_top3_accuracy_on_the_whole_set_and_each_split() -> None:
    _, overall = _accuracy(ROWS)
    _, dev = _accuracy([r for r in ROWS if r["split"] == "dev"])
    top1_held, held = _accuracy([r for r in ROWS if r["split"] == "heldout"])
    assert overall >= 0.90, overall
    assert dev >= 0.95, dev
    # held-out was written before the matcher and never tuned on: 0.870 / 0.784 when recorded
    assert held >= 0.80, held
    assert top1_held >= 0.70, top1_held


@pytest.mark.parametrize("code", sorted(c for c, rc in RESPONSE_CODES.items() if rc.causes))
def test_every_response_code_with_causes_points_at_them(code: str) -> None:
    for text in (f"刷卡提示{code}", f"the terminal shows response code {code}"):
        result = ask(text)
        assert code in result.codes
        assert result.causes[0] in RESPONSE_CODES[code].causes, (text, result.causes)


def test_screen_texts_of_the_emulator_point_at_their_causes() -> None:
    linked = matcher().message_causes
    assert len(linked) >= 25
    for code, causes in linked.items():
        for text in (MESSAGES[code].zh, MESSAGES[code].en):
            top = ask(text, top=3).causes
            assert set(top) & set(causes), (code, text, top)


def test_pasted_message_codes_are_understood() -> None:
    assert ask("event comm.unknown_host at 08:02").causes[0] == "net.dns_failure"
    assert ask("host.rc.a0 three times this morning").causes[0] == "keys.mak_desync"


@pytest.mark.parametrize("text, cause", [
    ("签倒的时候提示秘钥校验失败", "keys.tmk_mismatch"),
    ("屏幕显示请下载主蜜钥", "keys.tmk_missing"),
    ("机器死鸡了", "sw.crash"),
    ("结算提示对帐不平", "txn.settlement_unbalanced"),
    ("打应机不出小票", "hw.printer"),
    ("刷卡后显示A0 MAC校验错", "keys.mak_desync"),
    ("签到报97", "status.terminal_unregistered"),
    ("顾客刷卡返回51", "txn.insufficient_funds"),
    ("ＭＡＣ校验错", "keys.mak_desync"),
    ("prnter out of paper", "hw.printer"),
    ("unknwn host when I sign in", "net.dns_failure"),
])
def test_typos_homophones_and_mixed_codes(text: str, cause: str) -> None:
    assert cause in ask(text, top=2).causes


def test_numbers_that_are_not_codes_are_ignored() -> None:
    assert ask("等了30秒还是连接超时，端口是5800").codes == ()
    assert ask("签到报03").codes == ("03",)


def test_unknown_words_give_no_findings_but_opening_questions() -> None:
    result = ask("今天天气很好")
    assert result.findings == ()
    assert len(result.questions) == 3


def test_empty_text_is_refused() -> None:
    with pytest.raises(ValueError):
        ask("   ")


def test_json_contract() -> None:
    out = ask("刷卡后显示A0 MAC校验错").to_json()
    json.dumps(out, ensure_ascii=False)
    top = out["findings"][0]
    assert set(top) >= {"cause", "confidence", "evidence", "remedy"}
    assert top["cause"] == "keys.mak_desync" and 0 < top["confidence"] <= 1
    assert any("A0" in e for e in top["evidence"])
    assert top["remedy"]["auto_fix"] == "force_sign_in"
    confidences = [f["confidence"] for f in out["findings"]]
    assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1.0001
    assert out["questions"] and {"id", "zh", "en", "yes_suggests", "no_suggests"} <= set(out["questions"][0])
    assert out["questions"][0]["yes_suggests"][0] == "keys.mak_desync"
    english = ask("printer out of paper").to_json("en")
    assert set(english["findings"][0]["remedy"]["explanation"]) == {"en"}


def test_lexicon_naming_an_unknown_cause_is_refused() -> None:
    with pytest.raises(ValueError, match="no.such"):
        Matcher({"no.such": {"zh": ["随便"]}})
