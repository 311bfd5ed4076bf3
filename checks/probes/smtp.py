"""The SMTP/TLS probe: observe what a listener presents, judge nothing.

Observe first: the TLS context verifies nothing and allows old protocol versions, so that an
expired, self-signed, mismatched or TLS 1.0 server still completes the handshake and the rules
can say *what* is wrong instead of "handshake failed". Each stage has its own timeout (the
greeting a longer one, because tarpits delay it on purpose), the whole endpoint has a deadline,
and every reply is read with a byte limit, so an endless EHLO or a one-byte-a-second drip
costs at most `max_reply_bytes` and `deadline_seconds`. A remote failure is returned as a
`ProbeFailure`, never raised. Politeness: one connection per host at a time (`HostLocks`).
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from checks.model import Endpoint, ProbeSettings, TlsMode
from checks.observations import FailureKind, ProbeFailure, ProbeStage, TlsObservation, sanitize
from checks.probes.tls_chain import presented_chain_der
from checks.rules.certificates import CertificateFacts, facts_from_der

_LINE = re.compile(rb"^(\d{3})([ -]?)(.*)$")
_CHUNK = 4096


class _Failed(Exception):
    """Internal control flow: a stage failed; carries the failure out of nested helpers."""

    def __init__(self, failure: ProbeFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _fail(stage: ProbeStage, kind: FailureKind, reason: str) -> _Failed:
    return _Failed(ProbeFailure(stage=stage, kind=kind, reason=reason))


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " / ".join(self.lines)


@dataclass(slots=True)
class HostLocks:
    """At most one connection per host name at a time, across the whole scan."""

    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def for_host(self, host: str) -> asyncio.Lock:
        return self.locks.setdefault(host.lower().rstrip("."), asyncio.Lock())


def parse_reply(data: bytes) -> tuple[Reply | None, int]:
    """Parse one complete SMTP reply from the start of `data`.

    Returns (reply, bytes consumed), or (None, 0) while the reply is incomplete. Raises
    `ValueError` for bytes that are not an SMTP reply (wrong shape, or codes that change
    between continuation lines).
    """
    lines: list[str] = []
    code: bytes | None = None
    position = 0
    while True:
        end = data.find(b"\n", position)
        if end < 0:
            if len(data) - position >= 3 and not data[position : position + 3].isdigit():
                raise ValueError("not an SMTP reply")
            return None, 0
        raw = data[position:end].rstrip(b"\r")
        position = end + 1
        match = _LINE.match(raw)
        if match is None:
            raise ValueError("not an SMTP reply")
        line_code, separator, text = match.groups()
        if code is None:
            code = line_code
        elif line_code != code:
            raise ValueError("reply code changed between continuation lines")
        lines.append(text.decode("utf-8", "replace"))
        if separator != b"-":
            return Reply(code=int(code), lines=tuple(lines)), position


class _Session:
    """One TCP (then TLS) connection with a bounded reply buffer."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, settings: ProbeSettings
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.buffer = b""

    def failed(self, stage: ProbeStage, kind: FailureKind, reason: str) -> _Failed:
        """A failure carrying the start of what the server said (sanitised, truncated)."""
        return _Failed(
            ProbeFailure(
                stage=stage, kind=kind, reason=reason, server_words=sanitize(self.buffer[:200])
            )
        )

    async def reply(self, stage: ProbeStage, wait_seconds: float) -> Reply:
        """Read one whole reply; nothing is sent before it is complete."""
        limit = self.settings.max_reply_bytes
        try:
            async with asyncio.timeout(wait_seconds):
                while True:
                    try:
                        reply, used = parse_reply(self.buffer)
                    except ValueError as err:
                        raise self.failed(
                            stage, FailureKind.GARBAGE, f"{err} during {stage.value}"
                        ) from None
                    if reply is not None:
                        self.buffer = self.buffer[used:]
                        return reply
                    if len(self.buffer) > limit:
                        raise self.failed(
                            stage,
                            FailureKind.TOO_LONG,
                            f"{stage.value} reply exceeded {limit} bytes",
                        )
                    chunk = await self.reader.read(_CHUNK)
                    if not chunk:
                        raise self.failed(
                            stage,
                            FailureKind.CLOSED,
                            f"the server closed the connection during {stage.value}",
                        )
                    self.buffer += chunk
        except TimeoutError:
            raise self.failed(
                stage,
                FailureKind.TIMEOUT,
                f"no complete {stage.value} reply within {wait_seconds:g} s",
            ) from None
        except (ConnectionError, OSError) as err:
            raise self.failed(
                stage,
                FailureKind.CLOSED,
                f"connection lost during {stage.value} ({err.__class__.__name__})",
            ) from None

    async def send(self, stage: ProbeStage, line: str) -> None:
        try:
            self.writer.write(line.encode("ascii") + b"\r\n")
            async with asyncio.timeout(self.settings.timeout_seconds):
                await self.writer.drain()
        except (TimeoutError, ConnectionError, OSError) as err:
            raise _fail(
                stage,
                FailureKind.CLOSED,
                f"cannot send {line.split()[0]} ({err.__class__.__name__})",
            ) from None

    async def command(self, stage: ProbeStage, line: str) -> Reply:
        await self.send(stage, line)
        return await self.reply(stage, self.settings.timeout_seconds)

    async def close(self, *, graceful: bool) -> None:
        """QUIT politely when the session is healthy, otherwise drop the connection."""
        transport = self.writer.transport
        if graceful:
            try:
                await self.command(ProbeStage.QUIT, "QUIT")
            except _Failed:
                graceful = False
        if graceful:
            self.writer.close()
            try:
                async with asyncio.timeout(self.settings.timeout_seconds):
                    await self.writer.wait_closed()
                return
            except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
                pass
        transport.abort()
        try:
            async with asyncio.timeout(min(1.0, self.settings.timeout_seconds)):
                await self.writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            pass


