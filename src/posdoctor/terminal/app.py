"""`PaymentApp`: the public face of the emulated CUP terminal.

    app = PaymentApp(state, device, link=TcpLink(), persist=files.save)
    app.self_check()
    await app.download_tmk(); await app.download_params(); await app.download_capk()
    await app.download_aid(); await app.sign_in()
    outcome = await app.sale(Card("6222..."), 1000, pin="123456")

Every operation returns an `Outcome` (ok, message zh/en, field 39, events, transaction)
and never raises for anything the merchant could meet (network, host, keys, hardware).
"""

from __future__ import annotations

from pathlib import Path

from posdoctor.iso8583.framing import ProcessingRequirement as PR
from posdoctor.terminal.card import Card
from posdoctor.terminal.core import Flow
from posdoctor.terminal.device import Device
from posdoctor.terminal.endofday import EndOfDayFlows
from posdoctor.terminal.errors import LocalRefusal
from posdoctor.terminal.events import EventKind
from posdoctor.terminal.link import Link
from posdoctor.terminal.messages import M
from posdoctor.terminal.operators import add_default_operators, check_login
from posdoctor.terminal.outcome import Outcome
from posdoctor.terminal.state import TerminalState
from posdoctor.terminal.storage import TerminalFiles

__all__ = ["PaymentApp", "new_state", "open_app"]


def new_state(tid: str, serial: str, *, mid: str = "", model: str = "EMU-100") -> TerminalState:
    """A factory-fresh terminal: default operators, no keys, batch 000001."""
    state = TerminalState(tid=tid, serial=serial, mid=mid, model=model)
    add_default_operators(state)
    return state


class PaymentApp(EndOfDayFlows):
    # --- lifecycle -----------------------------------------------------------------------
    def self_check(self) -> Outcome:
        """Power-on self-check of the device (and of the key store)."""
        return self.run_self_check()

    def inject_transport_key(self, clear: bytes) -> Outcome:
        return self.inject_key("TK", clear)

    def inject_tmk(self, clear: bytes) -> Outcome:
        return self.inject_key("TMK", clear)

    async def download_tmk(self) -> Outcome:
        return await self.operate(EventKind.TMK_DOWNLOAD, self._flow_tmk)

    async def download_params(self) -> Outcome:
        return await self.operate(EventKind.PARAM_DOWNLOAD, self._flow_params)

    async def download_capk(self) -> Outcome:
        return await self.operate(EventKind.CAPK_DOWNLOAD, self._flow_emv, "capk")

    async def download_aid(self) -> Outcome:
        return await self.operate(EventKind.AID_DOWNLOAD, self._flow_emv, "aid")

    async def initialise(self, *, download_tmk: bool = True) -> list[Outcome]:
        """TMK download (unless injected), parameters, CAPK, AID; stops at the first failure."""
        steps = ([self.download_tmk] if download_tmk else []) + [
            self.download_params, self.download_capk, self.download_aid]
        outcomes: list[Outcome] = []
        for step in steps:
            outcome = await step()
            outcomes.append(outcome)
            if not outcome.ok:
                break
        return outcomes

    async def sign_in(self) -> Outcome:
        return await self.operate(EventKind.SIGN_IN, self._flow_sign_in)

    async def sign_off(self) -> Outcome:
        return await self.operate(EventKind.SIGN_OFF, self._flow_sign_off)

    async def echo(self) -> Outcome:
        return await self.operate(EventKind.ECHO, self._flow_echo)

    async def upload_status(self) -> Outcome:
        return await self.operate(EventKind.STATUS_UPLOAD, self._flow_status)

    # --- money ---------------------------------------------------------------------------
    async def balance(self, card: Card, pin: str | None = None) -> Outcome:
        return await self.operate(EventKind.BALANCE, self._flow_balance, card, pin)

    async def sale(self, card: Card, amount: int, pin: str | None = None) -> Outcome:
        return await self.operate(EventKind.SALE, self._flow_sale, card, amount, pin)

    async def void(self, orig_stan: str, card: Card | None = None, pin: str | None = None) -> Outcome:
        return await self.operate(EventKind.VOID, self._flow_void, orig_stan, card, pin)

    async def refund(self, card: Card, amount: int, orig_rrn: str, pin: str | None = None) -> Outcome:
        return await self.operate(EventKind.REFUND, self._flow_refund, card, amount, orig_rrn, pin)

    async def settle(self) -> Outcome:
        outcome = await self.operate(EventKind.SETTLEMENT, self._flow_settle)
        if outcome.ok and self.state.params.get("21") == "1":  # parameter: sign off after settlement
            outcome.follow_ups.append(await self.sign_off())
        return outcome

    # --- operators -------------------------------------------------------------------------
    def login(self, number: str, password: str) -> Outcome:
        """Operator login; wrong passwords are counted and lock the operator at the limit."""
        try:
            check_login(self.state, number, password)
        except LocalRefusal as exc:
            event = self.events.record(EventKind.OPERATOR, exc.message, **exc.detail)
            self._save_at_end(EventKind.OPERATOR.value)
            outcome = Outcome.of(EventKind.OPERATOR.value, False, exc.message, **exc.detail)
            outcome.events = [event]
            return outcome
        event = self.events.record(EventKind.OPERATOR, M.OPERATOR_LOGGED_IN, operator=number)
        self._save_at_end(EventKind.OPERATOR.value)
        outcome = Outcome.of(EventKind.OPERATOR.value, True, M.OPERATOR_LOGGED_IN, operator=number)
        outcome.events = [event]
        return outcome

    # --- what the host's processing requirement asks for -----------------------------------
    def follow_up_action(self, requirement: int) -> tuple[EventKind, Flow] | None:
        actions: dict[int, tuple[EventKind, Flow]] = {
            PR.SIGNIN: (EventKind.SIGN_IN, self._flow_sign_in),
            PR.PARAMS: (EventKind.PARAM_DOWNLOAD, self._flow_params),
            PR.CAPK: (EventKind.CAPK_DOWNLOAD, lambda channel: self._flow_emv(channel, "capk")),
            PR.AID: (EventKind.AID_DOWNLOAD, lambda channel: self._flow_emv(channel, "aid")),
            PR.STATUS: (EventKind.STATUS_UPLOAD, self._flow_status),
        }
        return actions.get(requirement)


def open_app(home: Path, tid: str, *, link: Link | None = None, create: dict[str, str] | None = None) -> PaymentApp:
    """The terminal `tid` of `home` (created from `create` = {serial, mid, model} if new),
    saving itself to ``home/terminals/TID.json`` after every change."""
    files = TerminalFiles(home)
    if files.exists(tid) or create is None:
        state = files.load(tid)
    else:
        state = new_state(tid, create["serial"], mid=create.get("mid", ""), model=create.get("model", "EMU-100"))
    device = Device(state.serial, state.model, state.firmware_version, device_key=files.device_key(tid))
    app = PaymentApp(state, device, link=link, persist=files.save)
    if create is not None and not files.exists(tid):
        files.save(state)
    return app
