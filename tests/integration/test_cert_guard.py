"""`/relaycheck cert` as an attacker would use it (issue 15): the SSRF guard, one deadline per
command, `[probe] concurrency` across commands, the per-user limit, odd port digits.

Names resolve through the loopback DNS server; the guard decides on the resolved addresses
before any connection (a connection to anything but loopback would fail the conftest guard,
and the answers say "refused", which only the guard says).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from checks.config import parse_config
from checks.rules.targets import is_public, refusal
from tests.fakes.slack import SlackApiStandIn
from tests.fakes.smtp import closed_port
from tests.integration.slack_support import Runner

# every one of these must be refused; (address, words the reason contains)
REFUSED = [
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.0.8", "IETF"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "discard"),
    ("::ffff:10.0.0.1", "IPv4-mapped, embedding 10.0.0.1: private"),
    ("::ffff:0:a00:1", "IPv4-translated, embedding 10.0.0.1: private"),
    ("::a00:1", "IPv4-compatible, embedding 10.0.0.1: private"),
    ("64:ff9b::a00:1", "NAT64, embedding 10.0.0.1: private"),
    ("64:ff9b::a9fe:a9fe", "NAT64, embedding 169.254.169.254: link-local"),
    ("64:ff9b::7f00:1", "NAT64, embedding 127.0.0.1: loopback"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("64:ff9b:1:ffff::1", "local-use NAT64"),
    ("2002:a00:1::1", "6to4, embedding 10.0.0.1: private"),
    ("2002:7f00:1::1", "6to4, embedding 127.0.0.1: loopback"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo, embedding 10.0.0.1: private"),
    ("5f00::1", "reserved"),
    ("4000::1", "outside global unicast"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 to a public address: judged by what it embeds
    "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_the_rule_refuses(address: str, reason: str) -> None:
    said = refusal(address)
    assert said is not None
    assert reason in said
    assert not is_public(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_the_rule_allows_public_unicast(address: str) -> None:
    assert refusal(address) is None


def _zone(names: dict[str, str]) -> str:
    lines = []
    for name, address in names.items():
        kind = "AAAA" if ":" in address else "A"
        lines.append(f"{name}. 300 IN {kind} {address}")
    return "\n".join(lines) + "\n"


def _text(blocks: list[dict[str, Any]]) -> str:
    texts: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts.extend(e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str))
    return "\n".join(texts)


def _config(tmp_path: Path, dns_port: int, **probe: Any) -> Any:
    return parse_config(
        {
            "tenant": {"name": "Contoso", "accepted_domains": ["contoso.com"]},
            "dns": {"nameservers": ["127.0.0.1"], "port": dns_port, "timeout_seconds": 2},
            "probe": {"timeout_seconds": 2, "deadline_seconds": 5, **probe},
            "slack": {"probe_allowed_domains": ["contoso.com"]},
        },
        base_dir=tmp_path,
    )


@pytest.fixture
def stream_connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connection attempted while the test runs (after the conftest guard)."""
    seen: list[Any] = []
    inner = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.type == socket.SOCK_STREAM:
            seen.append(address)
        return inner(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


async def test_ssrf_matrix_through_the_slash_command(
    tmp_path: Path,
    slack_api: SlackApiStandIn,
    run_bot: Runner,
    dns_server: Any,
    stream_connects: list[Any],
) -> None:
    names = {f"n{i:02d}.contoso.com": address for i, (address, _) in enumerate(REFUSED)}
    zone = _zone(names) + "mixed.contoso.com. 300 IN A 8.8.8.8\n"
    zone += "mixed.contoso.com. 300 IN AAAA 64:ff9b::a00:1\n"
    dns = dns_server(zone=zone)
    await run_bot(_config(tmp_path, dns.port))
    connects_before = len(stream_connects)  # the bot's own connection to the stand-in
    cases = [*((n, reason) for n, (_, reason) in zip(names, REFUSED, strict=True))]
    cases.append(("mixed.contoso.com", "NAT64, embedding 10.0.0.1"))
    for index, (name, _) in enumerate(cases):
        slack_api.push_slash_command(
            "/relaycheck", f"cert {name}", response_id=f"m{index}", user_id=f"U{index:04d}"
        )
    for index, (name, reason) in enumerate(cases):
        rid = f"m{index}"
        await slack_api.await_until(lambda rid=rid: bool(slack_api.responses(rid)), within=15)
        answer = _text(slack_api.responses(rid)[0].params["blocks"])
        assert "not a public address" in answer, (name, answer)
        assert reason in answer, (name, answer)
        assert "refused" in answer
    # the only TCP connections were to the Slack stand-in: the guard decided before any probe
    probes = [a for a in stream_connects[connects_before:] if a[1] != slack_api.port]
    assert probes == []
    assert ("udp", "n28.contoso.com.", "AAAA") in dns.queries  # resolved, then judged


@pytest.fixture
async def tarpit() -> AsyncIterator[Callable[..., Any]]:
    """Silent TCP listeners on 127.0.0.2.. sharing one port; counts open connections."""
    servers: list[asyncio.Server] = []
    state = {"open": 0, "most": 0, "total": 0}
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state["open"] += 1
        state["total"] += 1
        state["most"] = max(state["most"], state["open"])
        writers.append(writer)
        try:
            await reader.read()  # never a banner: wait until the prober gives up
        finally:
            state["open"] -= 1
            writer.close()

    async def start(count: int) -> tuple[list[str], int, dict[str, int]]:
        first = await asyncio.start_server(handle, "127.0.0.2", 0)
        port = first.sockets[0].getsockname()[1]
        servers.append(first)
        hosts = ["127.0.0.2"]
        for i in range(3, count + 2):
            servers.append(await asyncio.start_server(handle, f"127.0.0.{i}", port))
            hosts.append(f"127.0.0.{i}")
        return hosts, port, state

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


def _private_ok(config: Any) -> Any:
    """How tests reach loopback: the explicit `[slack] allow_private_targets` switch."""
    return replace(config, slack=replace(config.slack, allow_private_targets=True))


async def test_one_deadline_for_the_whole_command_not_per_address(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, dns_server: Any, tarpit: Any
) -> None:
    hosts, port, state = await tarpit(10)
    zone = "".join(f"pool.contoso.com. 300 IN A {h}\n" for h in hosts)
    dns = dns_server(zone=zone)
    config = _private_ok(
        _config(tmp_path, dns.port, deadline_seconds=1, timeout_seconds=1, concurrency=1)
    )
    await run_bot(config)
    started = time.monotonic()
    slack_api.push_slash_command("/relaycheck", f"cert pool.contoso.com:{port}", response_id="p")
    await slack_api.await_until(lambda: bool(slack_api.responses("p")), within=8)
    # ten addresses, one connection at a time: one 1 s deadline, not 10 x 1 s
    assert time.monotonic() - started < 6
    answer = _text(slack_api.responses("p")[0].params["blocks"])
    assert "deadline" in answer
    assert "ran out before this address answered" in answer
    assert state["most"] <= 1


async def test_probe_concurrency_holds_across_concurrent_commands(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, dns_server: Any, tarpit: Any
) -> None:
    hosts, port, state = await tarpit(1)
    dns = dns_server(zone=f"slow.contoso.com. 300 IN A {hosts[0]}\n")
    config = _private_ok(
        _config(tmp_path, dns.port, deadline_seconds=1, timeout_seconds=1, concurrency=2)
    )
    await run_bot(config)
    for i in range(6):
        slack_api.push_slash_command(
            "/relaycheck", f"cert slow.contoso.com:{port}", response_id=f"c{i}", user_id=f"U{i}"
        )
    await slack_api.await_until(
        lambda: all(slack_api.responses(f"c{i}") for i in range(6)), within=20
    )
    assert state["total"] == 6
    assert state["most"] <= 2


async def test_one_user_may_probe_only_so_often(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, dns_server: Any
) -> None:
    port = closed_port()  # each probe is one refused connection on loopback
    dns = dns_server(zone="mail.contoso.com. 300 IN A 127.0.0.1\n")
    await run_bot(_private_ok(_config(tmp_path, dns.port)))
    for i in range(7):
        slack_api.push_slash_command(
            "/relaycheck", f"cert mail.contoso.com:{port}", response_id=f"r{i}", user_id="U0EAGER"
        )
        await slack_api.await_until(lambda i=i: bool(slack_api.responses(f"r{i}")), within=10)
    answers = [json.dumps(slack_api.responses(f"r{i}")[0].params) for i in range(7)]
    assert not any("per minute per user" in a for a in answers[:5])
    assert all("at most 5 per minute per user" in a for a in answers[5:])
    other = slack_api.push_slash_command(
        "/relaycheck", f"cert mail.contoso.com:{port}", response_id="o", user_id="U0CALM"
    )
    await slack_api.ack_for(other)
    await slack_api.await_until(lambda: bool(slack_api.responses("o")), within=10)
    assert "per minute per user" not in json.dumps(slack_api.responses("o")[0].params)


async def test_refused_targets_do_not_count_against_the_limit(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, dns_server: Any
) -> None:
    dns = dns_server(zone="mail.contoso.com. 300 IN A 192.0.2.1\n")
    await run_bot(_config(tmp_path, dns.port))
    for i in range(8):
        slack_api.push_slash_command(
            "/relaycheck", "cert mail.contoso.com", response_id=f"q{i}", user_id="U0EAGER"
        )
    await slack_api.await_until(
        lambda: all(slack_api.responses(f"q{i}") for i in range(8)), within=10
    )
    for i in range(8):
        answer = json.dumps(slack_api.responses(f"q{i}")[0].params)
        assert "not a public address" in answer
        assert "per minute" not in answer


@pytest.mark.parametrize(
    "text", ["cert mail.contoso.com:²⁵", "cert mail.contoso.com:٢٥", "cert [::1]:x"]
)
async def test_odd_port_digits_are_one_line_in_the_ack(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, dns_server: Any, text: str
) -> None:
    dns = dns_server(zone="mail.contoso.com. 300 IN A 192.0.2.1\n")
    await run_bot(_config(tmp_path, dns.port))
    envelope = slack_api.push_slash_command("/relaycheck", text)
    ack = str(await slack_api.ack_for(envelope))
    assert "is not a TCP port" in ack
    assert "Traceback" not in ack
