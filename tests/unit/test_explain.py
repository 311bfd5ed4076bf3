"""The relay decision table (DOMAIN.md section 2), row by row, as pure data in and out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.explain import ATTR36, TENANT_ATTRIBUTION, Explanation, explain
from checks.model import (
    AcceptedDomain,
    CertificateSource,
    Connector,
    ConnectorType,
    Forward,
    Scenario,
)
from checks.rules.addresses import parse_pair
from checks.rules.certificates import (
    CertificateFacts,
    CertificateObservation,
    ChainStatus,
    ChainVerdict,
)
from checks.rules.tenant import TenantFacts

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CERT_CONNECTOR = "From on-prem (certificate)"
IP_CONNECTOR = "From on-prem (IP)"


def facts_cert(
    *,
    common_name: str | None = "mail.contoso.com",
    sans: tuple[str, ...] = ("mail.contoso.com",),
    not_before: datetime = NOW - timedelta(days=60),
    not_after: datetime = NOW + timedelta(days=300),
    eku: tuple[str, ...] | None = ("serverAuth", "clientAuth"),
) -> CertificateFacts:
    return CertificateFacts(
        subject=f"CN={common_name}" if common_name else "O=Contoso",
        issuer="CN=Example Issuing CA",
        common_name=common_name,
        san_dns_names=sans,
        not_before=not_before,
        not_after=not_after,
        serial="1f",
        fingerprint_sha256="ab" * 32,
        self_issued=False,
        is_ca=False,
        key_type="RSA",
        key_bits=2048,
        signature_hash="sha256",
        extended_key_usage=eku,
        der=b"",
    )


def observed(
    cert: CertificateFacts | None = None, status: ChainStatus = ChainStatus.TRUSTED
) -> CertificateObservation:
    return CertificateObservation(
        source="certs/mail.pem",
        chain=(cert or facts_cert(),),
        verdict=ChainVerdict(
            status=status, detail="" if status is ChainStatus.TRUSTED else status.value
        ),
    )


def tenant(
    *connectors: Connector,
    domains: tuple[str, ...] = ("contoso.com",),
    match_subdomains: bool = False,
) -> TenantFacts:
    return TenantFacts(
        name="contoso",
        accepted_domains=tuple(
            AcceptedDomain(name=d, match_subdomains=match_subdomains) for d in domains
        ),
        connectors=connectors,
    )


def cert_connector(name: str = "*.contoso.com", **kwargs: object) -> Connector:
    return Connector(
        name=CERT_CONNECTOR,
        tls_sender_certificate_name=name,
        certificate=CertificateSource(file=Path("certs/mail.pem")),
        **kwargs,  # type: ignore[arg-type]
    )


IP = Connector(name=IP_CONNECTOR, sender_ip_addresses=("203.0.113.10",))
FORWARDS = (Forward(mailbox="kate@contoso.com", to="kate@tailspintoys.com"),)


def run(
    text: str,
    facts: TenantFacts,
    certificate: CertificateObservation | None = None,
    *,
    forwards: tuple[Forward, ...] = (),
    now: datetime = NOW,
) -> Explanation:
    certificates = {CERT_CONNECTOR: certificate} if certificate is not None else {}
    return explain(parse_pair(text), facts, forwards=forwards, certificates=certificates, now=now)


# --- rows 1-3: delivery into the tenant -----------------------------------------------------


@pytest.mark.parametrize("sender", ["<>", "john@fabrikam.com", "kate@contoso.com"])
def test_recipient_in_accepted_domain_is_to_tenant(sender: str) -> None:
    result = run(f"{sender} -> kate@contoso.com", tenant(IP))
    assert result.scenario is Scenario.TO_TENANT
    assert result.accepted
    assert not result.relay
    assert result.smtp_response is None
    assert result.connector == IP_CONNECTOR


def test_to_tenant_without_connector_warns_about_direct_send() -> None:
    result = run("app@contoso.com -> kate@contoso.com", tenant())
    assert result.accepted
    assert result.connector is None
    assert any("5.7.68" in w for w in result.warnings)


# --- row 4: accepted sender ------------------------------------------------------------------


def test_accepted_sender_relays_over_ip_connector() -> None:
    result = run("kate@contoso.com -> kate@tailspintoys.com", tenant(IP))
    assert result.scenario is Scenario.ACCEPTED_SENDER
    assert result.accepted
    assert result.connector == IP_CONNECTOR
    assert result.smtp_response is None


def test_accepted_sender_also_says_what_its_forwards_do() -> None:
    """The KB example: kate@contoso.com -> kate@tailspintoys.com is kate's forward."""
    ip_only = run("kate@contoso.com -> kate@tailspintoys.com", tenant(IP), forwards=FORWARDS)
    assert ip_only.accepted
    assert ip_only.forwarded is not None
    assert ip_only.forwarded.scenario is Scenario.FORWARDING
    assert not ip_only.forwarded.accepted
    assert ip_only.forwarded.smtp_response == ATTR36
    assert any("forwarding" in r for r in ip_only.reasons)
    with_cert = run(
        "kate@contoso.com -> kate@tailspintoys.com", tenant(IP, cert_connector()), observed()
    )
    assert with_cert.forwarded is not None
    assert with_cert.forwarded.accepted
    assert with_cert.to_json()["forwarded"]["scenario"] == "forwarding"


