"""The SMTP/TLS probe: observe what a listener presents, judge nothing.

Observe first: the TLS context verifies nothing and allows old protocol versions, so that an
expired, self-signed, mismatched or TLS 1.0 server still completes the handshake and the rules
can say *what* is wrong instead of "handshake failed". Each stage has its own timeout (the
greeting a longer one, because tarpits delay it on purpose), the whole endpoint has a deadline,
and every reply is read with a byte limit, so an endless EHLO or a one-byte-a-second drip
costs at most `max_reply_bytes` and `deadline_seconds`. A remote failure is returned as a
`ProbeFailure`, never raised.

Politeness: one connection at a time per listener address (`AddressLocks`, keyed by IP and
port), so one tarpit in a pool behind a host name delays only itself, never its siblings.

Every certificate a server holds: a server with an ECDSA and an RSA certificate picks one per
handshake by what the client offers, so after the ordinary handshake each address gets one more,
offering only the other key type (TLS 1.2 cipher suites with that authentication; Python's `ssl`
has no signature-algorithm setter, and TLS 1.3 suites do not name a key type). A server with one
key type refuses that offer: one handshake more, and the refusal is no finding. The client
contexts are built once per scan (`ClientContexts`) and shared by every probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from checks.i18n import _
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
class AddressLocks:
    """At most one connection per listener (IP address and port) at a time, across a scan.

    Per address rather than per host name: nine addresses behind one name are nine servers, and
    a lock per name made one tarpit among them hold up the other eight."""

    locks: dict[tuple[str, int], asyncio.Lock] = field(default_factory=dict)

    def for_address(self, address: str, port: int) -> asyncio.Lock:
        return self.locks.setdefault((address.lower(), port), asyncio.Lock())


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
                _("cannot send {command} ({error})").format(
                    command=line.split()[0], error=err.__class__.__name__
                ),
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


def observe_context(ciphers: str = "ALL") -> ssl.SSLContext:
    """A client context that verifies nothing and accepts everything down to TLS 1.0.

    `ciphers` other than ALL restricts TLS 1.2 and older to those suites and turns TLS 1.3 off
    (its suites cannot be restricted by key type)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    if ciphers != "ALL":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    except ssl.SSLError:
        context.set_ciphers(ciphers)
    return context


# key type as `CertificateFacts.key_type` names it -> the TLS 1.2 suites authenticated by it
KEY_TYPE_CIPHERS = {"EC": "aECDSA", "RSA": "aRSA"}


@dataclass(frozen=True, slots=True)
class ClientContexts:
    """The client contexts of one scan: built once, shared by every probe.

    `by_key_type` holds one context per key type that offers only that type; empty means one
    handshake per address (the ordinary offer only)."""

    default: ssl.SSLContext
    by_key_type: tuple[tuple[str, ssl.SSLContext], ...] = ()

    @classmethod
    def create(cls, *, every_key_type: bool = True) -> ClientContexts:
        extra = (
            tuple((key, observe_context(ciphers)) for key, ciphers in KEY_TYPE_CIPHERS.items())
            if every_key_type
            else ()
        )
        return cls(default=observe_context(), by_key_type=extra)

    def others(self, key_type: str) -> tuple[tuple[str, ssl.SSLContext], ...]:
        """The offers still to make after a handshake that got a `key_type` certificate: the
        other known type only, so a server costs at most one handshake more (an Ed25519 or
        DSA certificate gets none)."""
        if key_type not in KEY_TYPE_CIPHERS:
            return ()
        return tuple((key, context) for key, context in self.by_key_type if key != key_type)


