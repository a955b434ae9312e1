"""Terminal state on disk: ``$POSDOCTOR_HOME/terminals/TID.json`` and the device key.

Writes are atomic: the JSON goes to a temporary file in the same directory, is flushed
and fsync'ed, then `os.replace` puts it in place (and the directory is fsync'ed). A crash
at any point leaves either the old or the new file, never a torn one; a leftover
temporary file is ignored by `load`.

The device key (the emulated secure element, see `vault`) is a separate file
``TID.devkey`` (mode 0600) so the state file alone does not reveal any key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from posdoctor.terminal.state import TID_PATTERN, TerminalState
from posdoctor.terminal.vault import DEVICE_KEY_BYTES, new_device_key

__all__ = ["TerminalFiles", "StateFileError", "write_atomic"]

TERMINALS_DIR = "terminals"


class StateFileError(Exception):
    """A state file that is missing or cannot be read; zh/en for the operator.

    `kind`: ``"missing"`` (not initialised), ``"corrupt"`` or ``"invalid_tid"``.
    """

    def __init__(self, path: Path, zh: str, en: str, kind: str = "corrupt") -> None:
        super().__init__(f"{zh} / {en}")
        self.path = path
        self.zh = zh
        self.en = en
        self.kind = kind


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that readers see the old or the new bytes only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms without directory handles
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


class TerminalFiles:
    """Where one home keeps its emulated terminals."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / TERMINALS_DIR

    def _checked(self, tid: str) -> str:
        if not TID_PATTERN.fullmatch(tid):
            raise StateFileError(self.root / "?", f"终端号 {tid!r} 不合法(8位字母或数字)",
                                 f"terminal ID {tid!r} is not 8 letters or digits", "invalid_tid")
        return tid

    def state_path(self, tid: str) -> Path:
        return self.root / f"{self._checked(tid)}.json"

    def device_key_path(self, tid: str) -> Path:
        return self.root / f"{self._checked(tid)}.devkey"

    def exists(self, tid: str) -> bool:
        return self.state_path(tid).is_file()

    def load(self, tid: str) -> TerminalState:
        path = self.state_path(tid)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StateFileError(path, f"终端 {tid} 未初始化", f"terminal {tid} is not initialised",
                                 "missing") from None
        try:
            return TerminalState.model_validate_json(raw)
        except ValidationError as exc:
            raise StateFileError(path, f"终端 {tid} 的状态文件已损坏",
                                 f"state file of terminal {tid} is corrupt: {exc.error_count()} errors") from None

    def save(self, state: TerminalState) -> None:
        write_atomic(self.state_path(state.tid), state.model_dump_json(indent=1).encode())

    def device_key(self, tid: str) -> bytes:
        """The device key of `tid`, created (random, mode 0600) on first use."""
        path = self.device_key_path(tid)
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = new_device_key()
            write_atomic(path, key, mode=0o600)
            return key
        if len(key) != DEVICE_KEY_BYTES:
            raise StateFileError(path, f"终端 {tid} 的设备密钥文件损坏",
                                 f"device key file of terminal {tid} is corrupt")
        return key

    def list_tids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if TID_PATTERN.fullmatch(p.stem))
