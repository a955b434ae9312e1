"""The acquiring host's TCP server: connections, frames, the pipeline, clean stops.

Each accepted connection is a `host.connection.HostConnection`: it cuts
length-prefixed frames out of what arrives and runs each through the pipeline in turn
(answers leave in request order). Short connections (one message, then the terminal
closes) and persistent ones are both served; an idle connection is closed after
`idle_timeout_s`. A frame announcing more than `max_frame` bytes, a truncated frame or
a stalled one closes only its own connection, with an event. The connection is the
error boundary: whatever escapes the pipeline becomes an event and a closed
connection, never a stopped server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from posdoctor.crypto.hsm import SoftHSM
from posdoctor.host import changefeed
from posdoctor.host.config import HostConfig
from posdoctor.host.connection import HostConnection
from posdoctor.host.context import Context, Session
from posdoctor.host.identifiers import Identifiers
from posdoctor.host.issuer import TestIssuer
from posdoctor.host.ledger import Committer, Ledger
from posdoctor.host.persist import StoreSource
from posdoctor.host.pipeline import HostEnv, run_pipeline
from posdoctor.host.registry import Registry, RegistrySource
from posdoctor.host.route import Route
from posdoctor.host.routes import CLOSING, INBOUND, ROUTES
from posdoctor.host.steps.keys import WORKING_KEY_KINDS
from posdoctor.iso8583.framing import ProcessingRequirement
from posdoctor.store import Store
from posdoctor.store.records import EventRecord, KeysRetired

log = logging.getLogger(__name__)
STOP_GRACE_S = 5.0
LISTEN_BACKLOG = 1024
"""Pending connections the kernel queues: a morning sign-in storm connects in bursts."""
QUIESCE_POLL_S = 0.002
RESYNC_FIRST_DELAY_S = 0.1
RESYNC_MAX_DELAY_S = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class HostServer:
    """`HostServer(store, hsm, config)`; `await start()` -> (host, port); `await stop()`."""

    def __init__(
        self,
        store: Store,
        hsm: SoftHSM,
        config: HostConfig | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        routes: Mapping[str, Route] = ROUTES,
        source: RegistrySource | None = None,
        committer: Committer | None = None,
    ) -> None:
        self.config = config or HostConfig()
        self.store = store
        self.clock = clock
        registry = Registry(source or StoreSource(store))
        ledger = Ledger(committer or store.apply_host_batch, interval=self.config.commit_interval_s,
                        max_items=self.config.commit_max_items)
        self.env = HostEnv(self.config, hsm, registry, TestIssuer(registry, hsm, self.config), ledger,
                           Identifiers(), routes, self.config.frame_config())
        self.stats: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self.connections: dict[HostConnection, Session] = {}
        """Open connections (a `HostConnection` adds and removes itself)."""
        self._gate = asyncio.Event()
        """Open while messages may enter the pipeline; closed during a reload."""
        self._in_flight = 0
        self._resync_task: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._reloads = 0
        """Reloads asked for and not finished: the gate opens only when none is left."""
        self._stopping = False

    @property
    def registry(self) -> Registry:
        return self.env.registry

    @property
    def ledger(self) -> Ledger:
        return self.env.ledger

    # --- life cycle ---------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        """Load the registry, start the writer, listen; returns where it listens."""
        feed_since = await changefeed.current_position(self.store)
        await self.registry.load()
        self.ledger.start()
        self._gate.set()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: HostConnection(self), self.config.host, self.config.port,
                                                backlog=LISTEN_BACKLOG)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.env.listen = (host, port)
        self.change_feed = changefeed.ChangeFeed(self, feed_since)
        self.change_feed.start()
        log.info("host listening on %s:%d", host, port)
        return host, port

    async def stop(self) -> None:
        """Stop listening, let messages in progress finish, close connections, commit."""
        self._stopping = True
        if getattr(self, "change_feed", None) is not None:
            await self.change_feed.stop()
        if self._resync_task is not None:
            self._resync_task.cancel()
            await asyncio.gather(self._resync_task, return_exceptions=True)
        self._gate.set()  # messages held by a reload finish (they fail to commit: no answer)
        if self._server is not None:
            self._server.close()
        for connection, session in list(self.connections.items()):
            if not session.busy:
                connection.close()
        if self.connections:
            await asyncio.gather(*(c.finish(STOP_GRACE_S) for c in list(self.connections)), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await self.ledger.stop()

    # --- operator hooks ------------------------------------------------------------------
    async def invalidate(self, tid: str | None = None) -> None:
        """Something changed in the store: one terminal (or its merchant) is reloaded on
        its next message; without a tid everything is reloaded, with new messages held
        until the messages in flight are done and their writes committed."""
        if tid is not None:
            self.registry.invalidate(tid)
            return
        await self._reload_quiesced()

    async def _reload_quiesced(self) -> None:
        """Reload with no message in flight and every write committed. Reloads take turns,
        and the gate stays closed until the last one is done: when two overlapped, the
        first reopened the gate while the second was still reading, and the second's
        snapshot then replaced transactions approved in between (their commits still in
        flight), so a later settlement missed them."""
        self._reloads += 1
        self._gate.clear()
        try:
            async with self._reload_lock:
                while self._in_flight:
                    await asyncio.sleep(QUIESCE_POLL_S)
                await self.ledger.submit([])  # FIFO: every earlier write set is settled now
                await self.registry.load()
        finally:
            self._reloads -= 1
            if not self._reloads and not self._resync_pending():
                self._gate.set()

    def _resync_pending(self) -> bool:
        task = self._resync_task
        return task is not None and not task.done() and task is not asyncio.current_task()

    def _resync_after_failed_commit(self) -> None:
        """Memory ran ahead of a commit that failed: hold new messages and reload from the
        database (retrying while it is unreachable), which holds only what committed."""
        if self._stopping or (self._resync_task is not None and not self._resync_task.done()):
            return
        self._gate.clear()
        self._resync_task = asyncio.create_task(self._resync())

    async def _resync(self) -> None:
        delay = RESYNC_FIRST_DELAY_S
        while True:
            try:
                await self._reload_quiesced()
            except Exception as exc:  # database still unreachable: keep the gate closed, retry
                log.warning("reload after a failed commit failed (%s); retrying in %.1fs", exc, delay)
                self._gate.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESYNC_MAX_DELAY_S)
            else:
                self._record_event(Session("host"), "registry_reloaded", None, reason="a group commit failed")
                return

    def set_pending(self, tid: str, requirement: ProcessingRequirement) -> None:
        """Ask a terminal (via its next answers' header) to sign in / download again."""
        terminal = self.registry.terminals.get(tid)
        if terminal is not None:
            terminal.pending.add(requirement)

    async def require_sign_in(self, tid: str) -> None:
        """Retire a terminal's working keys (durably): its next transaction is answered 77."""
        terminal = self.registry.terminals.get(tid)
        if terminal is not None:
            terminal.signon = None
            terminal.pending.add(ProcessingRequirement.SIGNIN)
        await self.ledger.submit([KeysRetired(tid, WORKING_KEY_KINDS)])

    # --- messages -------------------------------------------------------------------------
    async def handle_payload(self, payload: bytes, session: Session | None = None) -> Context:
        """Run one frame (what follows the length prefix) through the pipeline."""
        await self._gate.wait()
        ctx = Context(payload, session or Session("in-process"), now=self.clock(), started=time.perf_counter())
        self._in_flight += 1
        try:
            await run_pipeline(ctx, self.env, INBOUND, CLOSING)
        finally:
            self._in_flight -= 1
        if not ctx.committed:
            self._resync_after_failed_commit()
        self.stats[ctx.answer["39"] if ctx.answer and ctx.committed else "no_answer"] += 1
        return ctx

    def _record_event(self, session: Session, kind: str, code: str | None, **detail: Any) -> None:
        """An event outside any message (it is committed with the next group)."""
        self.stats[kind] += 1
        event = EventRecord(source="host", kind=kind, at=self.clock(), tid=session.tid, code=code,
                            detail={**detail, "peer": session.peer})
        try:
            future = self.ledger.submit([event])
        except RuntimeError:  # the ledger is already stopped
            log.warning("event %s after stop: not recorded", kind)
            return
        future.add_done_callback(_log_failure)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("event not recorded: %s", future.exception())
