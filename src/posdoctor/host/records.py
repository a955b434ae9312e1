"""In-memory records the host works on (loaded from the store, written back in batches)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import WrappedKey
from posdoctor.iso8583.framing import ProcessingRequirement
from posdoctor.store.records import TxnKey, TxnRecord

USABLE_STATUSES = frozenset({"active"})


@dataclass(slots=True)
class MerchantRecord:
    mid: str
    name: str
    status: str

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATUSES


@dataclass(slots=True)
class SignOn:
    """The working keys of one sign-in (none of them clear)."""

    nmi: str
    alg: Algorithm
    pik: WrappedKey
    mak: WrappedKey
    tdk: WrappedKey | None
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class Totals:
    debit_amount: int = 0
    debit_count: int = 0
    credit_amount: int = 0
    credit_count: int = 0

    def __str__(self) -> str:
        return (f"debit {self.debit_count}/{self.debit_amount}, "
                f"credit {self.credit_count}/{self.credit_amount}")


@dataclass(slots=True)
class BatchUploadState:
    """Items a terminal uploaded after an unbalanced settlement: (STAN, kind) -> amount."""

    batch_no: int
    items: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(slots=True)
class TerminalRecord:
    tid: str
    mid: str
    serial: str
    model: str
    status: str
    batch_no: int
    tk: WrappedKey | None = None
    tmk: WrappedKey | None = None
    signon: SignOn | None = None
    signed_off_at: datetime | None = None
    pending: set[ProcessingRequirement] = field(default_factory=set)
    """What the host wants the terminal to do next (processing requirement digit)."""
    settled: tuple[int, Totals] | None = None
    """The last batch settled and the host's totals for it (a repeated 0500 meets them)."""
    upload: BatchUploadState | None = None

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATUSES


@dataclass(slots=True)
class AccountRecord:
    id: int
    balance: int


@dataclass(slots=True)
class CardRecord:
    id: int
    pan_hash: str
    pan_masked: str
    account_id: int
    status: str
    expiry: str | None
    """YYMM, as on the card."""
    pin_sealed: bytes
    """The PIN sealed by the store; unsealed only to hand it to the HSM."""
    single_limit: int | None = None
    daily_limit: int | None = None
    pin_tries: int = 0
    spent_on: str = ""
    """Day (YYYYMMDD) that `spent_today` counts."""
    spent_today: int = 0


@dataclass(slots=True, eq=False)
class TxnState:
    """A financial request that reached the money steps, as the host tracks it."""

    tid: str
    mid: str
    batch_no: int
    stan: str
    kind: str
    """sale, void, refund or balance."""
    at: datetime
    status: str = "pending"
    """pending (in flight), approved, declined, voided, reversed or refunded."""
    amount: int = 0
    rrn: str | None = None
    auth_code: str | None = None
    rc: str | None = None
    pan_masked: str | None = None
    pan_hash: str | None = None
    card_id: int | None = None
    account_id: int | None = None
    orig: TxnState | None = None
    refunded: int = 0
    """Cents refunded against this sale so far."""

    @property
    def key(self) -> TxnKey:
        return TxnKey(self.tid, self.batch_no, self.stan, self.kind)

    def as_write(self) -> TxnRecord:
        """The store record that inserts this transaction."""
        return TxnRecord(
            tid=self.tid, mid=self.mid, batch_no=self.batch_no, stan=self.stan, kind=self.kind,
            amount=self.amount, status=self.status, at=self.at, rrn=self.rrn,
            auth_code=self.auth_code, rc=self.rc, pan_masked=self.pan_masked,
            pan_hash=self.pan_hash, card_id=self.card_id,
            orig=self.orig.key if self.orig is not None else None,
        )


@dataclass(slots=True)
class DeclineRule:
    """A test-issuer rule: when it matches, force `code` and/or wait `delay_s`.

    Empty match fields match anything; `amount_pattern` is an fnmatch glob over the
    amount in cents written without padding ("*51" = amounts ending in 51).
    """

    id: int
    tid: str | None = None
    pan_hash: str | None = None
    amount_eq: int | None = None
    amount_pattern: str | None = None
    code: str | None = None
    delay_s: float = 0.0
    active: bool = True
