"""Text handling for ``posdoctor ask``: normalising merchants' words and fuzzy matching.

Pure functions, no data files. Chinese is matched as characters: a phrase matches a
complaint when it occurs in it with at most a small edit cost, where swapping a
character for a near-homophone (签倒/签到, 秘钥/密钥) costs little and any other edit
costs one (weighted approximate substring matching, Sellers' algorithm). English is
matched word by word after light stemming, allowing one typo in longer words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Prepared", "normalize", "has_han", "cjk_match", "words", "stem", "english_match", "char_ngrams",
           "extract_codes", "extract_message_codes", "near", "with_homophones"]

HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_SPACE_NEAR_HAN = re.compile(r"\s*([\u4e00-\u9fff，。、：；！？“”（）])\s*")

# Whole-word misspellings and variants merchants type, fixed before matching.
_REWRITES: tuple[tuple[str, str], ...] = (
    ("签倒", "签到"), ("签道", "签到"), ("前到", "签到"), ("秘钥", "密钥"), ("蜜钥", "密钥"), ("密匙", "密钥"),
    ("秘匙", "密钥"), ("密要", "密钥"), ("登陆", "登录"), ("帐户", "账户"), ("对帐", "对账"), ("帐号", "账号"),
    ("到帐", "到账"), ("冲证", "冲正"), ("充正", "冲正"), ("死鸡", "死机"), ("打应", "打印"), ("余额不组", "余额不足"),
    ("网落", "网络"), ("升及", "升级"), ("刷咔", "刷卡"), ("密马", "密码"), ("链接", "连接"), ("连结", "连接"),
    ("簽到", "签到"), ("密鑰", "密钥"), ("網絡", "网络"), ("連接", "连接"), ("終端", "终端"), ("結算", "结算"),
    ("pos机", "pos机"), ("wi-fi", "wifi"), ("sign-in", "sign in"), ("signin", "sign in"), ("log-in", "log in"),
    ("can not", "cannot"), ("won't", "will not"), ("doesn't", "does not"), ("don't", "do not"), ("isn't", "is not"),
    ("didn't", "did not"), ("can't", "cannot"),
)

# Characters merchants confuse (same or close pinyin); a swap inside a group is cheap.
_HOMOPHONE_GROUPS = (
    "到倒道导", "密秘蜜", "钥要", "账帐", "录陆路", "码马", "络落", "机鸡几", "印应", "级及", "足组", "冲充",
    "正证", "结节接", "签欠", "网往忘", "连联链", "锁所", "卡咔", "刷涮", "误务", "败拜", "屏平", "池驰", "扣叩",
    "款宽", "读独", "断段", "线现", "端段", "号好", "户护", "冻动", "审申", "核合", "升生", "载在", "校较", "验严",
    "登灯", "钱前", "额鹅", "余于鱼", "密米", "障章", "参餐", "数树", "据剧", "失师", "效校", "册策", "没每",
)
_HOMOPHONE: dict[str, int] = {ch: i for i, group in enumerate(_HOMOPHONE_GROUPS) for ch in group}

CHEAP_SWAP = 0.3
UNIT_AFTER_NUMBER = "秒分元块次点号天个台小时年月日岁笔张位%"
_CODE = re.compile(r"(?<![0-9a-z.])([0-9]{2}|a[0-9])(?![0-9a-z])")
_MESSAGE_CODE = re.compile(r"\b([a-z]+(?:\.[a-z0-9_]+)+)\b")

_STOP = frozenset("a an the is are was were be to of and or my our it its on in at for with this that i we me "
                  "by from as has have had will not no do does did".split())


def has_han(text: str) -> bool:
    return HAN.search(text) is not None


def normalize(text: str) -> str:
    """Full-width to half-width, lower case, common misspellings fixed, no spaces beside Chinese."""
    out = unicodedata.normalize("NFKC", text).lower()
    out = out.replace("’", "'").replace("‘", "'")
    for wrong, right in _REWRITES:
        out = out.replace(wrong, right)
    out = _SPACE_NEAR_HAN.sub(r"\1", out)
    return re.sub(r"\s+", " ", out).strip()


def with_homophones(chars: frozenset[str]) -> set[str]:
    """The characters plus every near-homophone of them."""
    out = set(chars)
    for ch in chars:
        group = _HOMOPHONE.get(ch)
        if group is not None:
            out.update(_HOMOPHONE_GROUPS[group])
    return out


def _swap_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    ga, gb = _HOMOPHONE.get(a), _HOMOPHONE.get(b)
    return CHEAP_SWAP if ga is not None and ga == gb else 1.0


def allowed_cost(length: int) -> float:
    """How much editing a phrase of this many characters may need and still match."""
    if length <= 2:
        return CHEAP_SWAP
    if length == 3:
        return 2 * CHEAP_SWAP
    if length <= 5:
        return 1.0
    return 1.0 + 2 * CHEAP_SWAP


@dataclass(frozen=True, slots=True)
class Prepared:
    """A normalised text with what the matchers look up repeatedly."""

    text: str
    chars: frozenset[str]
    groups: frozenset[int]
    words: frozenset[str]

    @classmethod
    def of(cls, normalized: str) -> Prepared:
        chars = frozenset(normalized)
        groups = frozenset(_HOMOPHONE[ch] for ch in chars if ch in _HOMOPHONE)
        return cls(normalized, chars, groups, frozenset(words(normalized)))


def cjk_match(phrase: str, text: str | Prepared) -> float:
    """How well `phrase` occurs in `text`: 1.0 exact, less with cheap edits, 0.0 no match."""
    prepared = text if isinstance(text, Prepared) else Prepared.of(text)
    if phrase in prepared.text:
        return 1.0
    budget = allowed_cost(len(phrase))
    missing = [ch for ch in set(phrase) if ch not in prepared.chars]
    hard = sum(1 for ch in missing if _HOMOPHONE.get(ch) not in prepared.groups)
    if hard + CHEAP_SWAP * (len(missing) - hard) > budget + 1e-9:
        return 0.0
    cost = _best_substring_cost(phrase, prepared.text)
    if cost > budget + 1e-9:
        return 0.0
    return max(0.0, 1.0 - cost / len(phrase))


@lru_cache(maxsize=65536)
def _best_substring_cost(phrase: str, text: str) -> float:
    """Least weighted edit cost of `phrase` against any substring of `text` (Sellers)."""
    previous = [0.0] * (len(text) + 1)
    for i, p in enumerate(phrase, 1):
        current = [float(i)] + [0.0] * len(text)
        for j, t in enumerate(text, 1):
            current[j] = min(previous[j - 1] + _swap_cost(p, t), previous[j] + 1.0, current[j - 1] + 1.0)
        previous = current
    return min(previous)


def stem(word: str) -> str:
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + keep
    return word


def words(text: str) -> list[str]:
    """Stemmed content words of the text (stop words dropped)."""
    return [stem(w) for w in _WORD.findall(text) if w not in _STOP]


@lru_cache(maxsize=65536)
def near(a: str, b: str) -> bool:
    """Same word, or one typo apart for words of five letters or more."""
    if a == b:
        return True
    if min(len(a), len(b)) < 5 or abs(len(a) - len(b)) > 1 or (a[0] != b[0] and a[-1] != b[-1]):
        return False
    return _best_substring_cost(a, b) <= 1.0 and _best_substring_cost(b, a) <= 1.0


def english_match(phrase_words: tuple[str, ...], text_words: frozenset[str]) -> float:
    """Share of the phrase's words found in the text (1.0 all exact; typos cost a little)."""
    if not phrase_words:
        return 0.0
    score = 0.0
    for w in phrase_words:
        if w in text_words:
            score += 1.0
        elif any(near(w, t) for t in text_words):
            score += 0.85
    share = score / len(phrase_words)
    if len(phrase_words) == 1:
        return share if share >= 0.85 else 0.0
    return share if share >= 0.99 else (share * 0.6 if share >= 0.66 else 0.0)


def char_ngrams(text: str) -> list[str]:
    """Character bigrams of Chinese runs and stemmed English words: the units for tf-idf."""
    grams: list[str] = []
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        grams.extend(run[i:i + 2] for i in range(len(run) - 1))
        if len(run) == 1:
            grams.append(run)
    grams.extend(words(text))
    return grams


def extract_codes(text: str) -> list[str]:
    """Response codes written in the text ("A0", "97", "03"), upper-cased, in order, once each.

    Two digits followed by a unit (30秒, 10点, 12元) are not codes."""
    found: list[str] = []
    for match in _CODE.finditer(text):
        after = text[match.end():match.end() + 2]
        if after[:1] and after[:1] in UNIT_AFTER_NUMBER or after.startswith("小时"):
            continue
        code = match.group(1).upper()
        if code not in found:
            found.append(code)
    return found


def extract_message_codes(text: str) -> list[str]:
    """Dotted event/message codes pasted from logs (``comm.connect_timeout``, ``host.rc.a0``)."""
    return list(dict.fromkeys(_MESSAGE_CODE.findall(text)))
