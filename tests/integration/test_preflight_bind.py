"""The preflight's promise, tested by keeping it: bind the candidate and compare with `scan`.

Today's certificate is served by a loopback STARTTLS listener; the preflight judges a candidate
without touching it; then the candidate is really served (a second listener the endpoint now
points at, as a binding would) and `scan --only relay-scenario` runs. The relay verdicts the
preflight predicted in `after` must be exactly the scan's, scenario by scenario.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from checks.config import parse_config
from checks.model import CheckId, Config, Finding
from checks.probes.certfile import read_certificate_file
from checks.renewal import judge
from checks.scan import run_scan
from tests.fakes.pki import Issued, Pki
from tests.fakes.revocation import StartRevocation
from tests.fakes.smtp import ServerFactory

PROBE = {
    "timeout_seconds": 2.0,
    "greeting_timeout_seconds": 2.0,
    "deadline_seconds": 5.0,
    "ehlo_name": "probe.relaycheck.test",
}


def contoso(pki: Pki, port: int) -> Config:
    raw: dict[str, Any] = {
        "tenant": {
            "name": "contoso",
            "accepted_domains": ["contoso.com"],
            "sender_domains": ["contoso.com", "fabrikam.com"],
        },
        "connectors": [
            {
                "name": "Inbound from Contoso on-prem",
                "tls_sender_certificate_name": "*.contoso.com",
                "certificate": {"endpoint": "mail1"},
            }
        ],
        "endpoints": [
            {"name": "mail1", "host": "mail1.contoso.com", "address": "127.0.0.1", "port": port}
        ],
        "forwards": [{"mailbox": "kate@contoso.com", "to": "kate@tailspintoys.com"}],
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": PROBE,
        "dns": {"enabled": False},
    }
    return parse_config(raw, base_dir=pki.tmp_path)


def verdicts(findings: tuple[Finding, ...] | list[Finding]) -> dict[tuple[str, str], Any]:
    return {
        (f.subject, f.cause): (
            f.severity.value,
            f.details["accepted"],
            f.details["smtp_response"],
            f.details["connector"],
        )
        for f in findings
        if f.check is CheckId.RELAY_SCENARIO
    }


def relay_json(findings: tuple[Finding, ...] | list[Finding]) -> list[dict[str, Any]]:
    return sorted(
        (f.to_json() for f in findings if f.check is CheckId.RELAY_SCENARIO),
        key=lambda f: (f["subject"], f["cause"]),
    )


def _renewals(pki: Pki) -> dict[str, tuple[Issued, bool, int]]:
    """candidate, sent with its intermediate, expected exit code."""
    return {
        "same-names": (pki.leaf(["mail1.contoso.com"], days=380), True, 0),
        "other-names": (pki.leaf(["smtp.contoso-mail.net"], days=380), True, 2),
        "no-intermediate": (pki.leaf(["mail1.contoso.com"], days=380), False, 2),
        "no-client-auth": (pki.leaf(["mail1.contoso.com"], days=380, client_auth=False), True, 1),
    }


@pytest.mark.parametrize("case", ["same-names", "other-names", "no-intermediate", "no-client-auth"])
async def test_preflight_after_equals_the_scan_once_it_is_served(
    pki: Pki, smtp_server: ServerFactory, case: str
) -> None:
    today = await smtp_server(chain=pki.leaf(["mail1.contoso.com"], days=25))
    candidate, with_chain, expected = _renewals(pki)[case]
    cert = candidate.write_pem(pki.tmp_path / "renewed.pem", with_intermediates=with_chain)
    config = contoso(pki, today.port)

    result = await judge(
        config,
        read_certificate_file(cert),
        requested=None,
        source="renewed.pem",
        now=pki.now,
        environ={},
    )
    assert result.exit_code == expected, result.verdict_line
    assert result.target.endpoint is not None
    assert result.target.endpoint.name == "mail1"
    before = await run_scan(config, now=pki.now, only=CheckId.RELAY_SCENARIO, environ={})
    assert verdicts(result.before) == verdicts(before.findings)

    # bind it: the smart host now serves the candidate (and only the candidate)
    bound = await smtp_server(chain=candidate, with_intermediates=with_chain)
    served = replace(config, endpoints=(replace(config.endpoints[0], port=bound.port),))
    after = await run_scan(served, now=pki.now, only=CheckId.RELAY_SCENARIO, environ={})
    assert bound.handshakes >= 1
    assert verdicts(result.after) == verdicts(after.findings)
    # not only the verdicts: the whole findings, as `scan --json` would print them
    assert relay_json(result.after) == relay_json(after.findings)
    assert verdicts(result.after)  # four scenarios judged, not an empty comparison
    if expected == 2:
        assert verdicts(result.after) != verdicts(result.before)


async def test_a_revoked_renewal_is_reported_by_cert_revoked(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    """OCSP is asked for the candidate exactly as the scan asks for a served chain."""
    today = await smtp_server(chain=pki.leaf(["mail1.contoso.com"], days=25))
    responder = await revocation_server(pki)
    candidate = pki.leaf(["mail1.contoso.com"], days=380, ocsp_url=responder.ocsp_url)
    responder.set(candidate, "revoked")
    config = contoso(pki, today.port)
    result = await judge(
        config,
        (candidate.facts, Issued(cert=pki.intermediate, key=candidate.key).facts),
        requested="mail1",
        source="renewed.pem",
        now=pki.now,
        environ={},
    )
    (revoked,) = [f for f in result.after if f.check is CheckId.CERT_REVOKED]
    assert revoked.severity.value == "critical"
    assert result.verdict.value == "care"  # relay verdicts come from the engine alone
    assert result.verdict_line.startswith("BIND WITH CARE: cert-revoked: ")
    assert "REVOKED" in result.verdict_line
    assert [(r.method, r.path) for r in responder.requests] == [("POST", "/ocsp")]
