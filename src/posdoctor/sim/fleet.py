"""The emulated fleet: one `SimTerminal` per device, kept small.

A `SimTerminal` wraps the real `PaymentApp` (state, device, link) with what the world
knows about the device around it: its merchant and site, the merchant's habits
(`Behaviour`, shared by every healthy terminal and copied only when a fault changes it),
whether it has power, and counters of what happened (for the run's summary). Nothing the
doctor reads lives here: evidence leaves only through the host, the TMS and the store.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from typing import Any

from posdoctor.terminal import Device, LinkConditions, PaymentApp, TcpLink, new_state
from posdoctor.terminal.link import Connection

__all__ = ["Behaviour", "HEALTHY", "SimLink", "SimTerminal", "OP_NAMES", "serial_of", "model_of"]

MODELS = ("EMU-100", "EMU-200", "MPOS-10")
MPOS_MODEL = "MPOS-10"


def serial_of(index: int) -> str:
    return f"SIM{index + 1:08d}"


def model_of(index: int) -> str:
    """Most of the fleet is countertop EMU-100; every 5th an EMU-200; every 10th an mPOS."""
    if index % 10 == 9:
        return MPOS_MODEL
    return "EMU-200" if index % 5 == 4 else "EMU-100"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the merchant uses this terminal (faults of the operation family change it)."""

    signs_in: bool = True
    settles: bool = True
    signs_off: bool = True
    resigns_when_asked: bool = True
    """Signs in again when the terminal says 请重新签到 / 请签到后再做交易."""
    password: str = "0000"
    login_attempts: int = 0
    """Operator logins tried when opening (0: the operator stayed logged in since yesterday)."""
    card: str = "healthy"
    """Which card the customers present: healthy, low_balance, limited, own."""
    pin_wrong: bool = False
    amount_scale: int = 1
    ends_day_early: bool = False
    """Leaves without settling after the last sale (power off)."""
    busy: bool = False
    """Always busy: postpones an upgrade whenever offered."""

    def but(self, **changes: Any) -> Behaviour:
        return replace(self, **changes)


HEALTHY = Behaviour()


class SimLink(TcpLink):
    """TCP subject to `LinkConditions`, plus the world's name resolution and a cut after
    N frames (a connection broken mid-download)."""

    __slots__ = ("unresolvable", "cut_after")

    def __init__(self, conditions: LinkConditions) -> None:
        super().__init__(conditions)
        self.unresolvable = False
        self.cut_after: int | None = None

    async def connect(self, host: str, port: int) -> Connection:
        if self.unresolvable and not _is_address(host):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        conn = await super().connect(host, port)
        if self.cut_after is not None:
            return _CuttingConnection(conn, self)
        return conn


def _is_address(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


class _CuttingConnection:
    """Sends `link.cut_after` more frames, then the link drops (once)."""

    __slots__ = ("inner", "link")

    def __init__(self, inner: Connection, link: SimLink) -> None:
        self.inner = inner
        self.link = link

    async def send_frame(self, frame: bytes) -> None:
        remaining = self.link.cut_after
        if remaining is not None:
            if remaining <= 0:
                self.link.cut_after = None
                from posdoctor.terminal.link import LinkDown
                raise LinkDown("link dropped mid-download")
            self.link.cut_after = remaining - 1
        await self.inner.send_frame(frame)

    async def receive_frame(self, max_frame: int, timeout: float) -> bytes:
        return await self.inner.receive_frame(max_frame, timeout)

    async def close(self) -> None:
        await self.inner.close()


OP_NAMES = ("init", "sign_in", "sale", "void", "refund", "balance", "settlement", "sign_off", "login",
            "heartbeat", "upgrade")


class SimTerminal:
    """One emulated terminal in the world (see the module docstring)."""

    __slots__ = ("index", "tid", "mid", "site", "app", "link", "behaviour", "causes", "powered", "tms_online",
                 "counts", "sales", "plan", "cursor", "queued", "telemetry", "agent", "ready", "quirks")

    def __init__(self, index: int, tid: str, mid: str, site: int, app: PaymentApp, link: SimLink) -> None:
        self.index = index
        self.tid = tid
        self.mid = mid
        self.site = site
        self.app = app
        self.link = link
        self.behaviour = HEALTHY
        self.causes: tuple[str, ...] = ()
        self.powered = True
        self.tms_online = True
        self.counts: dict[str, int] = {}
        """`op` and `op!` (failed) -> how many."""
        self.sales: list[tuple[str, str | None, int, int]] | None = None
        """(stan, rrn, amount, card) of today's approved sales: what a void or refund names."""
        self.plan: list[tuple[float, str, Any]] = []
        self.cursor = 0
        self.queued: tuple | None = None
        """Its entry in the day's heap while it waits for its next action (`sim.day`)."""
        self.telemetry: Any = None
        self.agent: Any = None
        self.ready = True
        """False once the operator could not log in: nobody can work the terminal."""
        self.quirks: dict[str, Any] | None = None
        """Device-level misbehaviour a fault gave it (crashes, a blocking security policy)."""

    @property
    def state(self):  # noqa: ANN201 - TerminalState
        return self.app.state

    @property
    def device(self) -> Device:
        return self.app.device

    def count(self, op: str, ok: bool) -> None:
        key = op if ok else op + "!"
        self.counts[key] = self.counts.get(key, 0) + 1

    def summary(self) -> dict[str, str]:
        """``{op: "ok/tried"}`` for every operation tried (the reproducible outcome)."""
        ops = sorted({k.rstrip("!") for k in self.counts})
        return {op: f"{self.counts.get(op, 0)}/{self.counts.get(op, 0) + self.counts.get(op + '!', 0)}"
                for op in ops}

    @property
    def failures(self) -> int:
        return sum(v for k, v in self.counts.items() if k.endswith("!"))


_OPERATORS: dict[str, Any] = {}


def _shared_operators(state: Any) -> dict[str, Any]:
    """The factory operators, one shared copy for the whole fleet: nobody logs in on a
    healthy terminal (a fault that types passwords gives its terminal its own copies)."""
    if not _OPERATORS:
        _OPERATORS.update(state.operators)
    return _OPERATORS


def own_operators(term: SimTerminal) -> None:
    term.state.operators = {number: op.model_copy() for number, op in term.state.operators.items()}


def new_terminal(index: int, tid: str, mid: str, site: int, *, clock, listeners, rng) -> SimTerminal:  # noqa: ANN001
    """A factory-fresh device with its payment app (no persistence: state lives in memory)."""
    model = model_of(index)
    state = new_state(tid, serial_of(index), mid=mid, model=model)
    state.settings.event_capacity = 16
    state.operators = dict(_shared_operators(state))
    state.operator = state.settings.operator_number  # logged in since the installation
    state.comm.connect_timeout_s = 2.0
    device = Device(state.serial, model, state.firmware_version)
    if model == MPOS_MODEL and hasattr(device, "bt_paired"):
        device.bt_paired = True
    link = SimLink(LinkConditions(rng=rng, certain_timeouts_at_once=True))
    app = PaymentApp(state, device, link=link, persist=None, clock=clock, listeners=listeners)
    return SimTerminal(index, tid, mid, site, app, link)
