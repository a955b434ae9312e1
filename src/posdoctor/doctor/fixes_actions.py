"""The automatic fix actions (``doctor/fixes.py`` runs them): plan, snapshot, apply, check.

Each acts through the owning service (TMS parameters, campaigns, payouts, the host
change feed ``store.notify_host``) and checks the result from the store afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from posdoctor.store.models import Card, Event, Reversal, TerminalKey, Txn

PARAMS_DIGIT = "1"  # ProcessingRequirement.PARAMS
CAPK_DIGIT = "4"
AID_DIGIT = "5"


class FixError(Exception):
    def __init__(self, en: str, zh: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.en, self.zh = en, zh


@dataclass(slots=True)
class FixEnv:
    store: Any
    hsm: Any = None
    actor: str = "doctor"
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


Plan = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FixAction:
    name: str
    zh: str
    en: str
    plan: Callable[[FixEnv, str, str], Plan]
    apply: Callable[[FixEnv, str, Plan], dict[str, Any]]
    check: Callable[[FixEnv, str, Plan, dict[str, Any]], dict[str, Any]]
    snapshot: Callable[[FixEnv, str, Plan], dict[str, Any]] = lambda env, tid, plan: {}


def _blocked(en: str, zh: str) -> Plan:
    return {"blocked": True, "en": en, "zh": zh}


def _host_changes_since(env: FixEnv, last_id: int, tid: str | None = None) -> list[Any]:
    return [c for c in env.store.host_changes_after(last_id) if tid is None or c.tid in (tid, None)]


def _feed_snapshot(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    return {"last_change": env.store.last_host_change_id()}


def _feed_check(kinds: tuple[str, ...]) -> Callable[[FixEnv, str, Plan, dict[str, Any]], dict[str, Any]]:
    def check(env: FixEnv, tid: str, plan: Plan, before: dict[str, Any]) -> dict[str, Any]:
        changes = _host_changes_since(env, before.get("last_change", 0), tid)
        seen = sorted({c.kind for c in changes})
        ok = all(k in seen for k in kinds)
        return {"ok": ok, "host_changes": seen,
                "en": f"host change feed holds {', '.join(seen) or 'nothing'} for {tid}",
                "zh": f"主机变更队列中有终端{tid}的{', '.join(seen) or '无'}"}
    return check


def _terminal(env: FixEnv, tid: str) -> Any:
    terminal = env.store.get_terminal(tid)
    return terminal


# --- force_sign_in --------------------------------------------------------------------
def _plan_sign_in(env: FixEnv, tid: str, cause: str) -> Plan:
    _terminal(env, tid)
    return {"en": f"retire the working keys of {tid} at the host so its next message gets 77 and it signs in again",
            "zh": f"在主机上作废终端{tid}的工作密钥, 使其下一笔交易收到77并重新签到"}


def _apply_sign_in(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    env.store.notify_host("require_sign_in", tid=tid)
    return {"notified": ["require_sign_in"]}


# --- reissue_tmk ------------------------------------------------------------------------
def _active_key(env: FixEnv, tid: str, kind: str) -> Any:
    with env.store.engine.connect() as conn:
        return conn.execute(select(TerminalKey.id, TerminalKey.kcv, TerminalKey.alg, TerminalKey.length,
                                   TerminalKey.issued_at)
                            .where(TerminalKey.tid == tid, TerminalKey.kind == kind, TerminalKey.active)
                            .order_by(TerminalKey.id.desc())).first()


def _plan_reissue(env: FixEnv, tid: str, cause: str) -> Plan:
    _terminal(env, tid)
    if _active_key(env, tid, "TK") is None:
        return _blocked(f"{tid} has no transport key: the TMK must be injected in the key room",
                        f"终端{tid}无传输密钥, 需在密钥室注入主密钥")
    if env.hsm is None:
        return _blocked("no HSM (local master key) available to generate keys", "没有可用的HSM(本地主密钥)")
    tmk = _active_key(env, tid, "TMK")
    return {"en": f"generate a new TMK for {tid} ({tmk.alg if tmk else 'TDES'}), deliver it by remote key download under "
                  "the transport key, and require a new sign-in",
            "zh": f"为终端{tid}生成新主密钥, 通过远程密钥下载(传输密钥加密)下发, 并要求重新签到",
            "old_kcv": tmk.kcv.hex().upper() if tmk else None}


def _apply_reissue(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    from posdoctor.crypto.ciphers import Algorithm

    current = _active_key(env, tid, "TMK")
    alg = Algorithm[current.alg] if current is not None else Algorithm.TDES
    tmk = env.hsm.generate_key(current.length if current is not None else 16, alg)
    env.store.set_terminal_keys(tid, {"TMK": tmk})
    env.store.notify_host("registry", tid=tid)
    env.store.notify_host("require_sign_in", tid=tid)
    return {"new_kcv": tmk.kcv.hex().upper(), "notified": ["registry", "require_sign_in"]}


def _check_reissue(env: FixEnv, tid: str, plan: Plan, before: dict[str, Any]) -> dict[str, Any]:
    tmk = _active_key(env, tid, "TMK")
    new = tmk is not None and tmk.kcv.hex().upper() != plan.get("old_kcv")
    feed = _feed_check(("registry", "require_sign_in"))(env, tid, plan, before)
    ok = new and feed["ok"]
    return {"ok": ok, "new_tmk": new, "kcv": tmk.kcv.hex().upper() if tmk else None, "host_changes": feed["host_changes"],
            "en": "the store holds a new active TMK and the host was told" if ok else "the new TMK is not in place",
            "zh": "库中已有新的主密钥且已通知主机" if ok else "新主密钥未生效"}


# --- push_comm_params / push_params ---------------------------------------------------------
def _assigned_endpoint(env: FixEnv, tid: str) -> tuple[str, str, str | None] | None:
    _version, params = env.store.effective_params(tid)
    if params.get("90") and params.get("91"):
        return params["90"], params["91"], params.get("92")
    from posdoctor.doctor.evidence import default_window
    from posdoctor.doctor.fleet import build_fleet_context

    fleet = build_fleet_context(env.store, default_window(env.store))
    if fleet.assigned_comm is None:
        return None
    host, port = fleet.assigned_comm
    return host, str(port), fleet.assigned_tpdu


def _plan_comm(env: FixEnv, tid: str, cause: str) -> Plan:
    _terminal(env, tid)
    endpoint = _assigned_endpoint(env, tid)
    if endpoint is None:
        return _blocked("no assigned host endpoint is known (set template parameters 90/91)",
                        "不知道应配置的主机地址(请设置模板参数90/91)")
    host, port, tpdu = endpoint
    values = {"90": host, "91": port}
    if tpdu:
        values["92"] = tpdu
    return {"values": values,
            "en": f"set {tid}'s parameters host {host} port {port}" + (f" TPDU {tpdu}" if tpdu else "") +
                  " and ask it to download parameters",
            "zh": f"将终端{tid}的参数设为主机{host}端口{port}" + (f" TPDU {tpdu}" if tpdu else "") + ", 并要求其下载参数"}


def _apply_params(env: FixEnv, tid: str, plan: Plan) -> dict[str, Any]:
    from posdoctor.tms.params import set_param

    versions = {}
    for tag, value in plan.get("values", {}).items():
        versions[tag] = set_param(env.store, tag, value, tid=tid, actor=env.actor, reason="posdoctor fix")
    env.store.notify_host("params", tid=tid)
    for digit in plan.get("requirements", [PARAMS_DIGIT]):
        env.store.notify_host("pending", tid=tid, value=digit)
    return {"param_versions": versions, "notified": ["params", "pending"]}


def _check_params(env: FixEnv, tid: str, plan: Plan, before: dict[str, Any]) -> dict[str, Any]:
    _version, params = env.store.effective_params(tid)
    wanted = plan.get("values", {})
    in_place = all(params.get(tag) == value for tag, value in wanted.items())
    feed = _feed_check(("pending",))(env, tid, plan, before)
    ok = in_place and feed["ok"]
    return {"ok": ok, "params": {tag: params.get(tag) for tag in wanted}, "host_changes": feed["host_changes"],
            "en": "parameters in place and a parameter download is pending" if ok else "parameters not in place",
            "zh": "参数已生效并已要求终端下载参数" if ok else "参数未生效"}


def _plan_push_params(env: FixEnv, tid: str, cause: str) -> Plan:
    _terminal(env, tid)
    digits = [PARAMS_DIGIT, CAPK_DIGIT, AID_DIGIT] if cause == "params.download_incomplete" else [PARAMS_DIGIT]
    return {"values": {}, "requirements": digits,
            "en": f"ask {tid} (in the header of its next answer) to download parameters again"
                  + (" and the CAPK/AID tables" if len(digits) > 1 else ""),
            "zh": f"在下一笔应答中要求终端{tid}重新下载参数" + ("及公钥/IC卡参数" if len(digits) > 1 else "")}


from posdoctor.doctor.fixes_money import (  # noqa: E402  (actions on campaigns, payouts, money)
    apply_campaign,
    apply_release,
    apply_reversal,
    check_campaign,
    check_release,
    check_reversal,
    plan_campaign,
    plan_release,
    plan_reversal,
    snapshot_reversal,
)

ACTIONS: dict[str, FixAction] = {
    "force_sign_in": FixAction("force_sign_in", "要求重新签到", "force a new sign-in", _plan_sign_in,
                               _apply_sign_in, _feed_check(("require_sign_in",)), _feed_snapshot),
    "reissue_tmk": FixAction("reissue_tmk", "远程重新下发主密钥", "re-issue the master key by remote key download",
                             _plan_reissue, _apply_reissue, _check_reissue, _feed_snapshot),
    "push_comm_params": FixAction("push_comm_params", "下发正确的通讯参数", "push the correct comm parameters",
                                  _plan_comm, _apply_params, _check_params, _feed_snapshot),
    "push_params": FixAction("push_params", "要求重新下载参数", "push parameters again", _plan_push_params,
                             _apply_params, _check_params, _feed_snapshot),
    "halt_campaign": FixAction("halt_campaign", "暂停升级活动", "halt the upgrade campaign", plan_campaign("halt"),
                               apply_campaign, check_campaign),
    "rollback_campaign": FixAction("rollback_campaign", "回退升级活动", "roll the upgrade campaign back",
                                   plan_campaign("rollback"), apply_campaign, check_campaign),
    "deliver_reversal": FixAction("deliver_reversal", "在主机侧完成冲正", "complete the pending reversal at the host",
                                  plan_reversal, apply_reversal, check_reversal, snapshot_reversal),
    "release_payout": FixAction("release_payout", "解除暂扣的结算款", "release the held payout", plan_release,
                                apply_release, check_release),
}

__all__ = ["ACTIONS", "FixAction", "FixEnv", "FixError", "Card", "Event", "Reversal", "Txn"]
