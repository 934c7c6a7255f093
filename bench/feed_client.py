"""A lean websocket client for thousands of sockets in one process (bench/events_bench.py).

A general-purpose client (the `websockets` library) spends tens of microseconds of Python on
every message it receives: with 10,000 sockets in one process, reading one event's 10,000
copies took the bench longer than the server took to send them, so the arrival times measured
the client. This one is an asyncio Protocol per socket: the RFC 6455 handshake, then each
frame as it arrives (server frames are unmasked), an arrival time taken when a text message
is complete, pings answered with pongs (the server closes a socket that misses them), and
nothing else. It is the bench's stand-in for browsers, not part of Bazaar.
"""

import asyncio
import base64
import contextlib
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

TEXT, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x8, 0x9, 0xA, 0x0


class FeedSocket(asyncio.Protocol):
    """One websocket: `on_message(socket, text, arrived_at)` for each complete text message."""

    def __init__(
        self,
        *,
        host: str,
        path: str,
        headers: dict[str, str],
        on_message: Callable[["FeedSocket", bytes, float], None],
    ) -> None:
        self.request = self._handshake(host, path, headers)
        self.on_message = on_message
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._upgraded = False
        self._fragments: list[bytes] = []

    @staticmethod
    def _handshake(host: str, path: str, headers: dict[str, str]) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self._buffer[: self._buffer.find(b"\r\n")]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            self._buffer = self._buffer[end + 4 :]
            self._upgraded = True
            self.opened.set_result(None)
        self._read_frames()

    def _read_frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                (length,), offset = struct.unpack_from("!H", buffer, 2), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                (length,), offset = struct.unpack_from("!Q", buffer, 2), 10
            if len(buffer) < offset + length:
                break
            payload = buffer[offset : offset + length]
            buffer = buffer[offset + length :]
            self._frame(first & 0x0F, bool(first & 0x80), payload)
        self._buffer = buffer

    def _frame(self, opcode: int, final: bool, payload: bytes) -> None:
        if opcode in (TEXT, CONTINUATION):
            self._fragments.append(payload)
            if final:
                message, self._fragments = b"".join(self._fragments), []
                self.on_message(self, message, time.perf_counter())
        elif opcode == PING:
            self._send(PONG, payload)
        elif opcode == CLOSE:
            self._send(CLOSE, payload[:2])
            self.transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        # A client's frames are masked (RFC 6455 5.3); control payloads are under 126 bytes.
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[n % 4] for n, byte in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(CLOSE, struct.pack("!H", 1000))
            self.transport.close()


@dataclass(frozen=True)
class Page:
    """A kind of page on the feed: its socket's path, and the marker of the message that
    brings an event's news to it. A marker with a group (a `data-seq`) must give the event's
    sequence; one without counts its first message after the commit."""

    name: str
    path: str
    marker: re.Pattern[bytes]


class Feed:
    """Sockets on one live feed, each for a page of a stated mix, and the arrival times of
    each event on every socket (the first message with its page's marker)."""

    def __init__(self, host: str, port: int, headers_for: Callable[[int], dict[str, str]]):
        self.host, self.port = host, port
        self.headers_for = headers_for
        self.sockets: list[FeedSocket] = []
        self.page_of: dict[FeedSocket, Page] = {}
        self._round: dict[FeedSocket, tuple[float, int | None]] = {}
        self._complete = asyncio.Event()
        self._awaited = 0

    def _on_message(self, socket: FeedSocket, message: bytes, arrived_at: float) -> None:
        if socket in self._round:
            return
        match = self.page_of[socket].marker.search(message)
        if match is None:
            return
        self._round[socket] = (arrived_at, int(match[1]) if match.groups() else None)
        if self._awaited and len(self._round) >= self._awaited:
            self._complete.set()

    async def open(self, pages: list[Page], *, at_once: int = 100) -> int:
        """Open a socket for each of `pages`, `at_once` handshakes at a time; how many failed."""
        loop = asyncio.get_running_loop()
        failed = 0
        first = len(self.sockets)
        for batch in range(0, len(pages), at_once):
            numbers = range(batch, min(batch + at_once, len(pages)))

            async def one(number: int) -> FeedSocket:
                page = pages[number]
                _, socket = await loop.create_connection(
                    lambda: FeedSocket(
                        host=f"{self.host}:{self.port}",
                        path=page.path,
                        headers=self.headers_for(first + number),
                        on_message=self._on_message,
                    ),
                    self.host,
                    self.port,
                )
                await asyncio.wait_for(socket.opened, timeout=60)
                self.page_of[socket] = page
                return socket

            for result in await asyncio.gather(*map(one, numbers), return_exceptions=True):
                if isinstance(result, BaseException):
                    failed += 1
                else:
                    self.sockets.append(result)
        return failed

    def start_round(self) -> None:
        """Before an event's commit: from now on, each socket's first marked message is its."""
        self._round = {}
        self._awaited = 0
        self._complete.clear()

    async def arrivals(self, sequence: int, *, timeout: float) -> dict[str, list[float]]:
        """The arrival times of event `sequence` on the open sockets, by page, waiting until
        every socket has it or `timeout` seconds have passed."""
        self._awaited = sum(1 for socket in self.sockets if not socket.closed.done())
        if len(self._round) < self._awaited:
            self._complete.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._complete.wait(), timeout=timeout)
        arrived, self._round, self._awaited = self._round, {}, 0
        by_page: dict[str, list[float]] = {}
        for socket, (at, seq) in arrived.items():
            if seq is None or seq == sequence:
                by_page.setdefault(self.page_of[socket].name, []).append(at)
        return by_page

    def close(self) -> None:
        for socket in self.sockets:
            socket.close()
