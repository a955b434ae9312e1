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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

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
    def __init__(self, source: RegistrySource) -> None:
        self.source = source
        self.terminals: dict[str, TerminalRecord] = {}
        self.serials: dict[str, str] = {}
        self.merchants: dict[str, MerchantRecord] = {}
        self.cards: dict[str, CardRecord] = {}
        self.accounts: dict[int, AccountRecord] = {}
        self.rules: list[DeclineRule] = []
        self.txns = TxnBook()
        self._unknown: dict[str, float] = {}

    # --- loading --------------------------------------------------------------------------
    async def load(self) -> None:
        """(Re)load everything from the source in a worker thread."""
        snapshot = await asyncio.to_thread(self.source.load_snapshot)
        self.apply_snapshot(snapshot)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        pending = {tid: t.pending for tid, t in self.terminals.items()}
        self.terminals, self.serials = {}, {}
        self._add_terminals(snapshot.terminals)
        for tid, flags in pending.items():
            if tid in self.terminals:
                self.terminals[tid].pending |= flags
        self.merchants = {m.mid: m for m in snapshot.merchants}
        self.cards = {c.pan_hash: c for c in snapshot.cards}
        self.accounts = {a.id: a for a in snapshot.accounts}
        self.rules = list(snapshot.rules)
        self.txns = TxnBook()
        for txn in snapshot.open_txns:
            self.txns.add(txn)
        self._unknown.clear()

    def _add_terminals(self, terminals: Iterable[TerminalRecord]) -> None:
        for terminal in terminals:
            old = self.terminals.get(terminal.tid)
            if old is not None:
                terminal.pending |= old.pending
                self.serials.pop(old.serial, None)
            self.terminals[terminal.tid] = terminal
            self.serials[terminal.serial] = terminal.tid

    def invalidate(self, tid: str | None = None) -> None:
        """Forget one terminal (reloaded on next use), or every unknown-TID memo."""
        self._unknown.clear()
        if tid is not None:
            old = self.terminals.pop(tid, None)
            if old is not None:
                self.serials.pop(old.serial, None)

    # --- lookups ----------------------------------------------------------------------------
    async def find_terminal(self, tid: str) -> TerminalRecord | None:
        terminal = self.terminals.get(tid)
        if terminal is None and not self._recently_unknown(f"tid:{tid}"):
            terminal, merchant = await asyncio.to_thread(self.source.load_terminal, tid, None)
            terminal = self._remember(terminal, merchant, f"tid:{tid}")
        return terminal

    async def find_terminal_by_serial(self, serial: str) -> TerminalRecord | None:
        tid = self.serials.get(serial)
        if tid is not None and tid in self.terminals:
            return self.terminals[tid]
        if self._recently_unknown(f"sn:{serial}"):
            return None
        terminal, merchant = await asyncio.to_thread(self.source.load_terminal, None, serial)
        return self._remember(terminal, merchant, f"sn:{serial}")

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

    def _remember(self, terminal: TerminalRecord | None, merchant: MerchantRecord | None, key: str) -> TerminalRecord | None:
        if terminal is None:
            self._mark_unknown(key)
            return None
        if terminal.tid in self.terminals:  # loaded concurrently: keep the first
            return self.terminals[terminal.tid]
        self._add_terminals([terminal])
        if merchant is not None:
            self.merchants[merchant.mid] = merchant
        return terminal
