"""Steps that establish who is talking: terminal, merchant, device, sign-in, MAC."""

from __future__ import annotations

import asyncio

from posdoctor.host.context import Context
from posdoctor.host.records import TerminalRecord
from posdoctor.host.pipeline import HostEnv, Outcome, Step, ok, refuse
from posdoctor.host.results import Result
from posdoctor.iso8583.codec import mac_input
from posdoctor.iso8583.errors import Iso8583Error
from posdoctor.iso8583.fields import decode_device_info
from posdoctor.iso8583.framing import ProcessingRequirement
from posdoctor.tms.policies import version_below


def _found(ctx: Context, env: HostEnv, terminal: TerminalRecord) -> Outcome:
    ctx.terminal = terminal
    ctx.merchant = env.registry.merchants.get(terminal.mid)
    ctx.session.tid = terminal.tid
    return ok(f"TID {terminal.tid} of merchant {terminal.mid}")


def read_device_info(ctx: Context) -> dict[str, str] | None:
    """Field 62 as device information (SN, MD, AV, FV), or None when absent."""
    raw = ctx.get("62")
    if not raw:
        return None
    return decode_device_info(bytes.fromhex(raw))


class LoadTerminal(Step):
    """Field 41 -> the registered terminal and its merchant (97 when unknown)."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        tid = ctx.get("41") or ""
        terminal = await env.registry.find_terminal(tid)
        if terminal is None:
            return refuse(Result.UNKNOWN_TERMINAL, f"TID {tid} is not registered")
        return _found(ctx, env, terminal)


class FindTerminal(Step):
    """TMK download: by field 41 when sent, else by the device serial in field 62."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        tid = ctx.get("41")
        if tid:
            return await LoadTerminal().run(ctx, env)
        try:
            info = read_device_info(ctx) or {}
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"field 62 is not device information: {exc}")
        serial = info.get("SN")
        if not serial:
            return refuse(Result.FORMAT_ERROR, "neither TID (41) nor device serial (62 SN) sent")
        terminal = await env.registry.find_terminal_by_serial(serial)
        if terminal is None:
            return refuse(Result.UNKNOWN_TERMINAL, f"device {serial} is not bound to any terminal")
        return _found(ctx, env, terminal)


def _because(reason: str | None) -> str:
    return f": {reason}" if reason else ""


FINANCIAL_KINDS = frozenset({"sale", "void", "refund", "balance"})
"""Route names whose kind the allowed-types and MCC policies restrict (never reversals)."""


def kind_refusal(ctx: Context, env: HostEnv, terminal: TerminalRecord) -> str | None:
    """Why this transaction kind is not allowed here (terminal types, MCC policy), or None."""
    kind = ctx.route.name if ctx.route is not None else ""
    if kind not in FINANCIAL_KINDS:
        return None
    profiles = env.registry.profiles
    profile = profiles.terminal(terminal.tid)
    if profile is not None and profile.allowed is not None and kind not in profile.allowed:
        return f"{kind} not allowed on terminal {terminal.tid} (allowed types: {','.join(sorted(profile.allowed))})"
    mcc = profiles.merchant(terminal.mid).mcc
    kinds = profiles.policies.kinds_for_mcc(mcc)
    if kinds is not None and kind not in kinds:
        return f"{kind} not allowed for merchant category {mcc} (policy mcc.{mcc}: {','.join(kinds)})"
    return None


