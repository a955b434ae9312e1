"""Working keys issued by an HSM process: "generate N keys under this TMK".

A morning sign-in storm asks for three new double-length 3DES keys per terminal, each
delivered under that terminal's TMK with its check value, and stored under the LMK.
Done on the event loop, this was the largest part of a sign-in (measured in the
50,000-terminal storm: opening the TMK and making the keys, mostly OpenSSL set-up).
Hardware HSMs offer exactly this as one command; `KeyService` gives the host the same
in a child process that reads the same LMK file: the host sends the TMK wrapped under
the LMK, the child answers with each new key wrapped under the LMK, its check value and
its encryption under the TMK. No clear key crosses the pipe. The child keeps keys made
ahead while it is idle.

The host talks to the child from its event loop, with no thread in between: the pipe
(a socket pair) is an asyncio connection. Requests that arrive while the child is busy
wait and go out together as the next batch, one batch at a time, so batches grow with
the load and a lone request goes out at once. (A relay thread did this before: each
of its wake-ups had to take the GIL from the busy event loop, measured as ~2.4 s of
CPU in the host during a 50,000-terminal storm.) When the service is not running, or
fails, the host makes the keys itself (`SoftHSM.issue_under`), so a sign-in never
depends on the child being there.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import socket
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import WrappedKey
from posdoctor.host.helpers import spawn_helper, stop_helper

log = logging.getLogger(__name__)

SERVED = (Algorithm.TDES, 16)
"""The keys the service issues: double-length 3DES under a double-length 3DES TMK (003/004)."""
STOCK = 3000
"""Keys the child makes ahead while idle."""
MAX_BATCH = 500

Issued = list[tuple[WrappedKey, bytes]]
_STOP = None
_FRAME_LENGTH = struct.Struct("!i")
"""`multiprocessing.connection`'s message header (-1 would announce an 8-byte length:
never for these messages)."""


class KeyServiceError(RuntimeError):
    """The service could not issue the keys (the caller makes them itself)."""


class KeyService:
    """`KeyService(home)`; `start(lmk_check)`; `await issue_under(tmk, count)`; `close()`."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._ids = itertools.count(1)
        self._pipe: Connection | None = None
        self._process: Any = None
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None
        self.running = False
        self.issued = 0
        """Keys issued by the process."""

    def start(self, lmk_check: bytes | None = None) -> None:
        """Spawn the HSM process and check it holds the host's LMK (blocking: run it in an
        executor from a loop). The first `issue_under` connects the pipe to its loop."""
        process, parent, status, check = spawn_helper(_serve, (str(self.home),), "posdoctor-hsm")
        if status != "ready" or (lmk_check is not None and check != lmk_check):
            stop_helper(parent if status == "ready" else None, process, pickle.dumps(_STOP))
            reason = "holds another LMK" if status == "ready" else f"did not start ({status})"
            raise KeyServiceError(f"the HSM process {reason}")
        self._pipe, self._process = parent, process
        self.running = True

    @property
    def batches(self) -> int:
        """Messages sent to the process (each carries every request that was waiting)."""
        return self._link.batches if self._link is not None else 0

    def serves(self, kek: WrappedKey, length: int, alg: Algorithm) -> bool:
        return self.running and (alg, length) == SERVED and (kek.alg, kek.length) == SERVED

    async def issue_under(self, kek: WrappedKey, count: int) -> Issued:
        """`count` new keys, each (wrapped under the LMK, encrypted under `kek`)."""
        if not self.running:
            raise KeyServiceError("the HSM process is not running")
        link = self._link or await self._connected()
        future: asyncio.Future[Issued] = link.loop.create_future()
        link.ask((next(self._ids), kek.blob, kek.kcv, count), future)
        result = await future
        self.issued += count
        return result

    async def _connected(self) -> _Link:
        """The link, connecting it on first use (concurrent first requests share one)."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> _Link:
        assert self._pipe is not None
        loop = asyncio.get_running_loop()
        sock = socket.socket(fileno=os.dup(self._pipe.fileno()))
        _, link = await loop.create_unix_connection(lambda: _Link(loop, self._ended), sock=sock)
        self._link = link
        return link

    def _ended(self, reason: str) -> None:
        if self.running:
            log.warning("HSM process ended (%s): the host makes working keys itself from now on", reason)
        self.running = False

    def detach(self) -> None:
        """Leave the event loop (call it in the loop's thread): requests not answered yet
        fail, and their callers make the keys themselves."""
        self.running = False
        link, self._link, self._connecting = self._link, None, None
        if link is not None:
            link.close(KeyServiceError("the HSM service is closing"))

    def close(self) -> None:
        """Stop the HSM process (blocking: after `detach`, it may run in an executor)."""
        self.detach()
        pipe, process = self._pipe, self._process
        self._pipe = self._process = None
        stop_helper(pipe, process, pickle.dumps(_STOP))


class _Link(asyncio.Protocol):
    """The host's end of the pipe on its event loop: one batch out at a time, answers in.

    Messages use `multiprocessing.connection`'s framing (a 4-byte signed big-endian
    length, then the bytes), which the child reads and writes with `Connection`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_end: Callable[[str], None]) -> None:
        self.loop = loop
        self.on_end = on_end
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: dict[int, tuple[tuple[int, bytes, bytes, int], asyncio.Future[Issued]]] = {}
        self.in_flight: dict[int, asyncio.Future[Issued]] = {}
        self.flush_scheduled = False
        self.closed = False
        self.batches = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def ask(self, request: tuple[int, bytes, bytes, int], future: asyncio.Future[Issued]) -> None:
        if self.closed:
            future.set_exception(KeyServiceError("the HSM process is not running"))
            return
        self.waiting[request[0]] = (request, future)
        if not self.in_flight and not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)  # what arrives in this loop iteration goes too

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.in_flight or not self.waiting or self.closed or self.transport is None:
            return
        ids = list(itertools.islice(self.waiting, MAX_BATCH))
        batch = [self.waiting.pop(request_id) for request_id in ids]
        self.in_flight = {request[0]: future for request, future in batch}
        data = pickle.dumps([request for request, _ in batch], pickle.HIGHEST_PROTOCOL)
        self.transport.write(_FRAME_LENGTH.pack(len(data)) + data)
        self.batches += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= _FRAME_LENGTH.size:
            (size,) = _FRAME_LENGTH.unpack_from(self.buffer)
            if size < 0:
                self.close(KeyServiceError("the HSM process sent an oversized message"))
                return
            end = _FRAME_LENGTH.size + size
            if len(self.buffer) < end:
                return
            answers = pickle.loads(self.buffer[_FRAME_LENGTH.size:end])
            del self.buffer[:end]
            self._deliver(dict(answers))

    def _deliver(self, answers: dict[int, Any]) -> None:
        alg, length = SERVED
        futures, self.in_flight = self.in_flight, {}
        for request_id, future in futures.items():
            if future.done():
                continue
            answer = answers.get(request_id)
            if isinstance(answer, list):
                future.set_result([(WrappedKey(blob, kcv, alg, length), encrypted) for blob, kcv, encrypted in answer])
            else:
                future.set_exception(KeyServiceError(str(answer or "no answer from the HSM process")))
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = type(exc).__name__ if exc is not None else "pipe closed"
        self.close(KeyServiceError(f"HSM process ended: {reason}"))
        self.on_end(reason)

    def close(self, error: KeyServiceError) -> None:
        """Fail every request not answered yet and close the pipe."""
        self.closed = True
        futures = [*self.in_flight.values(), *(future for _, future in self.waiting.values())]
        self.in_flight, self.waiting = {}, {}
        for future in futures:
            if not future.done():
                future.set_exception(error)
        if self.transport is not None and not self.loop.is_closed():
            self.transport.close()