# --- rows 5-9: the three KB scenarios ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "forwards", "scenario"),
    [
        ("<> -> john@fabrikam.com", (), Scenario.NDR),
        ("app@fabrikam.com -> someone@tailspintoys.com", (), Scenario.UNREGISTERED_SENDER),
        ("john@fabrikam.com -> kate@tailspintoys.com", FORWARDS, Scenario.FORWARDING),
        (
            "john@fabrikam.com -> kate@tailspintoys.com via kate@contoso.com",
            (),
            Scenario.FORWARDING,
        ),
    ],
)
def test_kb_scenarios_relay_over_certificate_connector(
    text: str, forwards: tuple[Forward, ...], scenario: Scenario
) -> None:
    result = run(text, tenant(IP, cert_connector()), observed(), forwards=forwards)
    assert result.scenario is scenario
    assert result.accepted
    assert result.connector == CERT_CONNECTOR
    assert result.smtp_response is None
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("text", "forwards", "scenario"),
    [
        ("<> -> john@fabrikam.com", (), Scenario.NDR),
        ("app@fabrikam.com -> someone@tailspintoys.com", (), Scenario.UNREGISTERED_SENDER),
        ("john@fabrikam.com -> kate@tailspintoys.com", FORWARDS, Scenario.FORWARDING),
    ],
)
def test_kb_scenarios_refused_over_ip_connector(
    text: str, forwards: tuple[Forward, ...], scenario: Scenario
) -> None:
    result = run(text, tenant(IP), forwards=forwards)
    assert result.scenario is scenario
    assert not result.accepted
    assert result.smtp_response == ATTR36
    assert result.connector == IP_CONNECTOR
    assert any("TlsSenderCertificateName '*.contoso.com'" in step for step in result.fix)
    assert (
        "451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36"
        in result.to_json()["smtp_response_aliases"]
    )


def test_scenario_specific_alternatives_in_fix() -> None:
    unregistered = run("app@fabrikam.com -> x@tailspintoys.com", tenant(IP))
    assert any("add it as an accepted domain" in s for s in unregistered.fix)
    forwarding = run("john@fabrikam.com -> kate@tailspintoys.com", tenant(IP), forwards=FORWARDS)
    assert any("SRS" in s for s in forwarding.fix)


def test_certificate_domain_not_accepted_gives_attr36() -> None:
    connector = cert_connector("*.fabrikam.com")
    cert = observed(facts_cert(common_name="mail.fabrikam.com", sans=("mail.fabrikam.com",)))
    result = run("<> -> john@tailspintoys.com", tenant(connector), cert)
    assert result.smtp_response == ATTR36
    assert result.connector == CERT_CONNECTOR
    assert any("Add fabrikam.com as an accepted" in s for s in result.fix)


# --- row 10-11: the connector no longer matches ------------------------------------------------


@pytest.mark.parametrize(
    ("certificate", "problem"),
    [
        (
            observed(facts_cert(common_name="mail.fabrikam.com", sans=("mail.fabrikam.com",))),
            "not covered",
        ),
        (observed(facts_cert(not_after=NOW - timedelta(days=1))), "expired"),
        (observed(facts_cert(not_before=NOW + timedelta(days=1))), "not valid before"),
        (observed(status=ChainStatus.MISSING_INTERMEDIATE), "chain is not trusted"),
        (observed(status=ChainStatus.SELF_SIGNED), "chain is not trusted"),
    ],
)
def test_certificate_connector_no_longer_matches(
    certificate: CertificateObservation, problem: str
) -> None:
    result = run("<> -> john@fabrikam.com", tenant(cert_connector()), certificate)
    assert not result.accepted
    assert result.smtp_response == TENANT_ATTRIBUTION
    assert result.connector is None
    assert any(problem in r for r in result.reasons)
    assert result.fix


def test_broken_certificate_with_ip_fallback_is_attr36_for_ndr_but_fine_for_accepted_sender() -> (
    None
):
    broken = observed(facts_cert(not_after=NOW - timedelta(days=1)))
    facts = tenant(IP, cert_connector())
    ndr = run("<> -> john@fabrikam.com", facts, broken)
    assert ndr.smtp_response == ATTR36
    assert ndr.connector == IP_CONNECTOR
    assert any("Renew" in s for s in ndr.fix)
    normal = run("kate@contoso.com -> john@fabrikam.com", facts, broken)
    assert normal.accepted
    assert any("does not match" in w for w in normal.warnings)


