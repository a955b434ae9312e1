"""In-memory caches of what the host reads on every message.

Terminals (with their wrapped keys), merchants, cards, balances, decline rules and
the transactions of open batches are loaded from the store at start. A miss (a
terminal or card added since, possibly by another process) is looked up once in a
worker thread; unknown TIDs are remembered for a few seconds so garbage cannot hammer
the database. `invalidate()` drops what changed behind the host's back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from posdoctor.host.profiles import Profiles
from posdoctor.host.records import (
    AccountRecord,
    CardRecord,
    DeclineRule,
    MerchantRecord,
    TerminalRecord,
    TxnState,
)
from posdoctor.store.records import TxnKey

NEGATIVE_TTL_S = 5.0
MAX_UNKNOWN = 10_000


@dataclass(slots=True)
class Snapshot:
    terminals: list[TerminalRecord] = field(default_factory=list)
    merchants: list[MerchantRecord] = field(default_factory=list)
    cards: list[CardRecord] = field(default_factory=list)
    accounts: list[AccountRecord] = field(default_factory=list)
    rules: list[DeclineRule] = field(default_factory=list)
    open_txns: list[TxnState] = field(default_factory=list)


class RegistrySource(Protocol):
    """Where the registry loads from (the store, through `host.persist`)."""

    def load_snapshot(self) -> Snapshot: ...

    def load_terminal(self, tid: str | None = None, serial: str | None = None) -> tuple[TerminalRecord | None, MerchantRecord | None]: ...

    def load_card(self, pan_hash: str) -> tuple[CardRecord | None, AccountRecord | None]: ...

    def load_txn_by_rrn(self, rrn: str) -> TxnState | None: ...

    def load_batch(self, tid: str, batch_no: int) -> list[TxnState]: ...

    def pan_hash(self, pan: str) -> str: ...

    def unseal_pin(self, card: CardRecord) -> str: ...


class TxnBook:
    """Transactions of open batches, indexed the ways the steps look them up."""

    def __init__(self) -> None:
        self.by_key: dict[TxnKey, TxnState] = {}
        self.by_rrn: dict[str, TxnState] = {}
        self.by_batch: dict[tuple[str, int], list[TxnState]] = {}

    def add(self, txn: TxnState) -> None:
        self.by_key[txn.key] = txn
        self.by_batch.setdefault((txn.tid, txn.batch_no), []).append(txn)
        if txn.rrn:
            self.by_rrn[txn.rrn] = txn

    def index_rrn(self, txn: TxnState) -> None:
        if txn.rrn:
            self.by_rrn[txn.rrn] = txn

    def find(self, key: TxnKey) -> TxnState | None:
        return self.by_key.get(key)

    def batch(self, tid: str, batch_no: int) -> list[TxnState]:
        return self.by_batch.get((tid, batch_no), [])

    def forget_batch(self, tid: str, batch_no: int) -> None:
        """A settled batch leaves memory (its rows stay in the database)."""
        for txn in self.by_batch.pop((tid, batch_no), []):
            self.by_key.pop(txn.key, None)
            if txn.rrn and self.by_rrn.get(txn.rrn) is txn:
                del self.by_rrn[txn.rrn]


class Registry:
    def __init__(self, source: RegistrySource, profiles: Profiles | None = None) -> None:
        self.source = source
        self.profiles = profiles or Profiles(getattr(source, "store", None))
        """Reasons, categories, allowed types, versions, policies, parameters (TMS side)."""
        self.terminals: dict[str, TerminalRecord] = {}
        self.serials: dict[str, str] = {}
        self.merchants: dict[str, MerchantRecord] = {}
        self.cards: dict[str, CardRecord] = {}
        self.accounts: dict[int, AccountRecord] = {}
        self.rules: list[DeclineRule] = []
        self.txns = TxnBook()
        self._unknown: dict[str, float] = {}
        self._stale: set[str] = set()

    # --- loading --------------------------------------------------------------------------
    async def load(self) -> None:
        """(Re)load everything from the source in a worker thread.

        Only safe while no message is in flight (the server quiesces first): balances and
        open transactions are replaced by what the database holds.
        """
        snapshot = await asyncio.to_thread(self.source.load_snapshot)
        self.apply_snapshot(snapshot)
        await asyncio.to_thread(self.profiles.load_all)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        old = self.terminals
        self.terminals, self.serials, self._stale = {}, {}, set()
        for terminal in snapshot.terminals:
            self._put_terminal(terminal, old.get(terminal.tid))
        self.merchants = {m.mid: m for m in snapshot.merchants}
        self.cards = {c.pan_hash: c for c in snapshot.cards}
        self.accounts = {a.id: a for a in snapshot.accounts}
        self.rules = list(snapshot.rules)
        self.txns = TxnBook()
        for txn in snapshot.open_txns:
            self.txns.add(txn)
        self._unknown.clear()

    def _put_terminal(self, terminal: TerminalRecord, old: TerminalRecord | None) -> None:
        """Install a freshly loaded terminal, keeping what only memory knows about it."""
        if old is not None:
            terminal.pending |= old.pending
            terminal.signed_off_at = old.signed_off_at if terminal.signon is None else None
            terminal.upload = old.upload
            terminal.settled = terminal.settled or old.settled
            self.serials.pop(old.serial, None)
        self.terminals[terminal.tid] = terminal
        self.serials[terminal.serial] = terminal.tid

    def invalidate(self, tid: str | None = None) -> None:
        """One terminal (or its merchant) changed in the store: reload it on its next message.
        Also forgets which TIDs, serials and cards were unknown."""
        self._unknown.clear()
        if tid is not None:
            self._stale.add(tid)

    # --- lookups ----------------------------------------------------------------------------
    async def find_terminal(self, tid: str) -> TerminalRecord | None:
        terminal = self.terminals.get(tid)
        if terminal is not None and tid not in self._stale:
            return terminal
        if terminal is None and self._recently_unknown(f"tid:{tid}"):
            return None
        fresh, merchant = await asyncio.to_thread(self._load_with_profile, tid, None)
        return self._remember(fresh, merchant, f"tid:{tid}", tid)

    async def find_terminal_by_serial(self, serial: str) -> TerminalRecord | None:
        tid = self.serials.get(serial)
        if tid is not None and tid in self.terminals:
            return self.terminals[tid]
        if self._recently_unknown(f"sn:{serial}"):
            return None
        terminal, merchant = await asyncio.to_thread(self._load_with_profile, None, serial)
        return self._remember(terminal, merchant, f"sn:{serial}", None)

    def _load_with_profile(self, tid: str | None, serial: str | None) -> tuple[TerminalRecord | None, MerchantRecord | None]:
        """(worker thread) A terminal and its merchant, with their TMS profile."""
        terminal, merchant = self.source.load_terminal(tid, serial)
        if terminal is not None or tid is not None:
            self.profiles.reload_terminal(terminal.tid if terminal is not None else tid)  # type: ignore[arg-type]
        return terminal, merchant

    def invalidate_merchant(self, mid: str) -> None:
        """A merchant changed: each of its terminals reloads (with the merchant) on its next message."""
        self._unknown.clear()
        self._stale.update(tid for tid, terminal in self.terminals.items() if terminal.mid == mid)

    async def find_card(self, pan: str) -> CardRecord | None:
        pan_hash = self.source.pan_hash(pan)
        card = self.cards.get(pan_hash)
        if card is None and not self._recently_unknown(f"card:{pan_hash}"):
            card, account = await asyncio.to_thread(self.source.load_card, pan_hash)
            if card is None or account is None:
                self._mark_unknown(f"card:{pan_hash}")
                return None
            self.accounts.setdefault(account.id, account)
            card = self.cards.setdefault(pan_hash, card)
        return card

    async def batch_txns(self, tid: str, batch_no: int) -> list[TxnState]:
        """A batch's transactions: from memory while open, else from the database."""
        txns = self.txns.batch(tid, batch_no)
        if not txns:
            txns = await asyncio.to_thread(self.source.load_batch, tid, batch_no)
        return txns

    async def find_txn_by_rrn(self, rrn: str) -> TxnState | None:
        txn = self.txns.by_rrn.get(rrn)
        if txn is None:
            txn = await asyncio.to_thread(self.source.load_txn_by_rrn, rrn)
        return txn

    def pan_hash(self, pan: str) -> str:
        return self.source.pan_hash(pan)

    def card_pin(self, card: CardRecord) -> str:
        return self.source.unseal_pin(card)

    def _recently_unknown(self, key: str) -> bool:
        seen = self._unknown.get(key)
        if seen is None:
            return False
        if time.monotonic() - seen < NEGATIVE_TTL_S:
            return True
        del self._unknown[key]
        return False

    def _mark_unknown(self, key: str) -> None:
        if len(self._unknown) >= MAX_UNKNOWN:
            self._unknown.clear()
        self._unknown[key] = time.monotonic()

    def _remember(self, terminal: TerminalRecord | None, merchant: MerchantRecord | None, key: str,
                  asked_tid: str | None) -> TerminalRecord | None:
        if asked_tid is not None:
            self._stale.discard(asked_tid)
        if terminal is None:
            gone = self.terminals.pop(asked_tid, None) if asked_tid is not None else None
            if gone is not None:
                self.serials.pop(gone.serial, None)
            self._mark_unknown(key)
            return None
        if merchant is not None:
            self.merchants[merchant.mid] = merchant
        self._put_terminal(terminal, self.terminals.get(terminal.tid))
        return terminal
