"""Guided troubleshooting: question choice, Bayes updates, scripted and CLI sessions."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from posdoctor.cli.main import app
from posdoctor.doctor.catalog import CAUSES
from posdoctor.doctor.guided import GuidedSession, QuestionBank, expected_gain, parse_answer, question_bank

runner = CliRunner()


def _expected(p_yes: float) -> bool | None:
    """What a merchant facing the cause says: yes, no, or "don't know" for a coin toss."""
    return None if p_yes == 0.5 else p_yes > 0.5


def _walk(cause: str, flip_at: int | None = None) -> GuidedSession:
    """A merchant whose terminal has `cause` answers as the bank expects (one answer flipped)."""
    session = GuidedSession()
    while not session.done:
        q = session.next_question()
        answer = _expected(q.p_yes[cause])
        if flip_at is not None and len(session.asked) == flip_at and answer is not None:
            answer = not answer
        session.answer(q.id, answer)
    return session


def test_every_question_is_bilingual_and_splits_something() -> None:
    bank = question_bank()
    assert len(bank.questions) >= 40
    uniform = {c: 1 / len(CAUSES) for c in CAUSES}
    for q in bank.questions:
        assert q.zh.endswith("?") and q.en.endswith("?") and q.zh != q.en
        assert expected_gain(uniform, q) > 0


@pytest.mark.parametrize("cause", sorted(CAUSES))
def test_consistent_answers_lead_to_the_cause(cause: str) -> None:
    session = _walk(cause)
    assert session.ranked()[0][0] == cause
    assert session.result()["cause"] == cause
    assert len(session.asked) <= 15


def test_one_wrong_answer_still_leaves_the_cause_in_the_top_three_mostly() -> None:
    rng = random.Random(7)
    hits = 0
    for cause in CAUSES:
        session = _walk(cause, flip_at=rng.randrange(0, 4))
        hits += cause in [c for c, _ in session.ranked()[:3]]
    assert hits / len(CAUSES) >= 0.7, hits  # 41/54 when recorded


def test_the_first_question_is_the_best_split_and_differs_after_an_answer() -> None:
    session = GuidedSession()
    first = session.next_question()
    gains = sorted((expected_gain(session.probs, q) for q in session.bank.questions), reverse=True)
    assert expected_gain(session.probs, first) == pytest.approx(gains[0])
    session.answer(first.id, True)
    assert session.next_question().id != first.id


def test_unknown_answers_change_nothing_and_are_not_asked_again() -> None:
    session = GuidedSession()
    before = dict(session.probs)
    q = session.next_question()
    session.answer(q.id, None)
    assert session.probs == before and session.next_question().id != q.id


def test_seeded_session_starts_from_ask_candidates() -> None:
    seeded = GuidedSession.seeded({"keys.mak_desync": 0.7, "hw.card_reader": 0.1})
    assert seeded.ranked()[0][0] == "keys.mak_desync"
    q = seeded.next_question()
    seeded.answer(q.id, _expected(q.p_yes["keys.mak_desync"]))
    assert seeded.done and seeded.result()["cause"] == "keys.mak_desync"


@pytest.mark.parametrize("word, answer", [("y", True), ("是", True), ("N", False), ("否", False),
                                          ("?", None), ("不知道", None)])
def test_parse_answer(word: str, answer: bool | None) -> None:
    assert parse_answer(word) is answer


def test_parse_answer_refuses_other_words() -> None:
    with pytest.raises(ValueError):
        parse_answer("maybe")


def test_bank_refuses_unknown_causes() -> None:
    with pytest.raises(ValueError, match="no.such"):
        QuestionBank.from_toml({"question": [{"id": "q", "zh": "问?", "en": "q?", "yes": ["no.such"]}]})


def _scripted_answers(cause: str) -> str:
    session, answers = GuidedSession(), []
    while not session.done:
        q = session.next_question()
        expected = _expected(q.p_yes[cause])
        answers.append({True: "y", False: "n", None: "?"}[expected])
        session.answer(q.id, expected)
    return ",".join(answers)


def test_cli_guided_scripted_json() -> None:
    result = runner.invoke(app, ["ask", "--guided", "--answers", _scripted_answers("hw.printer"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["done"] and out["cause"] == "hw.printer"
    assert out["findings"][0]["remedy"]["merchant_steps"]["zh"]
    assert all(a["answer"] in ("yes", "no", "unknown") for a in out["asked"])


def test_cli_guided_with_text_and_too_few_answers_reports_progress() -> None:
    result = runner.invoke(app, ["ask", "签到失败", "--guided", "--answers", "y", "--json"])
    out = json.loads(result.output)
    assert len(out["asked"]) == 1 and not out["done"]


def test_cli_guided_interactive_prompts_until_done() -> None:
    answers = _scripted_answers("net.dns_failure").replace(",", "\n").replace("y", "是").replace("n", "否").replace("?", "不知道")
    result = runner.invoke(app, ["ask", "--guided", "--lang", "zh"], input="也许\n" + answers + "\n")
    assert result.exit_code == 0, result.output
    assert "请回答" in result.output  # the unrecognised first answer was asked again
    assert "域名解析失败" in result.output and "net.dns_failure" in result.output


def test_cli_guided_json_needs_answers_and_bad_answers_are_refused() -> None:
    assert runner.invoke(app, ["ask", "--guided", "--json"]).exit_code == 2
    bad = runner.invoke(app, ["ask", "--guided", "--answers", "y,perhaps", "--json"])
    assert bad.exit_code == 2 and json.loads(bad.output)["ok"] is False
