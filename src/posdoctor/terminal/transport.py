"""One connection to the host for one operation: frame, send, receive, map every failure.

`Channel` turns the network's and the codec's exceptions into `CommError`s carrying the
section 8 string the merchant sees and, for failures after a request went out, the
reversal reason (98 nothing came back, 06 something unreadable came back).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass

from posdoctor.iso8583.codec import decode_message, encode_message, mac_input, with_mac
from posdoctor.iso8583.errors import DecodeError, EncodeError, FrameError
from posdoctor.iso8583.framing import Frame, FrameConfig, Header, decode_frame, encode_frame
from posdoctor.terminal.errors import CommError
from posdoctor.terminal.link import BadLengthPrefix, Connection, FrameTruncated, Link, LinkDown, NothingReceived
from posdoctor.terminal.messages import M
from posdoctor.terminal.state import CommSettings

__all__ = ["Channel", "Answer", "build_header"]

MAC_PLACEHOLDER = "0" * 16


def build_header(app_version: str) -> Header:
    """The request header: application 60, spec 31, normal status, our software version."""
    sub = app_version if len(app_version) == 6 and app_version.isdigit() else "000000"
    return Header(sub_version=sub)


@dataclass(frozen=True, slots=True)
class Answer:
    msg: dict[str, str]
    body: bytes
    header: Header | None

    @property
    def requirement(self) -> int:
        """The host's processing requirement (header digit 6); 0 without a header."""
        if self.header is None or not self.header.processing.isdigit():
            return 0
        return int(self.header.processing)


class Channel:
    """Opened lazily by `send`; closed by `close` or after any failure."""

    def __init__(self, link: Link, comm: CommSettings, header: Header) -> None:
        self.link = link
        self.comm = comm
        self.header = header if comm.header else None
        self.tpdu = bytes.fromhex(comm.tpdu)
        self.frame_config = FrameConfig(header=comm.header, max_frame=comm.max_frame, tpdu_id=self.tpdu[0])
        self._conn: Connection | None = None

    # --- connection ------------------------------------------------------------------
    async def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = await self._connect()
        return self._conn

    async def _connect(self) -> Connection:
        comm = self.comm
        where = {"host": comm.host, "port": comm.port}
        try:
            async with asyncio.timeout(comm.connect_timeout_s):
                return await self.link.connect(comm.host, comm.port)
        except LinkDown:
            raise CommError(M.LINK_DOWN, stage="connect", **where) from None
        except socket.gaierror as exc:
            raise CommError(M.UNKNOWN_HOST, stage="connect", error=exc.strerror, **where) from None
        except TimeoutError:
            raise CommError(M.CONNECT_TIMEOUT, stage="connect", timeout_s=comm.connect_timeout_s, **where) from None
        except OSError as exc:
            raise CommError(M.CONNECT_FAILED, stage="connect", error=type(exc).__name__, **where) from None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    # --- messages --------------------------------------------------------------------
    def encode(self, msg: dict[str, str], mac_fn: Callable[[bytes], bytes] | None = None) -> bytes:
        """Body bytes of `msg`; with `mac_fn(data) -> bytes(8)` field 64 is computed."""
        try:
            if mac_fn is None:
                return encode_message(msg)
            body = encode_message({**msg, "64": MAC_PLACEHOLDER})
            return with_mac(body, mac_fn(mac_input(body)))
        except EncodeError as exc:
            raise CommError(M.PACK_ERROR, stage="pack", field=exc.field, reason=exc.reason) from None

    async def send(self, body: bytes) -> None:
        """Frame and send one request body (connecting first when needed)."""
        conn = await self._connection()
        try:
            frame = encode_frame(Frame(self.tpdu, self.header, body))
        except FrameError as exc:
            raise CommError(M.PACK_ERROR, stage="pack", reason=exc.reason) from None
        try:
            await conn.send_frame(frame)
        except LinkDown:
            await self.close()
            raise CommError(M.LINK_DOWN, stage="send") from None
        except OSError as exc:
            await self.close()
            raise CommError(M.CONNECT_FAILED, stage="send", error=type(exc).__name__) from None

    async def receive(self) -> Answer:
        """Wait for one answer and decode it; any failure closes the connection."""
        try:
            return await self._receive()
        except CommError:
            await self.close()
            raise

    async def _receive(self) -> Answer:
        conn = self._conn
        if conn is None:
            raise CommError(M.RECEIVE_FAILED, stage="receive", reversal_reason="98", reason="not connected")
        timeout = self.comm.receive_timeout_s
        try:
            payload = await conn.receive_frame(self.comm.max_frame, timeout)
        except TimeoutError:
            raise CommError(M.RECEIVE_FAILED, stage="receive", reversal_reason="98", timeout_s=timeout) from None
        except NothingReceived:
            raise CommError(M.RECEIVE_FAILED, stage="receive", reversal_reason="98", reason="closed") from None
        except (FrameTruncated, BadLengthPrefix) as exc:
            raise CommError(M.RECEIVE_ERROR, stage="receive", reversal_reason="06", reason=str(exc)) from None
        except LinkDown:
            raise CommError(M.LINK_DOWN, stage="receive", reversal_reason="98") from None
        except OSError as exc:
            raise CommError(M.RECEIVE_FAILED, stage="receive", reversal_reason="98",
                            error=type(exc).__name__) from None
        return self._decode(payload)

    def _decode(self, payload: bytes) -> Answer:
        try:
            frame = decode_frame(payload, self.frame_config)
            msg = decode_message(frame.body)
        except FrameError as exc:
            raise CommError(M.UNPACK_ERROR, stage="unpack", reversal_reason="06", reason=exc.reason) from None
        except DecodeError as exc:
            raise CommError(M.UNPACK_ERROR, stage="unpack", reversal_reason="06", field=exc.field,
                            reason=exc.reason) from None
        return Answer(msg, frame.body, frame.header)
