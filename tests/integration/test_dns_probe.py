"""The DNS probe and rules against a real DNS server and a real HTTPS policy host on loopback."""

from __future__ import annotations

import hashlib
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from checks.model import DnsSettings, EndpointRole, Severity
from checks.probes.dns import observe_domains
from checks.rules.certificates import CertificateFacts, facts_from_x509
from checks.rules.dns import DomainDns, Outcome, dns_findings, mx_endpoints, mx_findings
from tests.fakes.dns import SERVFAIL, TIMEOUT

CA = trustme.CA()
MX_CERT = CA.issue_cert("mx1.fabrikam.com")
OTHER_CERT = CA.issue_cert("other.example")


def _chain(cert: trustme.LeafCert) -> tuple[CertificateFacts, ...]:
    return tuple(
        facts_from_x509(x509.load_pem_x509_certificate(blob.bytes()))
        for blob in cert.cert_chain_pems
    )


def _spki_sha256(cert: trustme.LeafCert) -> str:
    leaf = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


ZONE = f"""
contoso.com. 300 IN MX 0 contoso-com.mail.protection.outlook.com.
contoso.com. 300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"
contoso-com.mail.protection.outlook.com. 300 IN A 192.0.2.10
fabrikam.com. 300 IN MX 10 mx1.fabrikam.com.
fabrikam.com. 300 IN MX 20 mx2.fabrikam.com.
fabrikam.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 " "include:_spf.fabrikam.com ~all"
_spf.fabrikam.com. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"
_mta-sts.fabrikam.com. 300 IN TXT "v=STSv1; id=20260101"
mx1.fabrikam.com. 300 IN A 192.0.2.21
mx1.fabrikam.com. 300 IN AAAA 2001:db8::21
mx2.fabrikam.com. 300 IN A 192.0.2.22
_25._tcp.mx1.fabrikam.com. 300 IN TLSA 3 1 1 {_spki_sha256(MX_CERT)}
_25._tcp.mx2.fabrikam.com. 300 IN TLSA 3 1 1 {"00" * 32}
tailspin.com. 300 IN MX 10 mx.tailspin.com.
tailspin.com. 300 IN TXT "v=spf1 include:_spf.tailspin.com -all"
_spf.tailspin.com. 300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"
_mta-sts.tailspin.com. 300 IN TXT "v=STSv1; id=1"
mx.tailspin.com. 300 IN A 192.0.2.30
nomx.com. 300 IN A 192.0.2.40
nullmx.com. 300 IN MX 0 .
ghostmx.com. 300 IN MX 10 ghost.ghostmx.com.
broken.com. 300 IN MX 10 mx.broken.com.
slow.com. 300 IN MX 10 mx.slow.com.
"""

POLICIES = {
    "mta-sts.fabrikam.com": "version: STSv1\r\nmode: enforce\r\nmx: mx1.fabrikam.com\r\nmax_age: 86400\r\n",
    "mta-sts.tailspin.com": "version: STSv1\nmode: enforce\nmx: *.tailspin.com\nmax_age: 604800\n",
}


