"""What a terminal and its merchant do at each planned action.

The merchant's habits come from the terminal's `Behaviour`: a healthy merchant powers on,
lets the terminal initialise, logs in and signs in, serves customers (signing in again
when the terminal asks), uploads nothing by hand (the terminal's agent sends heartbeats
and logs to the TMS), settles and signs off in the evening.
"""

from __future__ import annotations

from typing import Any

from posdoctor.sim.fleet import SimTerminal
from posdoctor.sim.planedit import insert_action
from posdoctor.terminal import Outcome
from posdoctor.terminal.events import EventKind
from posdoctor.terminal.messages import Message

__all__ = ["run_action", "TXN_KINDS"]

TXN_KINDS = ("sale", "void", "refund", "balance")
WRONG_PIN = "000000"
LOG_KEEP = 4
RESIGN_CODES = ("local.not_signed_in", "host.sign_in_again")
SIGN_IN_RETRIES = 2
SIGN_IN_RETRY_S = 240.0

# What the device's operating system logs about the payment app (the terminal's event log).
APP_CRASH = Message("sys.app_crash", "支付应用异常退出,已自动重启", "The payment app crashed and was restarted")
WATCHDOG = Message("sys.watchdog_reboot", "系统无响应,看门狗已重启终端", "The system hung; the watchdog rebooted it")
APP_BLOCKED = Message("sys.app_blocked", "检测到未授权应用,安全策略禁止交易",
                      "An unauthorised app was detected: the security policy blocks payments")
BT_PAIRING = Message("device.bt_pairing", "蓝牙配对失败,请重新配对手机", "Bluetooth pairing with the phone failed")


async def run_action(world: Any, term: SimTerminal, action: str, arg: Any) -> None:
    if action == "strike":
        await world.strike(term, arg)
        return
    if not term.powered:
        term.count("powered_off", False)
        return
    if action in ("open", "sale", "void", "refund", "balance") and getattr(term.device, "bt_paired", None) is False:
        term.app.events.record(EventKind.COMM, BT_PAIRING, operation=action)
    handler = _HANDLERS[action]
    await handler(world, term, arg)
    await upload_logs(world, term)


def _record(term: SimTerminal, op: str, outcome: Outcome) -> Outcome:
    term.count(op, outcome.ok)
    return outcome


async def upload_logs(world: Any, term: SimTerminal) -> None:
    if term.telemetry is None or not term.powered:  # the power went off during the action
        return
    sent = await term.telemetry.upload_logs(world.tms_client(term))
    if sent is not None and len(term.state.events) > LOG_KEEP:
        del term.state.events[:-LOG_KEEP]


async def power_on(world: Any, term: SimTerminal, _arg: Any = None) -> None:
    app = term.app
    reboot = getattr(term.device, "reboot", None)
    if reboot is not None:
        reboot()
    check = app.self_check()
    client = world.tms_client(term)
    if term.telemetry is not None:
        await term.telemetry.upload_self_check(client)
    if not check.ok and "tamper" in (check.detail.get("failed") or []):
        term.count("init", False)
        return
    outcomes = await initialise(app)
    if outcomes:
        term.count("init", all(o.ok for o in outcomes))
    if term.telemetry is not None:
        await term.telemetry.send_heartbeat(client)


async def initialise(app: Any) -> list[Outcome]:
    """Download what the terminal lacks (master key, parameters, CAPK, AID), in that
    order, stopping at the first failure; an installed terminal downloads nothing."""
    state = app.state
    steps = []
    if not state.has_key("TMK"):
        steps.append(app.download_tmk)
    if not state.params_complete:
        steps.append(app.download_params)
    if not state.emv.capk_complete:
        steps.append(app.download_capk)
    if not state.emv.aid_complete:
        steps.append(app.download_aid)
    outcomes = []
    for step in steps:
        outcome = await step()
        outcomes.append(outcome)
        if not outcome.ok:
            break
    return outcomes


async def open_shop(world: Any, term: SimTerminal, _arg: Any = None) -> None:
    behaviour = term.behaviour
    if behaviour.login_attempts:
        for _attempt in range(behaviour.login_attempts):
            outcome = term.app.login(term.state.settings.operator_number, behaviour.password)
            term.count("login", outcome.ok)
            if outcome.ok:
                break
        else:
            term.ready = False
            return
    if behaviour.signs_in:
        await _sign_in(world, term, 0)


async def _sign_in(world: Any, term: SimTerminal, attempt: int) -> None:
    """Sign in; when it fails, the merchant tries again a few minutes later (twice)."""
    outcome = _record(term, "sign_in", await term.app.sign_in())
    if not outcome.ok and term.behaviour.resigns_when_asked and attempt < SIGN_IN_RETRIES:
        insert_action(term, world.clock.offset + SIGN_IN_RETRY_S * (attempt + 1), "retry_sign_in", attempt + 1)


