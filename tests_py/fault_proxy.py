"""A fault-injecting TCP proxy for loopback tests (no toxiproxy server ships on any registry
here): it forwards connections to a target and, as told, answers the first N connections with
an HTTP error (503, 429, ...), swallows the next N (a black hole: the request goes nowhere and
no answer ever comes), cuts the answer of the next N after a few bytes (a truncated response:
the target did the work, the client cannot know), delays every piece of traffic, resets a
connection once a number of bytes went through, or calls a hook when the traffic passes a mark
(to kill the target mid-transfer), or cuts everything off (``cut``: a network partition)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Callable, Optional


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.fail_next = 0            # answer this many new connections with fail_status
        self.fail_status = 503
        self.black_hole_next = 0      # accept this many new connections and never answer them
        self.truncate_next = 0        # forward this many, but cut their answer after truncate_at bytes
        self.truncate_at = 12
        self.delay = 0.0              # seconds before each piece of traffic is forwarded
        self.cut = False              # while set: new connections black-holed, open ones go silent
        self.reset_after: Optional[int] = None   # reset the connection carrying this byte (once)
        self.on_bytes: Optional[tuple[int, Callable[[], None]]] = None   # call once past a mark
        self.on_answer: Optional[tuple[bytes, Callable[[], None]]] = None  # call once an answer holds this
        self.bytes_up = 0             # client -> target, over every connection
        self.failures_sent = 0
        self.resets = 0
        self.black_holed = 0
        self.truncated = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failures_sent += 1
            await reader.read(65536)
            body = b'{"error": {"kind": "unavailable", "message": "injected by the fault proxy"}}'
            writer.write(b"HTTP/1.1 %d Injected\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                         b"connection: close\r\n\r\n%s" % (self.fail_status, len(body), body))
            await writer.drain()
            writer.close()
            return
        if self.cut or self.black_hole_next > 0:
            self.black_hole_next = max(self.black_hole_next - 1, 0)
            self.black_holed += 1
            while await reader.read(65536):
                pass  # read and drop until the client gives up
            writer.close()
            return
        truncate = self.truncate_next > 0
        if truncate:
            self.truncate_next -= 1
            self.truncated += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, upstream: bool) -> None:
            try:
                while data := await source.read(65536):
                    if self.cut:
                        continue  # cut off: nothing passes either way, nobody is told
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    if not upstream and truncate:
                        sink.write(data[: self.truncate_at])
                        await sink.drain()
                        for stream in (writer, up_writer):
                            stream.transport.abort()  # the answer stops short
                        return
                    if upstream:
                        self.bytes_up += len(data)
                        if self.reset_after is not None and self.bytes_up >= self.reset_after:
                            self.reset_after = None
                            self.resets += 1
                            for stream in (writer, up_writer):
                                stream.transport.abort()  # an RST mid-stream, both ways
                            return
                        if self.on_bytes is not None and self.bytes_up >= self.on_bytes[0]:
                            hook, self.on_bytes = self.on_bytes[1], None
                            hook()
                    sink.write(data)
                    await sink.drain()
                    if not upstream and self.on_answer is not None and self.on_answer[0] in data:
                        hook, self.on_answer = self.on_answer[1], None
                        hook()
            except (ConnectionError, OSError):
                pass
            finally:
                try:
                    sink.close()
                except Exception:  # noqa: BLE001 - already gone
                    pass

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
