"""Steps every message goes through first: decode the frame, pick the route, check fields."""

from __future__ import annotations

from posdoctor.host.context import Context
from posdoctor.host.pipeline import HostEnv, Outcome, Step, ok, refuse
from posdoctor.host.results import Result
from posdoctor.host.route import find_route
from posdoctor.iso8583.codec import decode_message_with_layout
from posdoctor.iso8583.errors import DecodeError, FrameError, Iso8583Error
from posdoctor.iso8583.framing import decode_frame
from posdoctor.iso8583.routing import route_key


class DecodeFrame(Step):
    """TPDU, header and body -> `ctx.frame`, `ctx.request`; checks the TPDU destination."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        try:
            ctx.frame = decode_frame(ctx.payload, env.frame_config)
        except FrameError as exc:
            ctx.add_event("frame_error", "30", reason=str(exc), length=len(ctx.payload))
            return refuse(Result.FORMAT_ERROR, f"bad frame: {exc}")
        try:
            ctx.request, ctx.request_layout = decode_message_with_layout(ctx.frame.body)
        except DecodeError as exc:
            ctx.partial = getattr(exc, "partial", {})
            ctx.add_event("decode_error", "30", reason=str(exc), field=exc.field, pos=exc.pos)
            return refuse(Result.FORMAT_ERROR, f"undecodable message: {exc}")
        accepted = env.config.accepted_tpdu_destinations
        destination = ctx.frame.tpdu[1:3].hex().upper()
        if accepted and destination not in {a.upper() for a in accepted}:
            ctx.no_answer = True
            ctx.add_event("tpdu_rejected", "30", destination=destination, accepted=list(accepted))
            return refuse(Result.FORMAT_ERROR, f"TPDU destination {destination} is not this host's")
        return ok()


class SelectRoute(Step):
    """Route key -> route; an unknown key is a function this host does not offer (40)."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        assert ctx.request is not None
        try:
            ctx.route_key = route_key(ctx.request)
        except (Iso8583Error, KeyError, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"cannot route the message: {exc}")
        ctx.route = find_route(ctx.route_key, env.routes)
        if ctx.route is None:
            return refuse(Result.UNSUPPORTED, f"no route for {ctx.route_key}")
        return ok(ctx.route.name)


class CheckFields(Step):
    """Mandatory fields of the route are present (else 30)."""

    def __init__(self, required: tuple[str, ...]) -> None:
        self.required = required

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        request = ctx.request or {}
        missing = [f for f in self.required if not request.get(f)]
        if missing:
            return refuse(Result.FORMAT_ERROR, f"missing field(s) {', '.join(missing)}")
        return ok()
