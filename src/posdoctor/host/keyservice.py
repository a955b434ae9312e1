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

One thread in the host batches the requests of many sign-ins into one message and
resolves their futures with one wake-up of the event loop per answer. When the service
is not running, or fails, the host makes the keys itself (`SoftHSM.issue_under`), so a
sign-in never depends on the child being there.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import queue
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import WrappedKey
from posdoctor.host.helpers import spawn_helper, stop_helper
from posdoctor.host.ledger import settle_threadsafe, take_queued

log = logging.getLogger(__name__)

SERVED = (Algorithm.TDES, 16)
"""The keys the service issues: double-length 3DES under a double-length 3DES TMK (003/004)."""
STOCK = 3000
"""Keys the child makes ahead while idle."""
MAX_BATCH = 500

Issued = list[tuple[WrappedKey, bytes]]
_Request = tuple[int, bytes, bytes, int, "asyncio.Future[Issued]", asyncio.AbstractEventLoop]
_STOP = None


class KeyServiceError(RuntimeError):
    """The service could not issue the keys (the caller makes them itself)."""


class KeyService:
    """`KeyService(home)`; `start(lmk_check)`; `await issue_under(tmk, count)`; `close()`."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._pipe: Connection | None = None
        self._process: Any = None
        self._thread: threading.Thread | None = None
        self.running = False

    def start(self, lmk_check: bytes | None = None) -> None:
        """Spawn the HSM process, check it holds the host's LMK, start the batching thread."""
        process, parent, status, check = spawn_helper(_serve, (str(self.home),), "posdoctor-hsm")
        if status != "ready" or (lmk_check is not None and check != lmk_check):
            stop_helper(parent if status == "ready" else None, process, pickle.dumps(_STOP))
            reason = "holds another LMK" if status == "ready" else f"did not start ({status})"
            raise KeyServiceError(f"the HSM process {reason}")
        self._pipe, self._process = parent, process
        self._thread = threading.Thread(target=self._relay, args=(parent,), name="posdoctor-hsm-relay", daemon=True)
        self._thread.start()
        self.running = True

    def serves(self, kek: WrappedKey, length: int, alg: Algorithm) -> bool:
        return self.running and (alg, length) == SERVED and (kek.alg, kek.length) == SERVED

    async def issue_under(self, kek: WrappedKey, count: int) -> Issued:
        """`count` new keys, each (wrapped under the LMK, encrypted under `kek`)."""
        if not self.running:
            raise KeyServiceError("the HSM process is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Issued] = loop.create_future()
        self._requests.put((next(self._ids), kek.blob, kek.kcv, count, future, loop))
        return await future

    # --- the relay thread: requests out in batches, answers back in batches ----------------
    def _relay(self, pipe: Connection) -> None:
        while True:
            first = self._requests.get()
            if first is _STOP:
                return
            batch, stopping = take_queued(self._requests, first, MAX_BATCH, _STOP)
            if stopping:
                self._requests.put(_STOP)  # seen after this batch is answered
            try:
                pipe.send_bytes(pickle.dumps([(r[0], r[1], r[2], r[3]) for r in batch], pickle.HIGHEST_PROTOCOL))
                answers = dict(pickle.loads(pipe.recv_bytes()))
            except (EOFError, OSError) as exc:
                self.running = False
                log.warning("HSM process ended (%s): the host makes working keys itself from now on", exc)
                self._fail(batch, KeyServiceError(f"HSM process ended: {type(exc).__name__}"))
                self._fail_queued()
                return
            self._deliver(batch, answers)

    def _deliver(self, batch: list[_Request], answers: dict[int, Any]) -> None:
        alg, length = SERVED
        outcomes = []
        for request_id, _blob, _kcv, _count, future, loop in batch:
            answer = answers.get(request_id)
            if isinstance(answer, list):
                result: Any = [(WrappedKey(blob, kcv, alg, length), encrypted) for blob, kcv, encrypted in answer]
            else:
                result = KeyServiceError(str(answer or "no answer from the HSM process"))
            outcomes.append((loop, future, result))
        settle_threadsafe(outcomes)

    def _fail(self, batch: list[_Request], error: Exception) -> None:
        self._deliver(batch, {request[0]: str(error) for request in batch})

    def _fail_queued(self) -> None:
        left: list[_Request] = []
        while True:
            try:
                item = self._requests.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left.append(item)
        if left:
            self._fail(left, KeyServiceError("HSM process ended"))

    def close(self) -> None:
        """Answer what is queued, stop the relay and the HSM process."""
        self.running = False
        self._requests.put(_STOP)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        pipe, process = self._pipe, self._process
        self._pipe = self._process = None
        stop_helper(pipe, process, pickle.dumps(_STOP))


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
