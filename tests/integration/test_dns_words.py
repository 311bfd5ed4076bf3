"""Resolver failures in sentences: no `Server Do53:127.0.0.1@5399 answered` in a finding."""

from __future__ import annotations

from typing import Any

from checks.model import DnsSettings
from checks.probes.dns import DnsProbe, make_resolver
from checks.rules.dns import Outcome
from tests.fakes.dns import SERVFAIL, TIMEOUT

ZONE = "contoso.com. 300 IN MX 0 mail.contoso.com.\n"


async def test_servfail_and_timeout_are_told_in_words(dns_server: Any) -> None:
    server = dns_server(zone=ZONE)
    server.set_mode("broken.com", SERVFAIL)
    server.set_mode("slow.com", TIMEOUT)
    probe = DnsProbe(
        make_resolver(
            DnsSettings(nameservers=("127.0.0.1",), port=server.port, timeout_seconds=0.3)
        )
    )
    broken, _ = await probe.query("broken.com", "MX")
    assert broken.outcome is Outcome.SERVFAIL
    assert broken.detail == (
        f"no nameserver gave an answer: 127.0.0.1 port {server.port} answered SERVFAIL"
    )
    slow, _ = await probe.query("slow.com", "MX")
    assert slow.outcome is Outcome.TIMEOUT
    assert slow.detail.startswith("no answer within ")
    for text in (broken.detail, slow.detail):
        assert "Do53" not in text
        assert "Server " not in text
