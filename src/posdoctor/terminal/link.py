"""The terminal's network link: how the payment app opens connections to its host.

`Link` is the seam a fleet simulator uses to change the world: replace it entirely, or
keep `TcpLink` and change its `LinkConditions` (link down, packets black-holed, delay,
loss of requests, answers dropped on the way back). The app itself only calls
`connect()`, `send_frame()` and `receive_frame()`.

Connections speak whole frames (2-byte big-endian length prefix + payload); framing
errors are typed so the app can show the right section 8 string.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Protocol

from posdoctor.iso8583.framing import PREFIX_LEN

__all__ = ["Link", "Connection", "TcpLink", "TcpConnection", "LinkConditions", "LinkDown", "NothingReceived",
           "FrameTruncated", "BadLengthPrefix"]


class LinkDown(ConnectionError):
    """No network at all (no signal, cable out)."""


class NothingReceived(ConnectionError):
    """The connection ended before the first byte of an answer."""


class FrameTruncated(ConnectionError):
    """The connection ended inside a frame: fewer bytes than the length prefix said."""

    def __init__(self, expected: int, received: int) -> None:
        super().__init__(f"length prefix says {expected} bytes, {received} arrived")
        self.expected = expected
        self.received = received


class BadLengthPrefix(ConnectionError):
    """A length prefix of zero or larger than the terminal accepts."""

    def __init__(self, length: int, max_frame: int) -> None:
        super().__init__(f"length prefix {length} outside 1..{max_frame}")
        self.length = length


class Connection(Protocol):
    async def send_frame(self, frame: bytes) -> None:
        """Write one whole frame (length prefix included)."""

    async def receive_frame(self, max_frame: int, timeout: float) -> bytes:
        """Read one frame within `timeout` seconds and return its payload (after the length
        prefix). TimeoutError or NothingReceived when not a byte came; FrameTruncated when
        the frame stopped short; BadLengthPrefix for a length of 0 or above `max_frame`."""

    async def close(self) -> None: ...


class Link(Protocol):
    async def connect(self, host: str, port: int) -> Connection:
        """Open a connection; may raise OSError (refused, DNS via socket.gaierror) or LinkDown."""


@dataclass
class LinkConditions:
    """What the world does to this terminal's traffic. Change it at any time."""

    down: bool = False
    blackhole: bool = False
    """Packets to the host vanish: connects never complete (firewall drop)."""
    delay_s: float = 0.0
    """Added before every connect, send and answer."""
    loss: float = 0.0
    """Probability that a request frame is lost on the way to the host."""
    drop_answers: int = 0
    """The next N answers the host sends are lost on the way back."""
    rng: random.Random = field(default_factory=random.Random)
    certain_timeouts_at_once: bool = False
    """A wait that can only end in a timeout (a lost request, a dropped answer, a connect
    into a black hole) raises `TimeoutError` at once instead of sitting out the timer. For
    the simulator, whose clock does not move during real waits: the evidence is the same,
    without seconds of real time per lost frame."""


class TcpConnection:
    __slots__ = ("reader", "writer", "conditions", "last_lost")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 conditions: LinkConditions) -> None:
        self.reader = reader
        self.writer = writer
        self.conditions = conditions
        self.last_lost = False
        """The last request never reached the host."""

    async def send_frame(self, frame: bytes) -> None:
        conditions = self.conditions
        if conditions.down:
            raise LinkDown("link went down")
        if conditions.delay_s:
            await asyncio.sleep(conditions.delay_s)
        self.last_lost = bool(conditions.loss) and conditions.rng.random() < conditions.loss
        if self.last_lost:
            return  # lost on the way: the host never sees it
        self.writer.write(frame)
        await self.writer.drain()

    async def receive_frame(self, max_frame: int, timeout: float) -> bytes:
        at_once = self.conditions.certain_timeouts_at_once
        if at_once and self.last_lost:
            raise TimeoutError
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            payload = await self._read_one(max_frame, deadline)
            if self.conditions.drop_answers > 0:
                self.conditions.drop_answers -= 1
                if at_once:
                    raise TimeoutError
                continue  # lost on the way back: keep waiting, as the terminal would
            if self.conditions.delay_s:
                await asyncio.sleep(self.conditions.delay_s)
            return payload

    async def _read_one(self, max_frame: int, deadline: float) -> bytes:
        buffer = bytearray()
        await self._fill(buffer, PREFIX_LEN, PREFIX_LEN, deadline)
        length = int.from_bytes(buffer, "big")
        if not 0 < length <= max_frame:
            raise BadLengthPrefix(length, max_frame)
        buffer.clear()
        await self._fill(buffer, length, length, deadline, started=True)
        return bytes(buffer)

    async def _fill(self, buffer: bytearray, size: int, expected: int, deadline: float, *,
                    started: bool = False) -> None:
        """Read until `buffer` holds `size` bytes; a stop before that is typed by how far it got."""
        loop = asyncio.get_running_loop()
        while len(buffer) < size:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    chunk = await self.reader.read(size - len(buffer))
            except TimeoutError:
                if buffer or started:
                    raise FrameTruncated(expected, len(buffer)) from None
                raise
            if not chunk:
                if buffer or started:
                    raise FrameTruncated(expected, len(buffer))
                raise NothingReceived("connection closed before any answer")
            buffer += chunk

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass  # the peer already went away; nothing left to release


class TcpLink:
    """Plain TCP through asyncio, subject to `conditions`."""

    __slots__ = ("conditions",)

    def __init__(self, conditions: LinkConditions | None = None) -> None:
        self.conditions = conditions if conditions is not None else LinkConditions()

    async def connect(self, host: str, port: int) -> Connection:
        conditions = self.conditions
        if conditions.down:
            raise LinkDown("no network link")
        if conditions.blackhole:
            if conditions.certain_timeouts_at_once:
                raise TimeoutError
            await asyncio.Event().wait()  # never completes; the caller's timeout ends it
        if conditions.delay_s:
            await asyncio.sleep(conditions.delay_s)
        reader, writer = await asyncio.open_connection(host, port)
        return TcpConnection(reader, writer, conditions)