class CheckStatus(Step):
    """Terminal active, bound to the merchant sent in 42, merchant usable, the transaction
    kind allowed (terminal's allowed types, the merchant category's policy: 58); a
    terminal with stale parameters is asked to download them (processing digit 1)."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        profiles = env.registry.profiles
        if not terminal.usable:
            profile = profiles.terminal(terminal.tid)
            reason = _because(profile.reason if profile is not None else None)
            return refuse(Result.TERMINAL_DISABLED, f"terminal {terminal.tid} {terminal.status}{reason}")
        mid = ctx.get("42")
        if mid and mid != terminal.mid:
            return refuse(
                Result.MERCHANT_MISMATCH, f"TID {terminal.tid} belongs to merchant {terminal.mid}, not {mid}"
            )
        merchant = ctx.merchant
        if merchant is None:
            return refuse(Result.MERCHANT_UNUSABLE, f"merchant {terminal.mid} is not registered")
        if not merchant.usable:
            reason = _because(profiles.merchant(merchant.mid).reason)
            return refuse(Result.MERCHANT_UNUSABLE, f"merchant {merchant.mid} {merchant.status}{reason}")
        refusal = kind_refusal(ctx, env, terminal)
        if refusal is not None:
            return refuse(Result.TXN_NOT_ALLOWED, refusal)
        if profiles.params_stale(terminal.tid, terminal.mid):
            terminal.pending.add(ProcessingRequirement.PARAMS)
        return ok(f"terminal and merchant {merchant.mid} active")


class CheckDevice(Step):
    """The device serial in field 62 is the one bound to the terminal and the device is
    in service; at sign-in, the app version is at least the policy's minimum (07)."""

    def __init__(self, *, optional: bool) -> None:
        self.optional = optional

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        profiles = env.registry.profiles
        signing_in = ctx.route is not None and ctx.route.name.startswith("sign_in")
        try:
            info = read_device_info(ctx)
        except (Iso8583Error, ValueError) as exc:
            return refuse(Result.FORMAT_ERROR, f"field 62 is not device information: {exc}")
        serial = (info or {}).get("SN", "")
        if not serial and signing_in:
            if profiles.policies.signin_requires_serial:
                return refuse(Result.DEVICE_MISMATCH,
                              "sign-in without device serial (62 SN) refused: policy signin_requires_serial")
            return await self._check_version(ctx, env, terminal, (info or {}).get("AV"), "no device serial sent")
        if info is None:
            if self.optional:
                return ok("no device information sent")
            return refuse(Result.FORMAT_ERROR, "device information (62) missing")
        if serial != terminal.serial:
            return refuse(
                Result.DEVICE_MISMATCH,
                f"device {serial or '(no SN)'} is not the one bound to TID {terminal.tid} ({terminal.serial})",
            )
        device_status = profiles.devices.get(serial, "active")
        if device_status != "active":
            return refuse(Result.DEVICE_MISMATCH, f"device {serial} is {device_status} in the asset list")
        versions = ", ".join(f"{k} {info[k]}" for k in ("MD", "AV", "FV") if info.get(k))
        said = f"device {serial}" + (f" ({versions})" if versions else "")
        if not signing_in:
            return ok(said)
        return await self._check_version(ctx, env, terminal, info.get("AV"), said)

    @staticmethod
    async def _check_version(ctx: Context, env: HostEnv, terminal: TerminalRecord, reported: str | None,
                             said: str) -> Outcome:
        profiles = env.registry.profiles
        profile = profiles.terminal(terminal.tid)
        if reported and profile is not None and profile.app_version != reported:
            await asyncio.to_thread(profiles.record_app_version, terminal.tid, reported)
        minimum = profiles.policies.min_app_version
        version = reported or (profile.app_version if profile is not None else None)
        if minimum and version and version_below(version, minimum):
            source = "field 62 AV" if reported else "last reported"
            return refuse(Result.APP_UPDATE_REQUIRED,
                          f"app version {version} ({source}) below minimum {minimum} (policy min_app_version)")
        return ok(said)


class CheckSignIn(Step):
    """The terminal holds working keys from a sign-in that is still valid (else 77)."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        signon = terminal.signon
        if signon is None:
            ctx.processing = ProcessingRequirement.SIGNIN
            if terminal.signed_off_at is not None:
                return refuse(Result.NOT_SIGNED_IN, f"terminal signed off at {terminal.signed_off_at:%Y-%m-%d %H:%M:%S}")
            return refuse(Result.NOT_SIGNED_IN, "terminal has no working keys: not signed in")
        age = (ctx.now - signon.issued_at).total_seconds()
        if age > env.config.session_ttl_s:
            ctx.processing = ProcessingRequirement.SIGNIN
            return refuse(
                Result.NOT_SIGNED_IN,
                f"sign-in of {signon.issued_at:%Y-%m-%d %H:%M:%S} expired ({age:.0f}s > {env.config.session_ttl_s:g}s)",
            )
        if env.config.signin_expires_at_day_change and signon.issued_at.astimezone().date() != ctx.now.astimezone().date():
            ctx.processing = ProcessingRequirement.SIGNIN
            return refuse(Result.NOT_SIGNED_IN, f"sign-in of {signon.issued_at:%Y-%m-%d} is from another day")
        ctx.signon = signon
        return ok(f"signed in at {signon.issued_at:%Y-%m-%d %H:%M:%S}")


class VerifyMac(Step):
    """Field 64 is the CUP ECB MAC of the body under the session MAK (else A0)."""

    def __init__(self, *, required: bool) -> None:
        self.required = required

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        mac_hex = ctx.get("64")
        if not mac_hex:
            if self.required and env.config.require_mac:
                return refuse(Result.MAC_INVALID, "MAC (field 64) missing")
            return ok("no MAC sent, none required")
        signon, frame = ctx.signon, ctx.frame
        assert signon is not None and frame is not None
        data = mac_input(frame.body)
        if env.hsm.verify_mac(signon.mak, data, bytes.fromhex(mac_hex), "cup_ecb", signon.alg):
            return ok("MAC verified")
        return refuse(
            Result.MAC_INVALID,
            f"MAC does not match the MAK issued at {signon.issued_at:%Y-%m-%d %H:%M:%S}",
        )
