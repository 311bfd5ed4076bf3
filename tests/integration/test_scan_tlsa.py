"""TLSA in a real scan: DNS names an on-prem MX, the scan probes it, and the TLSA record is
matched against the certificate the MX actually served (DNS and STARTTLS both on loopback)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from checks.config import parse_config
from checks.model import CheckId, Severity
from checks.scan import run_scan
from tests.fakes.pki import Issued, Pki


def _spki_sha256(issued: Issued) -> str:
    spki = issued.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


async def _scan(tmp_path: Path, pki: Pki, dns_server, smtp_server, tlsa: str, *, only: CheckId):  # type: ignore[no-untyped-def]
    served = pki.leaf(["mx1.contoso.com"])
    server = await smtp_server(kind="good", chain=served)
    zone = f"""
contoso.com. 300 IN MX 10 mx1.contoso.com.
contoso.com. 300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"
mx1.contoso.com. 300 IN A 127.0.0.1
_25._tcp.mx1.contoso.com. 300 IN TLSA 3 1 1 {tlsa or _spki_sha256(served)}
"""
    dns = dns_server(zone=zone)
    config = parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "dns": {"nameservers": ["127.0.0.1"], "port": dns.port, "timeout_seconds": 1},
            "probe": {
                "mx_port": server.port,
                "timeout_seconds": 2,
                "ehlo_name": "probe.contoso.com",
            },
            "trust": {"ca_file": str(pki.ca_file)},
        },
        base_dir=tmp_path,
    )
    report = await run_scan(config, now=datetime.now(UTC), only=only, environ={})
    return [f for f in report.findings if f.cause.startswith("tlsa")], report


async def test_tlsa_matching_the_served_certificate(tmp_path, pki, dns_server, smtp_server) -> None:  # type: ignore[no-untyped-def]
    tlsa, report = await _scan(tmp_path, pki, dns_server, smtp_server, "", only=CheckId.DNS)
    assert [(f.subject, f.severity) for f in tlsa] == [("mx1.contoso.com", Severity.OK)]
    assert all(f.check is CheckId.DNS for f in report.findings)


async def test_tlsa_not_matching_the_served_certificate(
    tmp_path, pki, dns_server, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    tlsa, _ = await _scan(tmp_path, pki, dns_server, smtp_server, "ab" * 32, only=CheckId.DNS)
    assert [(f.subject, f.severity, f.cause) for f in tlsa] == [
        ("mx1.contoso.com", Severity.CRITICAL, "tlsa-mismatch")
    ]
    assert "DANE" in tlsa[0].message


async def test_full_scan_probes_the_mx_once_for_certificates_and_tlsa(
    tmp_path, pki, dns_server, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    tlsa, report = await _scan(tmp_path, pki, dns_server, smtp_server, "", only=None)  # type: ignore[arg-type]
    assert [f.severity for f in tlsa] == [Severity.OK]
    mx_findings = {f.check for f in report.findings if f.subject == "mx:mx1.contoso.com"}
    assert CheckId.CERT_EXPIRY in mx_findings
    assert {c.subject for c in report.certificates} == {"mx:mx1.contoso.com"}


async def test_dns_disabled_asks_nothing(tmp_path, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone="contoso.com. 300 IN MX 10 mx1.contoso.com.\n")
    config = parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "dns": {"enabled": False, "nameservers": ["127.0.0.1"], "port": dns.port},
        },
        base_dir=tmp_path,
    )
    report = await run_scan(config, now=datetime.now(UTC), environ={})
    assert dns.queries == []
    assert not [f for f in report.findings if f.check in (CheckId.MX, CheckId.DNS)]
