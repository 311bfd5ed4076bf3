"""Real asyncio SMTP listeners on loopback, well-behaved and misbehaving, recording what they got.

Each `kind` is one behaviour a mail team meets in the wild. The server binds port 0 on
127.0.0.1 (or ::1), records every command line and the peak number of simultaneous
connections (politeness is tested, not assumed), and is torn down with all its connections
so no socket outlives the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.pki import Issued

KINDS = (
    "good",
    "multiline-banner",
    "banner-421",
    "no-starttls",
    "refuse-454",
    "hang-after-starttls",
    "silent",
    "garbage",
    "drip",
    "endless-ehlo",
    "implicit",
    "tls10",
    "mute-quit",
)


@dataclass
class FakeSmtpServer:
    kind: str
    host: str
    port: int
    commands: list[str] = field(default_factory=list)
    connections: int = 0
    active: int = 0
    peak_active: int = 0
    handshakes: int = 0
    bytes_sent: int = 0
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()


class _Behaviour:
    def __init__(
        self,
        fake: FakeSmtpServer,
        context: ssl.SSLContext | None,
        drip_interval: float,
        hold: float,
    ) -> None:
        self.fake = fake
        self.context = context
        self.drip_interval = drip_interval
        self.hold = hold

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fake = self.fake
        task = asyncio.current_task()
        assert task is not None
        fake.tasks.add(task)
        fake.writers.add(writer)
        fake.connections += 1
        fake.active += 1
        fake.peak_active = max(fake.peak_active, fake.active)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            await self.converse(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # teardown cancels hanging handlers; asyncio would log a cancelled callback task
        finally:
            fake.active -= 1
            writer.transport.abort()
            fake.writers.discard(writer)
            fake.tasks.discard(task)

    async def send(self, writer: asyncio.StreamWriter, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.fake.bytes_sent += len(data)
        writer.write(data)
        await writer.drain()

    async def line(self, reader: asyncio.StreamReader) -> str:
        raw = await reader.readline()
        if not raw:
            raise ConnectionError("client closed")
        text = raw.decode("ascii", "replace").rstrip("\r\n")
        self.fake.commands.append(text)
        return text

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind = self.fake.kind
        if kind == "silent":
            await asyncio.sleep(3600)
        if kind == "garbage":
            await self.send(writer, b"\x16\x03\x01\x00\xffHTTP/1.1 400 Bad Request\r\n\r\n")
            await asyncio.sleep(3600)
        if kind == "drip":
            for byte in b"220 slow.example ESMTP tarpit\r\n":
                await self.send(writer, bytes([byte]))
                await asyncio.sleep(self.drip_interval)
            await asyncio.sleep(3600)
        if kind == "banner-421":
            await self.send(writer, "421 4.3.2 Service not available, closing channel\r\n")
            return
        if kind == "implicit":
            await self.smtp_after_tls(reader, writer)
            return
        if kind == "multiline-banner":
            await self.send(writer, "220-mail.contoso.test ESMTP\r\n220-no UCE\r\n220 ready\r\n")
        else:
            await self.send(writer, "220 mail.contoso.test ESMTP relaycheck-fake\r\n")
        while True:
            command = (await self.line(reader)).upper()
            if command.startswith(("EHLO", "HELO")):
                if kind == "endless-ehlo":
                    await self.send(writer, "250-mail.contoso.test\r\n")
                    while True:
                        await self.send(writer, "250-X-PADDING " + "x" * 1000 + "\r\n")
                offers = "" if kind == "no-starttls" else "250-STARTTLS\r\n"
                await self.send(
                    writer, f"250-mail.contoso.test\r\n250-SIZE 1000000\r\n{offers}250 8BITMIME\r\n"
                )
            elif command == "STARTTLS":
                if kind in ("no-starttls", "refuse-454"):
                    await self.send(
                        writer, "454 4.7.0 TLS not available due to temporary reason\r\n"
                    )
                    continue
                await self.send(writer, "220 2.0.0 SMTP server ready\r\n")
                if kind == "hang-after-starttls":
                    await asyncio.sleep(3600)
                assert self.context is not None
                await writer.start_tls(self.context)
                self.fake.handshakes += 1
                await self.commands_after_tls(reader, writer)
                return
            elif command == "QUIT":
                await self.send(writer, "221 2.0.0 bye\r\n")
                return
            else:
                await self.send(writer, "502 5.5.2 not implemented\r\n")

    async def smtp_after_tls(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # the listener itself is TLS: the handshake already happened
        self.fake.handshakes += 1
        await self.send(writer, "220 mail.contoso.test ESMTP (implicit TLS)\r\n")
        await self.commands_after_tls(reader, writer)

    async def commands_after_tls(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            command = (await self.line(reader)).upper()
            if command == "QUIT" and self.fake.kind == "mute-quit":
                await reader.read()  # never answers QUIT; waits until the client hangs up
                return
            if command == "QUIT":
                await self.send(writer, "221 2.0.0 bye\r\n")
                writer.close()
                with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
                    async with asyncio.timeout(1):
                        await writer.wait_closed()
                return
            if command.startswith("EHLO"):
                await self.send(writer, "250-mail.contoso.test\r\n250 8BITMIME\r\n")
            else:
                await self.send(writer, "502 5.5.2 not implemented\r\n")


ServerFactory = Callable[..., Awaitable[FakeSmtpServer]]


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def closed_port(host: str = "127.0.0.1") -> int:
    """A port that was just free: connecting to it is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def start_fake_smtp(
    tmp_path: Path,
    kind: str = "good",
    chain: Issued | None = None,
    *,
    host: str = "127.0.0.1",
    with_intermediates: bool = True,
    drip_interval: float = 1.0,
    hold: float = 0.0,
    also: Sequence[Issued] = (),
    port: int = 0,
) -> FakeSmtpServer:
    """Start one listener on `host` port 0 (the fixture and the benchmark both use this).

    `also`: more certificates of other key types (a dual ECDSA+RSA server). `port`: a port
    another fake already bound on a different loopback address (a pool under one name)."""
    if kind not in KINDS:
        raise ValueError(f"unknown fake SMTP kind {kind!r}; one of {', '.join(KINDS)}")
    context = None
    if chain is not None:
        context = chain.server_context(
            tmp_path,
            with_intermediates=with_intermediates,
            max_version=ssl.TLSVersion.TLSv1 if kind == "tls10" else None,
            also=also,
        )
    fake = FakeSmtpServer(kind=kind, host=host, port=0)
    behaviour = _Behaviour(fake, context, drip_interval, hold)
    server = await asyncio.start_server(
        behaviour.handle,
        host,
        port,
        ssl=context if kind == "implicit" else None,
    )
    fake.server = server
    fake.port = int(server.sockets[0].getsockname()[1])
    return fake


@pytest.fixture
async def smtp_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Factory: `await smtp_server(kind="good", chain=issued)` starts one listener."""
    started: list[FakeSmtpServer] = []

    async def start(
        kind: str = "good", chain: Issued | None = None, **options: Any
    ) -> FakeSmtpServer:
        fake = await start_fake_smtp(tmp_path, kind, chain, **options)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.close()
