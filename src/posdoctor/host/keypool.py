"""Working keys made ahead of time in a child process: the HSM's key pool.

A morning sign-in storm asks for three new double-length 3DES keys per terminal. Making
one on the event loop costs an OpenSSL context (for its check value), random bytes and
an AES-GCM wrap; measured in the 50,000-terminal storm, key making was the largest part
of a sign-in. `KeyPool` makes them in a child process that reads the same LMK file
(no key crosses the pipe in clear: the child sends blobs wrapped under the LMK and their
check values). A feeder thread keeps a few thousand ready; `SoftHSM.issue_under` takes
one per working key, opens it once to encrypt it under the terminal's TMK, and leaves
it unloaded until a transaction needs it. Every key is handed out once. When the pool
is empty or its child is gone, keys are made on the event loop as before.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import threading
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import WrappedKey

log = logging.getLogger(__name__)

POOLED = (Algorithm.TDES, 16)
"""The kind of key the pool makes: sign-ins 003/004 (the usual ones)."""
START_TIMEOUT_S = 60.0


class KeyPool:
    """`KeyPool(home)`; `start()`, then `take(alg, length)` from any thread; `close()`."""

    def __init__(self, home: Path, *, low: int = 6000, batch: int = 3000) -> None:
        self.home = Path(home)
        self.low, self.batch = low, batch
        self._ready: deque[WrappedKey] = deque()
        self._wanted = threading.Event()
        self._closed = threading.Event()
        self._pipe: Connection | None = None
        self._process: Any = None
        self._thread: threading.Thread | None = None
        self.handed_out = 0

    def start(self, lmk_check: bytes | None = None) -> None:
        """Spawn the key maker, wait for it to open the LMK, start the feeder thread.

        With `lmk_check` (the host HSM's), a key maker holding another LMK is refused."""
        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_make_keys, args=(child, str(self.home)), name="posdoctor-keys", daemon=True)
        process.start()
        child.close()
        status, check = pickle.loads(parent.recv_bytes()) if parent.poll(START_TIMEOUT_S) else ("silent", None)
        if status != "ready" or (lmk_check is not None and check != lmk_check):
            process.kill()
            process.join(5)
            reason = "holds another LMK" if status == "ready" else f"did not start ({status})"
            raise RuntimeError(f"the key pool process {reason}")
        self._pipe, self._process = parent, process
        self._wanted.set()
        self._thread = threading.Thread(target=self._feed, name="posdoctor-keypool", daemon=True)
        self._thread.start()

    def take(self, alg: Algorithm, length: int) -> WrappedKey | None:
        """A key made ahead, never handed out before; None when there is none ready."""
        if (alg, length) != POOLED:
            return None
        try:
            key = self._ready.popleft()
        except IndexError:
            self._wanted.set()
            return None
        if len(self._ready) < self.low:
            self._wanted.set()
        self.handed_out += 1
        return key

    def __call__(self, alg: Algorithm, length: int) -> WrappedKey | None:
        return self.take(alg, length)

    def _feed(self) -> None:
        pipe = self._pipe
        assert pipe is not None
        while not self._closed.is_set():
            self._wanted.wait()
            if self._closed.is_set():
                return
            if len(self._ready) >= self.low:
                self._wanted.clear()
                continue
            try:
                pipe.send_bytes(pickle.dumps(self.batch))
                made = pickle.loads(pipe.recv_bytes())
            except (EOFError, OSError) as exc:
                if not self._closed.is_set():
                    log.warning("key pool process ended (%s): keys are made on the event loop from now on", exc)
                return
            alg, length = POOLED
            self._ready.extend(WrappedKey(blob, kcv, alg, length) for blob, kcv in made)

    def close(self) -> None:
        """Stop the feeder and the key maker; keys not handed out are dropped."""
        self._closed.set()
        self._wanted.set()
        pipe, process = self._pipe, self._process
        if pipe is not None:
            try:
                pipe.send_bytes(pickle.dumps(0))  # the maker answers a pending request, then exits
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._pipe = self._process = None
        if pipe is not None:
            pipe.close()
        if process is not None:
            process.join(10)
            if process.is_alive():
                process.kill()
        self._ready.clear()


def _make_keys(pipe: Connection, home: str) -> None:
    """The child: the LMK from the home directory, then batches of keys on request."""
    from posdoctor.crypto.hsm import SoftHSM
    from posdoctor.store.config import load_lmk

    try:
        hsm = SoftHSM(load_lmk(Path(home)), cache_limit=1)  # it keeps nothing
    except Exception as exc:  # reported to the parent, which does without the pool
        pipe.send_bytes(pickle.dumps((f"{type(exc).__name__}: {exc}", None)))
        return
    pipe.send_bytes(pickle.dumps(("ready", hsm.lmk_check)))
    alg, length = POOLED
    while True:
        try:
            count = pickle.loads(pipe.recv_bytes())
        except EOFError:
            return
        if not count:
            return
        keys = [hsm.generate_key(length, alg) for _ in range(count)]
        pipe.send_bytes(pickle.dumps([(key.blob, key.kcv) for key in keys], pickle.HIGHEST_PROTOCOL))
