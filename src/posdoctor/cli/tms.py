"""CLI: ``firmware``, ``campaign`` and ``credential`` (device credentials of the TMS API).

Messages are Chinese and English; ``--json`` prints what scripts read. Errors go to
stderr (with ``--json``: ``{"ok": false, "error": {...}}`` on stdout) with exit codes
2 invalid input, 3 not found, 4 already exists, 1 anything else.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from posdoctor.store import AlreadyExists, InvalidValue, NotFound, Store, StoreError, open_store
from posdoctor.store.config import load_settings
from posdoctor.store.models_tms import CampaignTarget
from posdoctor.tms import campaigns as camp
from posdoctor.tms.credentials import issue_credential, revoke_credential
from posdoctor.tms.firmware import DEFECTS, add_package, build_package
from posdoctor.tms.signing import public_key_hex, sign_package

EXIT_ERROR, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_EXISTS = 1, 2, 3, 4
DbOption = Annotated[str | None, typer.Option("--db", help="数据库地址 / database URL")]
JsonOption = Annotated[bool, typer.Option("--json", help="输出JSON / print JSON for scripts")]
ListOption = Annotated[str | None, typer.Option(help="逗号分隔 / comma separated")]

firmware_app = typer.Typer(help="固件包 / firmware packages", no_args_is_help=True)
campaign_app = typer.Typer(help="升级活动 / upgrade campaigns", no_args_is_help=True)
credential_app = typer.Typer(help="终端设备凭证 / TMS API device credentials", no_args_is_help=True)
_stderr = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the posdoctor app."""
    app.add_typer(firmware_app, name="firmware")
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(credential_app, name="credential")


# --- plumbing ------------------------------------------------------------------------
class CliError(Exception):
    def __init__(self, zh: str, en: str, code: int = EXIT_ERROR) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en, self.code = zh, en, code


def _exit_code(err: Exception) -> int:
    codes = {InvalidValue: EXIT_INVALID, NotFound: EXIT_NOT_FOUND, AlreadyExists: EXIT_EXISTS}
    return getattr(err, "code", None) if isinstance(err, CliError) else next(
        (code for kind, code in codes.items() if isinstance(err, kind)), EXIT_ERROR)


_ENTITY_ZH = {"campaign": "升级活动", "package": "固件包", "terminal": "终端"}


def _fail(err: Exception, as_json: bool) -> NoReturn:
    zh, en = getattr(err, "zh", str(err)), getattr(err, "en", str(err))
    if isinstance(err, NotFound) and err.entity in _ENTITY_ZH:
        zh = f"{_ENTITY_ZH[err.entity]} {err.key} 不存在"
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": {"type": type(err).__name__, "zh": zh, "en": en}},
                              ensure_ascii=False))
    else:
        typer.echo(f"{zh} / {en}", err=True)
    raise typer.Exit(_exit_code(err))


@contextmanager
def _session(db: str | None, as_json: bool) -> Iterator[tuple[Store, Path]]:
    """The store (migrated) and POSDOCTOR_HOME; expected errors become messages."""
    try:
        home = load_settings().ensure_home()
        store = open_store(db, home=home)
        try:
            yield store, home
        finally:
            store.close()
    except (StoreError, CliError) as err:
        _fail(err, as_json)
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        _fail(CliError(f"数据库无法访问: {reason}", f"database unavailable: {reason}"), as_json)


def _emit(as_json: bool, data: Any, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, default=str))
    else:
        for line in lines:
            typer.echo(line)


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"无法读取 {path}: {exc.strerror}", f"cannot read {path}: {exc.strerror}") from None


# --- firmware ------------------------------------------------------------------------
def _package_json(package: Any) -> dict[str, Any]:
    return {"version": package.version, "models": package.models, "from_versions": package.from_versions,
            "size": package.size, "sha256": package.sha256, "signature": package.signature,
            "settle_first": package.settle_first, "resets": package.resets,
            "defect": package.manifest.get("defect"), "file": package.filename}


