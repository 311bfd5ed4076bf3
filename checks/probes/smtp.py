"""The SMTP/TLS probe: observe what a listener presents, judge nothing.

Observe first: the TLS context verifies nothing and allows old protocol versions, so that an
expired, self-signed, mismatched or TLS 1.0 server still completes the handshake and the rules
can say *what* is wrong instead of "handshake failed". Each stage has its own timeout (the
greeting a longer one, because tarpits delay it on purpose), the whole endpoint has a deadline,
and every reply is read with a byte limit, so an endless EHLO or a one-byte-a-second drip
costs at most `max_reply_bytes` and `deadline_seconds`. A remote failure is returned as a
`ProbeFailure`, never raised.

Deadlines on one timer: a conversation waits a dozen times (connect, each reply, each send, the
handshake, the close), and on loopback each wait ends within microseconds. One `asyncio.timeout`
per wait put a dozen timers per session into the event loop's heap, ~10% of the probe's CPU.
Instead each probe has one `asyncio.timeout` scope and a `_Clock`: a wait only moves the current
deadline, and the clock's one timer, set for the earliest deadline that could be due, checks when
it fires whether the current wait has run out; if so it expires the scope (asyncio does the
cancelling), if not it re-arms for the current deadline. The failure then names what ran out:
the wait's own timeout or the whole endpoint's deadline.

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
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from checks.i18n import _
from checks.model import Endpoint, ProbeSettings, TlsMode
from checks.observations import FailureKind, ProbeFailure, ProbeStage, TlsObservation, sanitize
from checks.probes.tls_chain import presented_chain_der
from checks.rules.certificates import CertificateFacts, facts_from_der

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
        # `^(\d{3})([ -]?)(.*)$`, spelled out: a few thousand reply lines per scan
        line_code = raw[:3]
        if len(line_code) < 3 or not line_code.isdigit():
            raise ValueError("not an SMTP reply")
        separator = raw[3:4]
        text = raw[4:] if separator in (b" ", b"-") else raw[3:]
        if code is None:
            code = line_code
        elif line_code != code:
            raise ValueError("reply code changed between continuation lines")
        lines.append(text.decode("utf-8", "replace"))
        if separator != b"-":
            return Reply(code=int(code), lines=tuple(lines)), position


class _Wait(StrEnum):
    """What a probe is waiting for: names the failure when that wait's own timeout runs out."""

    CONNECT = "connect"
    REPLY = "reply"
    SEND = "send"
    HANDSHAKE = "handshake"
    CLOSE = "close"


class _Clock:
    """The deadlines of one probe (each wait's timeout and the endpoint deadline) on one timer.

    `wait` moves the current deadline; the timer is re-armed only when the new deadline is
    earlier than the one it is set for. When it fires past the current deadline it records what
    ran out (`expired`) and expires the probe's `asyncio.timeout` scope."""

    __slots__ = (
        "ends_at",
        "expired",
        "handle",
        "kind",
        "loop",
        "scope",
        "seconds",
        "stage",
        "until",
        "what",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, scope: asyncio.Timeout, ends_at: float
    ) -> None:
        self.loop = loop
        self.scope = scope
        self.ends_at = ends_at
        self.until = ends_at
        self.kind: _Wait | None = None
        self.stage = ProbeStage.CONNECT
        self.seconds: float | None = None  # None: only the endpoint deadline bounds this wait
        self.what = ""
        # (kind, stage, seconds, what) of the wait that ran out; seconds None: the deadline
        self.expired: tuple[_Wait | None, ProbeStage, float | None, str] | None = None
        self.handle = loop.call_at(ends_at, self._check)

    def wait(self, kind: _Wait, stage: ProbeStage, seconds: float | None, what: str = "") -> None:
        """The next wait: at most `seconds` (None: until the endpoint deadline)."""
        if self.expired is not None:
            return  # the cancellation is on its way; no timer may touch the expiring scope
        self.kind, self.stage, self.what = kind, stage, what
        until = self.ends_at if seconds is None else self.loop.time() + seconds
        if until >= self.ends_at:
            self.until, self.seconds = self.ends_at, None  # the endpoint deadline comes first
            return
        self.until, self.seconds = until, seconds
        if until < self.handle.when():
            self.handle.cancel()
            self.handle = self.loop.call_at(until, self._check)

    def _check(self) -> None:
        if self.expired is not None:
            return
        now = self.loop.time()
        if now < self.until:
            self.handle = self.loop.call_at(self.until, self._check)
            return
        self.expired = (self.kind, self.stage, self.seconds, self.what)
        self.scope.reschedule(now)  # asyncio cancels the probe and raises TimeoutError

    def stop(self) -> None:
        self.handle.cancel()