@functools.cache
def observe_context() -> ssl.SSLContext:
    """A client context that verifies nothing and accepts everything down to TLS 1.0.

    Made once and shared (it holds no per-connection state): a new one per probe cost ~250 us
    of the event loop's time per endpoint."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        context.set_ciphers("ALL")
    return context


def _rejected(stage: ProbeStage, reply: Reply, what: str) -> _Failed:
    kind = "temporary" if 400 <= reply.code < 500 else "permanent"
    return _Failed(
        ProbeFailure(
            stage=stage,
            kind=FailureKind.REJECTED,
            reason=f"{what}: {reply.code} ({kind})",
            server_words=sanitize(reply.text),
            code=reply.code,
        )
    )


def _facts(chain_der: Sequence[bytes]) -> tuple[CertificateFacts, ...]:
    facts = []
    for der in chain_der:
        try:
            facts.append(facts_from_der(der))
        except ValueError:
            continue  # a certificate cryptography cannot parse is reported by its absence
    return tuple(facts)


async def _converse(
    endpoint: Endpoint, address: str, settings: ProbeSettings, state: dict[str, object]
) -> TlsObservation:
    """Connect, greet, EHLO, STARTTLS, handshake, QUIT; raises `_Failed` at the failing stage."""
    state["stage"] = ProbeStage.CONNECT
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            reader, writer = await asyncio.open_connection(address, endpoint.port)
    except TimeoutError:
        raise _fail(
            ProbeStage.CONNECT,
            FailureKind.TIMEOUT,
            f"no TCP connection within {settings.timeout_seconds:g} s",
        ) from None
    except OSError as err:
        raise _fail(
            ProbeStage.CONNECT,
            FailureKind.REFUSED,
            f"cannot connect ({err.strerror or err.__class__.__name__})",
        ) from None
    session = _Session(reader, writer, settings)
    state["session"] = session
    greeting = ""
    if endpoint.tls is TlsMode.STARTTLS:
        state["stage"] = ProbeStage.GREETING
        banner = await session.reply(ProbeStage.GREETING, settings.greeting_timeout_seconds)
        greeting = sanitize(banner.text)
        if banner.code != 220:
            raise _rejected(ProbeStage.GREETING, banner, "the greeting is not 220")
        state["stage"] = ProbeStage.EHLO
        ehlo = await session.command(ProbeStage.EHLO, f"EHLO {settings.ehlo_name}")
        if ehlo.code != 250:
            raise _rejected(ProbeStage.EHLO, ehlo, "EHLO refused")
        keywords = {line.split(" ", 1)[0].upper() for line in ehlo.lines[1:]}
        state["stage"] = ProbeStage.STARTTLS
        if "STARTTLS" not in keywords:
            state["graceful"] = True
            raise _Failed(
                ProbeFailure(
                    stage=ProbeStage.STARTTLS,
                    kind=FailureKind.NOT_OFFERED,
                    reason="the EHLO reply does not offer STARTTLS",
                    server_words=sanitize(" / ".join(ehlo.lines[1:])),
                )
            )
        answer = await session.command(ProbeStage.STARTTLS, "STARTTLS")
        if answer.code != 220:
            state["graceful"] = True
            raise _rejected(ProbeStage.STARTTLS, answer, "STARTTLS refused")
        session.buffer = b""  # bytes sent before the handshake are never trusted
    state["stage"] = ProbeStage.HANDSHAKE
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            await writer.start_tls(
                observe_context(),
                server_hostname=endpoint.host,
                ssl_handshake_timeout=settings.timeout_seconds,
            )
    except TimeoutError:
        raise _fail(
            ProbeStage.HANDSHAKE,
            FailureKind.TIMEOUT,
            f"TLS handshake did not finish within {settings.timeout_seconds:g} s",
        ) from None
    except (ssl.SSLError, ConnectionError, OSError) as err:
        raise _fail(
            ProbeStage.HANDSHAKE,
            FailureKind.TLS_ERROR,
            f"TLS handshake failed ({sanitize(str(err), 160)})",
        ) from None
    ssl_object = writer.get_extra_info("ssl_object")
    chain = _facts(presented_chain_der(ssl_object)) if ssl_object is not None else ()
    cipher = ssl_object.cipher() if ssl_object is not None else None
    version = ssl_object.version() if ssl_object is not None else None
    graceful = True
    if endpoint.tls is TlsMode.IMPLICIT:
        state["stage"] = ProbeStage.GREETING
        try:
            banner = await session.reply(ProbeStage.GREETING, settings.greeting_timeout_seconds)
            greeting = sanitize(banner.text)
        except _Failed:
            greeting = ""  # the certificate is what we came for; the banner is a bonus
            graceful = False  # no complete banner: do not send QUIT into a half-read reply
    state["graceful"] = graceful
    state["stage"] = ProbeStage.QUIT
    return TlsObservation(
        endpoint=endpoint.name,
        host=endpoint.host,
        port=endpoint.port,
        address=address,
        chain=chain,
        tls_version=version,
        cipher=cipher[0] if cipher else None,
        greeting=greeting,
    )


async def probe_address(
    endpoint: Endpoint, address: str, settings: ProbeSettings, *, deadline: float | None = None
) -> TlsObservation:
    """Probe one address of an endpoint; failures come back inside the observation."""
    started = time.monotonic()
    state: dict[str, object] = {"stage": ProbeStage.CONNECT, "graceful": False}
    budget = settings.deadline_seconds if deadline is None else deadline
    observation: TlsObservation | None = None
    try:
        async with asyncio.timeout(budget) as scope:
            try:
                observation = await _converse(endpoint, address, settings, state)
            except _Failed as failed:
                observation = _failed(endpoint, address, failed.failure)
            session = state.get("session")
            if isinstance(session, _Session):
                await session.close(graceful=bool(state["graceful"]))
                state.pop("session")
    except TimeoutError:
        if not scope.expired():
            raise
        if observation is None:
            stage = state["stage"]
            assert isinstance(stage, ProbeStage)
            observation = _failed(
                endpoint,
                address,
                ProbeFailure(
                    stage=stage,
                    kind=FailureKind.DEADLINE,
                    reason=f"the endpoint deadline of {budget:g} s ran out during {stage.value}",
                ),
            )
        # else: what was observed stands; only the polite QUIT ran out of time
    finally:
        session = state.get("session")
        if isinstance(session, _Session):
            session.writer.transport.abort()
    assert observation is not None
    return _with_elapsed(observation, time.monotonic() - started)


def _failed(endpoint: Endpoint, address: str | None, failure: ProbeFailure) -> TlsObservation:
    return TlsObservation(
        endpoint=endpoint.name,
        host=endpoint.host,
        port=endpoint.port,
        address=address,
        failure=failure,
    )


def _with_elapsed(observation: TlsObservation, elapsed: float) -> TlsObservation:
    return replace(observation, elapsed_seconds=round(elapsed, 3))


async def resolve(host: str, port: int, wait_seconds: float) -> tuple[str, ...]:
    """The A/AAAA addresses of `host`, through the event loop's resolver; raises OSError."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(wait_seconds):
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0])
        if text not in addresses:
            addresses.append(text)
    return tuple(addresses)


