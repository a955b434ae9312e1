"""Pipeline semantics: verdicts, first refusal stops the route, closing steps always run."""

from datetime import UTC, datetime

from posdoctor.host.context import Context, Session
from posdoctor.host.pipeline import Step, ok, refuse, run_pipeline
from posdoctor.host.results import Result
from posdoctor.host.route import Route


class Recorder:
    def __init__(self) -> None:
        self.ran: list[str] = []


class Pass(Step):
    def __init__(self, log: Recorder, tag: str) -> None:
        self.log, self.tag = log, tag

    async def run(self, ctx, env):
        self.log.ran.append(self.tag)
        return ok(f"{self.tag} fine")


class Refuse(Step):
    def __init__(self, log: Recorder) -> None:
        self.log = log

    async def run(self, ctx, env):
        self.log.ran.append("refuse")
        return refuse(Result.UNKNOWN_TERMINAL, "TID 1 is not registered")


class Explode(Step):
    async def run(self, ctx, env):
        raise ZeroDivisionError("boom")


class PickRoute(Step):
    def __init__(self, route: Route) -> None:
        self.route = route

    async def run(self, ctx, env):
        ctx.route = self.route
        return ok()


def context() -> Context:
    return Context(b"", Session("test"), now=datetime.now(UTC), started=0.0)


async def test_first_refusal_skips_the_rest_of_the_route_but_not_the_closing_steps():
    log = Recorder()
    route = Route("r", (Pass(log, "a"), Refuse(log), Pass(log, "b")))
    ctx = await run_pipeline(context(), None, [PickRoute(route)], [Pass(log, "close")])
    assert log.ran == ["a", "refuse", "close"]
    assert ctx.result is Result.UNKNOWN_TERMINAL
    assert ctx.reason == "TID 1 is not registered"
    assert [(v.step, v.verdict) for v in ctx.verdicts] == [
        ("PickRoute", "ok"), ("Pass", "ok"), ("Refuse", "refused"), ("Pass", "ok")]


async def test_an_exception_is_a_system_error_verdict_and_an_event():
    log = Recorder()
    route = Route("r", (Explode(), Pass(log, "never")))
    ctx = await run_pipeline(context(), None, [PickRoute(route)], [Pass(log, "close")])
    assert log.ran == ["close"]
    assert ctx.result is Result.SYSTEM_ERROR
    assert ctx.verdicts[1].verdict == "error"
    assert ctx.verdicts[1].reason == "ZeroDivisionError in Explode"
    assert ctx.events == [{"kind": "step_error", "code": "96",
                           "detail": {"step": "Explode", "error": "ZeroDivisionError"}}]


async def test_a_failing_inbound_step_skips_the_route():
    log = Recorder()
    ctx = await run_pipeline(context(), None, [Refuse(log)], [Pass(log, "close")])
    assert log.ran == ["refuse", "close"]
    assert ctx.route is None
