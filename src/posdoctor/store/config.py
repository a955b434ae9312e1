"""Settings (environment + one TOML file, validated with pydantic) and the local master key.

Where each setting comes from, strongest first:

1. keyword arguments to :func:`load_settings` (the CLI's ``--db``/``--home``),
2. environment: ``POSDOCTOR_HOME``, ``POSDOCTOR_DB``,
3. ``$POSDOCTOR_HOME/posdoctor.toml`` (optional),
4. defaults: home ``./posdoctor-data``, database ``sqlite:///HOME/posdoctor.db``.

The TOML file holds top-level settings (``db = "postgresql://..."``) and free-form tables
for the services (``[host]``, ``[tms]``...) that each service validates itself; read them
with :meth:`Settings.section`. An unknown top-level key is an error, so typos are caught.
"""

from __future__ import annotations

import os
import secrets
import stat
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from posdoctor.store.errors import ConfigError

DEFAULT_HOME = Path("posdoctor-data")
TOML_NAME = "posdoctor.toml"
LMK_NAME = "lmk.key"
LMK_BYTES = 32
_TOP_LEVEL_KEYS = {"db"}
_BACKENDS = ("sqlite", "postgresql", "postgres")


def check_database_url(url: str) -> str:
    """Return ``url`` if SQLAlchemy can parse it and it names SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "数据库地址无法解析", "database URL cannot be parsed", setting="db"
        ) from None
    if parsed.get_backend_name() not in _BACKENDS:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(
            f"不支持的数据库: {shown} (只支持 sqlite 和 postgresql)",
            f"unsupported database: {shown} (only sqlite and postgresql)",
            setting="db",
        )
    return url


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``posdoctor.toml`` from the home chosen by the stronger sources."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is returned by __call__

    def __call__(self) -> dict[str, Any]:
        home = Path(self.current_state.get("home") or DEFAULT_HOME)
        path = home / TOML_NAME
        if not path.is_file():
            return {}
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"配置文件 {path} 格式错误: {exc}", f"config file {path} is not valid TOML: {exc}"
            ) from None
        return _split_toml(path, data)


def _split_toml(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            sections[key] = value
        elif key in _TOP_LEVEL_KEYS:
            values[key] = value
        else:
            raise ConfigError(
                f"配置文件 {path} 中有未知设置 {key!r}",
                f"config file {path} has an unknown setting {key!r}",
                setting=key,
            )
    if sections:
        values["sections"] = sections
    return values


class Settings(BaseSettings):
    """Validated settings; build with :func:`load_settings` for friendly errors."""

    model_config = SettingsConfigDict(env_prefix="POSDOCTOR_", extra="forbid")

    home: Path = DEFAULT_HOME
    db: str | None = None
    sections: dict[str, dict[str, Any]] = {}

    @field_validator("db", mode="before")
    @classmethod
    def _empty_db_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("db")
    @classmethod
    def _db_is_supported(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_database_url(value)
            except ConfigError as exc:
                raise ValueError(exc.en) from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    def section(self, name: str) -> dict[str, Any]:
        """The ``[name]`` table of the TOML file (empty when absent)."""
        return dict(self.sections.get(name, {}))

    def ensure_home(self) -> Path:
        """Create the home directory on first use and return its absolute path."""
        home = self.home.expanduser().resolve()
        if home.exists() and not home.is_dir():
            raise ConfigError(
                f"POSDOCTOR_HOME {home} 不是目录", f"POSDOCTOR_HOME {home} is not a directory"
            )
        home.mkdir(parents=True, exist_ok=True)
        return home

    def database_url(self, override: str | None = None) -> str:
        """The ``--db`` value, else ``POSDOCTOR_DB``/TOML ``db``, else SQLite in home."""
        if override:
            return check_database_url(override)
        if self.db:
            return self.db
        return f"sqlite:///{self.ensure_home() / 'posdoctor.db'}"


def load_settings(home: str | Path | None = None, db: str | None = None) -> Settings:
    """Build :class:`Settings`, turning validation failures into a :class:`ConfigError`."""
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = Path(home)
    if db:
        overrides["db"] = db
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"配置无效: {problems}", f"invalid settings: {problems}") from None


def load_lmk(home: str | Path) -> bytes:
    """Read ``HOME/lmk.key`` (64 hex digits), creating it with mode 0600 on first use.

    Refuses a key file that the group or other users can access, like ssh does.
    """
    home = Path(home).expanduser()
    return load_private_key_file(home / LMK_NAME, LMK_BYTES, (16, 32), setting="lmk",
                                 zh="本地主密钥文件", en="local master key file")


def load_private_key_file(path: Path, create_bytes: int, lengths: tuple[int, ...], *,
                          setting: str, zh: str, en: str) -> bytes:
    """A secret kept as hex in a 0600 file: created (random) on first use, checked, read.

    Creation links a private temp file into place, so concurrent first users agree on one
    key. A file the group or others can access, or one that does not hold ``lengths``
    bytes of hex, is a ``ConfigError`` naming ``zh``/``en`` and ``setting``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_private_file(path, create_bytes)
    if os.name != "nt":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{zh} {path} 权限过宽({mode:04o}),请执行 chmod 600 {path}",
                f"{en} {path} is accessible by group or others ({mode:04o}); run chmod 600 {path}",
                setting=setting,
            )
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii", errors="replace").strip())
    except ValueError:
        secret = b""
    if len(secret) not in lengths:
        expected = [str(2 * n) for n in lengths]
        raise ConfigError(
            f"{zh} {path} 内容无效(应为{'或'.join(expected)}位十六进制)",
            f"{en} {path} is invalid (expected {' or '.join(expected)} hex digits)",
            setting=setting,
        )
    return secret


def _create_private_file(path: Path, nbytes: int) -> None:
    """Write fresh random bytes (hex) to a private temp file, then link it into place.

    If another process created the file first, its key wins and ours is discarded.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_bytes(nbytes).hex().upper() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
