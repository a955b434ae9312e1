"""Downloads and uploads of management data: parameters, CAPK, AID, terminal status."""

from __future__ import annotations

import asyncio

from posdoctor.host.context import Context
from posdoctor.host.emv import DEFAULT_AIDS, DEFAULT_CAPKS, find_entry, identity, terminal_parameters
from posdoctor.host.pipeline import HostEnv, Outcome, Step, ok, refuse
from posdoctor.host.results import Result
from posdoctor.iso8583.errors import Iso8583Error
from posdoctor.iso8583.fields import STATUS_TAGS, decode_param_tags, decode_tlv, encode_emv_list, encode_param_tags
from posdoctor.iso8583.framing import ProcessingRequirement

EMV_TABLES = {"capk": DEFAULT_CAPKS, "aid": DEFAULT_AIDS}
LIST_COMPLETE = "1"


class SendParameters(Step):
    """0800/360, 364: field 62 = the terminal's parameter tag list: host defaults, then the
    TMS parameters (template < merchant < terminal) whose version is noted for the end."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        params = terminal_parameters(terminal, ctx.merchant, env.config.parameters, env.listen)
        profiles = env.registry.profiles
        version, tms = profiles.params_for(terminal.tid, terminal.mid)
        params.update(tms)
        profile = profiles.terminal(terminal.tid)
        if profile is not None:
            profile.served = version
        ctx.answer_fields["62"] = encode_param_tags(params).hex().upper()
        return ok(f"{len(params)} parameters sent (TMS version {version})")


class ListEmvEntries(Step):
    """0820/372 (CAPK) or 382 (AID) query: status 1 + the identifying tags of each entry."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        entries = EMV_TABLES[self.kind]
        listing = [item for entry in entries for item in identity(self.kind, entry)]
        ctx.answer_fields["62"] = encode_emv_list(LIST_COMPLETE, listing).hex().upper()
        return ok(f"{len(entries)} {self.kind.upper()} entries listed")


class SendEmvEntry(Step):
    """0800/370 (CAPK) or 380 (AID): the full entry named in field 62 (25 when unknown)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        try:
            request = decode_tlv(bytes.fromhex(ctx.get("62") or ""), field="62")
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"field 62 is not TLV: {exc}")
        entry = find_entry(self.kind, EMV_TABLES[self.kind], request)
        named = " ".join(f"{tag}={value.hex().upper()}" for tag, value in request)
        if entry is None:
            return refuse(Result.RECORD_NOT_FOUND, f"no {self.kind.upper()} {named}")
        ctx.answer_fields["62"] = encode_emv_list(LIST_COMPLETE, entry).hex().upper()
        return ok(f"{self.kind.upper()} {named} sent")


class EndDownload(Step):
    """0800/361, 371, 381: the download is complete; stop asking for it in headers."""

    def __init__(self, requirement: ProcessingRequirement) -> None:
        self.requirement = requirement

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        terminal.pending.discard(self.requirement)
        if self.requirement is ProcessingRequirement.PARAMS:
            version = await asyncio.to_thread(env.registry.profiles.record_params_downloaded, terminal.tid)
            if version is not None:
                return ok(f"params download complete (TMS version {version})")
        return ok(f"{self.requirement.name.lower()} download complete")


class RecordStatus(Step):
    """0820/362: the terminal's status tags become a `status_upload` event."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        try:
            status = decode_param_tags(bytes.fromhex(ctx.get("62") or ""), STATUS_TAGS)
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"status upload field 62 unreadable: {exc}")
        ctx.add_event("status_upload", None, **status)
        terminal.pending.discard(ProcessingRequirement.STATUS)
        reported, profiles = status.get("03"), env.registry.profiles
        profile = profiles.terminal(terminal.tid)
        if reported and profile is not None and profile.app_version != reported:
            await asyncio.to_thread(profiles.record_app_version, terminal.tid, reported)
        return ok(f"{len(status)} status values recorded")
