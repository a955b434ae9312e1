"""Key steps: TMK download, working keys at sign-in, sign-off."""

from __future__ import annotations

import logging

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.crypto.hsm import WrappedKey
from posdoctor.host.context import Context
from posdoctor.host.emv import MERCHANT_NAME_BYTES, truncate_gbk
from posdoctor.host.keyservice import KeyServiceError
from posdoctor.host.pipeline import HostEnv, Outcome, Step, ok, refuse
from posdoctor.host.records import SignOn
from posdoctor.host.results import Result
from posdoctor.iso8583.fields import Field60, encode_key_block
from posdoctor.iso8583.framing import ProcessingRequirement
from posdoctor.store.records import KeysIssued, KeysRetired, TerminalSignedIn

log = logging.getLogger(__name__)
WORKING_KEY_KINDS = ("PIK", "MAK", "TDK")

SIGN_IN_KEYS: dict[str, tuple[Algorithm, int, bool]] = {
    # 60.3: (algorithm, key length, with TDK)
    "001": (Algorithm.TDES, 8, False),
    "003": (Algorithm.TDES, 16, False),
    "004": (Algorithm.TDES, 16, True),
    "006": (Algorithm.SM4, 16, True),
}


async def issue_keys(env: HostEnv, tmk: WrappedKey, count: int, length: int,
                     alg: Algorithm) -> list[tuple[WrappedKey, bytes]]:
    """New working keys under the TMK: from the HSM process when one serves this kind
    (`posdoctor serve`), else, or if it fails, from the host's own SoftHSM."""
    service = env.keys
    if service is not None and service.serves(tmk, length, alg):
        try:
            return await service.issue_under(tmk, count)
        except KeyServiceError as exc:
            log.warning("HSM process could not issue keys (%s); making them here", exc)
    return env.hsm.issue_under(tmk, count, length, alg)


class DownloadTmk(Step):
    """Answer 62 = TMK under the device's transport key + KCV; provision 41/42."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        if terminal.tk is None or terminal.tmk is None:
            return refuse(Result.KEY_UNAVAILABLE, f"no transport key/TMK provisioned for TID {terminal.tid}")
        encrypted = env.hsm.export_under(terminal.tk, terminal.tmk)
        kcv = env.hsm.key_check_value(terminal.tmk)
        ctx.answer_fields.update({"62": (encrypted + kcv).hex().upper(), "41": terminal.tid, "42": terminal.mid})
        if ctx.merchant is not None:
            ctx.answer_fields["43"] = truncate_gbk(ctx.merchant.name, MERCHANT_NAME_BYTES)
        return ok(f"TMK (KCV {kcv.hex().upper()}) sent under the transport key")


class IssueWorkingKeys(Step):
    """New PIK/MAK(/TDK) under the TMK with check values in 62; host batch in 60.2."""

    def __init__(self, nmi: str) -> None:
        self.nmi = nmi
        self.alg, self.length, with_tdk = SIGN_IN_KEYS[nmi]
        self.kinds = WORKING_KEY_KINDS if with_tdk else WORKING_KEY_KINDS[:2]

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        tmk = terminal.tmk
        if tmk is None:
            return refuse(Result.KEY_UNAVAILABLE, f"no TMK provisioned for TID {terminal.tid}")
        if tmk.alg is not self.alg:
            return refuse(
                Result.KEY_UNAVAILABLE,
                f"sign-in {self.nmi} needs a {self.alg.name} TMK; TID {terminal.tid} has a {tmk.alg.name} TMK",
            )
        issued = await issue_keys(env, tmk, len(self.kinds), self.length, self.alg)
        keys = {kind: key for kind, (key, _) in zip(self.kinds, issued, strict=True)}
        check_values = {kind: key.kcv for kind, key in keys.items()}
        block = encode_key_block([(encrypted, key.kcv) for key, encrypted in issued])
        signon = SignOn(self.nmi, self.alg, keys["PIK"], keys["MAK"], keys.get("TDK"), ctx.now)
        terminal.signon, terminal.signed_off_at = signon, None
        terminal.pending.discard(ProcessingRequirement.SIGNIN)
        ctx.signon = signon
        if "TDK" not in keys:  # an earlier sign-in's TDK must not outlive these keys
            ctx.writes.append(KeysRetired(terminal.tid, ("TDK",)))
        ctx.writes.append(KeysIssued(terminal.tid, keys, ctx.now))
        ctx.writes.append(TerminalSignedIn(terminal.tid, ctx.now))
        ctx.answer_fields["62"] = block.hex().upper()
        ctx.answer_fields["60"] = Field60(txn_type="00", batch=f"{terminal.batch_no:06d}", nmi=self.nmi).encode()
        kcvs = " ".join(f"{kind} {cv.hex().upper()}" for kind, cv in check_values.items())
        return ok(f"{self.alg.name} keys issued, batch {terminal.batch_no:06d}, KCV {kcvs}")


class EndSignOn(Step):
    """Sign-off: the working keys stop being valid."""

    async def run(self, ctx: Context, env: HostEnv) -> Outcome:
        terminal = ctx.terminal
        assert terminal is not None
        terminal.signon, terminal.signed_off_at = None, ctx.now
        ctx.writes.append(KeysRetired(terminal.tid, WORKING_KEY_KINDS))
        return ok("signed off; working keys retired")
