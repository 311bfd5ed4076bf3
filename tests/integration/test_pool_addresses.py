"""A pool of nine addresses under one host name, one of them a tarpit.

Each address is its own listener on 127.0.0.N (all of 127/8 is loopback), on one port, and a
loopback DNS server gives the name all nine A records. The lock is per address, so the tarpit
costs only its own deadline: the other eight are judged normally, and the whole scan ends
within one deadline of them.
"""

from __future__ import annotations

import time
from typing import Any

from checks.config import parse_config
from checks.model import CheckId, Severity
from checks.scan import probe_all, run_scan
from tests.fakes.dns import StartDns
from tests.fakes.pki import Pki
from tests.fakes.smtp import FakeSmtpServer, ServerFactory

DEADLINE = 2.0
TARPIT = "127.0.0.2"


async def start_pool(pki: Pki, smtp_server: ServerFactory) -> list[FakeSmtpServer]:
    """Nine listeners on one port: the first binds port 0, the others that port elsewhere."""
    leaf = pki.leaf(["pool.contoso.com"])
    for _attempt in range(5):
        first = await smtp_server("good", leaf, host="127.0.0.1")
        servers = [first]
        try:
            for last in range(2, 10):
                address = f"127.0.0.{last}"
                kind = "silent" if address == TARPIT else "good"
                servers.append(await smtp_server(kind, leaf, host=address, port=first.port))
        except OSError:
            continue  # someone else holds that port on one of the addresses: try another
        return servers
    raise RuntimeError("no port free on all of 127.0.0.1-9")


def pool_config(pki: Pki, port: int, dns_port: int) -> Any:
    raw: dict[str, Any] = {
        "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
        "endpoints": [{"name": "pool", "host": "pool.contoso.com", "port": port}],
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": {
            "timeout_seconds": 0.5,
            "greeting_timeout_seconds": 10,  # longer than the deadline: the tarpit uses it all
            "deadline_seconds": DEADLINE,
            "ehlo_name": "probe.relaycheck.test",
        },
        # the probe resolves through the loopback server; no DNS checks run
        "dns": {"enabled": False, "nameservers": ["127.0.0.1"], "port": dns_port},
    }
    return parse_config(raw, base_dir=pki.tmp_path)


async def test_one_tarpit_among_nine_addresses_delays_only_itself(
    pki: Pki, smtp_server: ServerFactory, dns_server: StartDns
) -> None:
    servers = await start_pool(pki, smtp_server)
    zone = "".join(f"pool.contoso.com. 300 IN A 127.0.0.{n}\n" for n in range(1, 10))
    dns = dns_server(zone=zone)
    config = pool_config(pki, servers[0].port, dns.port)

    started = time.monotonic()
    observations, bugs = await probe_all(config.endpoints, config)
    elapsed = time.monotonic() - started
    assert bugs == []
    primary = [o for o in observations["pool"] if o.key_offer is None]
    by_address = {o.address: o for o in primary}
    assert set(by_address) == {f"127.0.0.{n}" for n in range(1, 10)}
    tarpit = by_address.pop(TARPIT)
    assert tarpit.failure is not None
    assert tarpit.failure.stage.value == "greeting"
    # every other address was probed and served its certificate, however slow the tarpit
    assert all(o.ok for o in by_address.values()), [o.failure for o in by_address.values()]
    others = max(o.elapsed_seconds for o in by_address.values())
    # the whole pool took at most one deadline more than the slowest healthy address
    assert elapsed < others + DEADLINE + 1.0
    for server in servers:
        assert server.peak_active <= 1  # one connection at a time per address, still


async def test_scan_of_the_pool_reports_only_the_tarpit(
    pki: Pki, smtp_server: ServerFactory, dns_server: StartDns
) -> None:
    servers = await start_pool(pki, smtp_server)
    zone = "".join(f"pool.contoso.com. 300 IN A 127.0.0.{n}\n" for n in range(1, 10))
    dns = dns_server(zone=zone)
    config = pool_config(pki, servers[0].port, dns.port)
    report = await run_scan(config, now=pki.now, environ={})
    bad = [f for f in report.findings if f.severity > Severity.INFO]
    assert [(f.check, f.details.get("address")) for f in bad] == [
        (CheckId.ENDPOINT_UNREACHABLE, TARPIT)
    ]
    (expiry,) = [f for f in report.findings if f.check is CheckId.CERT_EXPIRY]
    assert len(expiry.details["addresses"]) == 8
