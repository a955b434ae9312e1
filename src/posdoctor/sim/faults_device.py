"""Faults of the device (software, hardware), operation and transaction families."""

from __future__ import annotations

from posdoctor.sim.faults import BUSINESS, MORNING, Fault, Hit, register_faults
from posdoctor.sim.fleet import MPOS_MODEL, own_operators
from posdoctor.sim.plan import H
from posdoctor.sim.planedit import add_sales_after, drop_after, insert_action
from posdoctor.terminal import Peripheral
from posdoctor.terminal.state import STAN_MAX

CONFLICTING_APP = "com.vendor.cashback"
"""An approved third-party app that fights the payment app for the card reader."""
UNAPPROVED_APP = "com.unknown.quickloan"
ALLOWED_APPS = "cup_payment,com.vendor.cashback,com.vendor.ecr"


def _install_app(hit: Hit, name: str) -> None:
    from posdoctor.terminal.state import InstalledApp

    hit.term.state.installed_apps.append(InstalledApp(name=name, version="2.3.1"))


def _more(hit: Hit, count: int = 3, gap_s: float = 1800) -> None:
    add_sales_after(hit.term, hit.strike_at() or 10 * H, count, gap_s=gap_s)


# --- software -----------------------------------------------------------------------------
def app_conflict(hit: Hit) -> None:
    _install_app(hit, CONFLICTING_APP)
    hit.term.quirks = {"crash_every": 2, "watchdog": False}


def crash_under_load(hit: Hit) -> None:
    hit.term.quirks = {"crash_every": (2, 3)[hit.variant % 2], "watchdog": True}


def unapproved_app(hit: Hit) -> None:
    _install_app(hit, UNAPPROVED_APP)
    hit.term.quirks = {"blocked": True}


# --- hardware -------------------------------------------------------------------------------
def fail(peripheral: Peripheral, *faults: str):  # noqa: ANN201
    def hook(hit: Hit) -> None:
        hit.term.device.set_fault(peripheral, faults[hit.variant % len(faults)])
    return hook


def power_problem(hit: Hit) -> None:
    if hit.variant == 1:
        return _site_power_loss(hit)
    term = hit.term
    device = term.device
    device.set_fault(Peripheral.POWER, "unstable")
    for name, value in (("voltage", 9.2), ("power_source", "battery"), ("battery_pct", 7)):
        if hasattr(device, name):
            setattr(device, name, value)
    for _ in range(3):
        term.state.count("reboot")
    device.reboot()


def _site_power_loss(hit: Hit) -> None:
    world, site = hit.world, hit.term.site
    start = hit.strike_at() or 11 * H
    minutes = 90
    terms = [t for t in world.terminals if t.site == site]

    def off() -> None:
        for term in terms:
            term.powered = False

    async def on() -> None:
        for term in terms:
            term.powered = True
            term.state.count("reboot")
            term.device.reboot()
            insert_action(term, world.clock.offset + 60, "power_on")
    world.day.push_fleet(start + minutes * 60, on)
    off()
    hit.injection.affected = [t.tid for t in terms]
    hit.note(site=site, minutes=minutes)


def tamper(hit: Hit) -> None:
    hit.term.device.trigger_tamper()


# --- operation -------------------------------------------------------------------------------
def wrong_password(hit: Hit) -> None:
    own_operators(hit.term)
    hit.term.behaviour = hit.term.behaviour.but(password="8888", login_attempts=2)


def skip_sign_in(hit: Hit) -> None:
    hit.term.behaviour = hit.term.behaviour.but(signs_in=False, resigns_when_asked=False)


def fill_batch(hit: Hit) -> None:
    term = hit.term
    if hit.variant == 0:
        term.state.settings.batch_capacity = 2
        add_sales_after(term, 9.2 * H, 4, gap_s=900)
    term.behaviour = term.behaviour.but(settles=False)


def break_pairing(hit: Hit) -> None:
    term = hit.term
    device = term.device
    if hasattr(device, "bt_paired"):
        device.bt_paired = False
    term.link.conditions.down = True  # the mPOS reaches the network through the phone
    _more(hit, 2)


# --- transactions and funds -----------------------------------------------------------------------
def own_card(hit: Hit, **card) -> None:  # noqa: ANN003
    hit.world.cards.issue(hit.tid, **card)
    hit.term.behaviour = hit.term.behaviour.but(card="own")
    add_sales_after(hit.term, 10 * H, 2, gap_s=3600)


def drop_answer(hit: Hit) -> None:
    term = hit.term
    term.link.conditions.drop_answers = 1
    term.behaviour = term.behaviour.but(ends_day_early=True)


