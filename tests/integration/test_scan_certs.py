"""The certificate stage of a scan against real loopback SMTP servers with generated certificates.

Each case asserts the *exact* set of non-OK findings, so a rule that also fires where it
should not fails the test as surely as one that stays silent.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from checks import scan as scan_module
from checks.config import parse_config
from checks.model import CheckId, Config, Finding, Severity
from checks.rules.tenant import merge_tenant
from checks.scan import certificate_stage, run_scan
from checks.stages import ScanContext, StageResult
from tests.fakes.pki import Issued, Pki
from tests.fakes.smtp import ServerFactory, closed_port

PROBE = {
    "timeout_seconds": 0.5,
    "greeting_timeout_seconds": 1.0,
    "deadline_seconds": 2.5,
    "concurrency": 20,
    "ehlo_name": "probe.relaycheck.test",
    "max_reply_bytes": 8192,
}

Problem = tuple[str, str, str]  # (check, severity, subject)


def config_for(
    pki: Pki,
    endpoints: list[dict[str, Any]],
    connectors: list[dict[str, Any]] | None = None,
    accepted: tuple[str, ...] = ("contoso.com",),
) -> Config:
    raw: dict[str, Any] = {
        "tenant": {"name": "contoso", "accepted_domains": list(accepted)},
        "endpoints": endpoints,
        "connectors": connectors or [],
        "trust": {"ca_file": str(pki.ca_file)},
        "thresholds": {"warning_days": 30, "critical_days": 7},
        "probe": PROBE,
        "dns": {"enabled": False},  # tests never ask the system resolver
    }
    return parse_config(raw, base_dir=pki.tmp_path)


def smarthost(
    port: int, *, name: str = "relay", host: str = "mail.contoso.com", **extra: Any
) -> dict[str, Any]:
    return {"name": name, "host": host, "address": "127.0.0.1", "port": port, **extra}


async def scan_certificates(
    config: Config, now: datetime, environ: dict[str, str] | None = None
) -> list[Finding]:
    ctx = ScanContext(config=config, now=now, tenant=merge_tenant(config), environ=environ or {})
    findings, _ = await certificate_stage(ctx)
    return findings


def problems(findings: list[Finding]) -> set[Problem]:
    return {
        (f.check.value, f.severity.value, f.subject) for f in findings if f.severity > Severity.INFO
    }


# --------------------------------------------------------------------------- served certificates


def _cases(pki: Pki) -> dict[str, tuple[Issued, dict[str, Any], set[Problem]]]:
    now = pki.now
    short_intermediate = pki.make_intermediate(days=20, name="Short-lived Issuing CA")
    return {
        "valid": (pki.leaf(), {}, set()),
        "expiring-20-days": (pki.leaf(days=20.5), {}, {("cert-expiry", "warning", "relay")}),
        "expiring-3-days": (pki.leaf(days=3.5), {}, {("cert-expiry", "critical", "relay")}),
        "expired": (
            pki.leaf(not_before=now - timedelta(days=100), not_after=now - timedelta(days=2)),
            {},
            {("cert-expiry", "critical", "relay")},
        ),
        "not-yet-valid": (
            pki.leaf(not_before=now + timedelta(days=2)),
            {},
            {("cert-not-yet-valid", "critical", "relay")},
        ),
        "self-signed": (pki.leaf(self_signed=True), {}, {("cert-chain", "critical", "relay")}),
        "wrong-names": (
            pki.leaf(["smtp.fabrikam.com"]),
            {},
            {("cert-hostname", "critical", "relay")},
        ),
        "wildcard": (pki.leaf(["*.contoso.com"]), {}, set()),
        "cn-only": (pki.leaf(san=False), {}, set()),
        "missing-intermediate": (
            pki.leaf(),
            {"with_intermediates": False},
            {("cert-chain", "critical", "relay")},
        ),
        "rsa-1024": (pki.leaf(rsa_bits=1024), {}, {("cert-weak", "critical", "relay")}),
        # within [thresholds]: cert-expiry names the intermediate (it breaks the chain first)
        "intermediate-expires-first": (
            pki.leaf(days=90, intermediate=short_intermediate),
            {},
            {("cert-expiry", "warning", "relay")},
        ),
        # far off but before the leaf: the chain breaks first, cert-chain says so
        "intermediate-expires-before-leaf": (
            pki.leaf(days=300, intermediate=pki.make_intermediate(days=200, name="Older CA")),
            {},
            {("cert-chain", "warning", "relay")},
        ),
    }


CASES = [
    "valid",
    "expiring-20-days",
    "expiring-3-days",
    "expired",
    "not-yet-valid",
    "self-signed",
    "wrong-names",
    "wildcard",
    "cn-only",
    "missing-intermediate",
    "rsa-1024",
    "intermediate-expires-first",
    "intermediate-expires-before-leaf",
]


@pytest.mark.parametrize("case", CASES)
async def test_served_certificate_gives_exactly_the_expected_findings(
    pki: Pki, smtp_server: ServerFactory, case: str
) -> None:
    leaf, server_options, expected = _cases(pki)[case]
    server = await smtp_server("good", leaf, **server_options)
    findings = await scan_certificates(config_for(pki, [smarthost(server.port)]), pki.now)
    assert problems(findings) == expected
    # every served-certificate finding carries the fingerprint and the address
    for finding in findings:
        if finding.check in (CheckId.CERT_EXPIRY, CheckId.CERT_CHAIN):
            assert finding.details["fingerprint_sha256"] == leaf.fingerprint
            assert finding.details["addresses"] == ["127.0.0.1"]
            assert finding.cause == f"sha256:{leaf.fingerprint[:16]}"


async def test_expiry_message_says_date_and_days_left(pki: Pki, smtp_server: ServerFactory) -> None:
    leaf = pki.leaf(days=20.2)
    server = await smtp_server("good", leaf)
    findings = await scan_certificates(config_for(pki, [smarthost(server.port)]), pki.now)
    (expiry,) = [f for f in findings if f.check is CheckId.CERT_EXPIRY]
    assert f"{leaf.cert.not_valid_after_utc:%Y-%m-%d}" in expiry.message
    assert "(20 days left)" in expiry.message
    assert expiry.details["days_left"] == 20
    assert expiry.details["not_after"].endswith("Z")


async def test_missing_intermediate_is_named_as_such(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("good", pki.leaf(), with_intermediates=False)
    findings = await scan_certificates(config_for(pki, [smarthost(server.port)]), pki.now)
    (chain,) = [f for f in findings if f.check is CheckId.CERT_CHAIN]
    assert chain.details["chain_status"] == "missing-intermediate"
    assert "intermediate" in chain.message


async def test_tls_below_1_2_is_weak(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("tls10", pki.leaf())
    findings = await scan_certificates(config_for(pki, [smarthost(server.port)]), pki.now)
    assert problems(findings) == {("cert-weak", "critical", "relay")}
    (weak,) = [f for f in findings if f.severity is Severity.CRITICAL]
    assert weak.cause == "tls:127.0.0.1"
    assert "TLSv1" in weak.message


async def test_implicit_tls_endpoint(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("implicit", pki.leaf())
    config = config_for(pki, [smarthost(server.port, tls="implicit")])
    findings = await scan_certificates(config, pki.now)
    assert problems(findings) == set()
    assert any(f.check is CheckId.CERT_EXPIRY for f in findings)


# --------------------------------------------------------------------------- misbehaving servers

MISBEHAVING = {
    "banner-421": "endpoint-unreachable",
    "no-starttls": "starttls-missing",
    "refuse-454": "starttls-missing",
    "hang-after-starttls": "tls-handshake",
    "silent": "endpoint-unreachable",
    "garbage": "endpoint-unreachable",
    "drip": "endpoint-unreachable",
    "endless-ehlo": "endpoint-unreachable",
}


async def test_misbehaving_servers_each_yield_their_failure_and_the_scan_goes_on(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    leaf = pki.leaf(["*.contoso.com"])
    endpoints = []
    for kind in MISBEHAVING:
        server = await smtp_server(kind, leaf, drip_interval=0.5)
        endpoints.append(smarthost(server.port, name=kind, host=f"{kind}.contoso.com"))
    endpoints.append(smarthost(closed_port(), name="closed-port", host="closed.contoso.com"))
    good = await smtp_server("good", leaf)
    endpoints.append(smarthost(good.port, name="healthy", host="healthy.contoso.com"))
    config = config_for(pki, endpoints)
    started = time.monotonic()
    findings = await scan_certificates(config, pki.now)
    elapsed = time.monotonic() - started
    # all endpoints run concurrently: the whole scan fits in one endpoint deadline
    assert elapsed < PROBE["deadline_seconds"] + 1.0
    expected = {(check, "critical", kind) for kind, check in MISBEHAVING.items()}
    expected.add(("endpoint-unreachable", "critical", "closed-port"))
    assert problems(findings) == expected
    by_subject = {f.subject: f for f in findings if f.severity is Severity.CRITICAL}
    assert "temporary" in by_subject["banner-421"].message
    assert "4.3.2 Service not available" in by_subject["banner-421"].details["server_words"]
    assert by_subject["refuse-454"].details["code"] == 454
    assert by_subject["endless-ehlo"].details["stage"] == "ehlo"
    assert by_subject["hang-after-starttls"].details["stage"] == "handshake"
    assert by_subject["closed-port"].details["stage"] == "connect"
    assert by_subject["drip"].details["stage"] == "greeting"
    # the healthy endpoint was judged normally
    assert any(f.subject == "healthy" and f.check is CheckId.CERT_EXPIRY for f in findings)


# --------------------------------------------------------------------------- connectors


def connector(
    name: str = "OnPrem cert", tls_name: str = "*.contoso.com", **certificate: str
) -> dict[str, Any]:
    return {
        "name": name,
        "tls_sender_certificate_name": tls_name,
        "certificate": certificate or {"endpoint": "relay"},
    }


@pytest.mark.parametrize(
    ("leaf_options", "tls_name", "accepted", "expected"),
    [
        ({}, "*.contoso.com", ("contoso.com",), set()),
        ({"san": False}, "*.contoso.com", ("contoso.com",), {("san-coverage", "warning")}),
        ({"cn": None}, "*.contoso.com", ("contoso.com",), {("san-coverage", "warning")}),
        (
            {"names": ["smtp.fabrikam.com"]},
            "*.contoso.com",
            ("contoso.com",),
            {("san-coverage", "critical")},
        ),
        ({"client_auth": False}, "*.contoso.com", ("contoso.com",), {("cert-eku", "warning")}),
        ({}, "*.contoso.com", ("fabrikam.com",), {("san-coverage", "critical")}),
        ({}, "mail.contoso.com", ("contoso.com",), {("san-coverage", "warning")}),
        (
            {"names": ["*.contoso.com"]},
            "mail.contoso.com",
            ("mail.contoso.com",),
            {("san-coverage", "warning")},
        ),
    ],
    ids=[
        "ok",
        "cn-only",
        "san-only",
        "not-covered",
        "no-clientauth",
        "domain-not-accepted",
        "parent-accepted",
        "wildcard-cert",
    ],
)
async def test_connector_from_endpoint(
    pki: Pki,
    smtp_server: ServerFactory,
    leaf_options: dict[str, Any],
    tls_name: str,
    accepted: tuple[str, ...],
    expected: set[tuple[str, str]],
) -> None:
    leaf = pki.leaf(**leaf_options)
    server = await smtp_server("good", leaf)
    config = config_for(pki, [smarthost(server.port)], [connector(tls_name=tls_name)], accepted)
    findings = await scan_certificates(config, pki.now)
    connector_problems = {
        (c, s) for c, s, subject in problems(findings) if subject == "OnPrem cert"
    }
    assert connector_problems == expected


async def test_eku_warning_says_exactly_why(pki: Pki, smtp_server: ServerFactory) -> None:
    server = await smtp_server("good", pki.leaf(client_auth=False))
    config = config_for(pki, [smarthost(server.port)], [connector()])
    findings = await scan_certificates(config, pki.now)
    (eku,) = [f for f in findings if f.check is CheckId.CERT_EKU]
    assert "clientAuth" in eku.message
    assert "2026-05-01" in eku.message
    assert "not documented" in eku.message
    assert eku.details["extended_key_usage"] == ["serverAuth"]


async def test_connector_from_pfx_file_with_password_from_environment(pki: Pki) -> None:
    leaf = pki.leaf(days=3.5)
    pfx = leaf.write_pfx(pki.tmp_path / "client.pfx", b"s3cret")
    config = config_for(pki, [], [connector(file=str(pfx), password_env="RELAY_PFX_PASSWORD")])
    findings = await scan_certificates(config, pki.now, environ={"RELAY_PFX_PASSWORD": "s3cret"})
    assert problems(findings) == {("cert-expiry", "critical", "OnPrem cert")}
    assert any(f.check is CheckId.CERT_CHAIN and f.severity is Severity.OK for f in findings)


async def test_unreadable_certificate_file_is_a_finding(pki: Pki) -> None:
    pfx = pki.leaf().write_pfx(pki.tmp_path / "client.pfx", b"s3cret")
    config = config_for(pki, [], [connector(file=str(pfx), password_env="RELAY_PFX_PASSWORD")])
    findings = await scan_certificates(config, pki.now, environ={"RELAY_PFX_PASSWORD": "wrong"})
    assert problems(findings) == {("cert-source", "critical", "OnPrem cert")}


async def test_renewed_file_not_yet_served_is_not_deployed(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    old = pki.leaf(not_before=pki.now - timedelta(days=80), days=10)
    renewed = pki.leaf(not_before=pki.now - timedelta(days=1), days=90)
    server = await smtp_server("good", old)
    pem = renewed.write_pem(pki.tmp_path / "renewed.pem")
    config = config_for(pki, [smarthost(server.port)], [connector(endpoint="relay", file=str(pem))])
    findings = await scan_certificates(config, pki.now)
    assert problems(findings) == {
        ("cert-not-deployed", "warning", "OnPrem cert"),
        ("cert-expiry", "warning", "relay"),
    }
    (nd,) = [f for f in findings if f.check is CheckId.CERT_NOT_DEPLOYED]
    assert nd.details["served"]["fingerprint_sha256"] == old.fingerprint
    assert nd.details["file"]["fingerprint_sha256"] == renewed.fingerprint
    assert "renewed but not bound" in nd.message
    assert "127.0.0.1 still serves the older one" in nd.message


async def test_same_issue_time_longer_validity_in_file_is_not_deployed(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    """Issued the same day, the file's certificate lives longer: it is the renewal."""
    start = pki.now - timedelta(days=1)
    served = pki.leaf(not_before=start, days=20)
    in_file = pki.leaf(not_before=start, days=365)
    server = await smtp_server("good", served)
    pem = in_file.write_pem(pki.tmp_path / "longer.pem")
    config = config_for(pki, [smarthost(server.port)], [connector(endpoint="relay", file=str(pem))])
    findings = await scan_certificates(config, pki.now)
    (nd,) = [f for f in findings if f.check is CheckId.CERT_NOT_DEPLOYED]
    assert nd.severity is Severity.WARNING
    assert "renewed but not bound" in nd.message


