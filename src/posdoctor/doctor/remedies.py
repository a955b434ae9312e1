"""Remedies: what to do about each cause, as data keyed by cause ID.

The texts live in ``doctor/data/remedies_*.toml`` (one file per group of families):
an explanation, plain-word steps for the merchant (following the seeds' checklists),
steps for the operator, the name of an automatic fix (or none), actions only a person
may take (proposed, never done by software) and what evidence to collect next when the
diagnosis is unsure. Every text exists in Chinese and English.

``get_remedy(cause_id)`` returns a frozen `Remedy`; ``Remedy.to_json(lang)`` gives the
contract shape used in ``diagnose``/``ask`` JSON output.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from posdoctor.doctor.catalog import CAUSES

__all__ = ["AUTO_FIXES", "LANGS", "Remedy", "PersonAction", "RemedyError", "get_remedy", "all_remedies",
           "remedy_json"]

LANGS = ("zh", "en")

AUTO_FIXES = ("push_comm_params", "reissue_tmk", "force_sign_in", "push_params", "halt_campaign",
              "rollback_campaign", "deliver_reversal", "release_payout")
"""The software fixes a remedy may name (implemented in ``doctor/fixes.py``)."""

_DATA_FILES = ("remedies_config.toml", "remedies_net.toml", "remedies_status.toml",
               "remedies_software.toml", "remedies_device.toml")


class RemedyError(ValueError):
    """The remedy data is malformed (raised when loading, naming the cause and field)."""


@dataclass(frozen=True, slots=True)
class PersonAction:
    """An action software proposes and a person decides (e.g. unfreeze after risk review)."""

    action: str
    zh: str
    en: str

    def to_json(self, lang: str | None = None) -> dict[str, str]:
        out = {"action": self.action}
        out.update(_pick({"zh": self.zh, "en": self.en}, lang))
        return out


@dataclass(frozen=True, slots=True)
class Remedy:
    cause: str
    explanation: dict[str, str]
    merchant_steps: dict[str, tuple[str, ...]]
    operator_steps: dict[str, tuple[str, ...]]
    auto_fix: str | None
    needs_person: tuple[PersonAction, ...]
    collect: dict[str, tuple[str, ...]]

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        """The contract shape. ``lang=None`` keeps both languages; ``"zh"``/``"en"`` keeps
        only that one (each text dict then has the single key ``lang``)."""
        return {
            "explanation": _pick(self.explanation, lang),
            "merchant_steps": {k: list(v) for k, v in _pick(self.merchant_steps, lang).items()},
            "operator_steps": {k: list(v) for k, v in _pick(self.operator_steps, lang).items()},
            "auto_fix": self.auto_fix,
            "needs_person": [p.to_json(lang) for p in self.needs_person],
            "collect": {k: list(v) for k, v in _pick(self.collect, lang).items()},
        }

    def text(self, lang: str = "zh") -> str:
        """The explanation in one language (``zh`` default)."""
        return self.explanation[_check_lang(lang)]


def _check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language must be one of {LANGS}, not {lang!r}")
    return lang


def _pick(texts: dict[str, Any], lang: str | None) -> dict[str, Any]:
    if lang is None:
        return dict(texts)
    return {lang: texts[_check_lang(lang)]}


def _text(cause: str, raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value.strip():
        raise RemedyError(f"remedy {cause}: {field} must be a non-empty string")
    return value


def _steps(cause: str, raw: dict[str, Any], field: str) -> tuple[str, ...]:
    value = raw.get(field)
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
        raise RemedyError(f"remedy {cause}: {field} must be a non-empty list of texts")
    return tuple(value)


def _bilingual_steps(cause: str, raw: dict[str, Any], prefix: str) -> dict[str, tuple[str, ...]]:
    steps = {lang: _steps(cause, raw, f"{prefix}_{lang}") for lang in LANGS}
    if len(steps["zh"]) != len(steps["en"]):
        raise RemedyError(f"remedy {cause}: {prefix}_zh and {prefix}_en differ in length")
    return steps


def _person_actions(cause: str, raw: dict[str, Any]) -> tuple[PersonAction, ...]:
    actions = []
    for item in raw.get("needs_person", []):
        if not isinstance(item, dict):
            raise RemedyError(f"remedy {cause}: needs_person entries are tables")
        actions.append(PersonAction(_text(cause, item, "action"), _text(cause, item, "zh"),
                                    _text(cause, item, "en")))
    return tuple(actions)


def _parse(cause: str, raw: dict[str, Any]) -> Remedy:
    auto_fix = raw.get("auto_fix")
    if auto_fix is not None and auto_fix not in AUTO_FIXES:
        raise RemedyError(f"remedy {cause}: unknown auto_fix {auto_fix!r}")
    return Remedy(
        cause=cause,
        explanation={lang: _text(cause, raw, f"explanation_{lang}") for lang in LANGS},
        merchant_steps=_bilingual_steps(cause, raw, "merchant"),
        operator_steps=_bilingual_steps(cause, raw, "operator"),
        auto_fix=auto_fix,
        needs_person=_person_actions(cause, raw),
        collect=_bilingual_steps(cause, raw, "collect"),
    )


@cache
def all_remedies() -> dict[str, Remedy]:
    """Every remedy by cause ID, loaded once from the package data."""
    data = resources.files("posdoctor.doctor") / "data"
    remedies: dict[str, Remedy] = {}
    for name in _DATA_FILES:
        for cause, raw in tomllib.loads((data / name).read_text(encoding="utf-8")).items():
            if cause in remedies:
                raise RemedyError(f"remedy {cause} defined twice")
            if cause not in CAUSES:
                raise RemedyError(f"remedy for {cause!r}, which is not in the cause catalog")
            remedies[cause] = _parse(cause, raw)
    return remedies


def get_remedy(cause_id: str) -> Remedy:
    """The remedy for a catalog cause; ``KeyError`` naming the ID when there is none."""
    try:
        return all_remedies()[cause_id]
    except KeyError:
        raise KeyError(f"no remedy for cause ID {cause_id!r}") from None


def remedy_json(cause_id: str, lang: str | None = None) -> dict[str, Any]:
    """Shorthand for ``get_remedy(cause_id).to_json(lang)``."""
    return get_remedy(cause_id).to_json(lang)
