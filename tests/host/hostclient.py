"""A small test-side terminal: builds real CUP frames with posdoctor.iso8583 and
posdoctor.crypto, talks to the host over loopback and checks the answers like a
terminal would (MTI + 10, same 3/11/41/42/4, answer MAC, key check values).

It is deliberately independent of the host package: it only knows the wire.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from posdoctor.crypto.ciphers import Algorithm, decrypt_ecb
from posdoctor.crypto.kcv import key_check_value
from posdoctor.crypto.mac import generate_mac_cup_ecb
from posdoctor.crypto.pin import encrypt_pinblock
from posdoctor.iso8583.codec import decode_message, encode_message, mac_input, with_mac
from posdoctor.iso8583.fields import (
    BatchItem,
    Field60,
    SecurityControl,
    SettlementTotals,
    decode_key_block,
    encode_batch_end,
    encode_batch_items,
    encode_device_info,
    encode_tlv,
)
from posdoctor.iso8583.framing import DEFAULT_TPDU, Frame, FrameConfig, Header, decode_frame, encode_frame

ECHOED = ("3", "11", "41")


class AnswerMismatch(AssertionError):
    pass


@dataclass
class Answer:
    msg: dict[str, str]
    frame: Frame

    @property
    def rc(self) -> str:
        return self.msg["39"]

    def __getitem__(self, key: str) -> str:
        return self.msg[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.msg.get(key, default)


class Connection:
    """One TCP connection to the host; frames in, frames out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, header: bool = True) -> None:
        self.reader, self.writer = reader, writer
        self.config = FrameConfig(header=header)

    @classmethod
    async def open(cls, address: tuple[str, int], header: bool = True) -> Connection:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer, header)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_payload(self, timeout: float = 5.0) -> bytes | None:
        """The next frame's payload, or None when the host closed the connection."""
        try:
            prefix = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            return await asyncio.wait_for(self.reader.readexactly(int.from_bytes(prefix, "big")), timeout)
        except asyncio.IncompleteReadError:
            return None

    async def closed_by_host(self, timeout: float = 5.0) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except ConnectionResetError:
            return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@dataclass
