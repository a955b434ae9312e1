"""``posdoctor ask``: from a merchant's or agent's words to the likely causes.

The matcher scores every cause of the catalog by four kinds of evidence in the text:

1. phrases from ``data/ask_lexicon.toml`` plus the cause's catalog names, matched with
   typo tolerance (near-homophones cost little, see `ask_text`); a phrase shared by many
   causes counts less (weight / sqrt(causes sharing it)); a cause's matches add up with
   diminishing returns, and a phrase inside a longer matched phrase is not counted twice;
2. response codes written in the text ("A0", "97", "03"), through the CUP table of
   ``iso8583/codes.py`` (its causes, its Chinese and English texts);
3. terminal screen texts and message codes (``terminal/messages.py``, cup8583.md
   section 8) linked to causes in the lexicon;
4. a tf-idf cosine over character bigrams / English words between the text and each
   cause's document (phrases, names, remedy explanation, and the *dev* part of the
   labelled complaint set: the learned part) for wordings no phrase covers;
5. the symptom named ("无法签到", "初始化失败", "升级后"...): a weak prior for every cause
   the catalog lists under that symptom (more for causes seen in more seeds); an upgrade
   mentioned anywhere favours the ``upgrade.*`` causes over their twins.

Confidence is a cause's share of the total score (with a constant for "something else").
The questions that tell the top candidates apart come from `guided`.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from posdoctor.doctor import ask_text as tx
from posdoctor.doctor.catalog import CAUSES, SYMPTOMS, get_cause
from posdoctor.doctor.guided import QuestionBank, question_bank
from posdoctor.doctor.records import Line, line
from posdoctor.doctor.remedies import get_remedy
from posdoctor.iso8583.codes import RESPONSE_CODES
from posdoctor.terminal.messages import MESSAGES

__all__ = ["AskFinding", "AskResult", "Matcher", "ask", "matcher", "complaints", "evaluate", "SYMPTOM_WORDS"]

STRONG, NORMAL, NAME, SCREEN = 2.0, 1.0, 1.5, 1.5
CODE_WEIGHT = 2.6
MESSAGE_CODE_WEIGHT = 2.6
DECAY = 0.6
COSINE_WEIGHT = 1.2
OTHER_MASS = 1.0
MIN_SCORE = 0.25
SYMPTOM_WEIGHT = 0.3
UPGRADE_CONTEXT = 1.2
UPGRADE_WORDS = ("升级", "更新", "升完级", "新版本", "固件", "upgrade", "update", "firmware", "new version")
"""An upgrade mentioned anywhere favours the upgrade.* twin of a cause (keys lost vs TMK missing)."""
CONFIDENT = 0.25
"""Below this the answer is ``unknown`` (the candidates are still listed, with what to collect)."""

# How merchants name the five symptoms of the seeds (catalog.SYMPTOMS).
SYMPTOM_WORDS: dict[str, tuple[str, ...]] = {
    "init_failed": ("初始化失败", "初始化", "开不了机", "无法启动", "init", "initialise", "initialize", "start up"),
    "unusable": ("无法使用", "不能用", "用不了", "不能刷卡", "刷不了", "cannot be used", "not working", "unusable"),
    "signin_failed": ("无法签到", "签到失败", "签不了到", "签不上", "sign in fail", "cannot sign in", "sign-in fail"),
    "broken_after_upgrade": ("升级后", "升级以后", "更新后", "after the upgrade", "after upgrading", "after update"),
    "status_abnormal": ("状态异常", "用户状态", "账户异常", "status abnormal", "account status"),
}


@dataclass(frozen=True, slots=True)
class Phrase:
    cause: str
    text: str
    weight: float
    words: tuple[str, ...] = ()

    @property
    def chinese(self) -> bool:
        return not self.words


@dataclass(slots=True)
class _Score:
    total: float = 0.0
    evidence: list[Line] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AskFinding:
    cause: str
    confidence: float
    score: float
    evidence: tuple[Line, ...]

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "name": {"zh": get_cause(self.cause).zh, "en": get_cause(self.cause).en},
            "confidence": self.confidence,
            "evidence": [ln.text(lang) if lang else ln.both() for ln in self.evidence],
            "remedy": get_remedy(self.cause).to_json(lang),
        }


@dataclass(frozen=True, slots=True)
class AskResult:
    text: str
    findings: tuple[AskFinding, ...]
    questions: tuple[dict[str, Any], ...]
    codes: tuple[str, ...]

    @property
    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    @property
    def verdict(self) -> str:
        """The top cause when its confidence reaches `CONFIDENT`, else ``unknown``."""
        return self.findings[0].cause if self.findings and self.findings[0].confidence >= CONFIDENT else "unknown"

    def collect(self, lang: str | None = None) -> list[dict[str, str]]:
        """When unsure: what to find out next, from the leading candidates' remedies."""
        if self.verdict != "unknown":
            return []
        items: list[dict[str, str]] = [{"zh": "终端屏幕上的提示原文和应答码", "en": "the exact screen message and answer code"}]
        for f in self.findings[:3]:
            collect = get_remedy(f.cause).collect
            items += [{"zh": zh, "en": en} for zh, en in zip(collect["zh"], collect["en"], strict=True)]
        unique = list({item["en"]: item for item in items}.values())
        return [{k: v for k, v in item.items() if lang in (None, k)} for item in unique]

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        return {
            "text": self.text,
            "cause": self.verdict,
            "collect": self.collect(lang),
            "codes": list(self.codes),
            "findings": [f.to_json(lang) for f in self.findings],
            "questions": [_question_json(q, lang) for q in self.questions],
        }


