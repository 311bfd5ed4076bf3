"""The representative envelopes relay readiness judges: one per scenario the tenant relies on,
each written as a pair explain reads back to the same envelope."""

from __future__ import annotations

from datetime import UTC, datetime

from checks.model import (
    AcceptedDomain,
    CheckId,
    Config,
    Connector,
    Forward,
    Scenario,
    Severity,
    Tenant,
)
from checks.readiness import relay_cases, relay_findings
from checks.rules.addresses import parse_pair
from checks.rules.tenant import TenantFacts

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ACCEPTED = (AcceptedDomain(name="contoso.co.jp"), AcceptedDomain(name="contoso.com", default=True))
IP = Connector(name="ip", sender_ip_addresses=("203.0.113.10",))


def config(**tenant: object) -> Config:
    return Config(
        source=None,
        tenant=Tenant(name="contoso", sender_domains=("contoso.com", "fabrikam.com"), **tenant),  # type: ignore[arg-type]
        forwards=(
            Forward(mailbox="kate@contoso.com", to="kate@tailspintoys.com"),
            Forward(mailbox="ops@contoso.com", to="ops@contoso.co.jp"),
        ),
    )


def facts(*connectors: Connector) -> TenantFacts:
    return TenantFacts(name="contoso", accepted_domains=ACCEPTED, connectors=connectors)


def test_one_case_per_scenario_entry_and_pairs_that_read_back() -> None:
    cases = relay_cases(config(), facts(IP))
    assert [(c.scenario, c.cause) for c in cases] == [
        (Scenario.ACCEPTED_SENDER, "contoso.com"),  # the default accepted domain, not the first
        (Scenario.NDR, ""),
        (Scenario.FORWARDING, "kate@contoso.com"),
        (Scenario.FORWARDING, "ops@contoso.com"),
        (Scenario.UNREGISTERED_SENDER, "fabrikam.com"),  # contoso.com is accepted: no case
    ]
    for case in cases:
        assert parse_pair(case.pair) == case.envelope


def test_the_subset_a_tenant_relies_on() -> None:
    chosen = config(relay_scenarios=(Scenario.NDR,))
    assert [c.scenario for c in relay_cases(chosen, facts(IP))] == [Scenario.NDR]


def test_a_forward_into_the_tenant_is_no_relay_and_an_ip_connector_refuses_the_rest() -> None:
    found = {(f.subject, f.cause): f for f in relay_findings(config(), facts(IP), {}, now=NOW)}
    assert {f.check for f in found.values()} == {CheckId.RELAY_SCENARIO}
    internal = found[("forwarding", "ops@contoso.com")]
    assert (internal.severity, internal.details["scenario"]) == (Severity.OK, "to-tenant")
    assert found[("accepted-sender", "contoso.com")].severity is Severity.OK
    for key in (
        ("ndr", ""),
        ("forwarding", "kate@contoso.com"),
        ("unregistered-sender", "fabrikam.com"),
    ):
        assert found[key].severity is Severity.CRITICAL
        assert found[key].message.endswith("are refused: 550 5.7.64 Relay Access Denied ATTR36")


def test_no_known_connector_is_not_judged() -> None:
    assert relay_findings(config(), facts(), {}, now=NOW) == []
