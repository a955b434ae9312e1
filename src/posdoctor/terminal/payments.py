"""Money flows: balance inquiry, sale, void, refund.

Order inside each flow, as a real terminal: local guards (TMK, sign-in, batch room, EMV
tables) -> card reader and PIN pad -> pending reversal delivered -> request (new STAN)
-> answer checks -> log the approved transaction -> receipt.
"""

from __future__ import annotations

from posdoctor.crypto.errors import PinBlockError
from posdoctor.iso8583.errors import DecodeError
from posdoctor.iso8583.fields import PinAlgorithm, PinFormat, SecurityControl, decode_balance
from posdoctor.iso8583.mask import mask_pan
from posdoctor.terminal import builders
from posdoctor.terminal.builders import CardData, Msg
from posdoctor.terminal.card import Card
from posdoctor.terminal.checks import APPROVED
from posdoctor.terminal.device import HardwareFault
from posdoctor.terminal.errors import CommError, LocalRefusal
from posdoctor.terminal.events import EventKind
from posdoctor.terminal.icc import build_icc_data
from posdoctor.terminal.lifecycle import LifecycleFlows
from posdoctor.terminal.messages import M
from posdoctor.terminal.outcome import Outcome
from posdoctor.terminal.state import TxnRecord
from posdoctor.terminal.transport import Answer, Channel

__all__ = ["PaymentFlows", "MAX_AMOUNT"]

MAX_AMOUNT = 999_999_999_999