@pytest.fixture
def policy_host() -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server on 127.0.0.1 with a trustme certificate for the mta-sts hosts."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            host = self.headers.get("Host", "")
            seen.append(f"{host}{self.path}")
            body = POLICIES.get(host, "").encode()
            self.send_response(200 if body and self.path == "/.well-known/mta-sts.txt" else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    CA.issue_cert(*POLICIES).configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
async def observed(dns_server: Any, policy_host: tuple[str, list[str]]) -> dict[str, DomainDns]:
    server = dns_server(zone=ZONE)
    server.set_mode("broken.com", SERVFAIL)
    server.set_mode("slow.com", TIMEOUT)
    settings = DnsSettings(nameservers=("127.0.0.1",), port=server.port, timeout_seconds=0.3)
    client_ctx = ssl.create_default_context()
    CA.configure_trust(client_ctx)
    async with httpx.AsyncClient(verify=client_ctx, timeout=2) as http:
        results = await observe_domains(
            settings,
            [
                "contoso.com",
                "fabrikam.com",
                "tailspin.com",
                "nomx.com",
                "nullmx.com",
                "ghostmx.com",
                "missing.com",
                "broken.com",
                "slow.com",
            ],
            http=http,
            sts_origin=policy_host[0],
        )
    assert {q[0] for q in server.queries} == {"udp"}
    return {r.domain: r for r in results}


def _causes(findings: list[Any]) -> dict[str, Severity]:
    return {f.cause: f.severity for f in findings}


async def test_good_mx_to_exchange_online(observed: dict[str, DomainDns]) -> None:
    findings = mx_findings(observed["contoso.com"], expected=("exchange-online",))
    assert [(f.severity, f.details["hosts"]) for f in findings] == [
        (Severity.OK, ["contoso-com.mail.protection.outlook.com"])
    ]
    assert _causes(dns_findings(observed["contoso.com"])) == {"spf": Severity.OK}
    assert mx_endpoints([observed["contoso.com"]]) == ()


async def test_mx_to_on_prem_is_unexpected_and_becomes_endpoints(
    observed: dict[str, DomainDns],
) -> None:
    obs = observed["fabrikam.com"]
    assert _causes(mx_findings(obs, expected=("exchange-online",))) == {
        "unexpected-host": Severity.CRITICAL
    }
    assert _causes(mx_findings(obs, expected=("*.fabrikam.com",))) == {"": Severity.OK}
    endpoints = mx_endpoints([obs])
    assert [(e.host, e.port, e.role) for e in endpoints] == [
        ("mx1.fabrikam.com", 25, EndpointRole.MX),
        ("mx2.fabrikam.com", 25, EndpointRole.MX),
    ]
    mx1 = next(h for h in obs.hosts if h.host == "mx1.fabrikam.com")
    assert set(mx1.addresses) == {"192.0.2.21", "2001:db8::21"}


async def test_no_mx_nxdomain_servfail_timeout_null_mx_are_distinct(
    observed: dict[str, DomainDns],
) -> None:
    expected = ("exchange-online",)
    assert _causes(mx_findings(observed["nomx.com"], expected=expected)) == {
        "no-mx": Severity.CRITICAL
    }
    assert _causes(mx_findings(observed["nomx.com"], expected=())) == {"no-mx": Severity.WARNING}
    assert _causes(mx_findings(observed["missing.com"], expected=expected)) == {
        "nxdomain": Severity.CRITICAL
    }
    assert _causes(mx_findings(observed["broken.com"], expected=expected)) == {
        "servfail": Severity.CRITICAL
    }
    assert observed["slow.com"].mx.outcome is Outcome.TIMEOUT
    assert _causes(mx_findings(observed["slow.com"], expected=expected)) == {
        "timeout": Severity.WARNING
    }
    assert _causes(mx_findings(observed["nullmx.com"], expected=expected)) == {
        "null-mx": Severity.CRITICAL
    }
    ghost = mx_findings(observed["ghostmx.com"], expected=())
    assert _causes(ghost) == {"unresolvable": Severity.CRITICAL}
    assert "ghost.ghostmx.com" in ghost[0].message


async def test_spf_with_nested_include_and_without(observed: dict[str, DomainDns]) -> None:
    tailspin = dns_findings(observed["tailspin.com"])
    assert _causes(tailspin)["spf"] is Severity.OK
    fabrikam = [f for f in dns_findings(observed["fabrikam.com"]) if f.cause.startswith("spf")]
    assert [(f.cause, f.severity) for f in fabrikam] == [("spf-no-exo", Severity.WARNING)]
    # the record split over two strings was joined, and the include was followed
    assert "_spf.fabrikam.com" in observed["fabrikam.com"].spf
    assert _causes(dns_findings(observed["nomx.com"]))["spf-missing"] is Severity.WARNING


async def test_mta_sts_present_and_mismatching(
    observed: dict[str, DomainDns], policy_host: tuple[str, list[str]]
) -> None:
    assert _causes(dns_findings(observed["tailspin.com"]))["mta-sts"] is Severity.OK
    fabrikam = {f.cause: f for f in dns_findings(observed["fabrikam.com"])}
    mismatch = fabrikam["mta-sts-mismatch"]
    assert mismatch.severity is Severity.CRITICAL
    assert mismatch.details["unlisted"] == ["mx2.fabrikam.com"]
    assert sorted(policy_host[1]) == [
        "mta-sts.fabrikam.com/.well-known/mta-sts.txt",
        "mta-sts.tailspin.com/.well-known/mta-sts.txt",
    ]
    assert "mta-sts" not in _causes(dns_findings(observed["contoso.com"]))


async def test_tlsa_matching_and_not(observed: dict[str, DomainDns]) -> None:
    obs = observed["fabrikam.com"]
    chains = {"mx1.fabrikam.com": _chain(MX_CERT), "mx2.fabrikam.com": _chain(MX_CERT)}
    by_host = {f.subject: f for f in dns_findings(obs, chains=chains) if f.cause.startswith("tlsa")}
    assert by_host["mx1.fabrikam.com"].severity is Severity.OK
    assert by_host["mx2.fabrikam.com"].severity is Severity.CRITICAL
    other = {"mx1.fabrikam.com": _chain(OTHER_CERT)}
    again = [f for f in dns_findings(obs, chains=other) if f.subject == "mx1.fabrikam.com"]
    assert [(f.cause, f.severity) for f in again] == [("tlsa-mismatch", Severity.CRITICAL)]


async def test_mta_sts_fetch_rejects_an_untrusted_certificate(
    dns_server: Any, policy_host: tuple[str, list[str]]
) -> None:
    server = dns_server(zone=ZONE)
    settings = DnsSettings(nameservers=("127.0.0.1",), port=server.port, timeout_seconds=0.5)
    async with httpx.AsyncClient(timeout=2) as http:  # system trust: the test CA is unknown
        (obs,) = await observe_domains(
            settings, ["tailspin.com"], http=http, sts_origin=policy_host[0]
        )
    assert obs.mta_sts is not None
    assert obs.mta_sts.policy_text is None
    assert "CERTIFICATE_VERIFY_FAILED" in (obs.mta_sts.policy_error or "")
    assert _causes(dns_findings(obs))["mta-sts-fetch"] is Severity.WARNING
