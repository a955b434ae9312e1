"""The persistent state of one emulated terminal (device + payment application).

Pure data plus small pure helpers: no sockets, no files (see `storage` for the JSON file),
no clock (times are passed in). Secrets (keys, PANs kept for void and batch upload) are
stored sealed under the device key (`vault.DeviceVault`), never in clear.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from posdoctor.terminal.events import TerminalEvent

__all__ = [
    "CommSettings", "AppSettings", "SealedKey", "TxnRecord", "PendingReversal", "Operator", "EmvTables",
    "TerminalState", "STAN_MAX", "next_stan_value", "TID_PATTERN", "MID_PATTERN", "KeyKind", "TxnKind",
    "SignInMode", "SIGNIN_MODES", "InstalledApp", "DEFAULT_APPS",
]

STAN_MAX = 999_999
TID_PATTERN = re.compile(r"^[0-9A-Za-z]{8}$")
MID_PATTERN = re.compile(r"^[0-9A-Za-z]{15}$")

KeyKind = Literal["TK", "TMK", "PIK", "MAK", "TDK"]
TxnKind = Literal["sale", "void", "refund"]
SignInMode = Literal["001", "003", "004", "006"]
SIGNIN_MODES: tuple[str, ...] = ("001", "003", "004", "006")


def next_stan_value(current: int) -> int:
    """The STAN after `current`: 1..999999, and 999999 wraps to 000001 (never 000000)."""
    return current % STAN_MAX + 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class CommSettings(_Model):
    """How the terminal reaches its host (what a field engineer types into the POS)."""

    host: str = "127.0.0.1"
    port: int = Field(default=5800, ge=0, le=65535)
    tpdu: str = "6000030000"
    header: bool = True
    connect_timeout_s: float = Field(default=10.0, gt=0)
    receive_timeout_s: float = Field(default=60.0, gt=0)
    max_frame: int = Field(default=8192, ge=64, le=65535)

    @field_validator("tpdu")
    @classmethod
    def _tpdu_is_5_bytes_hex(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9A-Fa-f]{10}", value):
            raise ValueError("TPDU must be 10 hex digits (5 bytes), e.g. 6000030000")
        return value.upper()


class AppSettings(_Model):
    """Behaviour of the payment application (what differs between real CUP apps)."""

    signin_mode: SignInMode = "004"
    param_download_nmi: Literal["360", "364"] = "364"
    reversal_retries: int = Field(default=3, ge=1, le=99)
    batch_capacity: int = Field(default=500, ge=1)
    operator_max_failures: int = Field(default=3, ge=1)
    require_response_mac: bool = True
    """An approved answer to a MAC'ed request must carry a valid MAC."""
    signin_device_info: bool = True
    """Send the device information (field 62) with the sign-in."""
    reversible_kinds: tuple[str, ...] = ("sale", "void")
    batch_upload_items: int = Field(default=8, ge=1, le=20)
    event_capacity: int = Field(default=100, ge=1)
    operator_number: str = Field(default="01", pattern=r"^[0-9]{2,3}$")
    follow_host_requirements: bool = True
    """Run the sign-in/download/status upload the host asks for in answer headers."""


class SealedKey(_Model):
    """A key sealed under the device key, with its check value (public) and algorithm."""

    blob: str
    kcv: str
    alg: Literal["TDES", "SM4"] = "TDES"
    length: int


class TxnRecord(_Model):
    """One transaction of the current batch, as the terminal's log keeps it."""

    kind: TxnKind
    stan: str
    batch: int
    amount: int
    pan_masked: str
    pan_sealed: str
    expiry: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    date: str | None = None
    """MMDD of the host's answer (field 13)."""
    at: datetime
    status: Literal["approved", "voided", "reversed"] = "approved"
    orig_stan: str | None = None
    orig_rrn: str | None = None


class PendingReversal(_Model):
    """A reversal waiting to be delivered: the 0400 fields (no PAN in clear, no MAC)."""

    kind: str
    stan: str
    batch: int
    amount: int | None = None
    fields: dict[str, str]
    pan_sealed: str | None = None
    reason: str
    attempts: int = 0
    created_at: datetime


class Operator(_Model):
    number: str
    password_hash: str
    salt: str
    failures: int = 0
    locked: bool = False
    supervisor: bool = False


class EmvTables(_Model):
    """CAPK and AID lists (hex of each entry's BER-TLV) and whether the downloads ended."""

    capk: list[str] = Field(default_factory=list)
    capk_complete: bool = False
    aid: list[str] = Field(default_factory=list)
    aid_complete: bool = False


class InstalledApp(_Model):
    """One application installed on the device (the payment app is one of them)."""

    name: str
    version: str = ""