# --------------------------------------------------------------------------- run_scan


async def test_run_scan_only_one_check_and_certificates_for_change_detection(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    leaf = pki.leaf(days=20.5)
    server = await smtp_server("good", leaf)
    config = config_for(pki, [smarthost(server.port)])
    report = await run_scan(config, now=pki.now, only=CheckId.CERT_EXPIRY, environ={})
    assert {f.check for f in report.findings} == {CheckId.CERT_EXPIRY}
    assert report.summary["worst"] == "warning"
    assert [(c.subject, c.address, c.fingerprint) for c in report.certificates] == [
        ("relay", "127.0.0.1", leaf.fingerprint)
    ]
    assert report.finished_at >= report.started_at


async def test_a_stage_that_raises_becomes_a_relaycheck_finding(
    pki: Pki, smtp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(ctx: ScanContext) -> StageResult:
        raise KeyError("bug")

    monkeypatch.setattr(scan_module, "DOMAIN_STAGES", (broken,))
    server = await smtp_server("good", pki.leaf())
    config = config_for(pki, [smarthost(server.port)])
    report = await run_scan(config, now=pki.now, environ={})
    bugs = [f for f in report.findings if f.check is CheckId.RELAYCHECK]
    assert len(bugs) == 1
    assert "KeyError" in bugs[0].message
    # the certificate stage still ran
    assert any(f.check is CheckId.CERT_EXPIRY for f in report.findings)


async def test_extra_endpoints_from_a_stage_are_probed(
    pki: Pki, smtp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await smtp_server("good", pki.leaf(["mx1.contoso.com"]))
    config = config_for(pki, [])
    mx = replace(
        config_for(
            pki, [smarthost(server.port, name="mx:mx1", host="mx1.contoso.com", role="mx")]
        ).endpoints[0]
    )

    async def mx_stage(ctx: ScanContext) -> StageResult:
        return StageResult(extra_endpoints=(mx,))

    monkeypatch.setattr(scan_module, "DOMAIN_STAGES", (mx_stage,))
    report = await run_scan(config, now=pki.now, only=CheckId.CERT_HOSTNAME, environ={})
    assert [(f.subject, f.severity) for f in report.findings] == [("mx:mx1", Severity.OK)]
