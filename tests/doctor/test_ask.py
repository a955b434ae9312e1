"""posdoctor ask: the labelled complaint set, codes, screen texts, typos, English, JSON."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.doctor.ask import Matcher, ask, complaints, evaluate, matcher
from posdoctor.doctor.catalog import CAUSES
from posdoctor.iso8583.codes import RESPONSE_CODES
from posdoctor.terminal.messages import MESSAGES

ROWS = complaints()


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
    result = CliRunner().invoke(app, ["ask", "--evaluate", "--json"])  # = evaluate(), through the CLI
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["overall"]["n"] == len(ROWS)
    assert scores["overall"]["top3"] >= 0.90, scores
    assert scores["dev"]["top3"] >= 0.95, scores
    # the held-out batch was written before the last changes and never tuned on:
    # top-3 0.954, top-1 0.889 when recorded (docs/diagnosis-ask.md)
    assert scores["heldout"]["top3"] >= 0.85, scores
    assert scores["heldout"]["top1"] >= 0.75, scores


def test_evaluate_counts_top1_and_top3() -> None:
    rows = [{"text": "打印机缺纸", "causes": ["hw.printer"], "split": "a"},
            {"text": "打印机缺纸", "causes": ["txn.duplicate"], "split": "a"}]
    assert evaluate(rows) == {"a": {"top1": 0.5, "top3": 0.5, "n": 2}, "overall": {"top1": 0.5, "top3": 0.5, "n": 2}}


def test_cli_ask_evaluate_and_text() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ask", "刷卡后显示A0 MAC校验错", "--json", "--top", "3"])
    assert result.exit_code == 0
    out = json.loads(result.output)
    assert out["findings"][0]["cause"] == "keys.mak_desync" and len(out["findings"]) <= 3
    human = runner.invoke(app, ["ask", "printer out of paper", "--lang", "en"])
    assert human.exit_code == 0 and "Printer fault" in human.output and "打印" not in human.output
    piped = runner.invoke(app, ["ask", "-", "--json"], input="签到时提示\n未知主机异常\n")
    assert json.loads(piped.output)["findings"][0]["cause"] == "net.dns_failure"
    assert runner.invoke(app, ["ask", "--json"]).exit_code == 2
    assert runner.invoke(app, ["ask", "x", "--answers", "y"]).exit_code == 2


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
    assert result.findings == () and result.verdict == "unknown"
    assert len(result.questions) == 3
    assert result.to_json()["collect"][0]["en"].startswith("the exact screen message")


def test_vague_complaint_is_unknown_with_what_to_collect() -> None:
    out = ask("POS机坏了，不能用").to_json("zh")
    assert out["cause"] == "unknown" and out["findings"]
    assert len(out["collect"]) >= 3 and all(set(item) == {"zh"} for item in out["collect"])
    sure = ask("刷卡后显示A0 MAC校验错").to_json()
    assert sure["cause"] == "keys.mak_desync" and sure["collect"] == []


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
