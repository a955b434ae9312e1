"""The emulator's upgrade agent: check, window, settle, download, verify, install, trial, commit.

    agent = UpgradeAgent(app, device, client, clock=None, home=home)
    result = await agent.poll()        # PollResult(status, step, reason, version)

One `poll()` asks the TMS for an offer (or resumes the job on storage) and takes it as far
as it can: respect the maintenance window and ``not_before`` (postpone), settle first when
the package says so, download in chunks with resume (the partial file and its offset
survive a power loss), verify sha256 and the Ed25519 signature with the TMS public key in
the terminal state, read the manifest (models, ``requires_model``, ``from_versions``),
install into the inactive slot, reboot into a trial of it, run the self-check and a test
sign-in, then commit or roll back by itself. Every step is reported to the TMS
(``upgrade_report``: step, ok, reason, versions, attempt) and recorded as a terminal event.

The job lives in ``TID.slots/upgrade.json``; the download in ``download.part`` +
``download.json``. Every durable write goes through the `CrashHook` seam, so the crash
test can cut the power at any of them and power the terminal on again from disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from posdoctor.terminal.app import PaymentApp
from posdoctor.terminal.core import local_now
from posdoctor.terminal.device import Device
from posdoctor.terminal.events import Clock, EventLog
from posdoctor.terminal.manifest import ManifestError, check_signature, read_manifest
from posdoctor.terminal.messages import Message
from posdoctor.terminal.slots import Crash, SlotStore, no_crash, slots_dir
from posdoctor.terminal.state import InstalledApp, TerminalState
from posdoctor.terminal.storage import TerminalFiles
from posdoctor.terminal.telemetry import attach_counters
from posdoctor.terminal.tmsclient import TmsClient, TmsError
from posdoctor.terminal.messages import UPGRADE_MESSAGES
from posdoctor.terminal.upgrade_job import DownloadFile, PollResult, UpgradeJob, UpgradeRecord, \
    job_key, not_before_passed, in_window, reset_terminal_data

__all__ = ["UpgradeAgent", "PollResult", "UpgradeJob", "UPGRADE_MESSAGES", "PAYMENT_APP", "in_window"]

EVENT_KIND = "upgrade"
PAYMENT_APP = "cup_payment"
CHUNK = 64 * 1024
MAX_ATTEMPTS = 3


class UpgradeAgent:
    def __init__(self, app_or_state: PaymentApp | TerminalState, device: Device, client: TmsClient,
                 clock: Clock | None = None, home: Path | str | None = None, *, crash: Crash = no_crash,
                 persist: Callable[[TerminalState], None] | None = None, chunk_size: int = CHUNK,
                 test_sign_in: bool = True, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.app = app_or_state if isinstance(app_or_state, PaymentApp) else None
        self.state: TerminalState = self.app.state if self.app else app_or_state  # type: ignore[assignment]
        self.device, self.client = device, client
        self.clock = clock or (self.app.clock if self.app else local_now)
        if home is None:
            raise ValueError("the upgrade agent needs the terminal's home (its slots live there)")
        self.home = Path(home)
        self.crash = crash
        self.persist = persist or (self.app.persist if self.app and self.app.persist else TerminalFiles(home).save)
        self.events = self.app.events if self.app else EventLog(
            self.state.tid, self.state.events, self.clock, capacity=self.state.settings.event_capacity)
        attach_counters(self.events, self.state)
        self.slots = SlotStore(slots_dir(self.home, self.state.tid), crash)
        self.download_file = DownloadFile(self.slots)
        self.chunk_size, self.test_sign_in, self.max_attempts = chunk_size, test_sign_in, max_attempts
        self.booted = False
        self.outbox: list[dict[str, Any]] = []
        self._postponed: set[tuple[str, str]] = set()

    # --- storage ---------------------------------------------------------------------------
    def save_state(self) -> None:
        self.crash("state:before")
        self.persist(self.state)
        self.crash("state:after")

    def record(self) -> UpgradeRecord:
        try:
            return UpgradeRecord.model_validate_json((self.slots.root / "upgrade.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return UpgradeRecord()

    def save_record(self, record: UpgradeRecord) -> None:
        self.slots.write("upgrade.json", record.model_dump_json().encode())

    # --- power ------------------------------------------------------------------------------
    def power_on(self) -> str:
        """Boot: the bootloader picks the slot; the state learns the running version."""
        known = self.slots.pointer() is not None
        self.slots.ensure_factory(self.state.app_version)
        boot = self.slots.boot()
        self.device.reboot()
        if known:
            self.state.count("reboot")
        self.set_running_version(boot.version)
        if boot.fallback:
            self.events.record(EVENT_KIND, UPGRADE_MESSAGES.BOOT_FALLBACK, slot=boot.slot, version=boot.version,
                               reason=boot.fallback)
        self.save_state()
        self.booted = True
        return boot.version

    def set_running_version(self, version: str) -> None:
        self.state.app_version = version
        for app in self.state.installed_apps:
            if app.name == PAYMENT_APP:
                app.version = version
                return
        self.state.installed_apps.insert(0, InstalledApp(name=PAYMENT_APP, version=version))

    # --- reporting ---------------------------------------------------------------------------
    async def report(self, job: UpgradeJob | None, step: str, ok: bool, reason: str | None = None, *,
                     campaign: int | str | None = None, from_version: str | None = None,
                     to_version: str | None = None) -> None:
        body = {"campaign": job.campaign if job else campaign, "step": step, "ok": ok,
                "from_version": job.from_version if job else from_version,
                "to_version": job.to_version if job else to_version, "reason": reason,
                "attempt": job.attempt if job else 1, "at": self.clock().isoformat()}
        self.outbox.append(body)
        await self.flush_reports()

    async def flush_reports(self) -> None:
        while self.outbox:
            try:
                await self.client.report_upgrade(self.outbox[0])
            except TmsError as exc:
                self.events.record("comm", exc.message, operation="upgrade_report", reason=exc.reason)
                return
            self.outbox.pop(0)

    def note(self, message: Message, **detail: Any) -> None:
        self.events.record(EVENT_KIND, message, **detail)

    # --- the poll ------------------------------------------------------------------------------
    async def poll(self) -> PollResult:
        if not self.booted:
            self.power_on()
        await self.flush_reports()
        record = self.record()
        job = record.job
        if job is not None and job.phase != "download":
            return await self.resume(record, job)
        try:
            offer = await self.client.check_upgrade(self.state.app_version, self.device.model)
        except TmsError as exc:
            self.events.record("comm", exc.message, operation="upgrade_check", reason=exc.reason)
            if job is not None:  # offline: the download in progress goes on
                return await self.resume(record, job)
            return PollResult("error", "check", exc.code)
        if job is not None:
            if _offers(offer, job):
                return await self.resume(record, job)
            self.withdraw(record, job)  # the campaign was halted, cancelled or changed
        if not offer:
            return PollResult("idle")
        if offer.get("action") == "rollback":
            return await self.ordered_rollback(offer)
        package = dict(offer.get("package") or {})
        version = str(package.get("version", ""))
        if not version or version == self.state.app_version:
            return PollResult("idle")
        key = job_key(offer.get("campaign"), version)
        if key in record.failed:
            return PollResult("failed", None, record.failed[key], version)
        job = UpgradeJob(campaign=offer.get("campaign"), from_version=self.state.app_version, to_version=version,
                         package=package | {"window": offer.get("window"), "not_before": offer.get("not_before")})
        if (postponed := await self.postponed(job)) is not None:
            return postponed
        record.job = job
        self.save_record(record)
        return await self.resume(record, job)

    def withdraw(self, record: UpgradeRecord, job: UpgradeJob) -> None:
        """Drop a job not installed yet whose offer the TMS no longer makes."""
        self.discard_download()
        record.job = None
        self.save_record(record)
        self.note(UPGRADE_MESSAGES.WITHDRAWN, version=job.to_version, campaign=job.campaign)

    async def postponed(self, job: UpgradeJob) -> PollResult | None:
        """Outside the window, before ``not_before``, or the settlement failed: postpone."""
        now = self.clock()
        reason = None
        if not in_window(job.package.get("window"), now):
            reason = "window"
        elif not not_before_passed(job.package.get("not_before"), now):
            reason = "not_before"
        elif job.package.get("settle_first") and self.needs_settlement():
            reason = await self.settle()
        if reason is None:
            return None
        if (job.to_version, reason) not in self._postponed:
            self._postponed.add((job.to_version, reason))
            self.note(UPGRADE_MESSAGES.POSTPONED, version=job.to_version, reason=reason)
            await self.report(job, "postpone", True, reason)
        return PollResult("postponed", "postpone", reason, job.to_version)

    def needs_settlement(self) -> bool:
        return bool(self.state.unsettled()) or self.state.pending_reversal is not None

    async def settle(self) -> str | None:
        """Settle the batch with the payment app; the reason to postpone when it fails."""
        if self.app is None:
            return "settle_failed:no_payment_app"
        if not self.state.signed_in:
            await self.app.sign_in()
        outcome = await self.app.settle()
        if outcome.ok:
            return None
        self.note(UPGRADE_MESSAGES.SETTLE_FAILED, code=outcome.code, response_code=outcome.response_code)
        return f"settle_failed:{outcome.code}"

    async def resume(self, record: UpgradeRecord, job: UpgradeJob) -> PollResult:
        running = self.state.app_version
        if job.phase == "rolling_back":
            return await self.finish_rollback(record, job)
        if running == job.to_version:
            if self.slots.in_trial():
                return await self.trial(record, job)
            return await self.committed(record, job)
        if job.phase == "trial":  # the trial boot ended without a commit (power lost): try again
            await self.report(job, "postpone", True, "trial_not_committed")
            job.attempt += 1
            if job.attempt > self.max_attempts:
                return await self.give_up(record, job, "trial_not_committed")
            job.phase = "installed"
            self.save_record(record)
        if job.phase == "installed" and job.slot and self.slots.info(job.slot) is not None:
            return await self.reboot_into(record, job)
        if (postponed := await self.postponed(job)) is not None:
            return postponed
        data = await self.download(record, job)
        if data is None:
            return PollResult("retry", "download", None, job.to_version)
        return await self.verify_and_install(record, job, data)

    # --- download ---------------------------------------------------------------------------
    async def download(self, record: UpgradeRecord, job: UpgradeJob) -> bytes | None:
        size, file = int(job.package.get("size", 0)), self.download_file
        offset = file.open(job.to_version, str(job.package.get("sha256")), size)
        while offset < size:
            end = min(offset + self.chunk_size, size) - 1
            try:
                chunk = await self.client.download(job.package, offset, end)
            except TmsError as exc:
                self.note(UPGRADE_MESSAGES.DOWNLOAD_FAILED, version=job.to_version, offset=offset, reason=exc.reason)
                await self.report(job, "download", False, f"{exc.code}:{exc.reason}")
                return None
            if not chunk or len(chunk) > end - offset + 1:
                self.note(UPGRADE_MESSAGES.DOWNLOAD_FAILED, version=job.to_version, offset=offset,
                          reason="bad chunk length")
                await self.report(job, "download", False, f"bad chunk length {len(chunk)} at {offset}")
                return None
            offset = file.append(offset, chunk)
        data = file.read()
        await self.report(job, "download", True)
        return data

    def discard_download(self) -> None:
        self.download_file.discard()

    # --- verify and install ----------------------------------------------------------------------
    def verification_error(self, job: UpgradeJob, data: bytes) -> str | None:
        if hashlib.sha256(data).hexdigest() != job.package.get("sha256"):
            return "sha256_mismatch"
        if not self.state.tms_public_key:
            return "no_tms_public_key"
        if not check_signature(self.state.tms_public_key, data, str(job.package.get("signature", ""))):
            return "bad_signature"
        return None

    def refusal(self, manifest: dict[str, Any]) -> str | None:
        model = self.device.model
        if model not in manifest.get("models", []) or manifest.get("requires_model") not in (None, model):
            return "incompatible_model"
        if manifest.get("from_versions") and self.state.app_version not in manifest["from_versions"]:
            return "from_version"
        return None

    async def verify_and_install(self, record: UpgradeRecord, job: UpgradeJob, data: bytes) -> PollResult:
        error = self.verification_error(job, data)
        manifest: dict[str, Any] = {}
        if error is None:
            try:
                manifest = read_manifest(data)
            except ManifestError as exc:
                error = f"manifest:{exc.reason}"
            else:
                if str(manifest.get("version")) != job.to_version:
                    error = "manifest:version_mismatch"
        if error is not None:
            return await self.verification_failed(record, job, error)
        await self.report(job, "verify", True)
        refusal = self.refusal(manifest)
        if refusal is not None:
            self.discard_download()
            self.note(UPGRADE_MESSAGES.REFUSED, version=job.to_version, reason=refusal, model=self.device.model)
            await self.report(job, "refused", False, refusal)
            return await self.give_up(record, job, refusal, status="refused")
        if manifest.get("settle_first") and self.needs_settlement():
            reason = await self.settle()
            if reason is not None:
                return PollResult("postponed", "postpone", reason, job.to_version)
        slot = "B" if self.slots.active() == "A" else "A"
        self.slots.install(slot, job.to_version, data, manifest, replaced=job.from_version)
        job.slot, job.manifest, job.phase = slot, manifest, "installed"
        self.save_record(record)
        self.discard_download()
        self.note(UPGRADE_MESSAGES.INSTALLED, version=job.to_version, slot=slot)
        await self.report(job, "install", True)
        return await self.reboot_into(record, job)

    async def verification_failed(self, record: UpgradeRecord, job: UpgradeJob, error: str) -> PollResult:
        """A checksum mismatch is downloaded again (``download`` not ok) up to the attempt
        limit; a bad signature or manifest, or the last attempt, is a ``verify`` failure."""
        self.discard_download()
        self.note(UPGRADE_MESSAGES.VERIFY_FAILED, version=job.to_version, reason=error, attempt=job.attempt)
        if error == "sha256_mismatch" and job.attempt < self.max_attempts:
            await self.report(job, "download", False, error)
            job.attempt += 1
            self.save_record(record)
            return PollResult("retry", "verify", error, job.to_version)
        await self.report(job, "verify", False, error)
        return await self.give_up(record, job, error)

    async def give_up(self, record: UpgradeRecord, job: UpgradeJob, reason: str, *,
                      status: str = "failed") -> PollResult:
        record.failed[job_key(job.campaign, job.to_version)] = reason
        record.job = None
        self.save_record(record)
        return PollResult(status, job.phase, reason, job.to_version)

    # --- reboot, trial, commit, rollback --------------------------------------------------------
    async def reboot_into(self, record: UpgradeRecord, job: UpgradeJob) -> PollResult:
        self.slots.activate_trial(job.slot or "B")
        job.phase = "trial"
        self.save_record(record)
        self.power_on()
        if self.state.app_version != job.to_version:  # the bootloader would not start it
            await self.report(job, "reboot", False, "slot_unreadable")
            return await self.fail_trial(record, job, "slot_unreadable")
        return await self.trial(record, job)

    async def trial(self, record: UpgradeRecord, job: UpgradeJob) -> PollResult:
        manifest = job.manifest
        self.apply_resets(manifest.get("resets", []))
        defect = manifest.get("defect")
        if defect == "crash":  # the new version dies on start; the watchdog reboots
            self.state.count("crash")
            self.state.count("watchdog")
            self.note(UPGRADE_MESSAGES.CRASHED, version=job.to_version)
            await self.report(job, "reboot", False, "crash")
            return await self.fail_trial(record, job, "crash")
        await self.report(job, "reboot", True)
        check_ok = (self.app.self_check().ok if self.app else True) and defect != "self_check"
        await self.report(job, "self_check", check_ok, None if check_ok else "self_check_failed")
        if not check_ok:
            self.note(UPGRADE_MESSAGES.SELF_CHECK_FAILED, version=job.to_version, defect=defect)
            return await self.fail_trial(record, job, "self_check")
        sign_in_error, skipped = await self.test_sign_in_error(manifest)
        await self.report(job, "sign_in", sign_in_error is None, sign_in_error or skipped)
        if sign_in_error is not None:
            self.note(UPGRADE_MESSAGES.SIGN_IN_FAILED, version=job.to_version, reason=sign_in_error)
            return await self.fail_trial(record, job, "sign_in")
        self.slots.commit()
        return await self.committed(record, job)

    async def test_sign_in_error(self, manifest: dict[str, Any]) -> tuple[str | None, str | None]:
        """(why the new version's test sign-in failed, why it was skipped): the sign-in is
        skipped without a payment app or host (``test_sign_in=False``) and after a package
        that resets keys or configuration (it cannot sign in before the terminal is set up
        again); a ``defect: sign_in`` build fails it without reaching the host."""
        if manifest.get("defect") == "sign_in":
            return "sign_in_failed:defective_build", None
        if self.app is None or not self.test_sign_in:
            return None, "skipped:no_host"
        if {"keys", "config"} & set(manifest.get("resets", [])):
            return None, "skipped:package_resets_keys_or_config"
        outcome = await self.app.sign_in()
        return (None, None) if outcome.ok else (f"sign_in_failed:{outcome.code}", None)

    def apply_resets(self, resets: list[str]) -> None:
        """What the new version's first start wipes (idempotent)."""
        if resets:
            reset_terminal_data(self.state, resets)
            self.note(UPGRADE_MESSAGES.RESET, resets=list(resets))
            self.save_state()

    async def fail_trial(self, record: UpgradeRecord, job: UpgradeJob, reason: str) -> PollResult:
        job.phase, job.reason = "rolling_back", reason
        self.save_record(record)
        return await self.finish_rollback(record, job)

    async def finish_rollback(self, record: UpgradeRecord, job: UpgradeJob) -> PollResult:
        if self.state.app_version == job.to_version:
            self.slots.rollback()
            self.power_on()
        reason = job.reason or "rolled_back"
        self.note(UPGRADE_MESSAGES.ROLLED_BACK, version=job.to_version, back_to=self.state.app_version, reason=reason)
        await self.report(job, "rollback", True, reason)
        await self.give_up(record, job, reason)
        return PollResult("rolled_back", "rollback", reason, job.to_version)

    async def committed(self, record: UpgradeRecord, job: UpgradeJob) -> PollResult:
        record.job = None
        self.save_record(record)
        self.note(UPGRADE_MESSAGES.COMMITTED, version=job.to_version, previous=job.from_version)
        await self.report(job, "commit", True)
        return PollResult("upgraded", "commit", None, job.to_version)

    async def ordered_rollback(self, offer: dict[str, Any]) -> PollResult:
        """The TMS asks for the previous version (campaign rolled back)."""
        running = self.slots.info(self.slots.active())
        spare = self.slots.info("B" if self.slots.active() == "A" else "A")
        current = self.state.app_version
        target = offer.get("to_version")  # null: the other slot
        if running is None or spare is None or running.replaced != spare.version or (target and target != spare.version):
            if ("rollback", current) not in self._postponed:
                self._postponed.add(("rollback", current))
                await self.report(None, "rollback", False, "previous_version_not_on_device",
                                  campaign=offer.get("campaign"), from_version=current, to_version=target)
            return PollResult("idle", "rollback", "nothing_to_roll_back")
        self.slots.rollback()
        self.power_on()
        self.note(UPGRADE_MESSAGES.ROLLBACK_ORDERED, version=self.state.app_version, previous=current)
        await self.report(None, "rollback", True, "ordered", campaign=offer.get("campaign"),
                          from_version=current, to_version=self.state.app_version)
        return PollResult("rolled_back", "rollback", "ordered", self.state.app_version)


def _offers(offer: dict[str, Any] | None, job: UpgradeJob) -> bool:
    """The TMS still offers the job's package in the job's campaign."""
    if not offer or offer.get("action", "upgrade") != "upgrade":
        return False
    package = offer.get("package") or {}
    return package.get("version") == job.to_version and offer.get("campaign") == job.campaign \
        and package.get("sha256") == job.package.get("sha256")