def _question_json(q: dict[str, Any], lang: str | None) -> dict[str, Any]:
    out = {"id": q["id"], "yes_suggests": q["yes_suggests"], "no_suggests": q["no_suggests"]}
    out.update({k: q[k] for k in ("zh", "en") if lang in (None, k)})
    return out


def _split_name(name: str) -> list[str]:
    pieces = [name]
    for sep in ("/", "(", ")", "，", ","):
        pieces = [p for piece in pieces for p in piece.split(sep)]
    return [p.strip() for p in pieces if len(p.strip()) >= 2] + [name]


class Matcher:
    """Phrase, code and similarity scoring over the cause catalog (built once)."""

    def __init__(self, lexicon: dict[str, Any]) -> None:
        raw: list[Phrase] = []
        self.message_causes: dict[str, list[str]] = {}
        for cause, entry in lexicon.items():
            if cause not in CAUSES:
                raise ValueError(f"lexicon names {cause!r}, which is not in the cause catalog")
            raw += self._phrases(cause, entry)
        for code, rc in RESPONSE_CODES.items():
            for cause in rc.causes:
                raw += [self._phrase(cause, text, SCREEN) for text in (rc.zh, rc.en)]
        sharing: dict[str, set[str]] = {}
        for p in raw:
            sharing.setdefault(p.text, set()).add(p.cause)
        unique = {(p.cause, p.text): p for p in sorted(raw, key=lambda p: p.weight)}
        self.phrases = [Phrase(p.cause, p.text, p.weight / math.sqrt(len(sharing[p.text])), p.words)
                        for p in unique.values()]
        self._build_index()
        self._build_similarity()

    def _build_index(self) -> None:
        """Which phrases contain a character / an English word: only those are tried."""
        self.by_char: dict[str, set[int]] = {}
        self.by_word: dict[str, set[int]] = {}
        for i, p in enumerate(self.phrases):
            for key in p.words or set(p.text):
                (self.by_word if p.words else self.by_char).setdefault(key, set()).add(i)

    def _candidates(self, prepared: tx.Prepared) -> list[int]:
        found: set[int] = set()
        for ch in tx.with_homophones(prepared.chars):
            found |= self.by_char.get(ch, set())
        for word in prepared.words:
            found |= self.by_word.get(word, set())
            for known in self.by_word:
                if tx.near(word, known):
                    found |= self.by_word[known]
        return sorted(found)

    def _phrase(self, cause: str, text: str, weight: float) -> Phrase:
        norm = tx.normalize(text)
        return Phrase(cause, norm, weight, () if tx.has_han(norm) else tuple(tx.words(norm)))

    def _phrases(self, cause: str, entry: dict[str, Any]) -> list[Phrase]:
        out = [self._phrase(cause, t, STRONG) for t in entry.get("strong_zh", []) + entry.get("strong_en", [])]
        out += [self._phrase(cause, t, NORMAL) for t in entry.get("zh", []) + entry.get("en", [])]
        meta = get_cause(cause)
        out += [self._phrase(cause, t, NAME) for t in _split_name(meta.zh) + [meta.en]]
        for code in entry.get("messages", []):
            message = MESSAGES[code]
            self.message_causes.setdefault(code, []).append(cause)
            clauses = [c for c in message.zh.replace("，", ",").split(",") if len(c) >= 2]
            if len(clauses) > 1:
                clauses.append(message.zh)
            out += [self._phrase(cause, c, SCREEN) for c in clauses] + [self._phrase(cause, message.en, NORMAL)]
        return [p for p in out if p.text and (p.words or len(p.text) >= 2)]

    def _build_similarity(self) -> None:
        docs: dict[str, Counter[str]] = {cause: Counter() for cause in CAUSES}
        for p in self.phrases:
            docs[p.cause].update(tx.char_ngrams(p.text))
        for row in complaints("dev"):
            docs[row["causes"][0]].update(tx.char_ngrams(tx.normalize(row["text"])))
        for cause in CAUSES:
            docs[cause].update(tx.char_ngrams(tx.normalize(get_remedy(cause).explanation["zh"])))
            docs[cause].update(tx.char_ngrams(tx.normalize(get_remedy(cause).explanation["en"])))
        df = Counter(gram for doc in docs.values() for gram in doc)
        self.idf = {gram: math.log(1 + len(docs) / n) for gram, n in df.items()}
        self.vectors = {cause: self._unit(doc) for cause, doc in docs.items()}

    def _unit(self, counts: Counter[str]) -> dict[str, float]:
        vec = {g: (1 + math.log(n)) * self.idf.get(g, 0.0) for g, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {g: v / norm for g, v in vec.items()}

    def score(self, text: str) -> tuple[dict[str, _Score], list[str]]:
        norm = tx.normalize(text)
        scores: dict[str, _Score] = {cause: _Score() for cause in CAUSES}
        self._score_phrases(norm, scores)
        codes = tx.extract_codes(norm)
        for code in tx.extract_message_codes(norm):
            if code.startswith("host.rc."):
                codes.append(code.rsplit(".", 1)[1].upper())
            for cause in self.message_causes.get(code, []):
                _add(scores[cause], MESSAGE_CODE_WEIGHT,
                     line(None, f"message code {code}: {MESSAGES[code].en}", f"消息码 {code}: {MESSAGES[code].zh}"))
        self._score_codes(list(dict.fromkeys(codes)), scores)
        self._score_similarity(norm, scores)
        self._score_symptoms(norm, scores)
        return scores, codes

    def _score_symptoms(self, norm: str, scores: dict[str, _Score]) -> None:
        text_words = frozenset(tx.words(norm))
        if any(w in norm if tx.has_han(w) else tx.english_match(tuple(tx.words(w)), text_words) >= 0.99
               for w in UPGRADE_WORDS):
            for cause in CAUSES:
                if cause.startswith("upgrade."):
                    _add(scores[cause], UPGRADE_CONTEXT, line(None, "an upgrade is mentioned", "提到了升级"))
        for symptom, phrases in SYMPTOM_WORDS.items():
            if not any(tx.cjk_match(tx.normalize(p), norm) >= 0.99 if tx.has_han(p)
                       else tx.english_match(tuple(tx.words(p)), text_words) >= 0.99 for p in phrases):
                continue
            zh, en = SYMPTOMS[symptom]
            for cause in CAUSES.values():
                if symptom in cause.symptoms:
                    _add(scores[cause.id], SYMPTOM_WEIGHT * (1 + 0.15 * len(cause.seeds)),
                         line(None, f"symptom: {en}", f"症状: {zh}"))

    def _score_phrases(self, norm: str, scores: dict[str, _Score]) -> None:
        prepared = tx.Prepared.of(norm)
        text_words = prepared.words
        chinese = tx.has_han(norm)
        hits: dict[str, list[tuple[float, Phrase, float]]] = {}
        for p in (self.phrases[i] for i in self._candidates(prepared)):
            if p.chinese:
                quality = tx.cjk_match(p.text, prepared) if chinese or p.text.isascii() else 0.0
            else:
                quality = tx.english_match(p.words, text_words)
            if quality > 0:
                hits.setdefault(p.cause, []).append((p.weight * quality, p, quality))
        for cause, found in hits.items():
            found.sort(key=lambda h: -h[0])
            kept: list[tuple[float, Phrase, float]] = []
            for hit in found:
                if any(hit[1].text in k[1].text and k[2] >= 0.99 for k in kept):
                    continue
                kept.append(hit)
            for rank, (value, p, quality) in enumerate(kept):
                how = "matched" if quality >= 0.99 else f"close to ({quality:.2f})"
                how_zh = "匹配" if quality >= 0.99 else f"近似匹配({quality:.2f})"
                _add(scores[cause], value * DECAY ** rank, line(None, f"{how} \"{p.text}\"", f"{how_zh}“{p.text}”"))

    def _score_codes(self, codes: list[str], scores: dict[str, _Score]) -> None:
        for code in codes:
            rc = RESPONSE_CODES.get(code)
            if rc is None or not rc.causes:
                continue
            share = CODE_WEIGHT / math.sqrt(len(rc.causes))
            for rank, cause in enumerate(rc.causes):
                _add(scores[cause], share * (1 - 0.08 * rank),
                     line(None, f"response code {code}: {rc.en}", f"应答码 {code}: {rc.zh}"))

    def _score_similarity(self, norm: str, scores: dict[str, _Score]) -> None:
        query = self._unit(Counter(tx.char_ngrams(norm)))
        for cause, vec in self.vectors.items():
            cosine = sum(v * vec.get(g, 0.0) for g, v in query.items())
            if cosine > 0.05:
                _add(scores[cause], COSINE_WEIGHT * cosine,
                     line(None, f"wording similar to this cause ({cosine:.2f})", f"描述与该原因相似({cosine:.2f})"),
                     quiet=cosine < 0.2)

    def rank(self, text: str, top: int = 5) -> tuple[list[AskFinding], list[str]]:
        scores, codes = self.score(text)
        ranked = sorted(((s.total, cause) for cause, s in scores.items() if s.total >= MIN_SCORE),
                        key=lambda pair: (-pair[0], pair[1]))
        mass = sum(total for total, _ in ranked) + OTHER_MASS
        findings = [AskFinding(cause, round(min(0.97, total / mass), 3), round(total, 3),
                               tuple(scores[cause].evidence)) for total, cause in ranked[:top]]
        return findings, codes


def _add(score: _Score, value: float, evidence: Line, quiet: bool = False) -> None:
    score.total += value
    if not quiet:
        score.evidence.append(evidence)


@cache
def complaints(split: str | None = None) -> list[dict[str, Any]]:
    """The labelled complaint set (``data/complaints.jsonl``), optionally one split (dev, heldout)."""
    text = (resources.files("posdoctor.doctor") / "data" / "complaints.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(row) for row in text.splitlines() if row.strip()]
    return [r for r in rows if split is None or r["split"] == split]


@cache
def matcher() -> Matcher:
    data = resources.files("posdoctor.doctor") / "data" / "ask_lexicon.toml"
    return Matcher(tomllib.loads(data.read_text(encoding="utf-8")))


def ask(text: str, top: int = 5, bank: QuestionBank | None = None, n_questions: int = 3) -> AskResult:
    """The likely causes of what `text` describes, best first, and questions that split them."""
    if not text or not text.strip():
        raise ValueError("nothing to diagnose: the text is empty / 描述为空")
    findings, codes = matcher().rank(text, top=max(top, 1))
    bank = bank or question_bank()
    prior = {f.cause: f.confidence for f in findings}
    questions = bank.discriminating(prior, n_questions) if prior else bank.opening(n_questions)
    return AskResult(text, tuple(findings), tuple(questions), tuple(codes))


def evaluate(rows: list[dict[str, Any]] | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, dict[str, float | int]]:
    """Top-1 / top-3 accuracy of the matcher on the labelled complaints, per split and overall.

    A row counts when the first (top-1) or any of the first three (top-3) causes is one of
    the row's acceptable causes. `progress(done, total)` is called for each row."""
    rows = complaints() if rows is None else rows
    tally: dict[str, list[int]] = {}
    for done, row in enumerate(rows, 1):
        if progress is not None:
            progress(done, len(rows))
        causes = [f.cause for f in matcher().rank(row["text"], top=3)[0]]
        hit1 = bool(causes) and causes[0] in row["causes"]
        hit3 = any(c in row["causes"] for c in causes)
        for key in (row.get("split", "all"), "overall"):
            counts = tally.setdefault(key, [0, 0, 0])
            counts[0] += hit1
            counts[1] += hit3
            counts[2] += 1
    return {key: {"top1": round(t1 / n, 3), "top3": round(t3 / n, 3), "n": n} for key, (t1, t3, n) in tally.items()}
