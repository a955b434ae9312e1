"""``TmsMixin``: the ``Store`` methods for device credentials, telemetry, packages and campaigns."""

from __future__ import annotations

from posdoctor.store.base import StoreBase


class TmsMixin(StoreBase):
    pass
