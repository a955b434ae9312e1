"""The state file: round trip, atomic replacement, crash safety, nothing secret in clear."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from termhost import PAN, TMK

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.terminal import Device, PaymentApp, StateFileError, TerminalFiles, new_state
from posdoctor.terminal.storage import write_atomic

TID = "30000001"


def saved_app(home: Path) -> tuple[TerminalFiles, PaymentApp]:
    files = TerminalFiles(home)
    state = new_state(TID, "SNX", mid="898100000000003")
    app = PaymentApp(state, Device("SNX", device_key=files.device_key(TID)), persist=files.save)
    app.keys.store("TMK", TMK, Algorithm.TDES)
    app.state.txn_log.clear()
    app.save()
    return files, app


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    files, app = saved_app(tmp_path)
    app.state.next_stan()
    app.state.params["12"] = "30"
    app.save()
    loaded = files.load(TID)
    assert loaded == app.state
    assert files.list_tids() == [TID]


def test_state_file_holds_no_clear_key_or_pan(tmp_path: Path) -> None:
    files, app = saved_app(tmp_path)
    app.state.pending_reversal = None
    sealed_pan = app.seal_pan(PAN)
    assert app.open_pan(sealed_pan) == PAN
    app.state.params["pan"] = sealed_pan  # stored the way the log stores PANs
    app.save()
    text = files.state_path(TID).read_text()
    assert TMK.hex().upper() not in text.upper()
    assert PAN not in text
    assert app.state.keys["TMK"].kcv in text  # the check value is public


def test_files_are_private(tmp_path: Path) -> None:
    files, _app = saved_app(tmp_path)
    for path in (files.state_path(TID), files.device_key_path(TID)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_failed_replace_leaves_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files, app = saved_app(tmp_path)
    before = files.state_path(TID).read_bytes()
    app.state.merchant_name = "changed"

    def refuse(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        files.save(app.state)
    assert files.state_path(TID).read_bytes() == before
    assert sorted(p.name for p in files.root.iterdir()) == [f"{TID}.devkey", f"{TID}.json"]


def test_process_killed_mid_write_leaves_the_old_state(tmp_path: Path) -> None:
    """A real crash: the writer process dies after writing the temp file, before the rename."""
    files, _app = saved_app(tmp_path)
    before = files.load(TID)
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from posdoctor.terminal import TerminalFiles
        files = TerminalFiles(Path({str(tmp_path)!r}))
        state = files.load({TID!r})
        state.merchant_name = "half written"
        state.stan = 777
        os.replace = lambda *a: os._exit(9)   # power cut between fsync and rename
        files.save(state)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert result.returncode == 9
    leftovers = [p.name for p in files.root.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1  # the torn temporary stays behind ...
    assert files.load(TID) == before  # ... and is never read
    files.save(before)  # the next save still works


def test_write_atomic_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "d" / "x.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"


def test_missing_and_corrupt_files_are_typed_errors(tmp_path: Path) -> None:
    files = TerminalFiles(tmp_path)
    with pytest.raises(StateFileError, match="未初始化") as missing:
        files.load(TID)
    assert missing.value.en == f"terminal {TID} is not initialised"
    files.root.mkdir(parents=True)
    files.state_path(TID).write_text('{"tid": "30000001"')
    with pytest.raises(StateFileError, match="状态文件已损坏"):
        files.load(TID)
    files.device_key_path(TID).write_bytes(b"short")
    with pytest.raises(StateFileError, match="设备密钥文件损坏"):
        files.device_key(TID)


@pytest.mark.parametrize("tid", ["../../etc", "1234567", "abc/defg"])
def test_path_traversal_is_refused(tmp_path: Path, tid: str) -> None:
    with pytest.raises(StateFileError, match="不合法"):
        TerminalFiles(tmp_path).state_path(tid)


def test_device_key_is_created_once(tmp_path: Path) -> None:
    files = TerminalFiles(tmp_path)
    assert files.device_key(TID) == files.device_key(TID)
    assert len(files.device_key(TID)) == 32


def test_keys_do_not_open_under_another_device_key(tmp_path: Path) -> None:
    files, app = saved_app(tmp_path)
    stranger = PaymentApp(files.load(TID), Device("SNX"))  # a fresh device key
    outcome = stranger.self_check()
    assert not outcome.ok
    assert outcome.detail["unreadable_keys"] == ["TMK"]
    assert "密钥读取失败,请重新下载主密钥" in [e.message_zh for e in outcome.events]
