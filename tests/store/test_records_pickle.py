"""Every record the host hands the commit process survives pickling unchanged."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import WrappedKey
from posdoctor.store import records as r

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
KEY = WrappedKey(b"\x01" * 45, b"\xaa\xbb\xcc\xdd", Algorithm.SM4, 16)
KEYS = r.TxnKey("10000001", 1, "000001", "sale")

RECORDS = [
    KEYS,
    r.JournalRecord("in", T0, "10000001", "898100000000001", "sale", "0200", "000001", "00",
                    [{"step": "A", "verdict": "ok", "reason": "批准"}], 1.5, {"11": "000001"}, "AB", "peer"),
    r.EventRecord("host", "frame_error", T0, None, "30", {"reason": "x"}),
    r.TxnRecord("10000001", "898100000000001", 1, "000001", "sale", 100, "approved", T0, orig=KEYS),
    r.TxnStatusChange("voided", key=KEYS),
    r.BalanceChange(7, -100),
    r.ReversalRecord("10000001", 1, "000002", T0, "98", 100, KEYS),
    r.PinTriesChange(3, 1),
    r.KeysIssued("10000001", {"PIK": KEY, "MAK": KEY}, T0),
    r.KeysRetired("10000001", ("TDK",)),
    r.TerminalSignedIn("10000001", T0),
    r.TerminalBatchChange("10000001", 2),
    r.BatchOpened("10000001", 2, T0),
    r.BatchClosed("10000001", 1, T0, 100, 1, 0, 0, "1", "settled"),
    r.BatchResult({KEYS: 5}, [KEYS], [9], 3),
    KEY,
]


def test_records_round_trip_through_pickle() -> None:
    for record in RECORDS:
        copy = pickle.loads(pickle.dumps(record, pickle.HIGHEST_PROTOCOL))
        assert type(copy) is type(record) and copy == record, record
