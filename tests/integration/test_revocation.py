"""`cert-revoked` against a real loopback OCSP responder and CRL server signed by the test CA.

The served leaf names the responder (AIA) or the CRL (distribution point) on 127.0.0.1; the
scan's certificate stage probes the STARTTLS server, asks the responder through httpx, and
judges the signed answer. No test ever contacts a responder outside loopback.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from cryptography.x509 import ocsp

from checks.config import parse_config
from checks.errors import ConfigError
from checks.model import CheckId, Config, Finding, RevocationSettings, Severity
from checks.probes.trust import load_trust_anchors
from checks.rules.certcheck import evaluate_endpoint
from checks.scan import fetch_revocation, probe_all, run_scan
from tests.fakes.pki import Issued, Pki
from tests.fakes.revocation import FakeRevocationServer, StartRevocation
from tests.fakes.smtp import ServerFactory
from tests.integration.test_scan_certs import config_for, connector, scan_certificates, smarthost


def revoked_finding(findings: list[Finding]) -> Finding:
    (finding,) = [f for f in findings if f.check is CheckId.CERT_REVOKED]
    return finding


def with_revocation(config: Config, **settings: Any) -> Config:
    return replace(config, revocation=replace(config.revocation, **settings))


async def scan_leaf(
    pki: Pki, smtp_server: ServerFactory, leaf: Issued, **settings: Any
) -> list[Finding]:
    fake = await smtp_server("good", leaf)
    config = with_revocation(config_for(pki, [smarthost(fake.port)]), timeout_seconds=2, **settings)
    return await scan_certificates(config, pki.now)


async def responder_for(
    pki: Pki, revocation_server: StartRevocation, status: str | None, *, crl: bool = False
) -> tuple[FakeRevocationServer, Issued]:
    server = await revocation_server(pki)
    leaf = pki.leaf(crl_url=server.crl_url) if crl else pki.leaf(ocsp_url=server.ocsp_url)
    if status is not None:
        server.set(leaf, status)
    return server, leaf


async def test_ocsp_good(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    responder, leaf = await responder_for(pki, revocation_server, "good")
    finding = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert finding.severity is Severity.OK
    assert "not revoked" in finding.message
    (leaf_result, *_) = finding.details["revocation"]
    assert (leaf_result["method"], leaf_result["status"]) == ("ocsp", "good")
    # one POST, an OCSP request about exactly this certificate
    (request,) = responder.requests
    assert (request.method, request.path) == ("POST", "/ocsp")
    assert ocsp.load_der_ocsp_request(request.body).serial_number == leaf.cert.serial_number


async def test_ocsp_revoked_is_critical(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    _, leaf = await responder_for(pki, revocation_server, "revoked")
    finding = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert finding.severity is Severity.CRITICAL
    assert "REVOKED" in finding.message
    assert "keyCompromise" in finding.message
    assert finding.details["revocation"][0]["status"] == "revoked"
    assert finding.cause == f"sha256:{leaf.fingerprint[:16]}"


async def test_ocsp_unknown_is_a_warning(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    _, leaf = await responder_for(pki, revocation_server, "unknown")
    finding = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert finding.severity is Severity.WARNING
    assert "does not know" in finding.message


async def test_responder_down_is_info_with_soft_fail_and_critical_without(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    responder, leaf = await responder_for(pki, revocation_server, "good")
    await responder.stop()
    soft = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert soft.severity is Severity.INFO
    assert "could not be checked" in soft.message
    assert soft.details["revocation"][0]["status"] == "unavailable"
    hard = revoked_finding(await scan_leaf(pki, smtp_server, leaf, soft_fail=False))
    assert hard.severity is Severity.CRITICAL


async def test_responder_errors_and_garbage_are_never_good(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    responder, leaf = await responder_for(pki, revocation_server, "good")
    responder.respond_with = (500, b"oops")
    failed = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert failed.severity is Severity.INFO
    assert "HTTP 500" in failed.message
    responder.respond_with = (200, b"not an OCSP response")
    garbage = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert garbage.severity is Severity.INFO
    assert "not an OCSP response" in garbage.message


async def test_response_signed_by_someone_else_is_not_believed(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    """Answers signed by a certificate the issuer never delegated OCSP to: not believed."""
    responder, leaf = await responder_for(pki, revocation_server, "good")
    responder.signer = pki.leaf(["rogue-responder.contoso.com"], issued_by_root=True)
    finding = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert finding.severity is Severity.INFO
    assert "signature does not verify" in finding.message


async def test_crl_revoked_when_there_is_no_ocsp(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    responder, leaf = await responder_for(pki, revocation_server, "revoked", crl=True)
    finding = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert finding.severity is Severity.CRITICAL
    assert "on the CRL" in finding.message
    assert finding.details["revocation"][0]["method"] == "crl"
    assert [(r.method, r.path) for r in responder.requests] == [("GET", "/crl")]


async def test_crl_good(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    responder, leaf = await responder_for(pki, revocation_server, None, crl=True)
    other = pki.leaf(["old.contoso.com"])
    responder.set(other, "revoked")  # someone else is on the CRL
    finding = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert finding.severity is Severity.OK
    assert finding.details["revocation"][0]["status"] == "good"


async def test_stapled_response_is_used_first(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    """A stapled response is judged and the AIA responder is not asked at all."""
    responder, leaf = await responder_for(pki, revocation_server, "revoked")
    fake = await smtp_server("good", leaf)
    config = config_for(pki, [smarthost(fake.port)])
    observations, _ = await probe_all(config.endpoints, config)
    stapled = responder.stapled_for(leaf)
    observations = {
        name: tuple(replace(o, stapled_ocsp=stapled) for o in seen)
        for name, seen in observations.items()
    }
    anchors = load_trust_anchors(pki.ca_file, include_system=False)
    evidence = await fetch_revocation(config, anchors, observations)
    assert responder.requests == []
    findings = evaluate_endpoint(
        config.endpoints[0],
        observations["relay"],
        now=pki.now,
        thresholds=config.thresholds,
        anchors=anchors,
        revocation=evidence,
        revocation_settings=config.revocation,
    )
    finding = revoked_finding(findings)
    assert finding.severity is Severity.CRITICAL
    assert finding.details["revocation"][0]["method"] == "ocsp-stapled"


async def test_no_responder_named_is_ok_and_asks_nobody(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    finding = revoked_finding(await scan_leaf(pki, smtp_server, pki.leaf()))
    assert finding.severity is Severity.OK
    assert "revocation not checked" in finding.message


async def test_disabled_revocation_asks_nobody(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    responder, leaf = await responder_for(pki, revocation_server, "revoked")
    findings = await scan_leaf(pki, smtp_server, leaf, enabled=False)
    assert not [f for f in findings if f.check is CheckId.CERT_REVOKED]
    assert responder.requests == []


def test_revocation_config_keys(pki: Pki) -> None:
    base: dict[str, Any] = {"tenant": {"name": "contoso"}}
    assert parse_config(base, base_dir=pki.tmp_path).revocation == RevocationSettings()
    raw = {**base, "revocation": {"enabled": False, "timeout_seconds": 3, "soft_fail": False}}
    parsed = parse_config(raw, base_dir=pki.tmp_path).revocation
    assert parsed == RevocationSettings(enabled=False, timeout_seconds=3.0, soft_fail=False)
    with pytest.raises(ConfigError, match=r"revocation\.soft_fial"):
        parse_config({**base, "revocation": {"soft_fial": True}}, base_dir=pki.tmp_path)
    with pytest.raises(ConfigError, match=r"revocation\.timeout_seconds"):
        parse_config({**base, "revocation": {"timeout_seconds": 0}}, base_dir=pki.tmp_path)


async def test_only_cert_revoked_probes_and_asks(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    responder, leaf = await responder_for(pki, revocation_server, "revoked")
    fake = await smtp_server("good", leaf)
    config = config_for(pki, [smarthost(fake.port)])
    report = await run_scan(config, now=pki.now, only=CheckId.CERT_REVOKED, environ={})
    assert [(f.check, f.severity) for f in report.findings] == [
        (CheckId.CERT_REVOKED, Severity.CRITICAL)
    ]
    assert len(responder.requests) == 1


async def test_certificate_file_of_a_connector_is_checked_too(
    pki: Pki, revocation_server: StartRevocation
) -> None:
    """The file the MTA presents as a client to Exchange Online: revoked is critical."""
    responder, leaf = await responder_for(pki, revocation_server, "revoked")
    path = leaf.write_pem(pki.tmp_path / "mail1.pem")
    config = config_for(pki, [], [connector(file=str(path))])
    finding = revoked_finding(await scan_certificates(config, pki.now))
    assert finding.subject == "OnPrem cert"
    assert finding.severity is Severity.CRITICAL
    assert finding.details["source"] == "file mail1.pem"
    assert len(responder.requests) == 1


async def test_every_sent_certificate_that_names_a_responder_is_asked(
    pki: Pki, smtp_server: ServerFactory, revocation_server: StartRevocation
) -> None:
    """The intermediate names the responder too; the root signs its (revoked) status."""
    responder = await revocation_server(pki)
    intermediate = pki.make_intermediate(days=1000, ocsp_url=responder.ocsp_url)
    leaf = pki.leaf(ocsp_url=responder.ocsp_url, intermediate=intermediate)
    responder.set(leaf, "good")
    responder.statuses[intermediate.serial_number] = "revoked"
    finding = revoked_finding(await scan_leaf(pki, smtp_server, leaf))
    assert finding.severity is Severity.CRITICAL
    assert "intermediate CN=Relaycheck Test Issuing CA" in finding.message
    statuses = {r["element"]: r["status"] for r in finding.details["revocation"]}
    assert statuses == {1: "good", 2: "revoked"}
    asked = {ocsp.load_der_ocsp_request(r.body).serial_number for r in responder.requests}
    assert asked == {leaf.cert.serial_number, intermediate.serial_number}