class PaymentFlows(LifecycleFlows):
    # --- card and PIN --------------------------------------------------------------------
    def _check_amount(self, amount: int) -> None:
        if not 0 < amount <= MAX_AMOUNT:
            raise LocalRefusal(M.INVALID_AMOUNT, amount=amount)

    def _security_control(self) -> SecurityControl:
        alg = self.keys.alg("PIK").value
        sealed = self.state.keys.get("PIK")
        if alg == "SM4":
            code = PinAlgorithm.SM4
        elif sealed is not None and sealed.length == 8:
            code = PinAlgorithm.DES
        else:
            code = PinAlgorithm.TDES
        return SecurityControl(pin_format=PinFormat.ISO_0, algorithm=code)

    def _card_data(self, kind: str, card: Card, pin: str | None, amount: int = 0) -> CardData:
        card = self.device.read_card(card)
        self.require_emv_tables(card)
        block = security = None
        if pin is not None:
            entered = self.device.enter_pin(pin)
            try:
                block = self.keys.pin_block(entered, card.pan).hex().upper()
            except PinBlockError as exc:
                message = {"pan": M.INVALID_CARD, "pin": M.INVALID_PIN}.get(exc.kind, M.PACK_ERROR)
                raise LocalRefusal(message, reason=exc.en) from None
            security = self._security_control()
        icc = None
        if card.chip:
            icc = build_icc_data(kind, amount, self.clock(), atc=self.state.stan % 0xFFFF + 1, serial=self.state.serial)
        return CardData(card, block, security, icc)

    # --- logging an approved transaction -------------------------------------------------
    def _record(self, kind: str, request: Msg, answer: Answer, pan: str, expiry: str | None, *,
                voids: TxnRecord | None = None, **links: str | None) -> TxnRecord:
        """Append the approval to the log (a void marks its sale) and clear the reversal, durably.

        When the storage cannot keep it, the approval is undone with a reversal (reason
        96: terminal fault after approval) kept in memory for the next transaction.
        """
        state = self.state
        txn = TxnRecord(kind=kind, stan=request["11"], batch=state.batch_no, amount=int(request.get("4", "0")),
                        pan_masked=mask_pan(pan), pan_sealed=self.seal_pan(pan), expiry=expiry,
                        rrn=answer.msg.get("37"), auth_code=answer.msg.get("38"), date=answer.msg.get("13"),
                        at=self.clock(), **links)
        state.txn_log.append(txn)
        if voids is not None:
            voids.status = "voided"
        pending, state.pending_reversal = state.pending_reversal, None
        try:
            self.save()
        except HardwareFault:
            state.txn_log.remove(txn)
            if voids is not None:
                voids.status = "approved"
            if pending is not None:
                pending.reason = "96"
                state.pending_reversal = pending
            raise
        return txn

    def _receipt(self, kind: EventKind, txn: TxnRecord) -> None:
        try:
            self.device.print_receipt()
        except HardwareFault as exc:  # the money moved; only the slip is missing
            self.events.record(kind, exc.message, peripheral=exc.peripheral.value, fault=exc.fault, stan=txn.stan)

    def _approved(self, kind: EventKind, txn: TxnRecord) -> Outcome:
        self._receipt(kind, txn)
        self.events.record(kind, M.APPROVED, stan=txn.stan, rrn=txn.rrn, amount=txn.amount, pan=txn.pan_masked,
                           batch=f"{txn.batch:06d}")
        outcome = Outcome.of(kind.value, True, M.APPROVED, response_code=APPROVED, stan=txn.stan)
        outcome.txn = txn
        return outcome

    def _reversible(self, kind: str) -> bool:
        return kind in self.state.settings.reversible_kinds

    # --- balance 0200/310000 -------------------------------------------------------------
    async def _flow_balance(self, channel: Channel, card: Card, pin: str | None) -> Outcome:
        self.require_signed_in()
        data = self._card_data("balance", card, pin)
        await self.deliver_reversal(channel)
        request = builders.balance(self.state.next_stan(), self.ident(), data)
        answer = await self.exchange(channel, request, kind="balance", mac=True)
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer, pan=mask_pan(card.pan))
        try:
            amount = decode_balance(answer.msg.get("54", ""))
        except DecodeError as exc:
            raise CommError(M.UNPACK_ERROR, stage="unpack", field="54", reason=exc.reason) from None
        self.events.record(EventKind.BALANCE, M.APPROVED, stan=request["11"], pan=mask_pan(card.pan))
        outcome = Outcome.of(EventKind.BALANCE.value, True, M.APPROVED, response_code=APPROVED, stan=request["11"])
        outcome.balance = amount
        return outcome

    # --- sale 0200/000000 ------------------------------------------------------------------
    async def _flow_sale(self, channel: Channel, card: Card, amount: int, pin: str | None) -> Outcome:
        self.require_signed_in()
        self.require_batch_room()
        self._check_amount(amount)
        data = self._card_data("sale", card, pin, amount)
        await self.deliver_reversal(channel)
        request = builders.sale(self.state.next_stan(), self.ident(), data, amount)
        answer = await self.exchange(channel, request, kind="sale", mac=True, reversible=self._reversible("sale"))
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer, stan=request["11"], amount=amount, pan=mask_pan(card.pan))
        txn = self._record("sale", request, answer, card.pan, card.expiry)
        return self._approved(EventKind.SALE, txn)

    # --- void 0200/200000 ------------------------------------------------------------------
    async def _flow_void(self, channel: Channel, orig_stan: str, card: Card | None, pin: str | None) -> Outcome:
        self.require_signed_in()
        self.require_batch_room()
        original = self.state.find_txn(stan=orig_stan.zfill(6), kind="sale")
        if original is None:
            raise LocalRefusal(M.ORIGINAL_MISSING, orig_stan=orig_stan)
        if original.status != "approved":
            raise LocalRefusal(M.ORIGINAL_NOT_VOIDABLE, orig_stan=original.stan, status=original.status)
        pan = self.open_pan(original.pan_sealed)
        data = self._card_data("void", card, pin, original.amount) if card is not None else None
        if card is not None and card.pan != pan:
            raise LocalRefusal(M.ORIGINAL_MISSING, orig_stan=original.stan, reason="card differs")
        await self.deliver_reversal(channel)
        request = builders.void(self.state.next_stan(), self.ident(), pan=pan, amount=original.amount,
                                orig_batch=original.batch, orig_stan=original.stan, orig_rrn=original.rrn,
                                orig_auth=original.auth_code, data=data)
        answer = await self.exchange(channel, request, kind="void", mac=True, reversible=self._reversible("void"))
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer, stan=request["11"], orig_stan=original.stan)
        txn = self._record("void", request, answer, pan, original.expiry, voids=original, orig_stan=original.stan,
                           orig_rrn=original.rrn)
        return self._approved(EventKind.VOID, txn)

    # --- refund 0220/200000 --------------------------------------------------------------
    async def _flow_refund(self, channel: Channel, card: Card, amount: int, orig_rrn: str,
                           pin: str | None) -> Outcome:
        self.require_signed_in()
        self.require_batch_room()
        self._check_amount(amount)
        if not (len(orig_rrn) == 12 and orig_rrn.isascii() and orig_rrn.isalnum()):
            raise LocalRefusal(M.ORIGINAL_MISSING, orig_rrn=orig_rrn, reason="RRN must be 12 characters")
        data = self._card_data("refund", card, pin, amount)
        original = self.state.find_txn(rrn=orig_rrn, kind="sale")
        links = {"orig_batch": original.batch, "orig_stan": original.stan,
                 "orig_date": original.date or "0000"} if original is not None else {}
        await self.deliver_reversal(channel)
        request = builders.refund(self.state.next_stan(), self.ident(), data, amount, orig_rrn=orig_rrn,
                                  **links)  # type: ignore[arg-type]
        answer = await self.exchange(channel, request, kind="refund", mac=True,
                                     reversible=self._reversible("refund"))
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer, stan=request["11"], amount=amount, orig_rrn=orig_rrn)
        txn = self._record("refund", request, answer, card.pan, card.expiry,
                           orig_stan=original.stan if original is not None else None, orig_rrn=orig_rrn)
        return self._approved(EventKind.REFUND, txn)
