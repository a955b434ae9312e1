"""Lifecycle flows: self-check, key injection, TMK download, parameter/CAPK/AID download,
sign-in, sign-off, echo, status upload.

Each ``_flow_*`` coroutine takes the operation's `Channel` first; `PaymentApp` wraps them
with `AppCore.operate` (events, outcome, saving).
"""

from __future__ import annotations

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.iso8583.errors import DecodeError
from posdoctor.iso8583.fields import STATUS_TAGS, Field60, decode_emv_list, decode_key_block, decode_param_tags, \
    WorkingKeyBlock, decode_tlv, encode_param_tags, encode_tlv
from posdoctor.iso8583.framing import ProcessingRequirement as PR
from posdoctor.terminal import builders
from posdoctor.terminal.checks import APPROVED
from posdoctor.terminal.core import AppCore
from posdoctor.terminal.device import NON_BLOCKING_FAULTS, PERIPHERAL_MESSAGES, Peripheral
from posdoctor.terminal.errors import CommError, KeyCheckError, LocalRefusal
from posdoctor.terminal.events import EventKind
from posdoctor.terminal.keys import SIGNIN_ALGORITHMS
from posdoctor.terminal.messages import M
from posdoctor.terminal.outcome import Outcome
from posdoctor.terminal.transport import Answer, Channel
from posdoctor.terminal.vault import VaultError

__all__ = ["LifecycleFlows", "EMV_KINDS"]

TMK_LENGTH = 16
KCV_LENGTH = 4
EMV_KINDS = {
    # kind: (query nmi, entry nmi, end nmi, event kind, success message, requirement)
    "capk": ("372", "370", "371", EventKind.CAPK_DOWNLOAD, M.CAPK_DOWNLOADED, PR.CAPK),
    "aid": ("382", "380", "381", EventKind.AID_DOWNLOAD, M.AID_DOWNLOADED, PR.AID),
}
LIST_MORE = "2"
LIST_NONE = "0"


def _field62(answer: Answer) -> bytes:
    value = answer.msg.get("62")
    if not value:
        raise CommError(M.UNPACK_ERROR, stage="unpack", field="62", reason="answer has no field 62")
    return bytes.fromhex(value)


