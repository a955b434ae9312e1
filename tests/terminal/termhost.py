"""A scripted CUP host over loopback for the emulator's negative tests.

The real host never answers with a wrong STAN, a bad MAC or garbage; this one does so on
purpose. A test gives it a `script`: a function from the decoded request to a reply:

- `Reply(msg)`: an answer dict (MAC'ed with the test MAK when it holds field 64);
- `Raw(data)`: bytes written as they are (garbage, a lying length prefix...);
- `SILENT`: read the request and never answer;
- `CLOSE`: close the connection without answering.

It also builds a ready terminal (`make_app`) whose keys are known to the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posdoctor.crypto.ciphers import Algorithm, encrypt_ecb
from posdoctor.crypto.kcv import key_check_value
from posdoctor.crypto.mac import generate_mac_cup_ecb
from posdoctor.iso8583.codec import decode_message, encode_message, mac_input, with_mac
from posdoctor.iso8583.fields import encode_key_block
from posdoctor.iso8583.framing import Frame, FrameConfig, Header, answer_tpdu, decode_frame, encode_frame
from posdoctor.terminal import Device, PaymentApp, TcpLink, new_state
from posdoctor.terminal.link import LinkConditions

TID = "20000001"
MID = "898100000000002"
SERIAL = "EMU0001"
PAN = "6222021234567890123"
PIN = "123456"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIK = bytes.fromhex("1111111111111111222222222222222A")
MAK = bytes.fromhex("3333333333333333444444444444444C")
TDK = bytes.fromhex("5555555555555555666666666666666E")
TK = bytes.fromhex("89ABCDEF01234567FEDCBA9876543210")
ECHO_FIELDS = ("2", "3", "4", "11", "22", "25", "41", "42", "49", "60")


@dataclass
class Reply:
    msg: dict[str, str]
    processing: str = "0"
    mac_key: bytes | None = MAK


@dataclass
class Raw:
    data: bytes


SILENT = object()
CLOSE = object()
Script = Callable[[dict[str, str]], Any]


def answer(request: dict[str, str], rc: str = "00", **fields: str) -> dict[str, str]:
    """The answer a well-behaved host gives: MTI + 10, echoed fields, 37, 39, MAC slot."""
    msg = {"t": f"{int(request['t']) + 10:04d}"}
    msg.update((k, request[k]) for k in ECHO_FIELDS if k in request)
    msg.update({"12": "120000", "13": "0101", "37": "000000000001", "39": rc})
    if "64" in request:
        msg["64"] = "0" * 16
    msg.update(fields)
    return {k: v for k, v in msg.items() if v is not None}


def mac_body(msg: dict[str, str], mak: bytes | None) -> bytes:
    body = encode_message(msg)
    if "64" in msg and mak is not None:
        body = with_mac(body, generate_mac_cup_ecb(mak, mac_input(body)))
    return body


def key_block(tmk: bytes = TMK, *, pik: bytes = PIK, mak: bytes = MAK, tdk: bytes = TDK,
              corrupt_cv: str | None = None) -> str:
    parts = []
    for name, key in (("PIK", pik), ("MAK", mak), ("TDK", tdk)):
        cv = key_check_value(key)
        if name == corrupt_cv:
            cv = bytes([cv[0] ^ 0xFF]) + cv[1:]
        parts.append((encrypt_ecb(Algorithm.TDES, tmk, key), cv))
    return encode_key_block(parts).hex().upper()


@dataclass
class ScriptedHost:
    script: Script
    header: bool = True
    requests: list[dict[str, str]] = field(default_factory=list)
    tpdus: list[bytes] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await self.server.wait_closed()

    def mtis(self) -> list[str]:
        return [r["t"] for r in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                try:
                    prefix = await reader.readexactly(2)
                    payload = await reader.readexactly(int.from_bytes(prefix, "big"))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                frame = decode_frame(payload, FrameConfig(header=self.header))
                request = decode_message(frame.body)
                self.requests.append(request)
                self.tpdus.append(frame.tpdu)
                reply = self.script(request)
                if reply is SILENT:
                    continue
                if reply is CLOSE:
                    return
                if isinstance(reply, Raw):
                    writer.write(reply.data)
                else:
                    header = Header(processing=reply.processing) if self.header else None
                    body = mac_body(reply.msg, reply.mac_key)
                    writer.write(encode_frame(Frame(answer_tpdu(frame.tpdu), header, body)))
                await writer.drain()
        finally:
            writer.close()


def well_behaved(request: dict[str, str]) -> Reply:
    """Approve everything the way a CUP host would (keys of this module)."""
    mti, nmi = request["t"], request.get("60", "")[8:11]
    if mti == "0800" and nmi == "004":
        return Reply(answer(request, **{"62": key_block(), "60": "00000042004"}))
    if mti == "0200" and request["3"] == "310000":
        return Reply(answer(request, **{"54": "1002156C000000012345"}))
    if mti == "0500":
        return Reply(answer(request, **{"48": request["48"][:30] + "1" + request["48"][31:]}))
    return Reply(answer(request))


def make_app(port: int, *, signed_in: bool = True, conditions: LinkConditions | None = None,
             persist: Any = None) -> PaymentApp:
    """A terminal pointing at 127.0.0.1:`port` with the module's keys (signed in)."""
    state = new_state(TID, SERIAL, mid=MID)
    state.comm.host, state.comm.port = "127.0.0.1", port
    state.comm.connect_timeout_s, state.comm.receive_timeout_s = 1.0, 0.3
    app = PaymentApp(state, Device(SERIAL), link=TcpLink(conditions), persist=persist)
    app.keys.store("TMK", TMK, Algorithm.TDES)
    if signed_in:
        for kind, key in (("PIK", PIK), ("MAK", MAK), ("TDK", TDK)):
            app.keys.store(kind, key, Algorithm.TDES)
        state.signed_in = True
    return app