async def probe_endpoint(
    endpoint: Endpoint,
    settings: ProbeSettings,
    *,
    locks: HostLocks | None = None,
    resolver: Callable[[str, int, float], Awaitable[tuple[str, ...]]] | None = None,
) -> tuple[TlsObservation, ...]:
    """Probe every address of an endpoint (its `address`, or each A/AAAA of its host).

    `resolver` replaces the system resolver (see `checks.probes.dns.address_resolver`)."""
    locks = locks or HostLocks()
    loop = asyncio.get_running_loop()
    ends_at: float | None = None  # the deadline starts with the first connection, not the queue
    if endpoint.address is not None:
        addresses: tuple[str, ...] = (endpoint.address,)
    else:
        try:
            addresses = await (resolver or resolve)(
                endpoint.host, endpoint.port, settings.timeout_seconds
            )
        except (OSError, TimeoutError) as err:
            reason = "no answer in time" if isinstance(err, TimeoutError) else str(err)
            failure = ProbeFailure(
                stage=ProbeStage.RESOLVE,
                kind=FailureKind.REFUSED
                if not isinstance(err, TimeoutError)
                else FailureKind.TIMEOUT,
                reason=f"cannot resolve {endpoint.host} ({sanitize(reason, 120)})",
            )
            return (_failed(endpoint, None, failure),)
    results = []
    for address in addresses:
        async with locks.for_host(endpoint.host):
            if ends_at is None:
                ends_at = loop.time() + settings.deadline_seconds
            remaining = ends_at - loop.time()
            if remaining <= 0:
                results.append(
                    _failed(
                        endpoint,
                        address,
                        ProbeFailure(
                            stage=ProbeStage.CONNECT,
                            kind=FailureKind.DEADLINE,
                            reason=f"the endpoint deadline of {settings.deadline_seconds:g} s "
                            "ran out before this address was probed",
                        ),
                    )
                )
                continue
            results.append(await probe_address(endpoint, address, settings, deadline=remaining))
    return tuple(results)
