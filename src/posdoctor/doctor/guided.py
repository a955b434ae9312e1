"""Guided troubleshooting: yes/no questions that narrow the causes down.

The question bank (``data/questions.toml``) gives, for every question and cause, the
probability that a merchant facing that cause answers "yes". A `GuidedSession` keeps a
probability over the causes (uniform, or seeded from ``ask`` on the merchant's words),
asks the question with the largest expected information gain (the one that best splits
the remaining candidates), updates by Bayes' rule on each answer, and stops when one
cause is likely enough, no question helps any more, or the question budget is spent.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from posdoctor.doctor.catalog import CAUSES, get_cause
from posdoctor.doctor.remedies import get_remedy

__all__ = ["Question", "QuestionBank", "GuidedSession", "question_bank", "parse_answer", "YES", "NO", "SKIP"]

P_YES, P_MAYBE, P_NO, P_DEFAULT = 0.9, 0.5, 0.1, 0.1
FLOOR = 0.02
SURE = 0.6
MARGIN = 2.0
MIN_GAIN = 0.02
MAX_QUESTIONS = 15
YES, NO, SKIP = True, False, None

_YES_WORDS = {"y", "yes", "是", "是的", "对", "有", "会", "能", "1", "true"}
_NO_WORDS = {"n", "no", "否", "不", "不是", "没有", "不会", "不能", "0", "false"}
_SKIP_WORDS = {"?", "-", "s", "skip", "unknown", "不知道", "不确定", "跳过"}


def parse_answer(word: str) -> bool | None:
    """``y``/``是`` -> True, ``n``/``否`` -> False, ``?``/``不知道`` -> None; ValueError otherwise."""
    w = word.strip().lower()
    if w in _YES_WORDS:
        return YES
    if w in _NO_WORDS:
        return NO
    if w in _SKIP_WORDS:
        return SKIP
    raise ValueError(f"answer {word!r} is not yes/no/unknown (y/n/?, 是/否/不知道)")


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    zh: str
    en: str
    p_yes: dict[str, float]
    _yes: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_yes", {c: min(1 - FLOOR, max(FLOOR, p)) for c, p in self.p_yes.items()})

    def text(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en

    def likelihood(self, cause: str, answer: bool) -> float:
        p = self._yes[cause]
        return p if answer else 1 - p


def _entropy_of(weights: list[float], total: float) -> float:
    """Entropy (bits) of the distribution proportional to `weights` (summing to `total`)."""
    if total <= 0:
        return 0.0
    return math.log2(total) - sum(w * math.log2(w) for w in weights if w > 0) / total


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if total <= 0:
        return {c: 1 / len(weights) for c in weights}
    return {c: w / total for c, w in weights.items()}


def bayes(probs: dict[str, float], q: Question, answer: bool) -> dict[str, float]:
    return _normalised({c: p * q.likelihood(c, answer) for c, p in probs.items()})


def expected_gain(probs: dict[str, float], q: Question) -> float:
    """Expected entropy reduction (bits) of asking `q` under `probs`."""
    likely = q._yes
    yes = [p * likely[c] for c, p in probs.items()]
    no = [p - y for p, y in zip(probs.values(), yes, strict=True)]
    p_yes, p_no = sum(yes), sum(no)
    after = p_yes * _entropy_of(yes, p_yes) + p_no * _entropy_of(no, p_no)
    return _entropy_of(list(probs.values()), p_yes + p_no) - after


class QuestionBank:
    def __init__(self, questions: list[Question]) -> None:
        self.questions = questions
        self.by_id = {q.id: q for q in questions}

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> QuestionBank:
        questions = []
        for raw in data["question"]:
            default = float(raw.get("default", P_DEFAULT))
            p_yes = {cause: default for cause in CAUSES}
            for key, value in (("yes", P_YES), ("maybe", P_MAYBE), ("no", P_NO)):
                for cause in raw.get(key, []):
                    if cause not in CAUSES:
                        raise ValueError(f"question {raw['id']}: unknown cause {cause!r}")
                    p_yes[cause] = value
            questions.append(Question(raw["id"], raw["zh"], raw["en"], p_yes))
        return cls(questions)

    def best(self, probs: dict[str, float], exclude: set[str] | frozenset[str] = frozenset(),
             n: int = 1) -> list[tuple[float, Question]]:
        gains = [(expected_gain(probs, q), q) for q in self.questions if q.id not in exclude]
        gains.sort(key=lambda pair: (-pair[0], pair[1].id))
        return gains[:n]

    def discriminating(self, candidates: dict[str, float], n: int = 3) -> list[dict[str, Any]]:
        """The `n` questions that best tell the candidate causes apart, with what each answer suggests."""
        probs = _normalised({c: max(p, 1e-6) for c, p in candidates.items()})
        return [self._describe(q, probs) for gain, q in self.best(probs, n=n) if gain > 1e-3]

    def opening(self, n: int = 3) -> list[dict[str, Any]]:
        """Questions to start with when nothing is known (uniform over the catalog)."""
        probs = {c: 1 / len(CAUSES) for c in CAUSES}
        return [self._describe(q, probs) for _, q in self.best(probs, n=n)]

    @staticmethod
    def _describe(q: Question, probs: dict[str, float]) -> dict[str, Any]:
        def favoured(answer: bool) -> list[str]:
            after = bayes(probs, q, answer)
            return [c for c, p in sorted(after.items(), key=lambda kv: -kv[1]) if p > probs[c] * 1.2][:3]
        return {"id": q.id, "zh": q.zh, "en": q.en, "yes_suggests": favoured(True), "no_suggests": favoured(False)}


@cache
def question_bank() -> QuestionBank:
    data = resources.files("posdoctor.doctor") / "data" / "questions.toml"
    return QuestionBank.from_toml(tomllib.loads(data.read_text(encoding="utf-8")))


@dataclass
class GuidedSession:
    """One walk through the questions. Feed `answer()` until `done`; read `result()`."""

    bank: QuestionBank = field(default_factory=question_bank)
    probs: dict[str, float] = field(default_factory=lambda: {c: 1 / len(CAUSES) for c in CAUSES})
    max_questions: int = MAX_QUESTIONS
    asked: list[tuple[str, bool | None]] = field(default_factory=list)
    _next: tuple[int, Question | None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def seeded(cls, candidates: dict[str, float], weight: float = 0.8, **kwargs: Any) -> GuidedSession:
        """Start from `ask`'s candidates (mixed with a little of the uniform prior)."""
        uniform = 1 / len(CAUSES)
        probs = _normalised({c: (1 - weight) * uniform + weight * candidates.get(c, 0.0) for c in CAUSES})
        return cls(probs=probs, **kwargs)

    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: (-kv[1], kv[0]))

    @property
    def done(self) -> bool:
        (first, p1), (_, p2) = self.ranked()[:2]
        if p1 >= SURE and p1 >= MARGIN * p2:
            return True
        return len(self.asked) >= self.max_questions or self.next_question() is None

    def next_question(self) -> Question | None:
        key = len(self.asked)
        if self._next is None or self._next[0] != key:
            asked = {qid for qid, _ in self.asked}
            best = self.bank.best(self.probs, exclude=asked)
            self._next = (key, best[0][1] if best and best[0][0] >= MIN_GAIN else None)
        return self._next[1]

    def answer(self, question_id: str, answer: bool | None) -> None:
        q = self.bank.by_id[question_id]
        if answer is not None:
            self.probs = bayes(self.probs, q, answer)
        self.asked.append((question_id, answer))

    def run(self, answers: list[bool | None]) -> list[tuple[Question, bool | None]]:
        """Answer the questions in order with scripted answers until done or out of answers."""
        transcript = []
        for given in answers:
            if self.done:
                break
            q = self.next_question()
            if q is None:
                break
            self.answer(q.id, given)
            transcript.append((q, given))
        return transcript

    def result(self, top: int = 3, lang: str | None = None) -> dict[str, Any]:
        ranked = self.ranked()[:top]
        first, p1 = ranked[0]
        return {
            "done": self.done,
            "asked": [{"id": qid, "zh": self.bank.by_id[qid].zh, "en": self.bank.by_id[qid].en,
                       "answer": {True: "yes", False: "no", None: "unknown"}[a]} for qid, a in self.asked],
            "cause": first if p1 >= SURE / 2 else "unknown",
            "findings": [{"cause": c, "name": {"zh": get_cause(c).zh, "en": get_cause(c).en},
                          "confidence": round(p, 3), "remedy": get_remedy(c).to_json(lang)} for c, p in ranked],
        }