async def retry_sign_in(world: Any, term: SimTerminal, attempt: int) -> None:
    if not term.state.signed_in:
        await _sign_in(world, term, attempt)


def _card(world: Any, term: SimTerminal, card_index: int) -> tuple[Any, str]:
    behaviour = term.behaviour
    if behaviour.card != "healthy":
        test = world.cards.special[term.tid]
    else:
        test = world.cards.healthy[card_index % len(world.cards.healthy)]
    return test.card, (WRONG_PIN if behaviour.pin_wrong else test.pin)


async def _transact(world: Any, term: SimTerminal, kind: str, arg: tuple[int, int]) -> Outcome | None:
    amount, card_index = arg
    app = term.app
    if kind == "void" or kind == "refund":
        sales = term.sales or []
        usable = [s for s in sales if kind == "void" or s[1]]
        if not usable:
            kind = "sale"
        else:
            sale = usable[card_index % len(usable)]
            stan, rrn, sale_amount, sale_card = sale
            if kind == "void":
                sales.remove(sale)
                return await app.void(stan, None, None)
            card, pin = _card(world, term, sale_card)
            sales.remove(sale)  # a partly refunded sale is neither voided nor refunded again
            return await app.refund(card, max(100, sale_amount // 2), rrn or "", pin)
    card, pin = _card(world, term, card_index)
    if kind == "balance":
        return await app.balance(card, pin)
    outcome = await app.sale(card, amount * term.behaviour.amount_scale, pin)
    if outcome.ok and outcome.txn is not None:
        if term.sales is None:
            term.sales = []
        term.sales.append((outcome.txn.stan, outcome.txn.rrn, outcome.txn.amount, card_index))
    return outcome


def _txn_handler(kind: str):  # noqa: ANN202
    async def handle(world: Any, term: SimTerminal, arg: tuple[int, int]) -> None:
        if not term.ready:
            term.count("no_operator", False)
            return
        if term.quirks and await _misbehave(world, term, kind):
            return
        outcome = await _transact(world, term, kind, arg)
        if outcome is None:
            return
        if not outcome.ok and outcome.code in RESIGN_CODES and term.behaviour.resigns_when_asked \
                and term.behaviour.signs_in:
            signed = _record(term, "sign_in", await term.app.sign_in())
            if signed.ok:
                outcome = await _transact(world, term, kind, arg)
                if outcome is None:
                    return
        term.count(outcome.operation if outcome.operation in TXN_KINDS else kind, outcome.ok)
    return handle


async def _misbehave(world: Any, term: SimTerminal, kind: str) -> bool:
    """A device quirk a fault gave: True when it stopped the transaction."""
    quirks = term.quirks or {}
    events, state = term.app.events, term.state
    if quirks.get("blocked"):
        events.record(EventKind.CONFIG, APP_BLOCKED, operation=kind)
        term.count(kind, False)
        return True
    every = quirks.get("crash_every")
    if not every:
        return False
    quirks["n"] = quirks.get("n", 0) + 1
    if quirks["n"] % every:
        return False
    events.record(EventKind.CONFIG, WATCHDOG if quirks.get("watchdog") else APP_CRASH, operation=kind)
    state.count("crash")
    if quirks.get("watchdog"):
        state.count("watchdog")
    state.count("reboot")
    term.device.reboot()
    term.count(kind, False)
    if term.telemetry is not None:
        await term.telemetry.upload_self_check(world.tms_client(term))
    return True


async def heartbeat(world: Any, term: SimTerminal, _arg: Any = None) -> None:
    if term.telemetry is None:
        return
    answer = await term.telemetry.send_heartbeat(world.tms_client(term))
    term.count("heartbeat", answer is not None)


async def upgrade(world: Any, term: SimTerminal, _arg: Any = None) -> None:
    runner = getattr(world, "run_upgrade", None)
    if runner is not None:
        await runner(term)


async def close_shop(world: Any, term: SimTerminal, _arg: Any = None) -> None:
    behaviour = term.behaviour
    if behaviour.ends_day_early or not term.ready:
        await heartbeat(world, term)
        return
    if behaviour.settles:
        outcome = await term.app.settle()
        if not outcome.ok and outcome.code in RESIGN_CODES and behaviour.resigns_when_asked and behaviour.signs_in:
            if _record(term, "sign_in", await term.app.sign_in()).ok:
                outcome = await term.app.settle()
        _record(term, "settlement", outcome)
        if outcome.ok:
            term.sales = None
    if behaviour.signs_off:
        _record(term, "sign_off", await term.app.sign_off())
    await heartbeat(world, term)


_HANDLERS = {
    "power_on": power_on, "open": open_shop, "retry_sign_in": retry_sign_in, "heartbeat": heartbeat, "upgrade": upgrade, "close": close_shop,
    "sale": _txn_handler("sale"), "void": _txn_handler("void"), "refund": _txn_handler("refund"),
    "balance": _txn_handler("balance"),
}
