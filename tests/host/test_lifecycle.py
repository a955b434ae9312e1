"""Management messages over loopback: TMK, sign-in, echo, sign-off, downloads, status."""

import pytest
from hostclient import TestTerminal
from hostsite import HOST_CONFIG, MID, PAN, PIN, SERIAL, TID

from posdoctor.crypto.ciphers import Algorithm
from posdoctor.host import provision_terminal
from posdoctor.iso8583.fields import STATUS_TAGS, Field60, decode_emv_list, decode_param_tags, encode_param_tags
from posdoctor.iso8583.framing import ProcessingRequirement


async def test_tmk_download_by_tid(site):
    terminal = site.terminal()
    answer = await terminal.download_tmk()
    assert answer.rc == "00"
    assert terminal.tmk == site.sheet.tmk
    assert (answer["41"], answer["42"], answer["43"]) == (TID, MID, "示例商户")


async def test_tmk_download_by_device_serial_provisions_tid_and_mid(site):
    terminal = site.terminal(tid="", mid="")
    answer = await terminal.download_tmk(with_ids=False)
    assert answer.rc == "00"
    assert (answer["41"], answer["42"]) == (TID, MID)


async def test_tmk_download_from_another_device_is_refused(site):
    answer = await site.terminal().download_tmk(serial="SN-SWAPPED")
    assert answer.rc == "08"
    assert "62" not in answer.msg


async def test_tmk_download_for_an_unknown_device(site):
    answer = await site.terminal(tid="", mid="").download_tmk(serial="SN-NOBODY", with_ids=False)
    assert answer.rc == "97"


@pytest.mark.parametrize(("nmi", "key_len", "with_tdk"), [("001", 8, False), ("003", 16, False), ("004", 16, True)])
async def test_sign_in_issues_keys_under_the_tmk(site, nmi, key_len, with_tdk):
    terminal = site.terminal()
    await terminal.download_tmk()
    answer = await terminal.sign_in(nmi)
    assert answer.rc == "00"
    assert len(terminal.mak) == key_len and len(terminal.pik) == key_len
    assert (terminal.tdk is not None) is with_tdk
    assert Field60.decode(answer["60"]).batch == "000001"
    assert answer["32"] == "00010000"
    assert (await terminal.sale(PAN, 100, PIN)).rc == "00"


async def test_sm4_sign_in_needs_and_uses_an_sm4_tmk(site):
    sheet = provision_terminal(site.store, site.hsm, "20000002", MID, "SN-SM4", "N910", alg=Algorithm.SM4)
    terminal = TestTerminal(site.address, "20000002", MID, "SN-SM4", sheet.tk, alg=Algorithm.SM4)
    assert (await terminal.download_tmk()).rc == "00"
    assert (await terminal.sign_in("006")).rc == "00"
    assert len(terminal.mak) == 16
    assert (await terminal.sale(PAN, 100)).rc == "00"  # SM4 MAC both ways (no PIN: 52 is 8 bytes)


async def test_sm4_sign_in_with_a_tdes_tmk_is_a_security_failure(site):
    terminal = site.terminal()
    await terminal.download_tmk()
    answer = await terminal.exchange(terminal.base("0800", "00", "006"))
    assert answer.rc == "A7"


async def test_a_new_sign_in_replaces_the_keys_at_once(site):
    terminal = site.terminal()
    await terminal.download_tmk()
    await terminal.sign_in()
    stale = terminal.mak
    await terminal.sign_in()
    assert terminal.mak != stale
    terminal.mak = stale
    assert (await terminal.sale(PAN, 100, check=False)).rc == "A0"


async def test_echo(signed_in):
    assert (await signed_in.management("0820", "301")).rc == "00"


async def test_sign_off_then_transactions_need_a_new_sign_in(signed_in):
    assert (await signed_in.management("0820", "002")).rc == "00"
    answer = await signed_in.sale(PAN, 100, PIN, check=False)
    assert answer.rc == "77"
    assert answer.frame.header.processing == str(int(ProcessingRequirement.SIGNIN))
    assert (await signed_in.sign_in()).rc == "00"
    assert (await signed_in.sale(PAN, 100, PIN)).rc == "00"


