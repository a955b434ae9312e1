"""Power loss at random points of download and install: the terminal always comes back on a
working version with its keys and batch intact, and the upgrade eventually completes.

In-process: a `CrashHook` armed at the Nth durable point (slot, pointer, job, download
chunk, terminal state writes) raises `SimulatedPowerLoss` there and at every later point;
the terminal is then rebuilt from its files, powered on (the bootloader runs) and checked,
and polls again until the upgrade is done. Some runs lose power twice. Then a few real
processes are killed with SIGKILL mid-upgrade.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from termhost import PAN, PIN, Reply, well_behaved
from upgradekit import NEW, OLD, ShelfTms, agent_for, batch, kcvs, make_terminal, package, reopen

from posdoctor.terminal import Card
from posdoctor.terminal.slots import CrashHook, SimulatedPowerLoss, SlotStore, slots_dir

SEED = 20261129
KILLS = 320
CHUNK = 1024
HERE = Path(__file__).parent


@pytest.fixture
def fast_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one: the power cuts are simulated, so fsync's cost
    on a real disk buys nothing here (the writes and their order are the same)."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="posdoctor-crash-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def same_batch_sign_in(request: dict[str, str]) -> Reply:
    """Approve like `well_behaved`, but the sign-in keeps the terminal's batch number."""
    if request["t"] == "0800" and request.get("60", "")[8:11] == "004":
        reply = well_behaved(request)
        reply.msg["60"] = request["60"]
        return reply
    return well_behaved(request)


def crashing_app(home: Path, hook: CrashHook):
    app = reopen(home)
    save = app.persist

    def persist(state) -> None:
        hook("terminal_state:before")
        save(state)
        hook("terminal_state:after")

    app.persist = persist
    return app


class Expect:
    def __init__(self, app) -> None:
        self.keys = kcvs(app)
        self.stan, self.batch_no, self.txns = batch(app)

    def check(self, app) -> None:
        stan, batch_no, txns = batch(app)
        assert app.state.app_version in (OLD, NEW)
        assert kcvs(app) == self.keys
        assert (batch_no, txns) == (self.batch_no, self.txns)
        assert stan >= self.stan  # the test sign-in uses STANs; they never go back


async def upgrade_with_power_cuts(home: Path, tms: ShelfTms, cuts: list[int], expect: Expect) -> list[str]:
    """Run the agent, cutting the power at each of `cuts`; returns the points hit."""
    hit = []
    for cut in [*cuts, None]:
        hook = CrashHook(kill_at=cut)
        app = crashing_app(home, hook)
        agent = agent_for(app, tms, home, crash=hook, chunk_size=CHUNK)
        try:
            agent.power_on()
            expect.check(app)
            for _ in range(8):
                if (await agent.poll()).status == "upgraded":
                    break
        except SimulatedPowerLoss as loss:
            hit.append(loss.point)
            continue
        break
    final = reopen(home)
    agent = agent_for(final, tms, home)
    agent.power_on()
    expect.check(final)
    assert final.state.app_version == NEW, hit
    assert not SlotStore(slots_dir(home, final.state.tid)).in_trial()
    assert (await agent.poll()).status == "idle"
    return hit


async def prepared_template(tmp_path: Path, port: int) -> tuple[Path, Expect]:
    template = tmp_path / "template"
    app = make_terminal(template, port)
    for amount in (1200, 3400):
        assert (await app.sale(Card(PAN, "3012"), amount, pin=PIN)).ok
    agent_for(app, ShelfTms(package()), template).power_on()  # factory slots on storage
    return template, Expect(app)


async def test_hundreds_of_power_cuts_never_lose_keys_batch_or_a_working_version(scripted, fast_disk: Path) -> None:
    tmp_path = fast_disk
    host = await scripted(same_batch_sign_in)
    template, expect = await prepared_template(tmp_path, host.port)
    data = package(size=5000)
    probe = tmp_path / "probe"
    shutil.copytree(template, probe)
    counter = CrashHook()
    app = crashing_app(probe, counter)
    assert (await agent_for(app, ShelfTms(data), probe, crash=counter, chunk_size=CHUNK).poll()).status == "upgraded"
    total = counter.seen
    assert total > 30, counter.points
    rng = random.Random(SEED)
    points_hit: set[str] = set()
    for run in range(KILLS):
        home = tmp_path / f"run{run}"
        shutil.copytree(template, home)
        cuts = [rng.randint(1, total)] + ([rng.randint(1, total)] if run % 4 == 0 else [])
        points_hit.update(await upgrade_with_power_cuts(home, ShelfTms(data), cuts, expect))
        shutil.rmtree(home)
    kinds = {point.split(":")[0] for point in points_hit}
    assert {"download.part", "download.json", "B.img", "B.json", "boot.json", "upgrade.json",
            "terminal_state"} <= kinds, kinds


CHILD = """
import asyncio, sys
sys.path.insert(0, {here!r})
from pathlib import Path
from upgradekit import ShelfTms, agent_for, reopen
data = Path({pkg!r}).read_bytes()
async def main():
    app = reopen(Path({home!r}))
    tms = ShelfTms(data, delay_s=0.004)
    agent = agent_for(app, tms, Path({home!r}), chunk_size=256)
    print("ready", flush=True)
    while (await agent.poll()).status != "upgraded":
        pass
    print("done", flush=True)
asyncio.run(main())
"""


async def test_sigkill_mid_upgrade_comes_back_working(scripted, fast_disk: Path) -> None:
    tmp_path = fast_disk
    host = await scripted(same_batch_sign_in)
    template, expect = await prepared_template(tmp_path, host.port)
    data = package(size=5000)
    pkg = tmp_path / "pkg.zip"
    pkg.write_bytes(data)
    rng = random.Random(SEED)
    finished_before_kill = 0
    for run in range(5):
        home = tmp_path / f"kill{run}"
        shutil.copytree(template, home)
        code = CHILD.format(here=str(HERE), pkg=str(pkg), home=str(home))
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=os.environ.copy())
        assert child.stdout is not None
        assert (await asyncio.to_thread(child.stdout.readline)).strip() == b"ready"
        await asyncio.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        rest = await asyncio.to_thread(child.stdout.read)
        await asyncio.to_thread(child.wait)
        finished_before_kill += b"done" in rest
        await upgrade_with_power_cuts(home, ShelfTms(data), [], expect)
    assert finished_before_kill < 5  # the kills did land mid-upgrade