def _rejected(stage: ProbeStage, reply: Reply, what: str) -> _Failed:
    reason = (
        _("{what}: {code} (temporary)")
        if 400 <= reply.code < 500
        else _("{what}: {code} (permanent)")
    )
    return _Failed(
        ProbeFailure(
            stage=stage,
            kind=FailureKind.REJECTED,
            reason=reason.format(what=what, code=reply.code),
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


def connect_failure(err: OSError, address: str, port: int) -> str:
    """A failed TCP connect in words: asyncio's own text names a Python tuple
    ("Connect call failed ('127.0.0.1', 2525)")."""
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if err.errno == errno.ECONNREFUSED:
        return _("cannot connect (connection refused by {where})").format(where=where)
    if err.errno:
        return _("cannot connect to {where} ({error})").format(
            where=where, error=os.strerror(err.errno).lower()
        )
    return _("cannot connect to {where}").format(where=where)


async def _converse(
    endpoint: Endpoint,
    address: str,
    settings: ProbeSettings,
    state: dict[str, object],
    context: ssl.SSLContext,
    key_offer: str | None,
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
            _("no TCP connection within {seconds} s").format(
                seconds=f"{settings.timeout_seconds:g}"
            ),
        ) from None
    except OSError as err:
        raise _fail(
            ProbeStage.CONNECT, FailureKind.REFUSED, connect_failure(err, address, endpoint.port)
        ) from None
    session = _Session(reader, writer, settings)
    state["session"] = session
    greeting = ""
    if endpoint.tls is TlsMode.STARTTLS:
        state["stage"] = ProbeStage.GREETING
        banner = await session.reply(ProbeStage.GREETING, settings.greeting_timeout_seconds)
        greeting = sanitize(banner.text)
        if banner.code != 220:
            raise _rejected(ProbeStage.GREETING, banner, _("the greeting is not 220"))
        state["stage"] = ProbeStage.EHLO
        ehlo = await session.command(ProbeStage.EHLO, f"EHLO {settings.ehlo_name}")
        if ehlo.code != 250:
            raise _rejected(ProbeStage.EHLO, ehlo, _("EHLO refused"))
        keywords = {line.split(" ", 1)[0].upper() for line in ehlo.lines[1:]}
        state["stage"] = ProbeStage.STARTTLS
        if "STARTTLS" not in keywords:
            state["graceful"] = True
            raise _Failed(
                ProbeFailure(
                    stage=ProbeStage.STARTTLS,
                    kind=FailureKind.NOT_OFFERED,
                    reason=_("the EHLO reply does not offer STARTTLS"),
                    server_words=sanitize(" / ".join(ehlo.lines[1:])),
                )
            )
        answer = await session.command(ProbeStage.STARTTLS, "STARTTLS")
        if answer.code != 220:
            state["graceful"] = True
            raise _rejected(ProbeStage.STARTTLS, answer, _("STARTTLS refused"))
        session.buffer = b""  # bytes sent before the handshake are never trusted
    state["stage"] = ProbeStage.HANDSHAKE
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            await writer.start_tls(
                context,
                server_hostname=endpoint.host,
                ssl_handshake_timeout=settings.timeout_seconds,
            )
    except TimeoutError:
        raise _fail(
            ProbeStage.HANDSHAKE,
            FailureKind.TIMEOUT,
            _("TLS handshake did not finish within {seconds} s").format(
                seconds=f"{settings.timeout_seconds:g}"
            ),
        ) from None
    except (ssl.SSLError, ConnectionError, OSError) as err:
        reason = _("TLS handshake failed ({error})").format(error=sanitize(str(err), 160))
        # asyncio keeps the error in its handshake future; its traceback holds the frames of
        # the transport and protocol. Without it they are freed at once instead of by the cycle
        # collector: a scan whose second key-type offer each server refused peaked ~70 MB higher per 1,000
        err.__traceback__ = None
        raise _fail(ProbeStage.HANDSHAKE, FailureKind.TLS_ERROR, reason) from None
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
        key_offer=key_offer,
    )


async def probe_address(
    endpoint: Endpoint,
    address: str,
    settings: ProbeSettings,
    *,
    deadline: float | None = None,
    context: ssl.SSLContext | None = None,
    key_offer: str | None = None,
) -> TlsObservation:
    """Probe one address of an endpoint once; failures come back inside the observation.

    `context` is the client context to offer (the scan shares one; default: a fresh ordinary
    one); `key_offer` records which key type it offers only (None: the ordinary offer)."""
    context = context or observe_context()
    started = time.monotonic()
    state: dict[str, object] = {"stage": ProbeStage.CONNECT, "graceful": False}
    budget = settings.deadline_seconds if deadline is None else deadline
    observation: TlsObservation | None = None
    try:
        async with asyncio.timeout(budget) as scope:
            try:
                observation = await _converse(
                    endpoint, address, settings, state, context, key_offer
                )
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
                    reason=_("the endpoint deadline of {seconds} s ran out during {stage}").format(
                        seconds=f"{round(budget, 1):g}", stage=stage.value
                    ),
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
    locks: AddressLocks | None = None,
    resolver: Callable[[str, int, float], Awaitable[tuple[str, ...]]] | None = None,
    contexts: ClientContexts | None = None,
    slots: asyncio.Semaphore | None = None,
) -> tuple[TlsObservation, ...]:
    """Probe every address of an endpoint (its `address`, or each A/AAAA of its host).

    The addresses are probed side by side, each under its own lock and its own deadline, so a
    slow one never eats the others' time. With `contexts` offering key types
    (`ClientContexts.create()`), an address that served a certificate is asked once more per
    other key type, inside the same lock and deadline; a certificate found that way is one more
    observation (its `key_offer` set), a refused offer is none. Without `contexts` each address
    gets the ordinary handshake only. `slots` bounds connections across the scan.
    `resolver` replaces the system resolver (see `checks.probes.dns.address_resolver`)."""
    locks = locks or AddressLocks()
    contexts = contexts or ClientContexts.create(every_key_type=False)
    if endpoint.address is not None:
        addresses: tuple[str, ...] = (endpoint.address,)
    else:
        try:
            addresses = await (resolver or resolve)(
                endpoint.host, endpoint.port, settings.timeout_seconds
            )
        except (OSError, TimeoutError) as err:
            reason = (
                _("no answer in time")
                if isinstance(err, TimeoutError)
                else (err.strerror or type(err).__name__)
            )
            failure = ProbeFailure(
                stage=ProbeStage.RESOLVE,
                kind=FailureKind.REFUSED
                if not isinstance(err, TimeoutError)
                else FailureKind.TIMEOUT,
                reason=_("cannot resolve {host} ({reason})").format(
                    host=endpoint.host, reason=sanitize(reason, 120)
                ),
            )
            return (_failed(endpoint, None, failure),)
    per_address = await asyncio.gather(
        *(
            _probe_one_address(endpoint, address, settings, locks, contexts, slots)
            for address in addresses
        )
    )
    return tuple(obs for observations in per_address for obs in observations)