class _Session:
    """One TCP (then TLS) connection with a bounded reply buffer."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        settings: ProbeSettings,
        clock: _Clock,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.clock = clock
        self.buffer = b""

    def failed(self, stage: ProbeStage, kind: FailureKind, reason: str) -> _Failed:
        """A failure carrying the start of what the server said (sanitised, truncated)."""
        return _Failed(
            ProbeFailure(
                stage=stage, kind=kind, reason=reason, server_words=sanitize(self.buffer[:200])
            )
        )

    async def reply(self, stage: ProbeStage, wait_seconds: float | None) -> Reply:
        """Read one whole reply; nothing is sent before it is complete."""
        limit = self.settings.max_reply_bytes
        self.clock.wait(_Wait.REPLY, stage, wait_seconds)
        try:
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
        except (ConnectionError, OSError) as err:
            raise self.failed(
                stage,
                FailureKind.CLOSED,
                f"connection lost during {stage.value} ({err.__class__.__name__})",
            ) from None

    async def send(self, stage: ProbeStage, line: str) -> None:
        command = line.split(" ", 1)[0]
        try:
            self.writer.write(line.encode("ascii") + b"\r\n")
            self.clock.wait(_Wait.SEND, stage, self.settings.timeout_seconds, command)
            await self.writer.drain()
        except (ConnectionError, OSError) as err:
            reason = _cannot_send(command, err.__class__.__name__)
            raise _fail(stage, FailureKind.CLOSED, reason) from None

    async def command(self, stage: ProbeStage, line: str) -> Reply:
        await self.send(stage, line)
        return await self.reply(stage, self.settings.timeout_seconds)

    async def close(self, *, graceful: bool) -> None:
        """QUIT politely when the session is healthy, otherwise drop the connection.

        A close that runs out of time expires the probe's scope; what was observed stands."""
        transport = self.writer.transport
        if graceful:
            try:
                await self.command(ProbeStage.QUIT, "QUIT")
            except _Failed:
                graceful = False
        if graceful:
            self.writer.close()
            try:
                self.clock.wait(_Wait.CLOSE, ProbeStage.QUIT, self.settings.timeout_seconds)
                await self.writer.wait_closed()
                return
            except (ConnectionError, OSError, ssl.SSLError):
                pass
        # no waiting after an abort: the loop closes the socket on its next pass (a callback
        # queued now), before the next probe of this address is woken (queued after it, when
        # the address lock is released), so one connection per address still holds
        transport.abort()


def _cannot_send(command: str, error: str) -> str:
    return _("cannot send {command} ({error})").format(command=command, error=error)


