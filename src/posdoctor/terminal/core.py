"""The engine under every operation of the payment app.

`AppCore` owns the state, device, key ring, link and event log, and provides:

- `operate()`: runs one operation on a fresh `Channel`, turns any `TerminalError` or
  `HardwareFault` into an event and a failed `Outcome`, saves the state, then runs the
  follow-ups the host asked for in answer headers (sign-in, downloads, status upload);
- `exchange()`: send a request, save a reversal record for a reversible one right after
  sending, receive, check the answer (fields, then MAC), update the reversal's reason on
  failure, react to codes that end the sign-in (77, A0, 99...);
- `deliver_reversal()`: send a pending reversal before the next online transaction,
  with retries, then give up with 冲正不成功,请与客服联系;
- the local guards (TMK, sign-in, batch room, EMV tables).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from posdoctor.iso8583.codes import TerminalAction, describe
from posdoctor.iso8583.framing import ProcessingRequirement
from posdoctor.terminal import builders
from posdoctor.terminal.builders import Ident, Msg
from posdoctor.terminal.card import Card
from posdoctor.terminal.checks import APPROVED, check_answer_fields, check_answer_mac
from posdoctor.terminal.device import Device, HardwareFault
from posdoctor.terminal.errors import CommError, HostDeclined, LocalRefusal, ResponseCheckError, ReversalFailed, \
    TerminalError
from posdoctor.terminal.events import Clock, EventKind, EventListener, EventLog
from posdoctor.terminal.keys import KeyRing
from posdoctor.terminal.link import Link, TcpLink
from posdoctor.terminal.messages import M
from posdoctor.terminal.outcome import Outcome, host_code_message
from posdoctor.terminal.state import PendingReversal, TerminalState
from posdoctor.terminal.transport import Answer, Channel, build_header
from posdoctor.terminal.vault import DeviceVault, VaultError

__all__ = ["AppCore", "Persist", "local_now"]

Persist = Callable[[TerminalState], None]
Flow = Callable[..., Awaitable[Outcome]]
MAX_FOLLOW_UPS = 4


def local_now() -> datetime:
    return datetime.now().astimezone()


class AppCore:
    def __init__(self, state: TerminalState, device: Device, events: EventLog | None = None, *,
                 link: Link | None = None, persist: Persist | None = None, clock: Clock | None = None,
                 listeners: tuple[EventListener, ...] = ()) -> None:
        self.state = state
        self.device = device
        self.clock = clock or local_now
        self.vault = DeviceVault(device.device_key)
        self.keys = KeyRing(state, self.vault)
        self.link: Link = link if link is not None else TcpLink()
        self.persist = persist
        self.events = events if events is not None else EventLog(
            state.tid, state.events, self.clock, capacity=state.settings.event_capacity, listeners=listeners)
        self._lock = asyncio.Lock()

    # --- identity ----------------------------------------------------------------------
    def ident(self) -> Ident:
        return Ident(self.state.tid, self.state.mid, self.state.batch)

    def device_info(self) -> dict[str, str]:
        state = self.state
        return {"SN": state.serial, "MD": state.model, "AV": state.app_version, "FV": state.firmware_version}

    def operator_number(self) -> str:
        return self.state.operator or self.state.settings.operator_number

    # --- persistence -------------------------------------------------------------------
    def save(self) -> None:
        """Write the state now (HardwareFault when the storage is faulty)."""
        self.device.check_storage()
        if self.persist is not None:
            self.persist(self.state)

    def _save_at_end(self, kind: str) -> None:
        try:
            self.save()
        except HardwareFault as exc:
            self.events.record(kind, exc.message, peripheral=exc.peripheral.value, fault=exc.fault)

    # --- running operations ------------------------------------------------------------
    async def operate(self, kind: EventKind, flow: Flow, *args: Any) -> Outcome:
        async with self._lock:
            with self.events.capture() as captured:
                outcome = await self._attempt(kind, flow, *args)
                if self.state.requirements and self.state.settings.follow_host_requirements:
                    outcome.follow_ups = await self._follow_ups()
            outcome.events = list(captured)
            return outcome

    def refuse_if_tampered(self) -> None:
        """A triggered security module wipes the keys and locks the terminal."""
        if not self.device.tampered:
            return
        if self.state.keys:
            self.state.keys.clear()
            self.state.sign_out()
        raise LocalRefusal(M.TAMPERED, cause_hint="hw.tamper")

    async def _attempt(self, kind: EventKind, flow: Flow, *args: Any) -> Outcome:
        channel = Channel(self.link, self.state.comm, build_header(self.state.app_version))
        try:
            self.refuse_if_tampered()
            return await flow(channel, *args)
        except TerminalError as exc:
            self.events.record(kind, exc.message, **exc.detail)
            detail = {k: v for k, v in exc.detail.items() if k != "response_code"}
            code = exc.response_code if isinstance(exc, HostDeclined) else None
            return Outcome.of(kind.value, False, exc.message, response_code=code, **detail)
        except HardwareFault as exc:
            self.events.record(kind, exc.message, peripheral=exc.peripheral.value, fault=exc.fault)
            return Outcome.of(kind.value, False, exc.message, peripheral=exc.peripheral.value)
        finally:
            await channel.close()
            self._save_at_end(kind.value)

    async def _follow_ups(self) -> list[Outcome]:
        """Run what the host asked for, in the order it asked; requirements the app has no
        action for (TMS) stay noted without being retried."""
        done: list[Outcome] = []
        while len(done) < MAX_FOLLOW_UPS:
            runnable = [r for r in self.state.requirements if self.follow_up_action(r) is not None]
            if not runnable:
                break
            self.state.requirements.remove(runnable[0])
            kind, flow = self.follow_up_action(runnable[0])  # type: ignore[misc]
            outcome = await self._attempt(kind, flow)
            done.append(outcome)
            if not outcome.ok:
                break
        return done

    def follow_up_action(self, requirement: int) -> tuple[EventKind, Flow] | None:
        """The operation that satisfies a host processing requirement (None: nothing to run)."""
        raise NotImplementedError  # provided by PaymentApp

    # --- guards --------------------------------------------------------------------------
    def require_tmk(self) -> None:
        if not self.state.has_key("TMK"):
            raise LocalRefusal(M.NO_TMK)

    def require_signed_in(self) -> None:
        self.require_tmk()
        if not self.state.signed_in or not self.state.has_key("MAK"):
            raise LocalRefusal(M.NOT_SIGNED_IN)

    def require_batch_room(self) -> None:
        if self.state.batch_full():
            raise LocalRefusal(M.BATCH_FULL, capacity=self.state.settings.batch_capacity)

    def require_emv_tables(self, card: Card) -> None:
        if not card.chip:
            return
        if not self.state.emv.aid_complete:
            raise LocalRefusal(M.NO_EMV)
        if not self.state.emv.capk_complete:
            raise LocalRefusal(M.NO_CAPK)

    # --- one request, one answer ----------------------------------------------------------
    async def exchange(self, channel: Channel, request: Msg, *, kind: str, mac: bool = False,
                       reversible: bool = False) -> Answer:
        body = channel.encode(request, self.keys.mac if mac else None)
        await channel.send(body)
        if reversible:
            self._save_reversal(kind, request)
        try:
            answer = await channel.receive()
            self._note_requirement(answer.requirement)
            check_answer_fields(request, answer.msg)
            if mac:
                check_answer_mac(answer.body, answer.msg, self.keys.mac_matches,
                                 required=self.state.settings.require_response_mac)
        except (CommError, ResponseCheckError) as exc:
            if reversible and exc.reversal_reason:
                self._set_reversal_reason(exc.reversal_reason)
            raise
        code = answer.msg.get("39", "")
        self._react_to_code(code)
        if reversible and code != APPROVED:
            self.state.pending_reversal = None  # declined: nothing to undo
            self.save()
        return answer

    def declined(self, answer: Answer, **detail: Any) -> HostDeclined:
        code = answer.msg.get("39", "")
        return HostDeclined(host_code_message(code), response_code=code, **detail)

    def _note_requirement(self, requirement: int) -> None:
        if requirement and requirement not in self.state.requirements:
            self.state.add_requirement(requirement)
            name = ProcessingRequirement(requirement).name.lower() if requirement <= 6 else str(requirement)
            self.events.record(EventKind.HOST_REQUIREMENT, M.HOST_REQUIRES, requirement=requirement, name=name)

    def satisfied(self, requirement: ProcessingRequirement) -> None:
        if int(requirement) in self.state.requirements:
            self.state.requirements.remove(int(requirement))

    def _react_to_code(self, code: str) -> None:
        if code and describe(code).action is TerminalAction.SIGN_IN and self.state.signed_in:
            self.state.sign_out()
            self.events.record(EventKind.SIGN_IN, M.SIGN_IN_AGAIN, response_code=code)

    # --- reversal --------------------------------------------------------------------------
    def _save_reversal(self, kind: str, request: Msg) -> None:
        pan = request.get("2")
        fields = builders.reversal(request, "98")
        fields.pop("2", None)
        self.state.pending_reversal = PendingReversal(
            kind=kind, stan=request["11"], batch=self.state.batch_no, amount=int(request["4"]) if "4" in request
            else None, fields=fields, pan_sealed=self.seal_pan(pan) if pan else None,
            reason="98", created_at=self.clock())
        self.save()

    def _set_reversal_reason(self, reason: str) -> None:
        pending = self.state.pending_reversal
        if pending is not None and pending.reason != reason:
            pending.reason = reason
            self.save()

    def seal_pan(self, pan: str) -> str:
        return self.vault.seal(pan.encode(), "PAN")

    def open_pan(self, sealed: str) -> str:
        try:
            return self.vault.open(sealed, "PAN").decode()
        except VaultError as exc:
            raise LocalRefusal(M.KEY_STORE_UNREADABLE, key="PAN", reason=exc.reason) from None

    def reversal_message(self, pending: PendingReversal) -> Msg:
        msg = dict(pending.fields)
        if pending.pan_sealed:
            msg["2"] = self.open_pan(pending.pan_sealed)
        msg["39"] = pending.reason
        return msg

    async def deliver_reversal(self, channel: Channel) -> None:
        """Send the pending reversal (if any) until accepted or the retries are used up."""
        pending = self.state.pending_reversal
        if pending is None:
            return
        retries = self.state.settings.reversal_retries
        while pending.attempts < retries:
            pending.attempts += 1
            self.save()
            self.events.record(EventKind.REVERSAL, M.REVERSING, stan=pending.stan, reason=pending.reason,
                               attempt=pending.attempts)
            if await self._try_reversal(channel, pending):
                return
        self.state.pending_reversal = None
        self.save()
        raise ReversalFailed(M.REVERSAL_FAILED, stan=pending.stan, reason=pending.reason, attempts=pending.attempts,
                             amount=pending.amount)

    async def _try_reversal(self, channel: Channel, pending: PendingReversal) -> bool:
        request = self.reversal_message(pending)
        try:
            answer = await self.exchange(channel, request, kind="reversal", mac=True)
        except (CommError, ResponseCheckError) as exc:
            self.events.record(EventKind.REVERSAL, exc.message, stan=pending.stan, **exc.detail)
            return False
        code = answer.msg.get("39", "")
        if code != APPROVED:
            self.events.record(EventKind.REVERSAL, host_code_message(code), stan=pending.stan, response_code=code)
            return False
        self.state.pending_reversal = None
        self.save()
        self.events.record(EventKind.REVERSAL, M.REVERSAL_DONE, stan=pending.stan, reason=pending.reason,
                           amount=pending.amount)
        return True