DEFAULT_APPS: tuple[str, ...] = ("cup_payment",)
"""What a factory-fresh emulated terminal has installed."""


def _default_apps() -> list[InstalledApp]:
    return [InstalledApp(name=name) for name in DEFAULT_APPS]


class TerminalState(_Model):
    """Everything one terminal remembers across power cycles."""

    tid: str
    mid: str = ""
    merchant_name: str = ""
    serial: str
    model: str = "EMU-100"
    app_version: str = "010000"
    firmware_version: str = "1.0.0"
    comm: CommSettings = Field(default_factory=CommSettings)
    settings: AppSettings = Field(default_factory=AppSettings)
    keys: dict[KeyKind, SealedKey] = Field(default_factory=dict)
    stan: int = Field(default=0, ge=0, le=STAN_MAX)
    batch_no: int = Field(default=1, ge=0, le=999_999)
    txn_log: list[TxnRecord] = Field(default_factory=list)
    pending_reversal: PendingReversal | None = None
    params: dict[str, str] = Field(default_factory=dict)
    params_complete: bool = False
    emv: EmvTables = Field(default_factory=EmvTables)
    operators: dict[str, Operator] = Field(default_factory=dict)
    operator: str | None = None
    signed_in: bool = False
    signed_in_at: datetime | None = None
    requirements: list[int] = Field(default_factory=list)
    """Host processing requirements (header digit 6) not yet acted on."""
    events: list[TerminalEvent] = Field(default_factory=list)
    # --- device management (issue 3: upgrade agent, telemetry) ----------------------------
    installed_apps: list[InstalledApp] = Field(default_factory=_default_apps)
    """Apps on the device; the payment app's version is `app_version` (set from the booted slot)."""
    counters: dict[str, int] = Field(default_factory=dict)
    """Error and life counters that survive power cycles: reboot, crash, watchdog, connect_timeout..."""
    tms_public_key: str = ""
    """Hex Ed25519 public key of the TMS: upgrade packages must be signed by it."""
    params_version: str = ""
    """Version of the parameters last received from the TMS (heartbeat answer)."""
    logs_uploaded_until: datetime | None = None
    """Time of the newest event the TMS already has (log upload sends the later ones)."""

    @field_validator("tid")
    @classmethod
    def _tid_is_8_chars(cls, value: str) -> str:
        if not TID_PATTERN.fullmatch(value):
            raise ValueError("TID must be 8 letters or digits")
        return value

    @field_validator("mid")
    @classmethod
    def _mid_is_15_chars(cls, value: str) -> str:
        if value and not MID_PATTERN.fullmatch(value):
            raise ValueError("MID must be 15 letters or digits")
        return value

    # --- counters --------------------------------------------------------------------
    def next_stan(self) -> str:
        """Advance and return the STAN as 6 digits (wraps 999999 -> 000001)."""
        self.stan = next_stan_value(self.stan)
        return f"{self.stan:06d}"

    @property
    def batch(self) -> str:
        return f"{self.batch_no:06d}"

    def close_batch(self) -> None:
        """After settlement: empty log, next batch number (999999 wraps to 000001)."""
        self.txn_log.clear()
        self.batch_no = self.batch_no % 999_999 + 1

    # --- questions the app asks before going online --------------------------------
    def has_key(self, kind: str) -> bool:
        return kind in self.keys

    def unsettled(self) -> list[TxnRecord]:
        return [t for t in self.txn_log if t.status != "reversed"]

    def batch_full(self) -> bool:
        return len(self.txn_log) >= self.settings.batch_capacity

    def find_txn(self, *, stan: str | None = None, rrn: str | None = None,
                 kind: str | None = None) -> TxnRecord | None:
        for txn in reversed(self.txn_log):
            if stan is not None and txn.stan != stan:
                continue
            if rrn is not None and txn.rrn != rrn:
                continue
            if kind is not None and txn.kind != kind:
                continue
            return txn
        return None

    def sign_out(self) -> None:
        """Forget the sign-in (working keys are dropped: they are no longer trusted)."""
        self.signed_in = False
        self.signed_in_at = None
        for kind in ("PIK", "MAK", "TDK"):
            self.keys.pop(kind, None)  # type: ignore[misc]

    def count(self, counter: str, by: int = 1) -> int:
        """Increase a persistent counter (reboot, crash, watchdog, connect_timeout...)."""
        self.counters[counter] = self.counters.get(counter, 0) + by
        return self.counters[counter]

    def add_requirement(self, requirement: int) -> None:
        if requirement and requirement not in self.requirements:
            self.requirements.append(requirement)