def _ran_out(clock: _Clock, session: object, stage_now: ProbeStage, budget: float) -> ProbeFailure:
    """The failure of a probe whose scope expired: the wait whose own timeout ran out, or the
    endpoint deadline (`stage_now`: the stage the conversation had reached)."""
    kind, stage, seconds, what = clock.expired or (None, stage_now, None, "")
    if seconds is None:
        return ProbeFailure(
            stage=stage_now,
            kind=FailureKind.DEADLINE,
            reason=_("the endpoint deadline of {seconds} s ran out during {stage}").format(
                seconds=f"{round(budget, 1):g}", stage=stage_now.value
            ),
        )
    shown = f"{seconds:g}"
    if kind is _Wait.CONNECT:
        reason = _("no TCP connection within {seconds} s").format(seconds=shown)
        return ProbeFailure(stage=ProbeStage.CONNECT, kind=FailureKind.TIMEOUT, reason=reason)
    if kind is _Wait.HANDSHAKE:
        reason = _("TLS handshake did not finish within {seconds} s").format(seconds=shown)
        return ProbeFailure(stage=ProbeStage.HANDSHAKE, kind=FailureKind.TIMEOUT, reason=reason)
    if kind is _Wait.SEND:
        reason = _cannot_send(what, "TimeoutError")
        return ProbeFailure(stage=stage, kind=FailureKind.CLOSED, reason=reason)
    reason = f"no complete {stage.value} reply within {shown} s"
    if isinstance(session, _Session):
        return session.failed(stage, FailureKind.TIMEOUT, reason).failure
    return ProbeFailure(stage=stage, kind=FailureKind.TIMEOUT, reason=reason)


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
    clock: _Clock,
) -> TlsObservation:
    """Connect, greet, EHLO, STARTTLS, handshake, QUIT; raises `_Failed` at the failing stage
    (a wait that runs out expires the probe's scope instead: `_ran_out`)."""
    state["stage"] = ProbeStage.CONNECT
    clock.wait(_Wait.CONNECT, ProbeStage.CONNECT, settings.timeout_seconds)
    try:
        reader, writer = await asyncio.open_connection(address, endpoint.port)
    except TimeoutError:  # the kernel's own connect timeout (ETIMEDOUT), not the clock's
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
    session = _Session(reader, writer, settings, clock)
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
    clock.wait(_Wait.HANDSHAKE, ProbeStage.HANDSHAKE, settings.timeout_seconds)
    try:
        await writer.start_tls(
            context,
            server_hostname=endpoint.host,
            ssl_handshake_timeout=settings.timeout_seconds,
        )
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
            # its own timeout: a missing banner is no failure, the certificate is what we came for
            async with asyncio.timeout(settings.greeting_timeout_seconds):
                banner = await session.reply(ProbeStage.GREETING, None)
            greeting = sanitize(banner.text)
        except (_Failed, TimeoutError):
            greeting = ""
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
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    state: dict[str, object] = {"stage": ProbeStage.CONNECT, "graceful": False}
    budget = settings.deadline_seconds if deadline is None else deadline
    observation: TlsObservation | None = None
    clock: _Clock | None = None
    try:
        async with asyncio.timeout(None) as scope:
            clock = _Clock(loop, scope, loop.time() + budget)
            try:
                observation = await _converse(
                    endpoint, address, settings, state, context, key_offer, clock
                )
            except _Failed as failed:
                observation = _failed(endpoint, address, failed.failure)
            session = state.get("session")
            if isinstance(session, _Session):
                await session.close(graceful=bool(state["graceful"]))
                state.pop("session")
    except TimeoutError:
        if not scope.expired() or clock is None:
            raise
        if observation is None:
            stage = state["stage"]
            assert isinstance(stage, ProbeStage)
            failure = _ran_out(clock, state.get("session"), stage, budget)
            observation = _failed(endpoint, address, failure)
        # else: what was observed stands; only the polite QUIT ran out of time
    finally:
        if clock is not None:
            clock.stop()
        session = state.get("session")
        if isinstance(session, _Session):
            session.writer.transport.abort()
    assert observation is not None
    # a fresh value no one else holds yet: set in place rather than copied by `replace`
    object.__setattr__(observation, "elapsed_seconds", round(time.monotonic() - started, 3))
    return observation


def _failed(endpoint: Endpoint, address: str | None, failure: ProbeFailure) -> TlsObservation:
    return TlsObservation(
        endpoint=endpoint.name,
        host=endpoint.host,
        port=endpoint.port,
        address=address,
        failure=failure,
    )


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
    if len(addresses) == 1:  # the usual case: no task and gathering future per endpoint
        return tuple(
            await _probe_one_address(endpoint, addresses[0], settings, locks, contexts, slots)
        )
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
