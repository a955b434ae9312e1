"""``posdoctor diagnose`` / ``diagnose --fleet`` / ``fix``: the JSON contract, the human
output in both languages, and bad input, on live evidence (a terminal whose TMK differs)."""

from __future__ import annotations

import json

import typer
from doctorkit import DoctorSite, dsite, tid_of  # noqa: F401
from typer.testing import CliRunner

from posdoctor.cli import doctor

APP = typer.Typer()
doctor.register(APP)
RUNNER = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = RUNNER.invoke(APP, list(args))
    return result.exit_code, result.output


async def _broken_tmk(site: DoctorSite) -> str:
    await site.healthy_fleet()
    await site.broken_tmk(4, byte=5, mask=0x20)
    return str(site.store.engine.url)


async def test_diagnose_json_contract(dsite: DoctorSite) -> None:
    url = await _broken_tmk(dsite)
    code, out = run("diagnose", tid_of(4), "--json", "--db", url)
    assert code == 0, out
    data = json.loads(out)
    assert set(data) == {"terminal", "symptoms", "findings"} and data["terminal"] == tid_of(4)
    top = data["findings"][0]
    assert {"cause", "confidence", "evidence", "remedy", "fix"} <= set(top)
    assert top["cause"] == "keys.tmk_mismatch" and 0 < top["confidence"] <= 1
    assert any("keys.check_failed" in item for item in top["evidence"])
    assert top["remedy"]["explanation"]["zh"] and top["remedy"]["explanation"]["en"]
    assert top["fix"]["name"] == "reissue_tmk"
    assert top["fix"]["command"] == f"posdoctor fix {tid_of(4)} --cause keys.tmk_mismatch --apply"


async def test_diagnose_human_output_in_both_languages(dsite: DoctorSite) -> None:
    url = await _broken_tmk(dsite)
    code, zh = run("diagnose", tid_of(4), "--db", url)
    assert code == 0 and "主密钥不一致" in zh and "posdoctor fix" in zh and "证据" in zh
    code, en = run("diagnose", tid_of(4), "--lang", "en", "--db", url)
    assert code == 0 and "Master key differs" in en and "Evidence" in en


async def test_fleet_json_and_view(dsite: DoctorSite) -> None:
    url = await _broken_tmk(dsite)
    code, out = run("diagnose", "--fleet", "--json", "--db", url)
    assert code == 0, out
    data = json.loads(out)
    assert data["by_cause"] == {"keys.tmk_mismatch": 1}
    assert [t["terminal"] for t in data["terminals"]] == [tid_of(4)]
    code, view = run("diagnose", "--fleet", "--lang", "en", "--db", url)
    assert code == 0 and "keys.tmk_mismatch" in view and "Failing terminals: 1" in view


async def test_fix_dry_run_then_apply(dsite: DoctorSite) -> None:
    url = await _broken_tmk(dsite)
    code, out = run("fix", tid_of(4), "--json", "--db", url)
    assert code == 0, out
    dry = json.loads(out)
    assert dry["dry_run"] and dry["cause"] == "keys.tmk_mismatch" and dry["action"] == "reissue_tmk"
    code, out = run("fix", tid_of(4), "--apply", "--json", "--db", url)
    done = json.loads(out)
    assert code == 0 and done["ok"] and done["check"]["new_tmk"]
    code, human = run("fix", tid_of(4), "--cause", "status.merchant_frozen", "--db", url)
    assert code == 0 and "需人工" in human


async def test_bad_input_is_a_clear_error(dsite: DoctorSite) -> None:
    url = str(dsite.store.engine.url)
    code, out = run("diagnose", "12AB", "--json", "--db", url)
    assert code == 2 and json.loads(out)["ok"] is False
    code, out = run("diagnose", "--json", "--db", url)
    assert code == 2 and "--fleet" in json.loads(out)["error"]["en"]
    code, out = run("fix", tid_of(1), "--cause", "no.such", "--json", "--db", url)
    assert code == 2 and "unknown cause" in json.loads(out)["error"]["en"]
    code, out = run("diagnose", tid_of(1), "--since", "yesterday", "--json", "--db", url)
    assert code == 2
    code, out = run("fix", "99999999", "--json", "--db", url)
    assert code == 3


async def test_a_trouble_put_right_since_is_shown_as_such_and_left_out_of_the_fleet(dsite: DoctorSite) -> None:
    from doctorkit import PIN, card

    await dsite.healthy_fleet()
    app = await dsite.initialised(4)
    assert not (await app.sale(card(), 1000, PIN)).ok  # 请签到后再做交易
    assert (await app.sign_in()).ok and (await app.sale(card(), 1000, PIN)).ok
    dsite.report(4)
    url = str(dsite.store.engine.url)
    code, out = run("diagnose", tid_of(4), "--json", "--db", url)
    top = json.loads(out)["findings"][0]
    assert code == 0 and (top["cause"], top["resolved"]) == ("op.not_signed_in", True)
    code, zh = run("diagnose", tid_of(4), "--db", url)
    assert code == 0 and "已当场解决" in zh
    code, en = run("diagnose", tid_of(4), "--lang", "en", "--db", url)
    assert code == 0 and "put right since; working now" in en
    code, fleet = run("diagnose", "--fleet", "--json", "--db", url)
    assert code == 0 and tid_of(4) not in [t["terminal"] for t in json.loads(fleet)["terminals"]]