@firmware_app.command("add", help="登记并签名固件包 / register and sign a package file")
def firmware_add(
    file: Annotated[Path, typer.Argument(help="固件包文件 / package file")],
    version: Annotated[str, typer.Option("--version", help="版本 / version")],
    models: Annotated[str, typer.Option("--models", help="适用机型,逗号分隔 / models, comma separated")],
    from_versions: Annotated[str | None, typer.Option("--from", help="可升级的来源版本 / may upgrade from")] = None,
    settle_first: Annotated[bool, typer.Option("--settle-first", help="安装前须先结算 / settle before install")] = False,
    resets: Annotated[str | None, typer.Option("--resets", help="重置项 config,keys,batch,params / what it resets")] = None,
    db: DbOption = None, as_json: JsonOption = False,
) -> None:
    with _session(db, as_json) as (store, home):
        data = _read_file(file)
        with _stderr.status("校验并签名固件包 / checking and signing the package"):
            package = add_package(store, home, data, version=version, models=_split(models),
                                  from_versions=_split(from_versions), settle_first=settle_first,
                                  resets=_split(resets))
    _emit(as_json, {"ok": True, **_package_json(package)},
          [f"固件包 {version} 已登记 / package {version} registered: {package.size} bytes, "
           f"sha256 {package.sha256}"])


@firmware_app.command("list", help="列出固件包 / list packages")
def firmware_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    with _session(db, as_json) as (store, _home):
        rows = [_package_json(p) for p in store.list_packages()]
    _emit(as_json, rows, [f"{r['version']:<12} {','.join(r['models']):<16} {r['size']:>9}  "
                          f"{r['sha256'][:16]}  {r['defect'] or ''}" for r in rows] or ["(无 / none)"])


@firmware_app.command("build", help="生成演示固件包 / build a demo package file")
def firmware_build(
    out: Annotated[Path, typer.Argument(help="输出文件 / output file")],
    version: Annotated[str, typer.Option("--version", help="版本 / version")],
    models: Annotated[str, typer.Option("--models", help="适用机型 / models")],
    from_versions: Annotated[str | None, typer.Option("--from", help="来源版本 / from versions")] = None,
    settle_first: Annotated[bool, typer.Option("--settle-first")] = False,
    resets: Annotated[str | None, typer.Option("--resets")] = None,
    defect: Annotated[str | None, typer.Option("--defect", help=f"故意的缺陷 / deliberate defect: {'|'.join(DEFECTS)}")] = None,
    requires_model: Annotated[str | None, typer.Option("--requires-model")] = None,
    size: Annotated[int, typer.Option("--size", min=1, max=64 * 1024 * 1024, help="应用大小 / app bytes")] = 65536,
    as_json: JsonOption = False,
) -> None:
    """Writes OUT and OUT.sig (hex Ed25519 signature under this home's TMS key)."""
    try:
        home = load_settings().ensure_home()
        data = build_package(version, _split(models), from_versions=_split(from_versions),
                             settle_first=settle_first, resets=_split(resets), defect=defect,
                             requires_model=requires_model, payload_size=size)
        signature = sign_package(data, home=home).hex()
        out.write_bytes(data)
        Path(f"{out}.sig").write_text(signature + "\n", encoding="ascii")
    except StoreError as err:
        _fail(err, as_json)
    except OSError as exc:
        _fail(CliError(f"无法写入 {out}: {exc.strerror}", f"cannot write {out}: {exc.strerror}"), as_json)
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    _emit(as_json, {"ok": True, "file": str(out), "version": version, "size": len(data),
                    "sha256": digest, "signature": signature, "defect": defect},
          [f"已生成 {out} / built {out}: {len(data)} bytes, sha256 {digest}"])


@firmware_app.command("pubkey", help="TMS 签名公钥 / the TMS signing public key (hex)")
def firmware_pubkey() -> None:
    try:
        typer.echo(public_key_hex(load_settings().ensure_home()))
    except StoreError as err:
        _fail(err, False)


