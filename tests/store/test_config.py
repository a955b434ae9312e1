"""Settings (env, TOML, validation) and the local master key file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from posdoctor.store.config import Settings, load_lmk, load_settings
from posdoctor.store.errors import ConfigError


def test_defaults_use_posdoctor_data_in_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("POSDOCTOR_HOME", raising=False)
    monkeypatch.delenv("POSDOCTOR_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.home == Path("posdoctor-data")
    assert not (tmp_path / "posdoctor-data").exists()  # created on first use only
    assert settings.database_url() == f"sqlite:///{tmp_path / 'posdoctor-data' / 'posdoctor.db'}"
    assert (tmp_path / "posdoctor-data").is_dir()


def test_env_sets_home_and_db(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSDOCTOR_DB", "postgresql://u@db.example:5432/pos")
    settings = load_settings()
    assert settings.home == home
    assert settings.database_url() == "postgresql://u@db.example:5432/pos"


def test_override_beats_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSDOCTOR_DB", "postgresql://u@db.example/pos")
    assert load_settings().database_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert load_settings(db="sqlite:////tmp/y.db").db == "sqlite:////tmp/y.db"


def test_empty_db_env_means_default(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSDOCTOR_DB", "")
    assert load_settings().database_url() == f"sqlite:///{home.resolve() / 'posdoctor.db'}"


def test_toml_file_in_home_is_read(home: Path) -> None:
    home.mkdir()
    (home / "posdoctor.toml").write_text(
        'db = "postgresql://u@toml.example/pos"\n[host]\nport = 5900\n', encoding="utf-8"
    )
    settings = load_settings()
    assert settings.db == "postgresql://u@toml.example/pos"
    assert settings.section("host") == {"port": 5900}
    assert settings.section("tms") == {}


def test_env_beats_toml(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir()
    (home / "posdoctor.toml").write_text('db = "postgresql://u@toml.example/pos"\n')
    monkeypatch.setenv("POSDOCTOR_DB", "sqlite:////tmp/env.db")
    assert load_settings().db == "sqlite:////tmp/env.db"


def test_toml_of_home_given_as_argument(tmp_path: Path, home: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "posdoctor.toml").write_text('db = "sqlite:////tmp/other.db"\n')
    assert load_settings(home=other).db == "sqlite:////tmp/other.db"


def test_unknown_toml_key_is_refused(home: Path) -> None:
    home.mkdir()
    (home / "posdoctor.toml").write_text('databse = "sqlite:///x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == (
        f"配置文件 {home / 'posdoctor.toml'} 中有未知设置 'databse' / "
        f"config file {home / 'posdoctor.toml'} has an unknown setting 'databse'"
    )


def test_broken_toml_is_refused(home: Path) -> None:
    home.mkdir()
    (home / "posdoctor.toml").write_text("db = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database: mysql://u@h/db (only sqlite and postgresql)"),
        ("not a url", "database URL cannot be parsed"),
    ],
)
def test_bad_db_url_from_env(home: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str) -> None:
    monkeypatch.setenv("POSDOCTOR_DB", url)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert err.value.en == f"invalid settings: db: Value error, {message}"
    assert err.value.zh.startswith("配置无效: db:")


def test_bad_db_type_in_toml(home: Path) -> None:
    home.mkdir()
    (home / "posdoctor.toml").write_text("db = 5\n")
    with pytest.raises(ConfigError, match="invalid settings: db: Input should be a valid string"):
        load_settings()


def test_bad_override_url_hides_password(home: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings().database_url("mysql://user:secret@h/db")
    assert "secret" not in str(err.value)
    assert err.value.en == "unsupported database: mysql://user:***@h/db (only sqlite and postgresql)"


def test_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        Settings(home=target).ensure_home()


# --- local master key --------------------------------------------------------------


def test_lmk_created_on_first_use_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "h"
    key = load_lmk(home)
    path = home / "lmk.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bytes.fromhex(path.read_text().strip()) == key
    assert load_lmk(home) == key  # stable
    assert [p.name for p in home.iterdir()] == ["lmk.key"]  # no temp file left


def test_each_home_gets_its_own_key(tmp_path: Path) -> None:
    assert load_lmk(tmp_path / "a") != load_lmk(tmp_path / "b")


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620])
def test_lmk_accessible_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    load_lmk(tmp_path)
    path = tmp_path / "lmk.key"
    path.chmod(mode)
    with pytest.raises(ConfigError) as err:
        load_lmk(tmp_path)
    assert err.value.en == (
        f"local master key file {path} is accessible by group or others ({mode:04o}); "
        f"run chmod 600 {path}"
    )
    assert err.value.zh == f"本地主密钥文件 {path} 权限过宽({mode:04o}),请执行 chmod 600 {path}"


def test_lmk_with_bad_content_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lmk.key"
    path.write_text("not hex at all\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="expected 32 or 64 hex digits"):
        load_lmk(tmp_path)


def test_lmk_of_16_bytes_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "lmk.key"
    path.write_text("00112233445566778899AABBCCDDEEFF\n")
    path.chmod(0o600)
    assert load_lmk(tmp_path) == bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_lmk(tmp_path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
