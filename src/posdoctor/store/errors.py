"""Typed errors of the storage layer, each with a Chinese and an English message.

``str(err)`` is ``"<中文> / <English>"`` so one line serves both readers; the parts are
also available as ``err.zh`` and ``err.en`` for interfaces that show one language.
"""

from __future__ import annotations

ENTITY_NAMES_ZH = {
    "merchant": "商户",
    "terminal": "终端",
    "device": "设备",
    "card": "卡",
    "account": "账户",
    "transaction": "交易",
    "batch": "批次",
    "terminal keys": "终端密钥",
    "decline rule": "拒绝规则",
}


class StoreError(Exception):
    """Base class: every error raised on purpose by ``posdoctor.store``."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh = zh
        self.en = en


class NotFound(StoreError):
    """A record looked up by its key does not exist."""

    def __init__(self, entity: str, key: str) -> None:
        name_zh = ENTITY_NAMES_ZH.get(entity, entity)
        super().__init__(f"{name_zh} {key} 不存在", f"{entity} {key} not found")
        self.entity = entity
        self.key = key


class AlreadyExists(StoreError):
    """A record with the same key is already stored."""

    def __init__(self, entity: str, key: str) -> None:
        name_zh = ENTITY_NAMES_ZH.get(entity, entity)
        super().__init__(f"{name_zh} {key} 已存在", f"{entity} {key} already exists")
        self.entity = entity
        self.key = key


class InvalidValue(StoreError):
    """A value given to the store (or typed by a user) is not acceptable."""

    def __init__(self, field: str, zh: str, en: str) -> None:
        super().__init__(zh, en)
        self.field = field


class ConfigError(StoreError):
    """Settings, the TOML file, the database URL or the LMK file are unusable."""

    def __init__(self, zh: str, en: str, *, setting: str = "") -> None:
        super().__init__(zh, en)
        self.setting = setting
