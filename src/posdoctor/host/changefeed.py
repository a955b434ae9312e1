"""The host side of the change feed: poll ``host_changes`` and apply each new row.

Whoever changes the registry, a policy or a parameter (the CLI, the TMS, the doctor's
fixes, in any process) writes a row with ``Store.notify_host`` in the same transaction
as the change. Every running host polls the table (``HostConfig.change_feed_interval_s``,
default 0.5 s) and applies new rows in order:

- ``registry``: with a tid, that terminal (and its merchant) reloads on its next
  message; with only a mid, every terminal of that merchant; with neither, a full
  reload (new messages held meanwhile).
- ``policy`` / ``params``: the policy / parameter tables are reloaded.
- ``require_sign_in``: the terminal's working keys are retired (next transaction 77).
- ``pending``: ``set_pending(tid, value)`` (value = processing requirement digit).

Rows written before the host started are not replayed: start-up loads everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from posdoctor.iso8583.framing import ProcessingRequirement
from posdoctor.store import Store
from posdoctor.store.models_registry import HostChange

if TYPE_CHECKING:
    from posdoctor.host.server import HostServer

log = logging.getLogger(__name__)
ERROR_BACKOFF_S = 2.0
PRUNE_EVERY_S = 600.0
KEEP_ROWS_S = 24 * 3600.0
"""Feed rows older than this are deleted (by any host, every PRUNE_EVERY_S)."""


async def current_position(store: Store) -> int:
    """The newest change id now (take it before loading the registry)."""
    if not hasattr(store, "last_host_change_id"):  # a stand-in store without the feed (tests)
        return 0
    return await asyncio.to_thread(store.last_host_change_id)


class ChangeFeed:
    def __init__(self, server: HostServer, since: int, interval_s: float | None = None) -> None:
        self.server = server
        self.store = server.store
        self.last_id = since
        self.interval_s = server.config.change_feed_interval_s if interval_s is None else interval_s
        self.applied = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None and hasattr(self.store, "host_changes_after"):
            self._task = asyncio.create_task(self._run(), name="host-change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        pruned_at = time.monotonic()
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
                if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    cutoff = datetime.now(UTC) - timedelta(seconds=KEEP_ROWS_S)
                    await asyncio.to_thread(self.store.prune_host_changes, cutoff)
            except Exception as exc:  # database unreachable: keep serving, retry later
                log.warning("change feed poll failed: %s", exc)
                await asyncio.sleep(ERROR_BACKOFF_S)

    async def poll(self) -> int:
        """Apply every change written since the last poll; returns how many."""
        rows = await asyncio.to_thread(self.store.host_changes_after, self.last_id)
        for row in rows:
            await self.apply(row)
            self.last_id = row.id
            self.applied += 1
        return len(rows)

    async def apply(self, change: HostChange) -> None:
        server, registry = self.server, self.server.registry
        kind = change.kind
        if kind == "registry":
            if change.tid:
                registry.invalidate(change.tid)
            elif change.mid:
                registry.invalidate_merchant(change.mid)
            else:
                await server.invalidate()
        elif kind == "policy":
            await asyncio.to_thread(registry.profiles.reload_policies)
        elif kind == "params":
            await asyncio.to_thread(registry.profiles.reload_params)
        elif kind == "require_sign_in" and change.tid:
            await server.require_sign_in(change.tid)
        elif kind == "pending" and change.tid and change.value:
            server.set_pending(change.tid, ProcessingRequirement(int(change.value)))
        else:
            log.warning("change feed: ignored %s change %d", kind, change.id)
