"""The group commit in a process of its own (`posdoctor serve`).

The ledger's writer thread shares the host process's GIL with the event loop: turning
write records into SQL parameters (and SQLAlchemy's own work) took ~270 µs of
GIL-holding time per sign-in, time the event loop could not answer anything. With
`ProcessCommitter` the writer thread only pickles each group of write sets (C code,
~40 µs per sign-in) and waits on a pipe with the GIL released; a child process applies
the group with `store.hostwrites.apply_host_writes` in one transaction, exactly as the
thread did, and answers with the `BatchResult` or the error. The answer to a terminal
still leaves only after that commit returned.

If the child fails to commit, the error comes back and the ledger fails that group
(the host then reloads from the database, as for any failed commit). If the child
dies, the group fails the same way and the next group starts a new child.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from posdoctor.host.helpers import START_TIMEOUT_S, spawn_helper, stop_helper
from posdoctor.store.records import BatchResult, HostWrite

log = logging.getLogger(__name__)

_STOP = b""


class CommitError(RuntimeError):
    """The commit process refused or lost a group of writes (nothing of it was committed)."""


class ProcessCommitter:
    """A `ledger.Committer` that commits in a child process; call from one thread."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._process: Any = None
        self._pipe: Connection | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Spawn the child and wait until its database is open."""
        process, pipe, status, detail = spawn_helper(_serve, (self.database_url,), "posdoctor-commit")
        if status == "silent":
            raise CommitError(f"the commit process did not start within {START_TIMEOUT_S:g}s")
        if status != "ready":
            raise CommitError(f"the commit process could not open the database: {detail}")
        self._process, self._pipe = process, pipe

    def __call__(self, writes: Sequence[HostWrite]) -> BatchResult:
        with self._lock:
            if self._pipe is None or not self._process.is_alive():
                self._restart()
            assert self._pipe is not None
            try:
                self._pipe.send_bytes(pickle.dumps(list(writes), pickle.HIGHEST_PROTOCOL))
                status, detail = pickle.loads(self._pipe.recv_bytes())
            except (EOFError, OSError) as exc:
                self._pipe = None
                raise CommitError(f"the commit process ended ({type(exc).__name__}); the group was not committed") from exc
        if status == "ok":
            return detail  # type: ignore[no-any-return]
        raise CommitError(f"group commit failed in the commit process: {detail}")

    def _restart(self) -> None:
        if self._process is not None:
            log.warning("commit process %s is gone (exit code %s); starting a new one",
                        self._process.pid, self._process.exitcode)
            self.close()
        self.start()

    def close(self) -> None:
        """Let the child finish and exit (the ledger has drained before this)."""
        pipe, process = self._pipe, self._process
        self._pipe = self._process = None
        stop_helper(pipe, process, _STOP)


def _serve(pipe: Connection, database_url: str) -> None:
    """The child: open the database, then apply every group sent until told to stop."""
    from sqlalchemy.orm import sessionmaker

    from posdoctor.host.gcpolicy import settle_long_lived
    from posdoctor.store.db import WRITE_OPTION, make_engine
    from posdoctor.store.hostwrites import apply_host_writes

    try:
        engine = make_engine(database_url)
        sessions = sessionmaker(engine, expire_on_commit=False, execution_options={WRITE_OPTION: True})
    except Exception as exc:  # reported to the parent, which refuses to start
        pipe.send_bytes(pickle.dumps(("error", f"{type(exc).__name__}: {exc}")))
        return
    settle_long_lived()
    pipe.send_bytes(pickle.dumps(("ready", None)))
    try:
        while True:
            try:
                data = pipe.recv_bytes()
            except EOFError:
                return
            if data == _STOP:
                return
            try:
                with sessions.begin() as session:
                    result = apply_host_writes(session, pickle.loads(data))
                reply = ("ok", result)
            except Exception as exc:  # the whole group rolled back; the parent fails it
                reply = ("error", f"{type(exc).__name__}: {exc}")
            pipe.send_bytes(pickle.dumps(reply, pickle.HIGHEST_PROTOCOL))
    finally:
        engine.dispose()