# --- campaigns -----------------------------------------------------------------------
def _target_counts(store: Store, campaign_id: int) -> dict[str, int]:
    with store.tms_read() as session:
        return dict(session.execute(select(CampaignTarget.state, func.count()).where(
            CampaignTarget.campaign_id == campaign_id).group_by(CampaignTarget.state)).all())


def _campaign_lines(summary: dict[str, Any]) -> list[str]:
    zh = camp.STATE_ZH.get(summary["state"], summary["state"])
    return [f"活动 {summary['id']} {summary['name']} -> {summary['version']}: {zh} / {summary['state']}"
            + (f" ({summary['reason']})" if summary["reason"] else ""),
            f"  目标 targeted {summary['targeted']}  成功 succeeded {summary['succeeded']}  "
            f"失败 failed {summary['failed']}  回滚 rolled_back {summary['rolled_back']}  wave {summary['wave']}"]


@campaign_app.command("create", help="创建升级活动(草稿) / create a draft campaign")
def campaign_create(
    name: Annotated[str, typer.Argument(help="名称 / name")],
    version: Annotated[str, typer.Option("--version", help="目标版本 / package version")],
    models: ListOption = None, mids: ListOption = None, tids: ListOption = None,
    from_versions: Annotated[str | None, typer.Option("--from-versions", help="来源版本 / from versions")] = None,
    canary: Annotated[float, typer.Option("--canary", help="金丝雀比例% / canary percent")] = 10.0,
    threshold: Annotated[float, typer.Option("--threshold", help="失败率阈值 / failure rate to halt")] = 0.2,
    min_sample: Annotated[int, typer.Option("--min-sample", help="判定前最少完成数 / finished before judging")] = 5,
    window: Annotated[str, typer.Option("--window", help="维护窗口(终端本地时间) / HH:MM-HH:MM")] = "00:00-23:59",
    stagger_minutes: Annotated[int, typer.Option("--stagger-minutes", help="错峰分钟 / stagger period")] = 30,
    db: DbOption = None, as_json: JsonOption = False,
) -> None:
    settings = camp.CampaignSettings(canary, threshold, min_sample, window, stagger_minutes)
    with _session(db, as_json) as (store, _home):
        campaign = camp.create_campaign(store, name, version, models=_split(models), mids=_split(mids),
                                        tids=_split(tids), from_versions=_split(from_versions),
                                        settings=settings)
    summary = camp.campaign_summary(campaign)
    _emit(as_json, {"ok": True, **summary}, _campaign_lines(summary))


@campaign_app.command("list", help="列出升级活动 / list campaigns")
def campaign_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    with _session(db, as_json) as (store, _home):
        rows = [camp.campaign_summary(c) for c in store.list_campaigns()]
    _emit(as_json, rows, [line for row in rows for line in _campaign_lines(row)] or ["(无 / none)"])


@campaign_app.command("status", help="活动状态与目标分布 / campaign state and targets by state")
def campaign_status(campaign_id: Annotated[int, typer.Argument(help="活动号 / campaign id")],
                    targets: Annotated[bool, typer.Option("--targets", help="列出每个终端 / list every target")] = False,
                    db: DbOption = None, as_json: JsonOption = False) -> None:
    with _session(db, as_json) as (store, _home):
        summary = camp.campaign_summary(store.get_campaign(campaign_id))
        rows = [{"tid": t.tid, "wave": t.wave, "state": t.state, "from_version": t.from_version,
                 "last_step": t.last_step, "reason": t.reason, "attempts": t.attempts}
                for t in store.campaign_targets(campaign_id)] if targets else []
        summary["targets"] = dict(Counter(r["state"] for r in rows)) if targets else _target_counts(store, campaign_id)
    lines = _campaign_lines(summary) + [f"  {state}: {n}" for state, n in sorted(summary["targets"].items())]
    if targets:
        summary["target_list"] = rows
        lines += [f"  {r['tid']} w{r['wave']} {r['state']:<11} {r['last_step'] or '':<10} {r['reason'] or ''}"
                  for r in rows]
    _emit(as_json, summary, lines)


