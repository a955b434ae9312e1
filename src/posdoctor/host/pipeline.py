"""The pipeline: run a message's steps in order, record each verdict, stop at a refusal.

A step does one thing. It reads and writes the `Context` and answers with an
`Outcome`: `ok(reason)` or `refuse(result, reason)`. The first refusal sets
`ctx.result`; the route's remaining steps are skipped, but the closing steps
(prepare, sign, journal, send) always run so every message gets its answer and
its journal row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from posdoctor.host.context import Context, StepVerdict
from posdoctor.host.results import Result

if TYPE_CHECKING:
    from posdoctor.crypto.hsm import SoftHSM
    from posdoctor.host.config import HostConfig
    from posdoctor.host.issuer import TestIssuer
    from posdoctor.host.keyservice import KeyService
    from posdoctor.host.ledger import Ledger
    from posdoctor.host.identifiers import Identifiers
    from posdoctor.host.registry import Registry
    from posdoctor.host.route import Route
    from posdoctor.iso8583.framing import FrameConfig

log = logging.getLogger(__name__)


class Outcome(NamedTuple):
    """A step's answer (a tuple: made for every step of every message, so it is cheap)."""

    result: Result
    reason: str = ""


_PLAIN_OK = Outcome(Result.OK)


def ok(reason: str = "") -> Outcome:
    return Outcome(Result.OK, reason) if reason else _PLAIN_OK


def refuse(result: Result, reason: str) -> Outcome:
    return Outcome(result, reason)


@dataclass(slots=True)
class HostEnv:
    """The services a step may use."""

    config: HostConfig
    hsm: SoftHSM
    registry: Registry
    issuer: TestIssuer
    ledger: Ledger
    ids: Identifiers
    routes: Mapping[str, Route]
    frame_config: FrameConfig
    listen: tuple[str, int] | None = None
    """Where the host listens (sent as parameters 90/91)."""
    keys: KeyService | None = None
    """The HSM process issuing working keys (`posdoctor serve`); None: the SoftHSM does."""


class Step:
    """Base class: subclasses set nothing but `run`; the name is the class name."""

    name: ClassVar[str] = ""
    passed: ClassVar[StepVerdict]
    """This step's verdict when it answers a plain `ok()` (shared: most verdicts are it)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__name__
        cls.passed = StepVerdict(cls.name, "ok")

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


async def run_step(step: Step, ctx: Context, env: HostEnv) -> Outcome:
    """Run one step; an exception becomes a SYSTEM_ERROR verdict and an event."""
    try:
        outcome = await step.run(ctx, env)
    except Exception as exc:  # the per-step boundary: any defect answers 96
        log.exception("host step %s failed", step.name)
        outcome = refuse(Result.SYSTEM_ERROR, f"{type(exc).__name__} in {step.name}")
        ctx.add_event("step_error", "96", step=step.name, error=type(exc).__name__)
        ctx.verdicts.append(StepVerdict(step.name, "error", outcome.reason))
    else:
        if outcome is _PLAIN_OK:
            ctx.verdicts.append(step.passed)
        else:
            verdict = "ok" if outcome.result is Result.OK else "refused"
            ctx.verdicts.append(StepVerdict(step.name, verdict, outcome.reason))
    if outcome.result is not Result.OK and ctx.result is Result.OK:
        ctx.result = outcome.result
        ctx.reason = outcome.reason
    return outcome


async def run_pipeline(
    ctx: Context,
    env: HostEnv,
    inbound: Sequence[Step],
    closing: Sequence[Step],
) -> Context:
    """Inbound steps, then the route's steps (chosen by an inbound step), then closing."""
    for step in inbound:
        if (await run_step(step, ctx, env)).result is not Result.OK:
            break
    else:
        if ctx.route is not None:
            for step in ctx.route.steps:
                if (await run_step(step, ctx, env)).result is not Result.OK:
                    break
    for step in closing:
        await run_step(step, ctx, env)
    return ctx
