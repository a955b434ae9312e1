"""Host settings from the `[host]` table of posdoctor.toml, overridden by options."""

import pytest
from pydantic import ValidationError

from posdoctor.host.run import load_host_config


def test_toml_host_table_then_overrides(home):
    home.mkdir()
    (home / "posdoctor.toml").write_text('[host]\nport = 6000\nidle_timeout_s = 5\nheader = false\n')
    config = load_host_config(home=home, port=7000, host=None)
    assert (config.port, config.idle_timeout_s, config.header, config.host) == (7000, 5.0, False, "127.0.0.1")


def test_defaults_without_a_file(home):
    config = load_host_config(home=home)
    assert (config.host, config.port, config.persistent, config.require_mac) == ("127.0.0.1", 5800, True, True)


def test_unknown_host_setting_is_refused(home):
    home.mkdir()
    (home / "posdoctor.toml").write_text('[host]\nprot = 6000\n')
    with pytest.raises(ValidationError, match="prot"):
        load_host_config(home=home)
