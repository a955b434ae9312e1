"""Faults of the backend, registration/status and funds families: the acquirer's world.

Registry and policy changes go through the store's lifecycle functions (status history,
evidence event and host change feed, as the TMS commands do), stamped with the virtual
time; the host is told at once (`invalidate`) as the change feed would.
"""

from __future__ import annotations

from posdoctor.sim.fleet import own_operators
from posdoctor.sim.faults import BEFORE_OPEN, BUSINESS, MORNING, Fault, Hit, register_faults
from posdoctor.sim.plan import H
from posdoctor.sim.planedit import add_sales_after, insert_action

ACTOR = "ops"


def _now(hit: Hit):  # noqa: ANN202
    return hit.world.clock.utc()


async def _tell_host(hit: Hit, tid: str | None = None) -> None:
    await hit.world.invalidate(tid or hit.tid)


# --- backend ---------------------------------------------------------------------------------
def host_down_setup(hit: Hit) -> None:
    world, rng = hit.world, hit.rng
    start = rng.uniform(10.0 * H, 15.0 * H)
    minutes = (30, 60, 20)[hit.variant % 3]
    end = start + minutes * 60
    if hit.variant == 1:  # the host runs but answers 96 to every payment
        world.day_hooks.append(lambda day: day.push_fleet(start, lambda: world.host_answers_96(True)))
        world.day_hooks.append(lambda day: day.push_fleet(end, lambda: world.host_answers_96(False)))
    else:
        world.day_hooks.append(lambda day: day.push_fleet(start, world.stop_host))
        world.day_hooks.append(lambda day: day.push_fleet(end, world.start_host))
    for term in world.terminals:  # business goes on: customers arrive during the outage too
        if rng.random() < 0.5:
            insert_action(term, rng.uniform(start + 60, end - 60), "sale", (4200, term.index))
    hit.injection.at = world.clock.at(start).strftime("%H:%M")
    hit.note(down_from=world.clock.at(start).strftime("%H:%M"), down_until=world.clock.at(end).strftime("%H:%M"),
             mode=("stopped", "answers-96", "stopped")[hit.variant % 3])


def issuer_delay(hit: Hit) -> None:
    pattern = None if hit.variant == 0 else "*[05]0"
    hit.world.store.add_decline_rule(tid=hit.tid, delay_ms=3000, amount_pattern=pattern,
                                     note="simulated issuer outage")
    add_sales_after(hit.term, 10 * H, 3, gap_s=3600, amount=5050)
    hit.note(amount_pattern=pattern)


async def restrict_kinds(hit: Hit) -> None:
    allowed = ["balance", "void", "refund"] if hit.variant == 0 else ["sale", "balance", "void"]
    hit.world.store.set_terminal_allowed_types(hit.tid, allowed, actor=ACTOR)
    await _tell_host(hit)
    at = hit.strike_at() or 10 * H
    add_sales_after(hit.term, at, 2, gap_s=1800)
    if hit.variant == 1:
        add_sales_after(hit.term, at + 3600, 2, gap_s=1800, kind="refund")
    hit.note(allowed=allowed)


# --- registration and status ------------------------------------------------------------------
def unregistered(hit: Hit) -> None:
    hit.world.unregistered.add(hit.tid)


async def disable(hit: Hit) -> None:
    new = "disabled" if hit.variant != 1 else "suspended"
    hit.world.store.change_terminal_status(hit.tid, new, reason="风控停机 risk control stop", actor=ACTOR,
                                           now=_now(hit))
    await _tell_host(hit)


async def merchant_status(hit: Hit, status: str, reason: str) -> None:
    hit.world.store.change_merchant_status(hit.term.mid, status, reason=reason, actor=ACTOR, now=_now(hit))
    for term in hit.world.terminals:
        if term.mid == hit.term.mid:
            await hit.world.invalidate(term.tid)


def freeze(hit: Hit):  # noqa: ANN201
    return merchant_status(hit, "frozen", "风控冻结: 交易异常 risk freeze: unusual transactions")


def close(hit: Hit):  # noqa: ANN201
    return merchant_status(hit, "closed", "商户解约 contract terminated")


def leave_pending(hit: Hit) -> None:
    hit.world.merchant_status[hit.term.mid] = "pending"