class TestTerminal:
    """Terminal-side state: identity, keys (clear, it is a test), batch and STAN."""

    __test__ = False

    address: tuple[str, int]
    tid: str
    mid: str
    serial: str
    tk: bytes
    tmk: bytes | None = None
    alg: Algorithm = Algorithm.TDES
    pik: bytes | None = None
    mak: bytes | None = None
    tdk: bytes | None = None
    batch: int = 1
    header: bool = True
    tpdu: bytes = DEFAULT_TPDU
    persistent: Connection | None = None
    in_process: Any = None
    """An object with `async handle_payload(payload) -> ctx` (the host without sockets)."""
    stans: Any = field(default_factory=lambda: itertools.count(1))
    last_header: Header | None = None

    def next_stan(self) -> str:
        return f"{next(self.stans) % 1_000_000:06d}"

    def f60(self, txn_type: str, nmi: str) -> str:
        return Field60(txn_type=txn_type, batch=f"{self.batch:06d}", nmi=nmi).encode()

    # --- wire --------------------------------------------------------------------------
    def frame(self, msg: dict[str, str], *, mac: bool = False) -> bytes:
        body = encode_message({**msg, "64": "0" * 16} if mac else msg)
        if mac:
            assert self.mak is not None, "sign in first"
            body = with_mac(body, generate_mac_cup_ecb(self.mak, mac_input(body), self.alg))
        header = Header() if self.header else None
        return encode_frame(Frame(self.tpdu, header, body))

    async def exchange(self, msg: dict[str, str], *, mac: bool = False, check: bool = True) -> Answer:
        """Send on the persistent connection if any, else on a short one."""
        payload = await self.roundtrip(self.frame(msg, mac=mac))
        assert payload is not None, "host closed the connection without answering"
        frame = decode_frame(payload, FrameConfig(header=self.header))
        answer = Answer(decode_message(frame.body), frame)
        self.last_header = frame.header
        if check:
            self.check_answer(msg, answer)
        return answer

    async def roundtrip(self, data: bytes) -> bytes | None:
        if self.in_process is not None:
            ctx = await self.in_process.handle_payload(data[2:])
            return ctx.session.sent[-1][2:] if ctx.session.sent else None
        conn = self.persistent or await Connection.open(self.address, self.header)
        try:
            await conn.send_raw(data)
            return await conn.read_payload()
        finally:
            if conn is not self.persistent:
                await conn.close()

    def check_answer(self, request: dict[str, str], answer: Answer) -> None:
        """What a terminal checks on every answer."""
        if answer["t"] != f"{int(request['t']) + 10:04d}":
            raise AnswerMismatch(f"MTI {answer['t']} answers {request['t']}")
        for key in ECHOED + ("4",):
            if key in request and answer.get(key) != request[key]:
                raise AnswerMismatch(f"field {key}: {answer.get(key)!r} != {request[key]!r}")
        if answer.rc == "00" and "42" in request and answer.get("42") != request["42"]:
            raise AnswerMismatch("field 42 differs")
        if answer.frame.tpdu != self.tpdu[:1] + self.tpdu[3:5] + self.tpdu[1:3]:
            raise AnswerMismatch("TPDU not swapped")
        for key in ("12", "13", "37", "39"):
            if key not in answer.msg:
                raise AnswerMismatch(f"answer lacks field {key}")
        if "64" in answer.msg and self.mak is not None and answer.rc == "00":
            expected = generate_mac_cup_ecb(self.mak, mac_input(answer.frame.body), self.alg)
            if bytes.fromhex(answer["64"]) != expected:
                raise AnswerMismatch("answer MAC is wrong")

    # --- management --------------------------------------------------------------------
    def base(self, mti: str, txn_type: str, nmi: str) -> dict[str, str]:
        return {"t": mti, "11": self.next_stan(), "41": self.tid, "42": self.mid, "60": self.f60(txn_type, nmi)}

    async def download_tmk(self, serial: str | None = None, with_ids: bool = True) -> Answer:
        msg = {"t": "0800", "11": self.next_stan(), "60": Field60("00", "000000", "401").encode(),
               "62": encode_device_info({"SN": serial or self.serial, "MD": "N910", "AV": "1.0.0"}).hex().upper()}
        if with_ids:
            msg.update({"41": self.tid, "42": self.mid})
        answer = await self.exchange(msg)
        if answer.rc == "00":
            block = bytes.fromhex(answer["62"])
            tmk = decrypt_ecb(self.alg, self.tk, block[:16])
            assert key_check_value(tmk, self.alg) == block[16:20], "TMK check value"
            self.tmk = tmk
        return answer

    async def sign_in(self, nmi: str = "004") -> Answer:
        msg = self.base("0800", "00", nmi)
        msg["63"] = "001"
        answer = await self.exchange(msg)
        if answer.rc == "00":
            assert self.tmk is not None
            block = decode_key_block(nmi, bytes.fromhex(answer["62"]))
            keys = {}
            for name in ("pik", "mak", "tdk"):
                encrypted, cv = getattr(block, name), getattr(block, f"{name}_cv")
                if encrypted:
                    clear = decrypt_ecb(self.alg, self.tmk, encrypted)
                    assert key_check_value(clear, self.alg) == cv, f"{name} check value"
                    keys[name] = clear
            self.pik, self.mak, self.tdk = keys["pik"], keys["mak"], keys.get("tdk")
            self.batch = int(Field60.decode(answer["60"]).batch)
        return answer

    async def management(self, mti: str, nmi: str, **extra: str) -> Answer:
        return await self.exchange({**self.base(mti, "00", nmi), **extra})

    # --- money ----------------------------------------------------------------------------
    def financial(self, mti: str, proc: str, txn_type: str, amount: int | None, pan: str | None,
                  pin: str | None, nmi: str = "000") -> dict[str, str]:
        msg = {"t": mti, "3": proc, "11": self.next_stan(), "22": "021" if pin else "022", "25": "00",
               "41": self.tid, "42": self.mid, "49": "156", "60": self.f60(txn_type, nmi)}
        if amount is not None:
            msg["4"] = f"{amount:012d}"
        if pan is not None:
            msg["2"] = pan
            msg["35"] = f"{pan}=30122010000000000"
        if pin is not None:
            assert self.pik is not None and pan is not None
            msg["52"] = encrypt_pinblock(self.pik, pin, pan, self.alg).hex().upper()
            msg["53"] = SecurityControl().encode()
        return msg

    async def balance(self, pan: str, pin: str | None) -> Answer:
        return await self.exchange(self.financial("0200", "310000", "01", None, pan, pin), mac=True)

    async def sale(self, pan: str, amount: int, pin: str | None = None, **kw: Any) -> Answer:
        return await self.exchange(self.financial("0200", "000000", "22", amount, pan, pin), mac=True, **kw)

    async def void(self, sale: dict[str, str], answer: Answer, amount: int | None = None) -> Answer:
        msg = self.financial("0200", "200000", "23", amount or int(sale["4"]), sale.get("2"), None)
        msg["37"] = answer["37"]
        msg["61"] = sale["60"][2:8] + sale["11"]
        return await self.exchange(msg, mac=True)

    async def refund(self, pan: str, amount: int, rrn: str) -> Answer:
        msg = self.financial("0220", "200000", "25", amount, pan, None)
        msg["37"] = rrn
        return await self.exchange(msg, mac=True)

    async def reverse(self, original: dict[str, str], reason: str = "98") -> Answer:
        msg = {k: v for k, v in original.items() if k not in ("35", "36", "52", "53", "26", "64")}
        msg["t"] = "0400"
        msg["39"] = reason
        return await self.exchange(msg, mac=True)

    async def settle(self, debit: tuple[int, int], credit: tuple[int, int]) -> Answer:
        totals = SettlementTotals(debit[0], debit[1], credit[0], credit[1])
        return await self.exchange({**self.base("0500", "00", "201"), "48": totals.encode()}, mac=True)

    async def batch_upload(self, items: list[BatchItem]) -> Answer:
        return await self.exchange({**self.base("0320", "00", "201"), "48": encode_batch_items(items)}, mac=True)

    async def batch_upload_end(self, count: int) -> Answer:
        return await self.exchange({**self.base("0320", "00", "202"), "48": encode_batch_end(count)}, mac=True)

    @staticmethod
    def emv_request(items: list[tuple[str, bytes]]) -> str:
        return encode_tlv(items, field="62").hex().upper()