def _serve(pipe: Connection, home: str) -> None:
    """The HSM process: LMK from the home directory; answers batches of issue requests,
    making keys ahead whenever no request is waiting."""
    from posdoctor.crypto.hsm import SoftHSM
    from posdoctor.host.gcpolicy import settle_long_lived
    from posdoctor.store.config import load_lmk

    try:
        hsm = SoftHSM(load_lmk(Path(home)), cache_limit=64)  # TMKs pass through once
    except Exception as exc:  # reported to the host, which makes its keys itself
        pipe.send_bytes(pickle.dumps((f"{type(exc).__name__}: {exc}", None)))
        return
    settle_long_lived()
    pipe.send_bytes(pickle.dumps(("ready", hsm.lmk_check)))
    alg, length = SERVED
    while True:
        while hsm.prepared(length, alg) < STOCK and not pipe.poll(0):
            hsm.prepare_keys(50, length, alg)
        try:
            message = pickle.loads(pipe.recv_bytes())
        except EOFError:
            return
        if message is _STOP:
            return
        answers = []
        for request_id, kek_blob, kek_kcv, count in message:
            try:
                issued = hsm.issue_under(WrappedKey(kek_blob, kek_kcv, alg, length), count, length, alg)
                answers.append((request_id, [(key.blob, key.kcv, encrypted) for key, encrypted in issued]))
            except Exception as exc:  # this request fails; the host makes these keys itself
                answers.append((request_id, f"{type(exc).__name__}: {exc}"))
        pipe.send_bytes(pickle.dumps(answers, pickle.HIGHEST_PROTOCOL))