@campaign_app.command("start", help="选定目标并开始金丝雀批次 / select targets and open the canary wave")
def campaign_start(campaign_id: Annotated[int, typer.Argument()], db: DbOption = None,
                   as_json: JsonOption = False) -> None:
    with _session(db, as_json) as (store, _home):
        with _stderr.status("选择目标终端 / selecting target terminals"):
            campaign = camp.start_campaign(store, campaign_id)
    summary = camp.campaign_summary(campaign)
    _emit(as_json, {"ok": True, **summary}, _campaign_lines(summary))


def _operator_action(action: str, campaign_id: int, reason: str | None, db: str | None, as_json: bool) -> None:
    with _session(db, as_json) as (store, _home):
        campaign = camp.change_campaign(store, campaign_id, action, reason)
    summary = camp.campaign_summary(campaign)
    _emit(as_json, {"ok": True, **summary}, _campaign_lines(summary))


ReasonOption = Annotated[str | None, typer.Option("--reason", help="原因 / reason")]


@campaign_app.command("halt", help="熔断(停止下发) / halt: stop offering")
def campaign_halt(campaign_id: int, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _operator_action("halt", campaign_id, reason, db, as_json)


@campaign_app.command("pause", help="暂停 / pause")
def campaign_pause(campaign_id: int, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _operator_action("pause", campaign_id, reason, db, as_json)


@campaign_app.command("resume", help="恢复 / resume a halted or paused campaign")
def campaign_resume(campaign_id: int, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _operator_action("resume", campaign_id, reason, db, as_json)


@campaign_app.command("cancel", help="取消 / cancel")
def campaign_cancel(campaign_id: int, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _operator_action("cancel", campaign_id, reason, db, as_json)


@campaign_app.command("rollback", help="回滚:已升级终端退回原版本 / roll back upgraded terminals")
def campaign_rollback(campaign_id: int, reason: ReasonOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    _operator_action("rollback", campaign_id, reason, db, as_json)


# --- credentials ---------------------------------------------------------------------
@credential_app.command("issue", help="签发设备凭证(旧凭证失效) / issue a device credential (revokes the old)")
def credential_issue(
    tid: Annotated[str, typer.Argument(help="终端号 / TID")],
    out: Annotated[Path | None, typer.Option("--out", help="写入文件(0600) / write to this file (0600)")] = None,
    db: DbOption = None, as_json: JsonOption = False,
) -> None:
    """Without --out the credential is printed once (it is stored only hashed)."""
    with _session(db, as_json) as (store, _home):
        token = issue_credential(store, tid)
        if out is not None:
            try:
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(token + "\n")
            except OSError as exc:
                revoke_credential(store, tid)
                raise CliError(f"无法写入 {out}: {exc.strerror}(凭证已吊销)",
                               f"cannot write {out}: {exc.strerror} (credential revoked)") from None
    data: dict[str, Any] = {"ok": True, "tid": tid, "file": str(out) if out else None}
    if out is None:
        data["credential"] = token
    _emit(as_json, data, [f"终端 {tid} 的设备凭证已写入 {out} / credential of {tid} written to {out}"]
          if out else [token])


@credential_app.command("revoke", help="吊销设备凭证 / revoke the device credential")
def credential_revoke(tid: Annotated[str, typer.Argument()], db: DbOption = None, as_json: JsonOption = False) -> None:
    with _session(db, as_json) as (store, _home):
        count = revoke_credential(store, tid)
    _emit(as_json, {"ok": True, "tid": tid, "revoked": count},
          [f"已吊销 {count} 个凭证 / revoked {count} credential(s) of {tid}"])
