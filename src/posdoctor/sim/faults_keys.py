"""Faults of the configuration, keys and network families (the terminal and its link)."""

from __future__ import annotations

import random
import socket

from posdoctor.sim.faults import BEFORE_OPEN, BUSINESS, MORNING, Fault, Hit, register_faults
from posdoctor.sim.plan import H
from posdoctor.sim.planedit import add_sales_after
from posdoctor.terminal.keys import SIGNIN_ALGORITHMS

TXN_KINDS = ("sale", "void", "refund", "balance")
WORKING_KEYS = ("PIK", "MAK", "TDK")


def closed_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- configuration ------------------------------------------------------------------------
def wrong_host(hit: Hit) -> None:
    comm = hit.term.state.comm
    if hit.variant % 2 == 0:
        comm.port = closed_port()
    else:
        comm.host = "127.0.0.2"  # a typo in the address: nothing listens there
    hit.note(host=comm.host, port=comm.port)


def wrong_tpdu(hit: Hit) -> None:
    tpdu = ("6000050000", "6000000003")[hit.variant % 2]
    hit.term.state.comm.tpdu = tpdu
    hit.note(tpdu=tpdu)


def wrong_ids(hit: Hit) -> None:
    state = hit.term.state
    if hit.variant == 0:  # the TID typed with two digits swapped / mistyped
        typo = "1" + state.tid[1:4] + "9" + state.tid[5:]
        state.tid = typo if typo != state.tid else "19999999"
        hit.note(typed_tid=state.tid)
    else:
        state.mid = state.mid[:-3] + f"{(int(state.mid[-3:]) + 500) % 1000:03d}"
        hit.note(typed_mid=state.mid)


# --- keys -----------------------------------------------------------------------------------
def erase_tmk(hit: Hit) -> None:
    state = hit.term.state
    state.keys.pop("TMK", None)
    state.sign_out()


def corrupt_tmk(hit: Hit) -> None:
    app = hit.term.app
    if not app.state.has_key("TMK"):
        return
    clear = app.keys.clear("TMK")
    flipped = bytes([clear[0] ^ 0x10]) + clear[1:]
    app.keys.store("TMK", flipped, SIGNIN_ALGORITHMS[app.state.settings.signin_mode])
    app.state.sign_out()


async def stale_working_keys(hit: Hit) -> None:
    app = hit.term.app
    if not app.state.signed_in:
        await app.sign_in()
    old = {kind: app.state.keys[kind] for kind in WORKING_KEYS if kind in app.state.keys}
    outcome = await app.sign_in()  # the host issues new keys (e.g. a second app signed in)
    hit.term.count("sign_in", outcome.ok)
    app.state.keys.update(old)  # a restore brings the old ones back
    hit.note(restored=sorted(old))


async def invalidate_session(hit: Hit) -> None:
    if hit.world.host is not None:
        await hit.world.host.require_sign_in(hit.tid)
    if hit.variant == 1:
        hit.term.behaviour = hit.term.behaviour.but(resigns_when_asked=False)


def more_business(hit: Hit) -> None:
    at = hit.strike_at() or 10 * H
    add_sales_after(hit.term, at, 3)


# --- parameters -------------------------------------------------------------------------------
def cut_mid_download(hit: Hit) -> None:
    term = hit.term
    hit.world.fresh.add(term.tid)  # installed today: it downloads everything at power-on
    base = 1
    # frames: [TMK] params 36x, 361, CAPK query, CAPK entry...; variant 1 cuts before 361
    term.link.cut_after = base + (3 if hit.variant == 0 else 1)
    hit.world.cards.issue(term.tid, chip=True)
    term.behaviour = term.behaviour.but(card="own")
    hit.note(cut_after_frames=term.link.cut_after)


async def corrupt_params(hit: Hit) -> None:
    term = hit.term
    state = term.state
    state.count("reboot")  # the power loss
    term.device.reboot()
    garbled = {tag: ("?" * len(value) if i % 2 == 0 else value) for i, (tag, value) in enumerate(state.params.items())}
    state.params = garbled
    state.params_complete = False
    term.app.self_check()
    if term.telemetry is not None:
        await term.telemetry.upload_self_check(hit.world.tms_client(term))


# --- network -----------------------------------------------------------------------------------
def link_down(hit: Hit) -> None:
    term = hit.term
    term.link.conditions.down = True
    term.tms_online = False
    hours = (2.0, 4.0, 1.0)[hit.variant % 3]
    at = (hit.strike_at() or 10 * H) + hours * H
    hit.world.day.push_fleet(min(at, 20.9 * H), lambda: _link_up(term))
    hit.note(hours_down=hours)


def _link_up(term) -> None:  # noqa: ANN001
    term.link.conditions.down = False
    term.tms_online = True