def test_disabled_connector_matches_nothing() -> None:
    result = run(
        "kate@contoso.com -> a@fabrikam.com", tenant(cert_connector(enabled=False)), observed()
    )
    assert result.smtp_response == TENANT_ATTRIBUTION
    assert any("-Enabled $true" in s for s in result.fix)


def test_partner_connector_never_relays() -> None:
    partner = Connector(
        name="Partner", type=ConnectorType.PARTNER, sender_ip_addresses=("198.51.100.1",)
    )
    result = run("kate@contoso.com -> a@fabrikam.com", tenant(partner))
    assert result.smtp_response == TENANT_ATTRIBUTION


def test_no_connectors_at_all() -> None:
    result = run("<> -> a@fabrikam.com", tenant())
    assert result.smtp_response == TENANT_ATTRIBUTION
    assert any("New-InboundConnector" in s for s in result.fix)


# --- warnings: the undocumented corners --------------------------------------------------------


def test_cn_only_match_is_a_warning() -> None:
    result = run("<> -> a@fabrikam.com", tenant(cert_connector()), observed(facts_cert(sans=())))
    assert result.accepted
    assert any("only through the certificate's CN" in w for w in result.warnings)


def test_san_only_match_is_a_warning() -> None:
    cert = facts_cert(common_name="Contoso Mail Gateway", sans=("mail.contoso.com",))
    result = run("<> -> a@fabrikam.com", tenant(cert_connector()), observed(cert))
    assert result.accepted
    assert any("only through the certificate's SAN" in w for w in result.warnings)


def test_specific_connector_name_under_accepted_parent_is_a_warning() -> None:
    result = run("<> -> a@fabrikam.com", tenant(cert_connector("mail.contoso.com")), observed())
    assert result.accepted
    assert any("Microsoft recommends *.contoso.com" in w for w in result.warnings)


def test_wildcard_certificate_against_specific_connector_is_a_warning() -> None:
    cert = facts_cert(common_name="*.contoso.com", sans=("*.contoso.com",))
    result = run("<> -> a@fabrikam.com", tenant(cert_connector("mail.contoso.com")), observed(cert))
    assert result.accepted
    assert any("wildcard" in w for w in result.warnings)


def test_missing_client_auth_is_a_warning() -> None:
    result = run(
        "<> -> a@fabrikam.com", tenant(cert_connector()), observed(facts_cert(eku=("serverAuth",)))
    )
    assert result.accepted
    assert any("clientAuth" in w for w in result.warnings)


def test_unobserved_certificate_is_assumed_and_said() -> None:
    result = run("<> -> a@fabrikam.com", tenant(cert_connector()))
    assert result.accepted
    assert any("not observed" in w for w in result.warnings)
    assert any("assumes" in r for r in result.reasons)


def test_match_subdomains_sender_is_uncertain_and_conservative() -> None:
    result = run("app@sales.contoso.com -> a@fabrikam.com", tenant(IP, match_subdomains=True))
    assert result.scenario is Scenario.UNREGISTERED_SENDER
    assert result.smtp_response == ATTR36
    assert any("MatchSubDomains" in w for w in result.warnings)


def test_subdomain_is_not_accepted_because_parent_is() -> None:
    result = run("app@sales.contoso.com -> a@fabrikam.com", tenant(IP))
    assert result.scenario is Scenario.UNREGISTERED_SENDER


def test_idn_accepted_domain_matches_either_spelling() -> None:
    facts = tenant(IP, domains=("xn--r8jz45g.jp",))
    assert run("taro@例え.jp -> a@fabrikam.com", facts).scenario is Scenario.ACCEPTED_SENDER
    assert run("taro@XN--R8JZ45G.jp -> a@fabrikam.com", facts).scenario is Scenario.ACCEPTED_SENDER


def test_json_has_the_contract_fields() -> None:
    data = run("<> -> john@fabrikam.com", tenant(IP)).to_json()
    for key in ("scenario", "accepted", "connector", "smtp_response", "reasons", "fix"):
        assert key in data
    assert data["scenario"] == "ndr"
    assert data["accepted"] is False
    assert isinstance(data["reasons"], list)
    assert isinstance(data["fix"], list)


def test_a_partner_certificate_connector_is_no_candidate() -> None:
    """Only OnPremises connectors relay: the fix is the certificate route, not 'renew'."""
    partner = Connector(
        name="Partner cert",
        type=ConnectorType.PARTNER,
        tls_sender_certificate_name="*.contoso.com",
        certificate=CertificateSource(file=Path("certs/mail.pem")),
    )
    result = run("<> -> a@fabrikam.com", tenant(IP, partner))
    assert result.smtp_response == ATTR36
    assert result.certificate is None
    assert any("TlsSenderCertificateName '*.contoso.com'" in step for step in result.fix)
    assert not any("does not match" in r for r in result.reasons)
