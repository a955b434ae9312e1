"""Lifecycle against the scripted host: TMK download, sign-in key checks, downloads,
processing requirements, codes that end the sign-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from termhost import MAK, PAN, PIN, TK, TMK, Reply, ScriptedHost, Script, answer, key_block, make_app, well_behaved

from posdoctor.crypto.ciphers import Algorithm, encrypt_ecb
from posdoctor.crypto.kcv import key_check_value
from posdoctor.iso8583.fields import (
    decode_device_info,
    decode_tlv,
    encode_emv_list,
    encode_key_block,
    encode_param_tags,
)
from posdoctor.terminal import Card

Start = Callable[[Script], Awaitable[ScriptedHost]]
CARD = Card(PAN)


def tmk_answer(request: dict[str, str], *, tmk: bytes = TMK, kcv: bytes | None = None) -> Reply:
    block = encrypt_ecb(Algorithm.TDES, TK, tmk) + (kcv if kcv is not None else key_check_value(tmk))
    return Reply(answer(request, **{"62": block.hex().upper(), "42": "898100000000099", "43": "测试商户"}))


async def test_tmk_download_installs_the_tmk(scripted: Start) -> None:
    host = await scripted(tmk_answer)
    app = make_app(host.port, signed_in=False)
    del app.state.keys["TMK"]
    app.state.mid = ""  # a factory-fresh terminal learns its merchant from the answer
    app.inject_transport_key(TK)
    outcome = await app.download_tmk()
    assert outcome.ok and outcome.detail["kcv"] == key_check_value(TMK).hex().upper()
    assert app.keys.clear("TMK") == TMK
    assert (app.state.mid, app.state.merchant_name) == ("898100000000099", "测试商户")
    request = host.requests[0]
    assert request["60"] == "00000000401" and request["41"] == app.state.tid and "42" not in request
    assert decode_device_info(bytes.fromhex(request["62"]))["SN"] == app.state.serial


async def test_tmk_check_value_failure_keeps_no_tmk(scripted: Start) -> None:
    host = await scripted(lambda request: tmk_answer(request, kcv=b"\x00\x00\x00\x00"))
    app = make_app(host.port, signed_in=False)
    del app.state.keys["TMK"]
    app.state.mid = ""
    app.inject_transport_key(TK)
    outcome = await app.download_tmk()
    assert (outcome.ok, outcome.message_zh) == (False, "密钥校验失败，请重新下载主密钥")
    assert "TMK" not in app.state.keys


async def test_sign_in_installs_checked_keys_and_adopts_batch(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port, signed_in=False)
    outcome = await app.sign_in()
    assert outcome.ok and app.state.signed_in and app.state.batch == "000042"
    assert app.keys.clear("MAK") == MAK
    assert outcome.events[-1].detail["previous_batch"] == "000001"
    assert host.requests[0]["60"] == "00000001004"


async def test_sign_in_check_value_failure_stays_signed_out(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request, **{"62": key_block(corrupt_cv="MAK")})))
    app = make_app(host.port)
    outcome = await app.sign_in()
    assert (outcome.ok, outcome.message_zh, outcome.detail["key"]) == (False, "密钥校验失败，请重新下载主密钥", "MAK")
    assert not app.state.signed_in and not app.state.has_key("PIK") and not app.state.has_key("MAK")
    assert (await app.sale(CARD, 100, PIN)).message_zh == "请签到后再做交易"


async def test_wrong_tmk_on_the_terminal_fails_every_check_value(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port, signed_in=False)
    app.inject_tmk(bytes(reversed(TMK)))
    outcome = await app.sign_in()
    assert outcome.code == "keys.check_failed" and outcome.detail["key"] == "PIK"


async def test_sign_in_mode_001_single_length_keys(scripted: Start) -> None:
    single = {"pik": bytes.fromhex("1313131313131313"), "mak": bytes.fromhex("2525252525252525")}

    def script(request: dict[str, str]) -> Reply:
        parts = [(encrypt_ecb(Algorithm.TDES, TMK, k), key_check_value(k)) for k in single.values()]
        return Reply(answer(request, **{"62": encode_key_block(parts).hex().upper()}), mac_key=single["mak"])

    host = await scripted(script)
    app = make_app(host.port, signed_in=False)
    app.state.settings.signin_mode = "001"
    assert (await app.sign_in()).ok
    assert app.keys.clear("MAK") == single["mak"] and not app.state.has_key("TDK")
    assert host.requests[0]["60"][8:] == "001"
    assert (await app.sale(CARD, 100, PIN)).ok
    assert host.requests[1]["53"][:2] == "20"  # ISO 0, single DES


async def test_sign_in_decline(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request, "97")))
    outcome = await make_app(host.port).sign_in()
    assert (outcome.ok, outcome.response_code, outcome.message_zh) == (False, "97", "终端未登记")


async def test_77_signs_out_and_requirement_3_signs_in_again(scripted: Start) -> None:
    def script(request: dict[str, str]) -> Reply:
        if request["t"] == "0200":
            return Reply(answer(request, "77"), processing="3")
        return well_behaved(request)

    host = await scripted(script)
    app = make_app(host.port)
    outcome = await app.sale(CARD, 100, PIN)
    assert (outcome.ok, outcome.response_code, outcome.message_zh) == (False, "77", "请重新签到再进行交易")
    assert [f.operation for f in outcome.follow_ups] == ["sign_in"] and outcome.follow_ups[0].ok
    assert app.state.signed_in and host.mtis() == ["0200", "0800"]
    assert "host.sign_in_again" in [e.code for e in outcome.events]


async def test_a0_signs_out(scripted: Start) -> None:
    host = await scripted(lambda request: Reply(answer(request, "A0"), mac_key=bytes(16)))
    app = make_app(host.port)
    outcome = await app.sale(CARD, 100, PIN)
    assert (outcome.response_code, outcome.message_zh) == ("A0", "MAC校验错,请重新签到")
    assert not app.state.signed_in and app.state.pending_reversal is None


def param_answer(request: dict[str, str]) -> Reply:
    tags = encode_param_tags({"12": "45", "22": "新名字", "23": "2", "26": "11111111"})
    return Reply(answer(request, **{"62": tags.hex().upper()}))


async def test_requirement_1_runs_the_parameter_download(scripted: Start) -> None:
    def script(request: dict[str, str]) -> Reply:
        nmi = request.get("60", "")[8:11]
        if nmi == "364":
            return param_answer(request)
        return Reply(answer(request), processing="1" if nmi == "301" else "0")

    host = await scripted(script)
    app = make_app(host.port)
    outcome = await app.echo()
    assert outcome.ok and [f.operation for f in outcome.follow_ups] == ["param_download"]
    assert host.requests[1]["60"][8:] == "364" and host.requests[2]["60"][8:] == "361"
    assert app.state.params_complete and app.state.merchant_name == "新名字"
    assert app.state.comm.receive_timeout_s == 45 and app.state.settings.reversal_retries == 2
    assert app.state.requirements == []


async def test_parameter_nmi_360_is_configurable(scripted: Start) -> None:
    host = await scripted(param_answer)
    app = make_app(host.port)
    app.state.settings.param_download_nmi = "360"
    assert (await app.download_params()).ok
    assert [r["60"][8:] for r in host.requests] == ["360", "361"]


CAPKS = [[("9F06", bytes.fromhex("A000000333")), ("9F22", bytes([i])), ("DF02", bytes([i]) * 8)] for i in (1, 2, 3)]


def emv_script(request: dict[str, str]) -> Reply:
    """Lists two CAPKs with status 2 (more), then the third with status 1."""
    nmi = request["60"][8:11]
    if nmi == "372":
        already = int(bytes.fromhex(request["62"])[1:].decode())
        page = CAPKS[:2] if already == 0 else CAPKS[2:]
        status = "2" if already == 0 else "1"
        listing = encode_emv_list(status, [item for entry in page for item in entry[:2]])
        return Reply(answer(request, **{"62": listing.hex().upper()}))
    if nmi == "370":
        asked = decode_tlv(bytes.fromhex(request["62"]), field="62")
        entry = next(e for e in CAPKS if e[:2] == asked)
        return Reply(answer(request, **{"62": encode_emv_list("1", entry).hex().upper()}))
    return Reply(answer(request))


async def test_capk_download_pages_and_stores_every_entry(scripted: Start) -> None:
    host = await scripted(emv_script)
    app = make_app(host.port)
    outcome = await app.download_capk()
    assert outcome.ok and outcome.detail["count"] == 3
    assert [r["60"][8:] for r in host.requests] == ["372", "372", "370", "370", "370", "371"]
    assert app.emv_entries("capk") == CAPKS and app.state.emv.capk_complete


async def test_interrupted_download_is_incomplete(scripted: Start) -> None:
    def script(request: dict[str, str]) -> object:
        if request["60"][8:11] == "370":
            return Reply(answer(request, "96"))
        return emv_script(request)

    host = await scripted(script)
    app = make_app(host.port)
    app.state.emv.capk_complete = True
    outcome = await app.download_capk()
    assert not outcome.ok and not app.state.emv.capk_complete


async def test_status_upload_on_requirement_2(scripted: Start) -> None:
    def script(request: dict[str, str]) -> Reply:
        return Reply(answer(request), processing="2" if request["60"][8:11] == "301" else "0")

    host = await scripted(script)
    app = make_app(host.port)
    app.device.set_fault("printer", "paper_out")
    outcome = await app.echo()
    assert [f.operation for f in outcome.follow_ups] == ["status_upload"]
    upload = host.requests[1]
    assert upload["t"] == "0820" and upload["60"][8:] == "362"
    assert b"0510000001" in bytes.fromhex(upload["62"])  # printer fault flag set, params not loaded


async def test_sign_off_clears_the_sign_in(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port)
    outcome = await app.sign_off()
    assert outcome.ok and not app.state.signed_in and host.requests[0]["60"][8:] == "002"


async def test_events_carry_tid_and_both_languages(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port)
    outcome = await app.echo()
    event = outcome.events[-1]
    assert (event.tid, event.kind, event.code) == (app.state.tid, "echo", "ok.echo")
    assert event.message_zh == "回响测试成功" and event.message_en == "Echo test succeeded"
    assert event.to_json()["at"] == event.at.isoformat()


async def test_event_ring_buffer_is_bounded(scripted: Start) -> None:
    host = await scripted()
    app = make_app(host.port)
    app.events.capacity = 3
    for _ in range(5):
        await app.echo()
    assert len(app.state.events) == 3
