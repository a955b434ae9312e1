"""Field 48 of settlement (0500/201) and batch upload (0320/201, 202).

Settlement totals: debit amount (n12) + debit count (n3) + credit amount (n12) + credit
count (n3) + reconciliation flag (n1), domestic cards then the same 31 digits for
foreign cards (62 digits; a 31-digit value decodes with zero foreign totals).

Batch upload (posdoctor's format, field 48 is BCD so the PAN is zero padded): item count
(n2) + per item PAN length (n2) + PAN (19 digits, left-justified, 0 padded) + STAN (n6)
+ amount (n12) + kind (n2: 22 sale, 23 void, 25 refund). The end message (0320/202)
carries the total item count as n4.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields._util import check_digit_string, number_to_digits, require_digits

__all__ = [
    "ReconFlag", "SettlementTotals", "BatchKind", "BatchItem", "MAX_BATCH_ITEMS",
    "encode_batch_items", "decode_batch_items", "encode_batch_end", "decode_batch_end",
]

_FIELD = "48"
_PART_LEN = 31
_ITEM_LEN = 41
_PAN_WIDTH = 19
MAX_BATCH_ITEMS = 8


class ReconFlag(StrEnum):
    """Reconciliation flag: the terminal sends NONE, the host answers one of the others."""

    NONE = "0"
    BALANCED = "1"
    UNBALANCED = "2"
    ERROR = "3"


_FLAGS = frozenset(f.value for f in ReconFlag)


@dataclass(frozen=True)
class SettlementTotals:
    debit_amount: int
    debit_count: int
    credit_amount: int
    credit_count: int
    flag: str = ReconFlag.NONE
    foreign_debit_amount: int = 0
    foreign_debit_count: int = 0
    foreign_credit_amount: int = 0
    foreign_credit_count: int = 0
    foreign_flag: str = ReconFlag.NONE

    def encode(self) -> str:
        return (self._part(self.debit_amount, self.debit_count, self.credit_amount, self.credit_count, self.flag)
                + self._part(self.foreign_debit_amount, self.foreign_debit_count, self.foreign_credit_amount,
                             self.foreign_credit_count, self.foreign_flag))

    @staticmethod
    def _part(debit: int, debits: int, credit: int, credits: int, flag: str) -> str:
        if flag not in _FLAGS:
            raise EncodeError(_FIELD, f"reconciliation flag {flag!r} is not one of 0, 1, 2, 3")
        return (number_to_digits(_FIELD, "debit amount", debit, 12) + number_to_digits(_FIELD, "debit count", debits, 3)
                + number_to_digits(_FIELD, "credit amount", credit, 12)
                + number_to_digits(_FIELD, "credit count", credits, 3) + flag)

    @classmethod
    def decode(cls, value: str) -> SettlementTotals:
        check_digit_string(_FIELD, value)
        if len(value) not in (_PART_LEN, 2 * _PART_LEN):
            raise DecodeError(_FIELD, min(len(value), 2 * _PART_LEN),
                              f"settlement totals are {len(value)} digits, expecting {_PART_LEN} or {2 * _PART_LEN}")
        domestic = cls._decode_part(value, 0)
        foreign = cls._decode_part(value, _PART_LEN) if len(value) > _PART_LEN else (0, 0, 0, 0, ReconFlag.NONE)
        return cls(*domestic, *foreign)

    @staticmethod
    def _decode_part(value: str, start: int) -> tuple[int, int, int, int, str]:
        flag = value[start + 30]
        if flag not in _FLAGS:
            raise DecodeError(_FIELD, start + 30, f"reconciliation flag {flag!r} is not one of 0, 1, 2, 3")
        return (int(value[start:start + 12]), int(value[start + 12:start + 15]),
                int(value[start + 15:start + 27]), int(value[start + 27:start + 30]), ReconFlag(flag))


class BatchKind(StrEnum):
    SALE = "22"
    VOID = "23"
    REFUND = "25"


_KINDS = frozenset(k.value for k in BatchKind)


@dataclass(frozen=True)
class BatchItem:
    pan: str
    stan: str
    amount: int
    kind: str


def encode_batch_items(items: list[BatchItem]) -> str:
    """Up to `MAX_BATCH_ITEMS` items -> field 48 digits of one 0320/201 message."""
    if not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise EncodeError(_FIELD, f"a batch upload carries 1 to {MAX_BATCH_ITEMS} items, got {len(items)}")
    return f"{len(items):02d}" + "".join(_encode_item(item) for item in items)


def _encode_item(item: BatchItem) -> str:
    pan = item.pan
    if not (isinstance(pan, str) and pan.isdigit() and pan.isascii() and 12 <= len(pan) <= _PAN_WIDTH):
        raise EncodeError(_FIELD, "PAN must be 12 to 19 digits")
    if item.kind not in _KINDS:
        raise EncodeError(_FIELD, f"item kind {item.kind!r} is not one of 22, 23, 25")
    return (f"{len(pan):02d}" + pan.ljust(_PAN_WIDTH, "0") + require_digits(_FIELD, "STAN", item.stan, 6)
            + number_to_digits(_FIELD, "amount", item.amount, 12) + item.kind)


def decode_batch_items(value: str) -> list[BatchItem]:
    check_digit_string(_FIELD, value)
    if len(value) < 2:
        raise DecodeError(_FIELD, 0, "batch upload field 48 lacks its 2-digit item count")
    count = int(value[:2])
    expected = 2 + count * _ITEM_LEN
    if count == 0 or len(value) != expected:
        raise DecodeError(_FIELD, min(len(value), expected),
                          f"batch upload announces {count} items ({expected} digits) but holds {len(value)} digits")
    return [_decode_item(value, 2 + i * _ITEM_LEN) for i in range(count)]


def _decode_item(value: str, start: int) -> BatchItem:
    pan_len = int(value[start:start + 2])
    if not 12 <= pan_len <= _PAN_WIDTH:
        raise DecodeError(_FIELD, start, f"PAN length {pan_len} is outside 12..19")
    pan_field = value[start + 2:start + 2 + _PAN_WIDTH]
    if pan_field[pan_len:].strip("0"):
        raise DecodeError(_FIELD, start + 2 + pan_len, "PAN padding is not zeros")
    kind = value[start + 39:start + 41]
    if kind not in _KINDS:
        raise DecodeError(_FIELD, start + 39, f"item kind {kind!r} is not one of 22, 23, 25")
    return BatchItem(pan_field[:pan_len], value[start + 21:start + 27], int(value[start + 27:start + 39]),
                     BatchKind(kind))


def encode_batch_end(total_items: int) -> str:
    """Field 48 of the batch upload end message (0320/202): the total item count, n4."""
    return number_to_digits(_FIELD, "item count", total_items, 4)


def decode_batch_end(value: str) -> int:
    check_digit_string(_FIELD, value)
    if len(value) != 4:
        raise DecodeError(_FIELD, min(len(value), 4), f"batch upload end count is {len(value)} digits, expecting 4")
    return int(value)
