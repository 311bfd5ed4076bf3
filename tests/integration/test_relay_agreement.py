"""One engine, no contradictions: every relay scenario the scan judges, explain judges the same.

For each tenant shape (IP-only, certificate by file and by endpoint, disabled, Partner, expired,
self-signed, foreign certificate domain, missing chain, undocumented names, forwards, sender
domains, a `relay_scenarios` subset, a silent endpoint, ...) the real scan runs against
certificates made here and served on loopback, and every `relay-scenario` finding's pair is fed
back through the explain engine with the certificates explain observes itself: scenario and
verdict must be equal. The shipped examples go through the same comparison.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from checks.config import load_config, parse_config
from checks.explain import explain
from checks.model import CheckId, Config, Finding, Severity
from checks.observe import observe_connector_certificates
from checks.rules.addresses import parse_pair
from checks.scan import run_scan
from checks.sources import explain_tenant
from tests.fakes.pki import Pki

REPO = Path(__file__).resolve().parents[2]
PROBE = {"timeout_seconds": 0.5, "greeting_timeout_seconds": 0.5, "deadline_seconds": 1.0}
IP = {"name": "From on-prem (IP)", "sender_ip_addresses": ["203.0.113.10"]}


def cert_connector(certificate: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    connector: dict[str, Any] = {
        "name": "From on-prem (certificate)",
        "tls_sender_certificate_name": "*.contoso.com",
        **extra,
    }
    if certificate is not None:
        connector["certificate"] = certificate
    return connector


Shape = Callable[[Pki, int], dict[str, Any]]


def _file(pki: Pki, name: str, **leaf: Any) -> dict[str, str]:
    with_intermediates = leaf.pop("with_intermediates", True)
    issued = pki.leaf(**leaf)
    path = issued.write_pem(pki.tmp_path / f"{name}.pem", with_intermediates=with_intermediates)
    return {"file": str(path)}


SHAPES: dict[str, Shape] = {
    "ip-only": lambda pki, port: {"connectors": [IP]},
    "certificate-file": lambda pki, port: {
        "connectors": [cert_connector(_file(pki, "good", names=["mail.contoso.com"]))]
    },
    "certificate-endpoint": lambda pki, port: {
        "connectors": [cert_connector({"endpoint": "mail1"})],
        "endpoints": [
            {"name": "mail1", "host": "mail.contoso.com", "address": "127.0.0.1", "port": port}
        ],
    },
    "disabled-certificate-connector": lambda pki, port: {
        "connectors": [
            IP,
            cert_connector(_file(pki, "d", names=["mail.contoso.com"]), enabled=False),
        ]
    },
    "partner-connector": lambda pki, port: {
        "connectors": [
            IP,
            cert_connector(_file(pki, "p", names=["mail.contoso.com"]), type="Partner"),
        ]
    },
    "expired-certificate": lambda pki, port: {
        "connectors": [
            IP,
            cert_connector(
                _file(
                    pki,
                    "expired",
                    names=["mail.contoso.com"],
                    not_before=pki.now.replace(year=pki.now.year - 2),
                    not_after=pki.now.replace(year=pki.now.year - 1),
                )
            ),
        ]
    },
    "self-signed-certificate": lambda pki, port: {
        "connectors": [
            cert_connector(_file(pki, "self", names=["mail.contoso.com"], self_signed=True))
        ]
    },
    "foreign-certificate-domain": lambda pki, port: {
        "connectors": [
            IP,
            {
                **cert_connector(_file(pki, "foreign", names=["mail.fabrikam.com"])),
                "tls_sender_certificate_name": "*.fabrikam.com",
            },
        ]
    },
    "chain-not-sent": lambda pki, port: {
        "connectors": [
            IP,
            cert_connector(
                _file(pki, "leafonly", names=["mail.contoso.com"], with_intermediates=False)
            ),
        ]
    },
    "names-not-covered": lambda pki, port: {
        "connectors": [IP, cert_connector(_file(pki, "other", names=["smtp.tailspintoys.com"]))]
    },
    "parent-accepted": lambda pki, port: {
        "connectors": [
            {
                **cert_connector(_file(pki, "parent", names=["mail.contoso.com"])),
                "tls_sender_certificate_name": "mail.contoso.com",
            }
        ]
    },
    "wildcard-certificate-specific-connector": lambda pki, port: {
        "connectors": [
            {
                **cert_connector(_file(pki, "wild", names=["*.contoso.com"])),
                "tls_sender_certificate_name": "mail.contoso.com",
            }
        ],
        "accepted": ["contoso.com", "mail.contoso.com"],
    },
    "certificate-not-configured": lambda pki, port: {"connectors": [cert_connector(None)]},
    "silent-endpoint": lambda pki, port: {
        "connectors": [IP, cert_connector({"endpoint": "silent"})],
        "endpoints": [
            {"name": "silent", "host": "mail.contoso.com", "address": "127.0.0.1", "port": port}
        ],
    },
    "relay-scenarios-subset": lambda pki, port: {
        "connectors": [IP],
        "relay_scenarios": ["ndr", "accepted-sender"],
    },
}


def build_config(pki: Pki, shape: dict[str, Any]) -> Config:
    tenant: dict[str, Any] = {
        "name": "contoso",
        "accepted_domains": shape.get("accepted", ["contoso.com"]),
        "sender_domains": ["fabrikam.com", "contoso.com"],
    }
    if "relay_scenarios" in shape:
        tenant["relay_scenarios"] = shape["relay_scenarios"]
    raw: dict[str, Any] = {
        "tenant": tenant,
        "connectors": shape["connectors"],
        "endpoints": shape.get("endpoints", []),
        "forwards": [{"mailbox": "kate@contoso.com", "to": "kate@tailspintoys.com"}],
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": PROBE,
        "dns": {"enabled": False},
    }
    return parse_config(raw, base_dir=pki.tmp_path)


async def assert_scan_and_explain_agree(config: Config, now: Any) -> list[Finding]:
    report = await run_scan(config, now=now, only=CheckId.RELAY_SCENARIO, environ={})
    verdicts = [f for f in report.findings if f.check is CheckId.RELAY_SCENARIO]
    facts = await explain_tenant(config, now=now, environ=dict(os.environ))
    certificates = await observe_connector_certificates(config, facts, now=now)
    for finding in verdicts:
        answer = explain(
            parse_pair(finding.details["pair"]),
            facts,
            forwards=config.forwards,
            certificates=certificates,
            now=now,
        )
        assert (answer.scenario.value, answer.accepted) == (
            finding.details["scenario"],
            finding.details["accepted"],
        ), finding
        assert answer.smtp_response == finding.details["smtp_response"]
        assert (finding.severity is Severity.CRITICAL) is (not answer.accepted)
        assert answer.certificate_assumed is bool(
            finding.details["certificate_observed"] is False and answer.accepted
        )
    return verdicts


@pytest.mark.parametrize("name", sorted(SHAPES))
async def test_scan_and_explain_agree_on_every_scenario(
    name: str, pki: Pki, smtp_server: Any
) -> None:
    server = await smtp_server(
        "silent" if name == "silent-endpoint" else "good",
        pki.leaf(["mail.contoso.com"], days=200),
    )
    config = build_config(pki, SHAPES[name](pki, server.port))
    verdicts = await assert_scan_and_explain_agree(config, pki.now)
    subjects = sorted(f.subject for f in verdicts)
    if name == "relay-scenarios-subset":
        assert subjects == ["accepted-sender", "ndr"]
    else:
        # fabrikam.com is not accepted (one unregistered-sender); contoso.com is (none)
        assert subjects == ["accepted-sender", "forwarding", "ndr", "unregistered-sender"]


async def test_the_verdicts_of_the_shapes_are_the_ones_a_mail_admin_expects(
    pki: Pki, smtp_server: Any
) -> None:
    """Not only equal: right. A few shapes whose answer DOMAIN.md states outright."""
    server = await smtp_server("good", pki.leaf(["mail.contoso.com"], days=200))

    async def verdicts(name: str) -> dict[str, tuple[Severity, str | None]]:
        config = build_config(pki, SHAPES[name](pki, server.port))
        found = await assert_scan_and_explain_agree(config, pki.now)
        return {f.subject: (f.severity, f.details["smtp_response"]) for f in found}

    attr36 = "550 5.7.64 Relay Access Denied ATTR36"
    tenant_attribution = "550 5.7.64 TenantAttribution; Relay Access Denied SMTP"
    ip_only = await verdicts("ip-only")
    assert ip_only["accepted-sender"] == (Severity.OK, None)
    assert ip_only["ndr"] == ip_only["forwarding"] == (Severity.CRITICAL, attr36)
    good = await verdicts("certificate-file")
    assert {v[0] for v in good.values()} == {Severity.OK}
    self_signed = await verdicts("self-signed-certificate")
    assert self_signed["ndr"] == (Severity.CRITICAL, tenant_attribution)
    assert self_signed["accepted-sender"] == (Severity.CRITICAL, tenant_attribution)
    expired = await verdicts("expired-certificate")
    assert expired["ndr"] == (Severity.CRITICAL, attr36)
    assert expired["accepted-sender"] == (Severity.OK, None)
    assumed = await verdicts("certificate-not-configured")
    assert {v[0] for v in assumed.values()} == {Severity.WARNING}


@pytest.mark.parametrize("example", ["contoso", "contoso-ip-only"])
async def test_the_shipped_examples_agree_too(example: str) -> None:
    from datetime import UTC, datetime

    config = load_config(REPO / "examples" / example / "relaycheck.toml")
    verdicts = await assert_scan_and_explain_agree(config, datetime.now(UTC))
    assert verdicts
    critical = {f.subject for f in verdicts if f.severity is Severity.CRITICAL}
    assert critical == ({"ndr", "forwarding"} if example == "contoso-ip-only" else set())
