"""The journal is the evidence: step verdicts, outcome, masked fields and raw bytes."""

from hostsite import MID, PAN, PIN, TID

from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.framing import DEFAULT_TPDU, Frame, FrameConfig, Header, decode_frame, encode_frame


def rows(site, route=None, direction=None):
    return [j for j in site.store.journal(TID, limit=1000)
            if (route is None or j.route == route) and (direction is None or j.direction == direction)]


def refusals(entry):
    return [s for s in entry.steps if s["verdict"] != "ok"]


async def test_each_message_has_an_in_row_with_verdicts_and_an_out_row(site, signed_in):
    await signed_in.sale(PAN, 1250, PIN)
    [request] = rows(site, "sale", "in")
    [answer] = rows(site, "sale", "out")
    assert [s["step"] for s in request.steps] == [
        "DecodeFrame", "SelectRoute", "CheckFields", "LoadTerminal", "CheckStatus", "CheckSignIn", "VerifyMac",
        "ReadCard", "CheckDuplicate", "LoadCard", "VerifyPin", "Authorize", "PrepareResponse", "SignResponse"]
    assert all(s["verdict"] == "ok" for s in request.steps)
    assert (request.mti, answer.mti, request.rc, answer.rc, request.mid) == ("0200", "0210", "00", "00", MID)
    assert request.stan == answer.stan
    assert answer.latency_ms is not None and answer.latency_ms > 0
    assert request.peer and request.peer.startswith("127.0.0.1:")


async def test_a_failed_sign_in_names_the_step_and_the_reason(site):
    terminal = site.terminal(mid="898100000000999")
    terminal.tmk = site.sheet.tmk
    await terminal.sign_in()
    [entry] = rows(site, "sign_in_004", "in")
    assert entry.rc == "03"
    assert refusals(entry) == [{"step": "CheckStatus", "verdict": "refused",
                                "reason": f"TID {TID} belongs to merchant {MID}, not 898100000000999"}]


async def test_mac_failures_say_which_keys_the_host_holds(site, signed_in):
    signed_in.mak = bytes(16)
    await signed_in.sale(PAN, 10, check=False)
    [entry] = rows(site, "sale", "in")
    [refusal] = refusals(entry)
    assert refusal["step"] == "VerifyMac"
    assert refusal["reason"].startswith("MAC does not match the MAK issued at ")


async def test_no_pan_pin_block_track_or_key_in_the_journal(site, signed_in):
    await signed_in.sale(PAN, 1250, PIN)
    await signed_in.sign_in()
    everything = " ".join(f"{j.fields} {j.raw_hex}" for j in site.store.journal(TID, limit=1000))
    sale = signed_in.financial("0200", "000000", "22", 1, PAN, PIN)
    assert PAN not in everything
    assert PAN[:6] + "*" in everything
    assert sale["52"] not in everything
    assert signed_in.mak.hex().upper() not in everything
    [sign_in_answer] = [j for j in rows(site, "sign_in_004", "out")][-1:]
    assert set(sign_in_answer.fields["62"]) == {"*"}
    [tmk_answer] = rows(site, "tmk_download", "out")
    assert set(tmk_answer.fields["62"]) == {"*"}


async def test_undecodable_frames_are_journaled_without_their_content(site):
    body = encode_message({"t": "0820", "11": "000001", "41": TID})[:-2]
    answer = await site.terminal().roundtrip(encode_frame(Frame(DEFAULT_TPDU, Header(), body)))
    assert decode_message(decode_frame(answer, FrameConfig()).body)["39"] == "30"
    entry = [j for j in site.store.journal(limit=10) if j.direction == "in"][-1]
    assert refusals(entry)[0]["step"] == "DecodeFrame"
    assert entry.raw_hex.endswith("*")


async def test_step_errors_become_96_and_an_event(site, signed_in, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("card store unreachable")

    monkeypatch.setattr(site.host.env.issuer, "check_debit", broken)
    answer = await signed_in.sale(PAN, 10, PIN)
    assert answer.rc == "96"
    [entry] = rows(site, "sale", "in")
    assert refusals(entry) == [{"step": "Authorize", "verdict": "error", "reason": "RuntimeError in Authorize"}]
    [event] = site.store.events(TID, kind="step_error")
    assert event.detail["step"] == "Authorize"
    assert (await signed_in.management("0820", "301")).rc == "00"