async def rebind(hit: Hit) -> None:
    world = hit.world
    other = f"8981{hit.term.mid[4:-6]}9{hit.term.mid[-5:]}"
    if other not in world.extra_merchants:
        world.store.add_merchant(other, "另一商户 Another Merchant")
        world.extra_merchants.add(other)
    world.store.update_terminal(hit.tid, mid=other)
    world.store.notify_host("registry", tid=hit.tid, mid=other)
    await _tell_host(hit)
    hit.note(bound_to=other)


async def swap_device(hit: Hit) -> None:
    term = hit.term
    serial = f"SWP{term.index + 1:08d}"
    term.state.serial = serial
    term.device.serial = serial
    term.state.sign_out()  # a new device starts without the old sign-in
    hit.note(new_serial=serial)


def lock_operator(hit: Hit) -> None:
    own_operators(hit.term)
    hit.term.behaviour = hit.term.behaviour.but(password="7777", login_attempts=3)


async def invalid_account(hit: Hit) -> None:
    hit.world.store.change_account_status(hit.term.mid, "invalid", reason="账户已销户 account closed by the bank",
                                          actor="bank", now=_now(hit))


def settle_late(hit: Hit) -> None:
    term = hit.term
    term.plan[:] = [(t if a != "close" else 23.2 * H, a, arg) for t, a, arg in term.plan]
    term.plan.sort(key=lambda action: action[0])


async def raise_min_version(hit: Hit) -> None:
    from posdoctor.tms.policies import set_policy

    set_policy(hit.world.store, "min_app_version", "1.0.0", actor=ACTOR, reason="security fix required")
    await hit.world.invalidate(None)
    hit.term.state.sign_out()
    add_sales_after(hit.term, hit.strike_at() or 10 * H, 2)


def old_app(hit: Hit) -> None:
    hit.term.state.app_version = "000905"


register_faults(
    Fault("backend.host_down", "the acquiring host stopped (or answering 96) for a while", scope="fleet",
          variants=("stopped-30m", "answers-96", "stopped-20m"), setup=host_down_setup),
    Fault("backend.issuer_timeout", "the issuer delays its answers past the host's timeout",
          variants=("all-amounts", "some-amounts"), setup=issuer_delay),
    Fault("backend.policy_restriction", "a transaction type disallowed for the terminal by policy",
          variants=("no-sales", "no-refunds"), strike=restrict_kinds, windows=(MORNING,)),
    Fault("status.terminal_unregistered", "a device with an unknown TID, never registered", setup=unregistered),
    Fault("status.terminal_disabled", "the terminal disabled in the registry",
          variants=("before-open", "suspended-mid-day", "disabled-mid-day"), strike=disable,
          windows=(BEFORE_OPEN, MORNING, BUSINESS), plan=lambda hit: add_sales_after(hit.term, 12 * H, 2)),
    Fault("status.merchant_frozen", "the merchant frozen by risk control", scope="merchant",
          variants=("before-open", "mid-day"), strike=freeze, windows=(BEFORE_OPEN, MORNING),
          plan=lambda hit: add_sales_after(hit.term, 12 * H, 2)),
    Fault("status.merchant_pending", "the merchant's onboarding left unapproved", scope="merchant",
          setup=leave_pending),
    Fault("status.merchant_closed", "the merchant's contract closed", scope="merchant",
          variants=("before-open", "mid-day"), strike=close, windows=(BEFORE_OPEN, MORNING),
          plan=lambda hit: add_sales_after(hit.term, 12 * H, 2)),
    Fault("status.terminal_merchant_mismatch", "the TID bound to another merchant in the registry",
          variants=("before-open", "mid-day"), strike=rebind, windows=(BEFORE_OPEN, MORNING),
          plan=lambda hit: add_sales_after(hit.term, 12 * H, 2)),
    Fault("status.device_not_whitelisted", "the device swapped for one not in the asset list",
          variants=("before-open", "mid-day"), strike=swap_device, windows=(BEFORE_OPEN, MORNING),
          plan=lambda hit: add_sales_after(hit.term, 12 * H, 2)),
    Fault("status.operator_locked", "the cashier types wrong passwords until the operator locks",
          setup=lock_operator),
    Fault("status.settlement_account_invalid", "the merchant's settlement account marked invalid",
          scope="merchant", strike=invalid_account, windows=(BUSINESS,)),
    Fault("txn.funds_delayed", "the merchant settles after the cut-off; the payout is not yet due",
          scope="merchant", setup=settle_late),
    Fault("upgrade.version_blocked", "the minimum app version raised above the terminal's old app",
          setup=old_app, strike=raise_min_version, windows=(MORNING,)),
)