def plan_last_sale(hit: Hit) -> None:
    at = hit.strike_at() or 17.5 * H
    drop_after(hit.term, at, ("sale", "void", "refund", "balance"))
    insert_action(hit.term, at + 120, "sale", (8800, 1))


def lose_txn(hit: Hit) -> None:
    log = hit.term.state.txn_log
    approved = [t for t in log if t.kind == "sale" and t.status == "approved"]
    if approved:
        log.remove(approved[-1])
        if hit.term.sales:
            hit.term.sales[:] = [s for s in hit.term.sales if s[0] != approved[-1].stan]
        hit.note(lost_stan=approved[-1].stan)


def sales_around(hit: Hit) -> None:
    at = hit.strike_at() or 11 * H
    insert_action(hit.term, at - 600, "sale", (6600, 2))
    add_sales_after(hit.term, at, 2, gap_s=1200)


def reuse_stan(hit: Hit) -> None:
    """An old state restored: the STAN of the batch's last transaction comes again (the
    STANs after it may have gone to messages the host does not check for duplicates)."""
    state = hit.term.state
    last = int(state.txn_log[-1].stan) if state.txn_log else state.stan
    state.stan = last - 1 if last > 1 else STAN_MAX  # the next STAN is `last` again


register_faults(
    Fault("sw.app_conflict", "a third-party app installed that conflicts with the payment app", strike=app_conflict,
          windows=(MORNING,), plan=_more),
    Fault("sw.crash", "the payment app crashes under load (watchdog reboots)", variants=("every-2nd", "every-3rd"),
          install=crash_under_load, plan=lambda hit: add_sales_after(hit.term, 10 * H, 4, gap_s=1800)),
    Fault("sw.unauthorized_app", "an app outside the allowed list installed; payment blocked",
          strike=unapproved_app, windows=(MORNING,), plan=_more),
    Fault("hw.printer", "the printer fails or runs out of paper", variants=("paper_out", "failed"),
          strike=fail(Peripheral.PRINTER, "paper_out", "failed"), windows=(MORNING,), plan=_more),
    Fault("hw.card_reader", "the card reader fails", strike=fail(Peripheral.CARD_READER, "failed"),
          windows=(MORNING,), plan=_more),
    Fault("hw.keypad_touch", "the keypad fails", strike=fail(Peripheral.KEYPAD, "failed"), windows=(MORNING,),
          plan=_more),
    Fault("hw.storage", "the storage fails writes", strike=fail(Peripheral.STORAGE, "write_error"),
          windows=(MORNING,), plan=_more),
    Fault("hw.power", "unstable power on one terminal, or a site losing power", scope="terminal",
          variants=("brownout", "site-power-loss"), strike=power_problem, windows=(MORNING, BUSINESS), plan=_more),
    Fault("hw.tamper", "the security module triggered (case opened)", strike=tamper, windows=(MORNING,), plan=_more),
    Fault("op.wrong_password", "the cashier types a wrong operator password, below the lock limit",
          setup=wrong_password),
    Fault("op.not_signed_in", "the merchant never signs in and tries to sell", setup=skip_sign_in),
    Fault("op.settle_required", "the batch fills up and the merchant never settles",
          variants=("batch-full", "never-settles"), setup=fill_batch),
    Fault("op.bluetooth_pairing", "the mPOS loses its Bluetooth pairing with the phone", strike=break_pairing,
          windows=(MORNING,), prefers=lambda term: term.device.model == MPOS_MODEL),
    Fault("txn.insufficient_funds", "customers present a card with a low balance",
          setup=lambda hit: own_card(hit, balance=1500)),
    Fault("txn.wrong_pin", "customers enter a wrong PIN",
          setup=lambda hit: (own_card(hit), setattr(hit.term, "behaviour", hit.term.behaviour.but(pin_wrong=True)))),
    Fault("txn.limit_exceeded", "customers' cards have low single or daily limits",
          variants=("single-limit", "daily-limit"),
          setup=lambda hit: own_card(hit, single_limit=2000) if hit.variant == 0 else own_card(hit, daily_limit=3000)),
    Fault("txn.reversal_pending", "the answer to an approved sale dropped; the shop closes before the reversal",
          strike=drop_answer, windows=((17.0 * H, 18.0 * H),), plan=plan_last_sale),
    Fault("txn.settlement_unbalanced", "an approved sale lost from the terminal's log", strike=lose_txn,
          windows=(BUSINESS,), plan=sales_around),
    Fault("txn.duplicate", "the terminal reuses a STAN (old state restored)", strike=reuse_stan,
          windows=(BUSINESS,), plan=sales_around),
)