async def _probe_one_address(
    endpoint: Endpoint,
    address: str,
    settings: ProbeSettings,
    locks: AddressLocks,
    contexts: ClientContexts,
    slots: asyncio.Semaphore | None,
) -> list[TlsObservation]:
    """The ordinary handshake, then one per other key type, one connection at a time."""
    loop = asyncio.get_running_loop()
    async with locks.for_address(address, endpoint.port), slots or contextlib.nullcontext():
        # the deadline starts with the first connection, not while queued behind another probe
        ends_at = loop.time() + settings.deadline_seconds
        first = await probe_address(
            endpoint,
            address,
            settings,
            deadline=settings.deadline_seconds,
            context=contexts.default,
        )
        results = [first]
        if not first.ok or first.leaf is None:
            return results
        seen = {first.leaf.fingerprint_sha256}
        for key_type, context in contexts.others(first.leaf.key_type):
            remaining = ends_at - loop.time()
            if remaining <= 0:
                break  # what the ordinary handshake saw stands; no time left to ask for more
            extra = await probe_address(
                endpoint, address, settings, deadline=remaining, context=context, key_offer=key_type
            )
            if extra.ok and extra.leaf is not None and extra.leaf.fingerprint_sha256 not in seen:
                seen.add(extra.leaf.fingerprint_sha256)
                results.append(extra)
        return results
