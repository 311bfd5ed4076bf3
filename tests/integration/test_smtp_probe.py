"""The SMTP/TLS probe against real loopback listeners: what it observes, and how it fails."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from checks.model import Endpoint, ProbeSettings, TlsMode
from checks.observations import FailureKind, ProbeStage
from checks.probes.smtp import (
    AddressLocks,
    ClientContexts,
    parse_reply,
    probe_address,
    probe_endpoint,
)
from checks.probes.tls_chain import presented_chain_der
from tests.fakes.pki import Pki
from tests.fakes.smtp import ServerFactory, closed_port, ipv6_loopback_available

FAST = ProbeSettings(
    timeout_seconds=0.5,
    greeting_timeout_seconds=1.0,
    deadline_seconds=2.0,
    concurrency=10,
    ehlo_name="probe.relaycheck.test",
    max_reply_bytes=8192,
)


def endpoint(port: int, *, address: str = "127.0.0.1", tls: TlsMode = TlsMode.STARTTLS) -> Endpoint:
    return Endpoint(name="relay", host="mail.contoso.com", address=address, port=port, tls=tls)


async def test_good_server_yields_whole_chain_version_and_cipher(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    leaf = pki.leaf()
    server = await smtp_server("good", leaf)
    (obs,) = await probe_endpoint(endpoint(server.port), FAST)
    assert obs.failure is None
    assert [c.fingerprint_sha256 for c in obs.chain] == [
        leaf.fingerprint,
        pki.intermediate.fingerprint(hashes.SHA256()).hex(),
    ]
    assert obs.tls_version in ("TLSv1.2", "TLSv1.3")
    assert obs.cipher
    assert obs.address == "127.0.0.1"
    # EHLO name from config, STARTTLS, then QUIT inside TLS
    assert server.commands == ["EHLO probe.relaycheck.test", "STARTTLS", "QUIT"]
    assert server.handshakes == 1


async def test_observes_expired_self_signed_and_weak_without_judging(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    for leaf in (
        pki.leaf(days=-1, not_before=pki.now.replace(year=pki.now.year - 1)),
        pki.leaf(self_signed=True),
        pki.leaf(rsa_bits=1024),
        pki.leaf(["other.example.net"]),
    ):
        server = await smtp_server("good", leaf)
        (obs,) = await probe_endpoint(endpoint(server.port), FAST)
        assert obs.failure is None, obs.failure
        assert obs.chain[0].fingerprint_sha256 == leaf.fingerprint


async def test_missing_intermediate_is_observed_as_sent(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    leaf = pki.leaf()
    server = await smtp_server("good", leaf, with_intermediates=False)
    (obs,) = await probe_endpoint(endpoint(server.port), FAST)
    assert [c.fingerprint_sha256 for c in obs.chain] == [leaf.fingerprint]


async def test_multiline_banner(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("multiline-banner", pki.leaf())
    (obs,) = await probe_endpoint(endpoint(server.port), FAST)
    assert obs.failure is None
    assert "ready" in obs.greeting


async def test_implicit_tls(pki: Pki, smtp_server: ServerFactory) -> None:
    leaf = pki.leaf()
    server = await smtp_server("implicit", leaf)
    (obs,) = await probe_endpoint(endpoint(server.port, tls=TlsMode.IMPLICIT), FAST)
    assert obs.failure is None
    assert obs.chain[0].fingerprint_sha256 == leaf.fingerprint
    assert "implicit" in obs.greeting
    assert server.commands == ["QUIT"]


async def test_tls10_is_negotiated_and_reported(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("tls10", pki.leaf())
    (obs,) = await probe_endpoint(endpoint(server.port), FAST)
    assert obs.failure is None, obs.failure
    assert obs.tls_version == "TLSv1"


@pytest.mark.parametrize(
    ("kind", "stage", "failure_kind", "code"),
    [
        ("banner-421", ProbeStage.GREETING, FailureKind.REJECTED, 421),
        ("no-starttls", ProbeStage.STARTTLS, FailureKind.NOT_OFFERED, None),
        ("refuse-454", ProbeStage.STARTTLS, FailureKind.REJECTED, 454),
        ("hang-after-starttls", ProbeStage.HANDSHAKE, FailureKind.TIMEOUT, None),
        ("silent", ProbeStage.GREETING, FailureKind.TIMEOUT, None),
        ("garbage", ProbeStage.GREETING, FailureKind.GARBAGE, None),
        ("drip", ProbeStage.GREETING, FailureKind.TIMEOUT, None),
        ("endless-ehlo", ProbeStage.EHLO, FailureKind.TOO_LONG, None),
    ],
)
async def test_misbehaving_servers_fail_as_data_within_deadline(
    pki: Pki,
    smtp_server: ServerFactory,
    kind: str,
    stage: ProbeStage,
    failure_kind: FailureKind,
    code: int | None,
) -> None:
    server = await smtp_server(kind, pki.leaf(), drip_interval=0.2)
    started = time.monotonic()
    (obs,) = await probe_endpoint(endpoint(server.port), FAST)
    elapsed = time.monotonic() - started
    assert obs.failure is not None
    assert (obs.failure.stage, obs.failure.kind, obs.failure.code) == (stage, failure_kind, code)
    assert elapsed < FAST.deadline_seconds + 0.5
    assert len(obs.failure.server_words) <= 200


@pytest.mark.parametrize(
    ("kind", "reason", "longest"),
    [
        ("silent", "no complete greeting reply within 1 s", 1.0),
        ("drip", "no complete greeting reply within 1 s", 1.0),
        # the handshake's 0.5 s is shorter than the greeting's 1 s before it: the one timer is
        # moved earlier, so the probe gives up after 0.5 s of handshake, not at the next second
        ("hang-after-starttls", "TLS handshake did not finish within 0.5 s", 0.5),
    ],
)
async def test_each_wait_names_its_own_timeout(
    pki: Pki, smtp_server: ServerFactory, kind: str, reason: str, longest: float
) -> None:
    server = await smtp_server(kind, pki.leaf(), drip_interval=0.2)
    started = time.monotonic()
    (obs,) = await probe_endpoint(endpoint(server.port), FAST)
    elapsed = time.monotonic() - started
    assert obs.failure is not None
    assert obs.failure.kind is FailureKind.TIMEOUT
    assert obs.failure.reason == reason
    assert longest - 0.05 < elapsed < longest + 0.4
    if kind == "drip":  # what the tarpit did say is quoted
        assert obs.failure.server_words.startswith("220 s")


async def test_endless_ehlo_keeps_memory_bounded(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("endless-ehlo", pki.leaf())
    tracemalloc.start()
    try:
        (obs,) = await probe_endpoint(endpoint(server.port), FAST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert obs.failure is not None
    assert obs.failure.kind is FailureKind.TOO_LONG
    # the server pushed megabytes into the socket; we held on to a few reply buffers at most
    assert server.bytes_sent > 10 * FAST.max_reply_bytes
    assert peak < 1024 * 1024, peak


async def test_421_is_temporary_and_quotes_the_server(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("banner-421", pki.leaf())
    (obs,) = await probe_endpoint(endpoint(server.port), FAST)
    assert obs.failure is not None
    assert obs.failure.temporary
    assert "4.3.2 Service not available" in obs.failure.server_words


async def test_no_starttls_quits_politely(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("no-starttls", pki.leaf())
    await probe_endpoint(endpoint(server.port), FAST)
    assert server.commands == ["EHLO probe.relaycheck.test", "QUIT"]


async def test_closed_port_is_refused() -> None:
    (obs,) = await probe_endpoint(endpoint(closed_port()), FAST)
    assert obs.failure is not None
    assert (obs.failure.stage, obs.failure.kind) == (ProbeStage.CONNECT, FailureKind.REFUSED)


async def test_endpoint_deadline_cuts_a_slow_conversation(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    server = await smtp_server("drip", pki.leaf(), drip_interval=0.05)
    settings = ProbeSettings(
        timeout_seconds=5,
        greeting_timeout_seconds=5,
        deadline_seconds=0.3,
        ehlo_name="probe.relaycheck.test",
    )
    started = time.monotonic()
    obs = await probe_address(endpoint(server.port), "127.0.0.1", settings)
    assert time.monotonic() - started < 1.0
    assert obs.failure is not None
    assert (obs.failure.stage, obs.failure.kind) == (ProbeStage.GREETING, FailureKind.DEADLINE)


async def test_one_connection_per_host_at_a_time(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("good", pki.leaf(), hold=0.1)
    locks = AddressLocks()
    target = endpoint(server.port)
    await asyncio.gather(*(probe_endpoint(target, FAST, locks=locks) for _ in range(4)))
    assert server.connections == 4
    assert server.peak_active == 1


async def test_refused_key_type_offers_still_keep_one_connection_per_address(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    """The second offer (RSA only) to an ECDSA-only server is refused and its connection
    aborted without waiting for the close: the next probe of the address still connects only
    after it is gone."""
    server = await smtp_server("good", pki.leaf(), hold=0.05)
    locks = AddressLocks()
    contexts = ClientContexts.create()
    target = endpoint(server.port)
    results = await asyncio.gather(
        *(probe_endpoint(target, FAST, locks=locks, contexts=contexts) for _ in range(4))
    )
    assert all(obs.failure is None for (obs,) in results)
    assert server.connections == 8  # each probe: the ordinary offer, then the refused one
    assert server.peak_active == 1


async def test_resolves_host_and_probes_each_address(pki: Pki, smtp_server: ServerFactory) -> None:
    """`localhost` has 127.0.0.1 (and ::1 where configured): each address is probed on its own."""
    server = await smtp_server("good", pki.leaf())
    target = Endpoint(name="relay", host="localhost", port=server.port)
    observations = await probe_endpoint(target, FAST)
    by_address = {o.address: o for o in observations}
    assert by_address["127.0.0.1"].failure is None
    for address, obs in by_address.items():
        if address != "127.0.0.1":  # nobody listens on ::1 for this port: refused, as data
            assert obs.failure is not None
            assert obs.failure.stage is ProbeStage.CONNECT


async def test_ipv6_loopback(pki: Pki, smtp_server: ServerFactory) -> None:
    if not ipv6_loopback_available():
        pytest.fail("this environment has no ::1; the IPv6 path cannot be tested here")
    leaf = pki.leaf()
    server = await smtp_server("good", leaf, host="::1")
    (obs,) = await probe_endpoint(endpoint(server.port, address="::1"), FAST)
    assert obs.failure is None
    assert obs.address == "::1"


async def test_unresolvable_host_is_a_resolve_failure() -> None:
    target = Endpoint(name="relay", host="no-such-host.invalid", port=25)
    (obs,) = await probe_endpoint(target, FAST)
    assert obs.failure is not None
    assert obs.failure.stage is ProbeStage.RESOLVE
    assert obs.address is None


def test_chain_shim_reads_the_sent_chain_over_loopback(pki: Pki, tmp_path: Path) -> None:
    """The private 3.11 path (or the public 3.13 one) returns leaf and intermediate, in order."""
    leaf = pki.leaf()
    server_ctx = leaf.server_context(tmp_path)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="mail.contoso.com")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    chain = presented_chain_der(client)
    assert [len(chain), chain[0]] == [2, leaf.cert.public_bytes(Encoding.DER)]


@pytest.mark.parametrize(
    ("data", "code", "lines"),
    [
        (b"220 ready\r\n", 220, ("ready",)),
        (b"250-a\r\n250-b\r\n250 c\r\n", 250, ("a", "b", "c")),
        (b"220\r\n", 220, ("",)),
        (b"250-a\n250 b\n", 250, ("a", "b")),
    ],
)
def test_parse_reply(data: bytes, code: int, lines: tuple[str, ...]) -> None:
    reply, used = parse_reply(data)
    assert reply is not None
    assert (reply.code, reply.lines, used) == (code, lines, len(data))


@pytest.mark.parametrize("data", [b"250-a\r\n", b"220 rea", b""])
def test_parse_reply_incomplete(data: bytes) -> None:
    assert parse_reply(data) == (None, 0)


@pytest.mark.parametrize("data", [b"HTTP/1.1 400\r\n", b"250-a\r\n251 b\r\n", b"\x16\x03\x01"])
def test_parse_reply_garbage(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"SMTP reply|code changed"):
        parse_reply(data)


async def test_deadline_running_out_during_quit_keeps_what_was_observed(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    """The chain was captured; a server that never answers QUIT must not turn it into a failure."""
    leaf = pki.leaf()
    server = await smtp_server("mute-quit", leaf)
    settings = replace(FAST, timeout_seconds=2.0, deadline_seconds=0.8)
    started = time.monotonic()
    (obs,) = await probe_endpoint(endpoint(server.port), settings)
    assert time.monotonic() - started < 1.5
    assert obs.failure is None
    assert obs.chain[0].fingerprint_sha256 == leaf.fingerprint


async def test_the_clock_leaves_an_expiring_scope_alone() -> None:
    """Between the clock expiring the scope and the cancellation arriving, the probe may still
    start another wait: that must neither re-arm a timer nor touch the expiring scope (asyncio
    would log "Cannot change state of expiring Timeout" from the timer's callback)."""
    from checks.probes.smtp import _Clock, _Wait

    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    clocks: list[_Clock] = []

    async def expire_then_wait() -> None:
        async with asyncio.timeout(None) as scope:
            clock = _Clock(loop, scope, loop.time() + 5)
            clocks.append(clock)
            clock.wait(_Wait.REPLY, ProbeStage.GREETING, 0.0)  # due at once; timer re-armed
            clock._check()  # the timer's callback: the scope expires, the cancellation queued
            clock.wait(_Wait.SEND, ProbeStage.EHLO, 0.0)  # the probe still runs: ignored
            await asyncio.sleep(1)  # the cancellation arrives here

    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        with pytest.raises(TimeoutError):
            await expire_then_wait()
        await asyncio.sleep(0.05)  # the re-armed timer fires, and must find nothing to do
        (clock,) = clocks
        clock.stop()
        assert clock.expired == (_Wait.REPLY, ProbeStage.GREETING, 0.0, "")
        assert errors == []
    finally:
        loop.set_exception_handler(None)