def _group_entries(kind: str, items: list[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
    """A query answer's flat TLV list -> one identity per entry (each starts at 9F06)."""
    entries: list[list[tuple[str, bytes]]] = []
    for tag, value in items:
        if tag == "9F06" or not entries:
            entries.append([])
        entries[-1].append((tag, value))
    return entries


class LifecycleFlows(AppCore):
    # --- power-on self-check ----------------------------------------------------------
    def run_self_check(self) -> Outcome:
        """Check every peripheral and that the stored keys open; one event per finding."""
        with self.events.capture() as captured:
            failed = []
            for result in self.device.self_check():
                if not result.ok:
                    self.events.record(EventKind.SELF_CHECK, PERIPHERAL_MESSAGES[result.peripheral],
                                       peripheral=result.peripheral.value, fault=result.fault)
                    if result.fault not in NON_BLOCKING_FAULTS.get(result.peripheral, frozenset()):
                        failed.append(result.peripheral.value)
            if self.device.tampered:
                self.events.record(EventKind.SELF_CHECK, M.TAMPERED, cause_hint="hw.tamper")
                failed.append("tamper")
            unreadable = self._unreadable_keys()
            if unreadable:
                self.events.record(EventKind.SELF_CHECK, M.KEY_STORE_UNREADABLE, keys=unreadable)
            ok = not failed and not unreadable
            message = M.SELF_CHECK_OK if ok else M.SELF_CHECK_FAILED
            self.events.record(EventKind.SELF_CHECK, message, failed=failed or None,
                               results={r.peripheral.value: r.fault or "ok" for r in self.device.self_check()})
        outcome = Outcome.of(EventKind.SELF_CHECK.value, ok, message, failed=failed or None,
                             unreadable_keys=unreadable or None)
        outcome.events = list(captured)
        return outcome

    def _unreadable_keys(self) -> list[str]:
        bad = []
        for kind, sealed in self.state.keys.items():
            try:
                self.vault.open(sealed.blob, kind)
            except VaultError:
                bad.append(kind)
        return bad

    # --- keys from the key room ------------------------------------------------------------
    def _key_alg(self) -> Algorithm:
        return SIGNIN_ALGORITHMS[self.state.settings.signin_mode]

    def inject_key(self, kind: str, clear: bytes) -> Outcome:
        """Key room injection of the transport key (TK) or a TMK; returns its check value."""
        if kind not in ("TK", "TMK"):
            raise ValueError("only TK and TMK are injected")
        sealed = self.keys.store(kind, clear, self._key_alg())
        if kind == "TMK":
            self.state.sign_out()
        message = M.TMK_INJECTED if kind == "TMK" else M.TK_INJECTED
        event = self.events.record(EventKind.KEY_INJECTION, message, key=kind, kcv=sealed.kcv)
        self._save_at_end(EventKind.KEY_INJECTION.value)
        outcome = Outcome.of(EventKind.KEY_INJECTION.value, True, message, key=kind, kcv=sealed.kcv)
        outcome.events = [event]
        return outcome

    # --- TMK download 0800/401 -----------------------------------------------------------
    async def _flow_tmk(self, channel: Channel) -> Outcome:
        if not self.state.has_key("TK"):
            raise LocalRefusal(M.NO_TRANSPORT_KEY)
        request = builders.tmk_download(self.state.next_stan(), self.ident(), self.device_info())
        answer = await self.exchange(channel, request, kind="tmk_download")
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer)
        block = _field62(answer)
        if len(block) != TMK_LENGTH + KCV_LENGTH:
            raise CommError(M.UNPACK_ERROR, stage="unpack", field="62",
                            reason=f"TMK block is {len(block)} bytes, expecting {TMK_LENGTH + KCV_LENGTH}")
        clear = self.keys.decrypt_under("TK", block[:TMK_LENGTH])
        self.keys.store_checked("TMK", clear, self._key_alg(), block[TMK_LENGTH:])
        self._adopt_identity(answer)
        self.state.sign_out()
        kcv = self.keys.kcv("TMK")
        self.events.record(EventKind.TMK_DOWNLOAD, M.TMK_DOWNLOADED, kcv=kcv, mid=self.state.mid)
        return Outcome.of(EventKind.TMK_DOWNLOAD.value, True, M.TMK_DOWNLOADED, response_code=APPROVED, kcv=kcv)

    def _adopt_identity(self, answer: Answer) -> None:
        """The TMK answer provisions the MID and merchant name (the TID is this terminal's)."""
        msg = answer.msg
        if msg.get("42"):
            self.state.mid = msg["42"]
        if msg.get("43"):
            self.state.merchant_name = msg["43"]

    # --- parameters 0800/360|364, 361 ------------------------------------------------------
    async def _flow_params(self, channel: Channel) -> Outcome:
        self.state.params_complete = False
        request = builders.management("0800", self.state.settings.param_download_nmi, self.state.next_stan(),
                                      self.ident())
        answer = await self.exchange(channel, request, kind="param_download")
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer)
        try:
            params = decode_param_tags(_field62(answer))
        except DecodeError as exc:
            raise CommError(M.UNPACK_ERROR, stage="unpack", field="62", reason=exc.reason) from None
        self.state.params = params
        self._apply_params(params)
        await self._end_download(channel, "361", "param_download")
        self.state.params_complete = True
        self.satisfied(PR.PARAMS)
        self.events.record(EventKind.PARAM_DOWNLOAD, M.PARAMS_DOWNLOADED, count=len(params))
        return Outcome.of(EventKind.PARAM_DOWNLOAD.value, True, M.PARAMS_DOWNLOADED, count=len(params))

    def _apply_params(self, params: dict[str, str]) -> None:
        """Tags the app acts on: 12 receive timeout, 22 merchant name, 23 retries (reversal)."""
        state = self.state
        if params.get("12", "").isdigit() and int(params["12"]) > 0:
            state.comm.receive_timeout_s = float(int(params["12"]))
        if params.get("22"):
            state.merchant_name = params["22"]
        if params.get("23", "").isdigit() and int(params["23"]) > 0:
            state.settings.reversal_retries = int(params["23"])

    async def _end_download(self, channel: Channel, nmi: str, kind: str) -> None:
        request = builders.management("0800", nmi, self.state.next_stan(), self.ident())
        answer = await self.exchange(channel, request, kind=kind)
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer, step=nmi)

    # --- CAPK / AID ------------------------------------------------------------------------
    async def _flow_emv(self, channel: Channel, kind: str) -> Outcome:
        query_nmi, entry_nmi, end_nmi, event_kind, done, requirement = EMV_KINDS[kind]
        tables = self.state.emv
        setattr(tables, f"{kind}_complete", False)
        identities = await self._query_emv(channel, kind, query_nmi)
        entries: list[str] = []
        for identity in identities:
            request = builders.emv_entry(entry_nmi, self.state.next_stan(), self.ident(), identity)
            answer = await self.exchange(channel, request, kind=event_kind.value)
            if answer.msg.get("39") != APPROVED:
                raise self.declined(answer, step=entry_nmi)
            entries.append(self._emv_entry(answer).hex().upper())
        await self._end_download(channel, end_nmi, event_kind.value)
        setattr(tables, kind, entries)
        setattr(tables, f"{kind}_complete", True)
        self.satisfied(requirement)
        self.events.record(event_kind, done, count=len(entries))
        return Outcome.of(event_kind.value, True, done, count=len(entries))

    async def _query_emv(self, channel: Channel, kind: str, nmi: str) -> list[list[tuple[str, bytes]]]:
        identities: list[list[tuple[str, bytes]]] = []
        while True:
            request = builders.emv_query(nmi, self.state.next_stan(), self.ident(), len(identities))
            answer = await self.exchange(channel, request, kind=f"{kind}_query")
            if answer.msg.get("39") != APPROVED:
                raise self.declined(answer, step=nmi)
            try:
                status, items = decode_emv_list(_field62(answer))
            except DecodeError as exc:
                raise CommError(M.UNPACK_ERROR, stage="unpack", field="62", reason=exc.reason) from None
            if status == LIST_NONE:
                return identities
            found = _group_entries(kind, items)
            identities.extend(found)
            if status != LIST_MORE or not found:
                return identities

    @staticmethod
    def _emv_entry(answer: Answer) -> bytes:
        try:
            _status, entry = decode_emv_list(_field62(answer))
            return encode_tlv(entry, field="62")
        except DecodeError as exc:
            raise CommError(M.UNPACK_ERROR, stage="unpack", field="62", reason=exc.reason) from None

    def emv_entries(self, kind: str) -> list[list[tuple[str, bytes]]]:
        """The stored CAPK or AID entries, decoded."""
        return [decode_tlv(bytes.fromhex(raw), field="62") for raw in getattr(self.state.emv, kind)]

    # --- sign-in / sign-off / echo ------------------------------------------------------
    async def _flow_sign_in(self, channel: Channel) -> Outcome:
        self.require_tmk()
        state = self.state
        nmi = state.settings.signin_mode
        info = self.device_info() if state.settings.signin_device_info else None
        request = builders.sign_in(state.next_stan(), self.ident(), nmi, self.operator_number(), info)
        answer = await self.exchange(channel, request, kind="sign_in")
        if answer.msg.get("39") != APPROVED:
            state.sign_out()
            raise self.declined(answer)
        try:
            block = decode_key_block(nmi, _field62(answer))
            batch = Field60.decode(answer.msg.get("60", "")).batch if answer.msg.get("60") else state.batch
        except DecodeError as exc:
            raise CommError(M.UNPACK_ERROR, stage="unpack", field=exc.field, reason=exc.reason) from None
        self._install_working_keys(block)
        previous, state.batch_no = state.batch_no, int(batch)
        state.signed_in, state.signed_in_at = True, self.clock()
        self.satisfied(PR.SIGNIN)
        kcvs = {kind: self.keys.kcv(kind) for kind in ("PIK", "MAK", "TDK") if state.has_key(kind)}
        self.events.record(EventKind.SIGN_IN, M.SIGNED_IN, nmi=nmi, batch=state.batch,
                           previous_batch=f"{previous:06d}" if previous != state.batch_no else None, kcv=kcvs)
        return Outcome.of(EventKind.SIGN_IN.value, True, M.SIGNED_IN, response_code=APPROVED, batch=state.batch)

    def _install_working_keys(self, block: WorkingKeyBlock) -> None:
        """Decrypt each working key under the TMK and check it; any failure: signed out."""
        self.state.sign_out()
        alg = self._key_alg()
        wanted = [("PIK", block.pik, block.pik_cv), ("MAK", block.mak, block.mak_cv)]
        if block.tdk is not None and block.tdk_cv is not None:
            wanted.append(("TDK", block.tdk, block.tdk_cv))
        try:
            for kind, encrypted, cv in wanted:
                self.keys.store_checked(kind, self.keys.decrypt_under("TMK", encrypted), alg, cv)
        except KeyCheckError:
            self.state.sign_out()
            raise

    async def _flow_sign_off(self, channel: Channel) -> Outcome:
        unsettled = self.state.unsettled()
        if unsettled:
            raise LocalRefusal(M.SETTLE_FIRST, unsettled=len(unsettled), cause_hint="op.settle_required")
        request = builders.sign_off(self.state.next_stan(), self.ident())
        answer = await self.exchange(channel, request, kind="sign_off")
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer)
        self.state.sign_out()
        self.events.record(EventKind.SIGN_OFF, M.SIGNED_OFF)
        return Outcome.of(EventKind.SIGN_OFF.value, True, M.SIGNED_OFF, response_code=APPROVED)

    async def _flow_echo(self, channel: Channel) -> Outcome:
        request = builders.echo(self.state.next_stan(), self.ident())
        answer = await self.exchange(channel, request, kind="echo")
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer)
        self.events.record(EventKind.ECHO, M.ECHO_OK)
        return Outcome.of(EventKind.ECHO.value, True, M.ECHO_OK, response_code=APPROVED)

    # --- status upload 0820/362 ------------------------------------------------------------
    def status_tags(self) -> dict[str, str]:
        state, device = self.state, self.device
        faults = device.faults
        flags = [Peripheral.PRINTER, Peripheral.CARD_READER, Peripheral.KEYPAD, Peripheral.STORAGE, Peripheral.POWER]
        digits = "".join("1" if p in faults else "0" for p in flags)
        digits += "1" if device.tampered else "0"
        digits += "0"  # network: we are talking, so it works
        digits += "0" if state.params_complete else "1"
        downloaded = state.params_complete and state.emv.capk_complete and state.emv.aid_complete
        return {"01": state.serial[:20], "02": state.model[:10], "03": state.app_version[:12],
                "04": state.firmware_version[:12], "05": digits, "10": "1" if downloaded else "0"}

    async def _flow_status(self, channel: Channel) -> Outcome:
        tags = encode_param_tags(self.status_tags(), STATUS_TAGS)
        request = builders.status_upload(self.state.next_stan(), self.ident(), tags)
        answer = await self.exchange(channel, request, kind=EventKind.STATUS_UPLOAD.value)
        if answer.msg.get("39") != APPROVED:
            raise self.declined(answer)
        self.satisfied(PR.STATUS)
        self.events.record(EventKind.STATUS_UPLOAD, M.STATUS_UPLOADED)
        return Outcome.of(EventKind.STATUS_UPLOAD.value, True, M.STATUS_UPLOADED, response_code=APPROVED)