async def test_parameter_download_and_its_end_clear_the_request(site, signed_in):
    site.host.set_pending(TID, ProcessingRequirement.PARAMS)
    echo = await signed_in.management("0820", "301")
    assert echo.frame.header.processing == "1"
    answer = await signed_in.management("0800", "364")
    params = decode_param_tags(bytes.fromhex(answer["62"]))
    assert params["22"] == "示例商户"
    assert (params["90"], int(params["91"])) == site.address
    assert (await signed_in.management("0800", "361")).rc == "00"
    assert (await signed_in.management("0820", "301")).frame.header.processing == "0"


async def test_parameter_download_360_with_operator_overrides(make_site):
    site = await make_site(HOST_CONFIG.model_copy(update={"parameters": {"12": "45", "20": "1"}}))
    terminal = site.terminal()
    await terminal.download_tmk()
    await terminal.sign_in()
    params = decode_param_tags(bytes.fromhex((await terminal.management("0800", "360"))["62"]))
    assert (params["12"], params["20"], params["26"]) == ("45", "1", "11111111")


async def test_the_header_asks_for_sign_in_before_downloads(site, signed_in):
    site.host.set_pending(TID, ProcessingRequirement.CAPK)
    site.host.set_pending(TID, ProcessingRequirement.SIGNIN)
    assert (await signed_in.management("0820", "301")).frame.header.processing == "3"
    await signed_in.sign_in()
    assert (await signed_in.management("0820", "301")).frame.header.processing == "4"


@pytest.mark.parametrize(("query", "download", "end", "kind_tags"), [
    ("372", "370", "371", ("9F06", "9F22")), ("382", "380", "381", ("9F06",)),
])
async def test_capk_and_aid_download(signed_in, query, download, end, kind_tags):
    listing = await signed_in.management("0820", query)
    status, items = decode_emv_list(bytes.fromhex(listing["62"]))
    assert status == "1"
    entries = [items[i:i + len(kind_tags)] for i in range(0, len(items), len(kind_tags))]
    assert len(entries) == 3
    for entry in entries:
        assert tuple(tag for tag, _ in entry) == kind_tags
        answer = await signed_in.management("0800", download, **{"62": signed_in.emv_request(entry)})
        status, full = decode_emv_list(bytes.fromhex(answer["62"]))
        assert status == "1" and full[:len(entry)] == entry and len(full) > len(entry)
    assert (await signed_in.management("0800", end)).rc == "00"


async def test_unknown_capk_is_not_found(signed_in):
    request = signed_in.emv_request([("9F06", bytes.fromhex("A000000333")), ("9F22", b"\x77")])
    assert (await signed_in.management("0800", "370", **{"62": request})).rc == "25"


async def test_status_upload_becomes_an_event(site, signed_in):
    status = {"01": SERIAL, "02": "N910", "05": "00000010", "06": "087"}
    answer = await signed_in.management("0820", "362", **{"62": encode_param_tags(status, STATUS_TAGS).hex().upper()})
    assert answer.rc == "00"
    events = site.store.events(TID, kind="status_upload")
    assert len(events) == 1
    assert {k: events[0].detail[k] for k in status} == status


async def test_unreadable_status_upload_is_a_format_error(signed_in):
    answer = await signed_in.management("0820", "362", **{"62": b"ZZ??".hex().upper()})
    assert answer.rc == "30"


async def test_unknown_terminal_and_unusable_merchant(site):
    stranger = site.terminal(tid="99999999")
    stranger.tmk = site.sheet.tmk
    assert (await stranger.sign_in()).rc == "97"
    site.store.set_merchant_status(MID, "frozen", "risk")
    await site.host.invalidate()
    terminal = site.terminal()
    await terminal.download_tmk()
    answer = await terminal.sign_in()
    assert answer.rc == "03"


async def test_terminal_bound_to_another_merchant(site):
    terminal = site.terminal(mid="898100000000999")
    terminal.tmk = site.sheet.tmk
    answer = await terminal.sign_in()
    assert answer.rc == "03"


async def test_disabled_terminal(site):
    site.store.update_terminal(TID, status="disabled", status_reason="lost")
    await site.host.invalidate(TID)
    assert (await site.terminal().download_tmk()).rc == "97"


async def test_unsupported_function_and_missing_fields(signed_in):
    preauth = signed_in.financial("0100", "030000", "10", 100, PAN, None)
    preauth["25"] = "06"
    assert (await signed_in.exchange(preauth, mac=True)).rc == "40"
    msg = signed_in.base("0820", "00", "301")
    del msg["41"]
    assert (await signed_in.exchange(msg, check=False)).rc == "30"
