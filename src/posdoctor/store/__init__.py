"""posdoctor.store: SQLAlchemy models, the ``Store`` facade, settings and migrations.

Typical use::

    from posdoctor.store import open_store
    store = open_store()            # settings from --db / env / TOML; schema upgraded
    store.add_merchant("898100000000001", "示例商户")
"""

from posdoctor.store.config import Settings, load_lmk, load_settings
from posdoctor.store.db import make_engine, open_store, upgrade
from posdoctor.store.errors import AlreadyExists, ConfigError, InvalidValue, NotFound, StoreError
from posdoctor.store.repo import Store

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "InvalidValue",
    "NotFound",
    "Settings",
    "Store",
    "StoreError",
    "load_lmk",
    "load_settings",
    "make_engine",
    "open_store",
    "upgrade",
]