def unresolvable_name(hit: Hit) -> None:
    hit.term.state.comm.host = ("posp.acquirer-host.cn", "pos.unionpay-gw.example")[hit.variant % 2]
    hit.term.link.unresolvable = True


def firewall_drop(hit: Hit) -> None:
    hit.term.link.conditions.blackhole = True


def unstable_link(hit: Hit) -> None:
    term = hit.term
    conditions = term.link.conditions
    conditions.rng = random.Random(hit.rng.getrandbits(32))
    conditions.loss = (0.35, 0.5, 0.25)[hit.variant % 3]
    conditions.delay_s = (0.05, 0.2, 0.1)[hit.variant % 3]
    conditions.drop_answers = 1  # at least one loss: at 25% a day of ten requests misses them all one time in 18
    device = term.device
    if hasattr(device, "signal_dbm"):
        device.signal_dbm = -104 - hit.variant
        device.network = "4g"
    add_sales_after(term, 10 * H, 1, gap_s=2400)
    hit.note(loss=conditions.loss, delay_s=conditions.delay_s)


def storm_setup(hit: Hit) -> None:
    """The whole fleet opens within two minutes; the host accepts only a few connections."""
    world = hit.world
    capacity = max(2, min(world.config.concurrency, world.config.terminals) // 8)
    for term in world.terminals:
        term.plan[:] = [(8.0 * H + hit.rng.uniform(0, 120), a, arg) if a == "open" else (t, a, arg)
                        for t, a, arg in term.plan]
        term.plan.sort(key=lambda action: action[0])
    world.day_hooks.append(lambda day: day.push_fleet(7.95 * H, lambda: world.limit_host(capacity)))
    world.day_hooks.append(lambda day: day.push_fleet(8.1 * H, lambda: world.limit_host(None)))
    hit.injection.at = "08:00"
    hit.note(host_max_connections=capacity, storm="08:00-08:02")


register_faults(
    Fault("config.wrong_host", "the terminal's host address or port typed wrong", variants=("port", "address"),
          install=wrong_host),
    Fault("config.wrong_tpdu", "the terminal's TPDU typed wrong", variants=("dest-0005", "dest-0000"),
          install=wrong_tpdu),
    Fault("config.wrong_terminal_id", "the TID or MID typed wrong in the terminal", variants=("tid", "mid"),
          install=lambda hit: wrong_ids(hit) if hit.variant == 0 else None,
          strike=lambda hit: wrong_ids(hit) if hit.variant == 1 else None, windows=(None, BEFORE_OPEN)),
    Fault("keys.tmk_missing", "the terminal's master key erased", variants=("before-open", "mid-day"),
          strike=erase_tmk, windows=(BEFORE_OPEN, MORNING), plan=more_business),
    Fault("keys.tmk_mismatch", "one byte of the terminal's master key changed", variants=("before-open", "mid-day"),
          strike=corrupt_tmk, windows=(BEFORE_OPEN, MORNING), plan=more_business),
    Fault("keys.mak_desync", "stale working keys restored on the terminal", strike=stale_working_keys,
          windows=(MORNING,), plan=more_business),
    Fault("keys.resign_required", "the host's session of the terminal invalidated",
          variants=("merchant-re-signs", "merchant-does-not"), strike=invalidate_session,
          windows=(BUSINESS,), plan=more_business),
    Fault("params.download_incomplete", "the connection broken in the middle of the downloads",
          variants=("capk", "params"), setup=cut_mid_download),
    Fault("params.corrupt", "the parameter file corrupted by a power loss", strike=corrupt_params,
          windows=(MORNING,)),
    Fault("net.offline", "the terminal's network link down for hours", variants=("2h", "4h", "1h"),
          strike=link_down, windows=(MORNING, (10 * H, 14 * H), BUSINESS), plan=more_business),
    Fault("net.dns_failure", "the terminal configured with a host name that does not resolve",
          variants=("from-install", "changed-mid-day"), install=lambda hit: unresolvable_name(hit)
          if hit.variant == 0 else None, strike=lambda hit: unresolvable_name(hit) if hit.variant == 1 else None,
          windows=(None, MORNING)),
    Fault("net.firewall_blocked", "packets to the host port silently dropped",
          variants=("from-install", "rule-added-mid-day"), install=lambda hit: firewall_drop(hit)
          if hit.variant == 0 else None, strike=lambda hit: firewall_drop(hit) if hit.variant == 1 else None,
          windows=(None, MORNING)),
    Fault("net.unstable", "random loss and delay on the terminal's link, weak signal",
          variants=("loss-35", "loss-50", "loss-25"), install=unstable_link),
    Fault("net.host_overloaded", "host capacity limited during a compressed morning sign-in storm",
          scope="fleet", setup=storm_setup),
)
