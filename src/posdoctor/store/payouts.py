"""``PayoutsMixin``: merchant payouts of settled batches (T+1), with holds.

Each settled batch is counted in exactly one payout (``payout_batches`` has the batch
as its key). Every payout status change is an ``Event`` (source ``tms``, kind
``payout``, code ``scheduled``/``held``/``released``/``paid``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from posdoctor.store.base import StoreBase
from posdoctor.store.errors import NotFound
from posdoctor.store.models import Batch, Event, Terminal, utcnow
from posdoctor.store.models_registry import Payout, PayoutBatch

UNPAID = ("scheduled", "held")


def payout_event(payout: Payout, code: str, at: datetime, reason: str | None = None) -> Event:
    return Event(at=at, source="tms", kind="payout", code=code,
                 detail={"mid": payout.mid, "payout": payout.id, "amount": payout.amount,
                         "due": payout.due_at.isoformat(), "day": payout.settle_day,
                         "batches": list(payout.batch_ids), "reason": reason})


class PayoutsMixin(StoreBase):
    def unscheduled_batches(self) -> list[tuple[Batch, str]]:
        """Settled batches not yet in any payout, with the MID of their terminal."""
        query = (select(Batch, Terminal.mid)
                 .join(Terminal, Terminal.tid == Batch.tid)
                 .outerjoin(PayoutBatch, PayoutBatch.batch_id == Batch.id)
                 .where(Batch.status == "settled", PayoutBatch.batch_id.is_(None))
                 .order_by(Batch.settled_at, Batch.id))
        with self._read() as session:
            return [(batch, mid) for batch, mid in session.execute(query).all()]

    def add_batches_to_payout(self, mid: str, settle_day: str, due_at: datetime, batch_ids: Sequence[int], *,
                              now: datetime | None = None) -> Payout:
        """Count settled batches in the merchant's unpaid payout of that day (new if none)."""
        at = now or utcnow()
        with self._write() as session:
            payout = session.scalars(select(Payout).where(
                Payout.mid == mid, Payout.settle_day == settle_day, Payout.status.in_(UNPAID))
                .order_by(Payout.id)).first()
            if payout is None:
                payout = Payout(mid=mid, settle_day=settle_day, due_at=due_at, amount=0, batch_ids=[],
                                status="scheduled", created_at=at)
                session.add(payout)
                session.flush()
            amount, ids = payout.amount, list(payout.batch_ids)
            for batch in session.scalars(select(Batch).where(Batch.id.in_(batch_ids))):
                session.add(PayoutBatch(batch_id=batch.id, payout_id=payout.id))
                amount += batch.debit_amount - batch.credit_amount
                ids.append(batch.id)
            payout.amount, payout.batch_ids = amount, sorted(ids)
            session.flush()
            session.add(payout_event(payout, "scheduled", at))
        return payout

    def set_payout_status(self, payout_id: int, new: str, *, reason: str | None = None,
                          now: datetime | None = None) -> Payout:
        """``held`` (with the reason), ``released`` (back to scheduled) or ``paid``."""
        at = now or utcnow()
        with self._write() as session:
            payout = self._payout(session, payout_id)
            if new == "held":
                payout.status, payout.hold_reason = "held", reason
            elif new == "released":
                payout.status, payout.hold_reason = "scheduled", None
            elif new == "paid":
                payout.status, payout.paid_at = "paid", at
            else:
                raise ValueError(f"payout status {new}")
            session.add(payout_event(payout, new, at, reason))
        return payout

    def payouts(self, mid: str | None = None, *, status: Sequence[str] | None = None) -> list[Payout]:
        query = select(Payout).order_by(Payout.settle_day, Payout.id)
        if mid is not None:
            query = query.where(Payout.mid == mid)
        if status is not None:
            query = query.where(Payout.status.in_(list(status)))
        with self._read() as session:
            return list(session.scalars(query))

    def get_payout(self, payout_id: int) -> Payout:
        with self._read() as session:
            return self._payout(session, payout_id)

    @staticmethod
    def _payout(session: Session, payout_id: int) -> Payout:
        payout = session.get(Payout, payout_id)
        if payout is None:
            raise NotFound("payout", str(payout_id))
        return payout
