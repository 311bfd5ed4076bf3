"""MTA-STS end to end through `run_scan`: the policy host is resolved through `[dns]
nameservers`, fetched over HTTPS verified with `[trust] ca_file`, and judged against the MX."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from checks.config import parse_config
from checks.model import CheckId, Severity
from checks.scan import run_scan
from tests.integration.test_dns_probe import CA, policy_host  # noqa: F401 - the fixture

ZONE = """
tailspin.com. 300 IN MX 10 mx.tailspin.com.
_mta-sts.tailspin.com. 300 IN TXT "v=STSv1; id=1"
mta-sts.tailspin.com. 300 IN A 127.0.0.1
mx.tailspin.com. 300 IN A 127.0.0.1
fabrikam.com. 300 IN MX 10 mx2.fabrikam.com.
_mta-sts.fabrikam.com. 300 IN TXT "v=STSv1; id=20260101"
mta-sts.fabrikam.com. 300 IN A 127.0.0.1
mx2.fabrikam.com. 300 IN A 127.0.0.1
"""


async def test_policy_fetched_through_the_configured_resolver(
    tmp_path: Path,
    dns_server: Any,
    policy_host: tuple[str, list[str]],  # noqa: F811
) -> None:
    origin, seen = policy_host
    dns = dns_server(zone=ZONE)
    ca_file = tmp_path / "ca.pem"
    CA.cert_pem.write_to_path(str(ca_file))
    config = parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["tailspin.com", "fabrikam.com"]},
            "dns": {
                "nameservers": ["127.0.0.1"],
                "port": dns.port,
                "timeout_seconds": 1,
                "mta_sts_port": int(origin.rsplit(":", 1)[1]),
            },
            "trust": {"ca_file": str(ca_file)},
        },
        base_dir=tmp_path,
    )
    report = await run_scan(config, now=datetime.now(UTC), only=CheckId.DNS, environ={})
    assert ("udp", "mta-sts.tailspin.com.", "A") in dns.queries
    assert sorted(seen) == [
        "mta-sts.fabrikam.com/.well-known/mta-sts.txt",
        "mta-sts.tailspin.com/.well-known/mta-sts.txt",
    ]
    sts = {
        f.subject: f for f in report.findings if "MTA-STS" in f.message or "mta-sts" in f.message
    }
    assert sts["fabrikam.com"].severity is Severity.CRITICAL  # enforce, MX not in the policy
    assert "mx2.fabrikam.com" in sts["fabrikam.com"].message
    assert sts["tailspin.com"].severity is Severity.OK
