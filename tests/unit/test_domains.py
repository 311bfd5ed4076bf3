"""accepted-domain rules: connector domains, sender-domain scenarios, drift."""

from __future__ import annotations

import pytest

from checks.model import AcceptedDomain, Connector, ConnectorType, Severity
from checks.rules.domains import GraphDomain, accepted_domain_findings, drift_findings
from checks.rules.tenant import TenantFacts


def facts(
    accepted: tuple[str, ...], *connectors: Connector, match_sub: bool = False
) -> TenantFacts:
    return TenantFacts(
        name="contoso",
        accepted_domains=tuple(
            AcceptedDomain(name=d, match_subdomains=match_sub) for d in accepted
        ),
        connectors=connectors,
    )


def cert_connector(
    name: str, *, enabled: bool = True, kind: ConnectorType = ConnectorType.ON_PREMISES
) -> Connector:
    return Connector(name="c", tls_sender_certificate_name=name, enabled=enabled, type=kind)


@pytest.mark.parametrize(
    ("connector_name", "severity", "standing"),
    [
        ("*.contoso.com", Severity.OK, "accepted"),
        ("contoso.com", Severity.OK, "accepted"),
        ("mail.contoso.com", Severity.WARNING, "parent-accepted"),
        ("*.fabrikam.com", Severity.CRITICAL, "not-accepted"),
    ],
)
def test_connector_certificate_domain(
    connector_name: str, severity: Severity, standing: str
) -> None:
    (finding,) = accepted_domain_findings(
        facts(("contoso.com",), cert_connector(connector_name)), sender_domains=()
    )
    assert (finding.severity, finding.details["standing"]) == (severity, standing)


def test_disabled_partner_and_ip_connectors_are_not_judged() -> None:
    connectors = (
        cert_connector("*.fabrikam.com", enabled=False),
        cert_connector("*.fabrikam.com", kind=ConnectorType.PARTNER),
        Connector(name="ip", sender_ip_addresses=("192.0.2.1",)),
    )
    assert accepted_domain_findings(facts(("contoso.com",), *connectors), sender_domains=()) == []


def test_sender_domains_and_the_scenario_they_hit() -> None:
    with_cert = facts(("contoso.com",), cert_connector("*.contoso.com"))
    ip_only = facts(("contoso.com",), Connector(name="ip", sender_ip_addresses=("192.0.2.1",)))
    ok = accepted_domain_findings(ip_only, sender_domains=("contoso.com",))
    assert [(f.severity, f.details["scenario"]) for f in ok] == [(Severity.OK, "accepted-sender")]
    (bad,) = accepted_domain_findings(ip_only, sender_domains=("fabrikam.com",))
    # a domain fact: whether its mail relays is relay-scenario's verdict, not this check's
    assert (bad.severity, bad.details["scenario"]) == (Severity.INFO, "unregistered-sender")
    assert "ATTR36" not in bad.message
    assert "relay-scenario" in bad.message
    carried = [
        f
        for f in accepted_domain_findings(with_cert, sender_domains=("fabrikam.com",))
        if f.subject == "fabrikam.com"
    ]
    assert [(f.severity, f.details["certificate_connectors"]) for f in carried] == [
        (Severity.INFO, ["c"])
    ]
    uncertain = accepted_domain_findings(
        facts(("contoso.com",), match_sub=True), sender_domains=("sales.contoso.com",)
    )
    assert [(f.severity, f.details["acceptance"]) for f in uncertain] == [
        (Severity.WARNING, "uncertain")
    ]


def test_drift_against_config_without_history() -> None:
    live = (
        AcceptedDomain(name="contoso.com", source="graph"),
        AcceptedDomain(name="new.com", source="graph"),
    )
    graph = (
        GraphDomain(name="fabrikam.com", is_verified=True, supported_services=("SharePoint",)),
    )
    findings = drift_findings(
        config_domains=("contoso.com", "fabrikam.com", "gone.com"), live=live, graph_domains=graph
    )
    got = {(f.subject, f.cause): f for f in findings}
    assert set(got) == {
        ("fabrikam.com", "drift-missing"),
        ("gone.com", "drift-missing"),
        ("new.com", "drift-appeared"),
    }
    assert "Email" in got[("fabrikam.com", "drift-missing")].message
    assert "not an accepted domain" in got[("gone.com", "drift-missing")].message


def test_drift_against_the_previous_run() -> None:
    live = (AcceptedDomain(name="contoso.com"), AcceptedDomain(name="new.com"))
    findings = drift_findings(
        config_domains=("contoso.com",), live=live, previous=frozenset({"contoso.com", "old.com"})
    )
    assert sorted((f.subject, f.cause, f.severity) for f in findings) == [
        ("new.com", "drift-appeared", Severity.INFO),
        ("old.com", "drift-disappeared", Severity.WARNING),
    ]
    assert (
        drift_findings(
            config_domains=("contoso.com",), live=live[:1], previous=frozenset({"contoso.com"})
        )
        == []
    )


@pytest.mark.parametrize(
    ("connector_name", "severity", "relayed"),
    [
        # no certificate observed here: relayed "assuming" it, which is a warning
        ("*.contoso.com", Severity.WARNING, True),
        ("mail.contoso.com", Severity.WARNING, True),  # and undocumented matching on top
        ("*.fabrikam.com", Severity.CRITICAL, False),
    ],
)
def test_sender_domain_verdict_agrees_with_explain(
    connector_name: str, severity: Severity, relayed: bool
) -> None:
    """The scan's verdict on a foreign sender domain (relay-scenario) is explain's verdict, and
    accepted-domain states none of its own."""
    from datetime import UTC, datetime

    from checks.explain import explain
    from checks.model import Config, Tenant
    from checks.readiness import relay_findings
    from checks.rules.addresses import parse_pair

    tenant = facts(("contoso.com",), cert_connector(connector_name))
    config = Config(source=None, tenant=Tenant(name="contoso", sender_domains=("fabrikam.net",)))
    now = datetime.now(UTC)
    (verdict,) = [
        f for f in relay_findings(config, tenant, {}, now=now) if f.subject == "unregistered-sender"
    ]
    assert verdict.severity is severity
    answer = explain(parse_pair(verdict.details["pair"]), tenant, now=now)
    assert answer.accepted is relayed is verdict.details["accepted"]
    if relayed:
        assert verdict.details["certificate_observed"] is False
        assert any("not observed" in c for c in verdict.details["caveats"])
    (sender,) = [
        f
        for f in accepted_domain_findings(tenant, sender_domains=["fabrikam.net"])
        if f.cause == "sender-domain"
    ]
    assert "relayed" not in sender.message
    assert "refuse" not in sender.message
