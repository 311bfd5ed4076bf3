"""Accepted-domain rules: connector domains, sender domains, drift, and tenant-source health.

Exchange Online relays for an on-prem server only when the connector's certificate domain or the
envelope sender's domain is accepted (DOMAIN.md section 2), so a connector domain that is not
accepted breaks the three certificate-only scenarios at once, and a sender domain that is not
accepted depends on such a connector. Pure: observations and tenant facts in, findings out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from checks.errors import ExportError
from checks.model import AcceptedDomain, CheckId, ConnectorType, Finding, Scenario, Severity
from checks.rules.names import (
    Acceptance,
    DomainStanding,
    InvalidName,
    connector_domain_standing,
    lookup_accepted,
    parse_connector_name,
)
from checks.rules.tenant import TenantFacts

GRAPH_SOURCE = "microsoft-graph"
GRAPH_PERMISSION = "Domain.Read.All"


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphDomain:
    """One entry of Graph `GET /v1.0/domains`; `name` in A-label form."""

    name: str
    is_verified: bool
    supported_services: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        """Graph has no DomainType; a verified domain with the Email service is accepted."""
        return self.is_verified and "Email" in self.supported_services


class GraphFailure(StrEnum):
    CREDENTIALS = "credentials"
    TOKEN_REFUSED = "token-refused"  # noqa: S105 - a reason code, not a secret
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    BAD_RESPONSE = "bad-response"

    @property
    def permanent(self) -> bool:
        """Needs someone to fix credentials or permissions; retrying will not help."""
        return self in (
            GraphFailure.CREDENTIALS,
            GraphFailure.TOKEN_REFUSED,
            GraphFailure.UNAUTHORIZED,
            GraphFailure.FORBIDDEN,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphObservation:
    """What the Graph probe got: the domains, or why not (a failure is data)."""

    domains: tuple[GraphDomain, ...] = ()
    failure: GraphFailure | None = None
    error: str = ""
    pages: int = 0

    @property
    def ok(self) -> bool:
        return self.failure is None


def graph_accepted_domains(obs: GraphObservation) -> tuple[AcceptedDomain, ...]:
    return tuple(
        AcceptedDomain(name=d.name, source=GRAPH_SOURCE) for d in obs.domains if d.accepted
    )


# --------------------------------------------------------------------------- tenant sources


def graph_finding(obs: GraphObservation) -> Finding:
    """The `tenant-source` finding for the Graph source."""
    if obs.failure is None:
        accepted = [d.name for d in obs.domains if d.accepted]
        return Finding(
            check=CheckId.TENANT_SOURCE,
            severity=Severity.OK,
            subject=GRAPH_SOURCE,
            message=(
                f"Microsoft Graph: {len(obs.domains)} domain(s), {len(accepted)} accepted "
                "(verified, with Email)"
            ),
            details={
                "domains": [d.name for d in obs.domains],
                "accepted": accepted,
                "pages": obs.pages,
            },
        )
    severity = Severity.CRITICAL if obs.failure.permanent else Severity.WARNING
    return Finding(
        check=CheckId.TENANT_SOURCE,
        severity=severity,
        subject=GRAPH_SOURCE,
        message=f"Microsoft Graph: {obs.error}; accepted domains come from config and exports only",
        details={"reason": obs.failure.value, "permanent": obs.failure.permanent},
        cause=obs.failure.value,
    )


def export_finding(error: ExportError) -> Finding:
    """A PowerShell export that cannot be used: one finding, the scan goes on without it."""
    return Finding(
        check=CheckId.TENANT_SOURCE,
        severity=Severity.CRITICAL,
        subject=error.file or "export",
        message=f"{error}; the checks continue without this export",
        details={"file": error.file, "key": error.key, "problem": error.problem},
        cause="export",
    )


# --------------------------------------------------------------------------- accepted-domain


def _standing_finding(
    name: str, text: str, standing: DomainStanding, accepted_as: str | None
) -> Finding:
    domain_cause = "connector-domain"
    if standing is DomainStanding.ACCEPTED:
        return Finding(
            check=CheckId.ACCEPTED_DOMAIN,
            severity=Severity.OK,
            subject=name,
            message=f"connector {name!r}: certificate domain {text} is an accepted domain",
            details={"domain": text, "standing": standing.value},
            cause=domain_cause,
        )
    if standing is DomainStanding.PARENT_ACCEPTED:
        message = (
            f"connector {name!r}: certificate domain {text} is not itself accepted, only its "
            f"parent {accepted_as}; whether that attributes relay is undocumented "
            f"(Microsoft recommends TlsSenderCertificateName *.{accepted_as})"
        )
        severity = Severity.WARNING
    elif standing is DomainStanding.UNCERTAIN:
        message = (
            f"connector {name!r}: certificate domain {text} is accepted only through "
            f"MatchSubDomains of {accepted_as}, whose effect on relay is undocumented"
        )
        severity = Severity.WARNING
    else:
        message = (
            f"connector {name!r}: certificate domain {text} is not an accepted domain, so "
            "Exchange Online cannot attribute mail to the tenant by this connector's certificate "
            "(relay-scenario says which mail that refuses)"
        )
        severity = Severity.CRITICAL
    return Finding(
        check=CheckId.ACCEPTED_DOMAIN,
        severity=severity,
        subject=name,
        message=message,
        details={"domain": text, "standing": standing.value, "accepted_as": accepted_as},
        cause=domain_cause,
    )


def accepted_domain_findings(facts: TenantFacts, *, sender_domains: Sequence[str]) -> list[Finding]:
    """Connector certificate domains and on-prem sender domains against the accepted domains."""
    findings: list[Finding] = []
    accepted = facts.accepted_domains
    usable: list[tuple[str, str]] = []  # (connector, domain) that attribute relay for certain
    undocumented: list[tuple[str, str]] = []  # ... that relaycheck assumes do, with a warning
    for connector in facts.connectors:
        if (
            not connector.enabled
            or connector.type is not ConnectorType.ON_PREMISES
            or not connector.tls_sender_certificate_name
        ):
            continue
        try:
            parsed = parse_connector_name(connector.tls_sender_certificate_name)
        except InvalidName:
            continue  # rejected when config and exports were parsed
        standing = connector_domain_standing(parsed, accepted)
        if standing.standing.documented:
            usable.append((connector.name, parsed.domain))
        elif standing.standing.attributes_relay:
            undocumented.append((connector.name, parsed.domain))
        findings.append(
            _standing_finding(
                connector.name, parsed.domain, standing.standing, standing.accepted_as
            )
        )
    for domain in sender_domains:
        lookup = lookup_accepted(domain, accepted)
        if lookup.acceptance is Acceptance.ACCEPTED:
            findings.append(
                Finding(
                    check=CheckId.ACCEPTED_DOMAIN,
                    severity=Severity.OK,
                    subject=domain,
                    message=f"sender domain {domain} is accepted: mail sent as it is the "
                    "accepted-sender scenario",
                    details={"scenario": Scenario.ACCEPTED_SENDER.value},
                    cause="sender-domain",
                )
            )
            continue
        # whether such mail relays is the scenario engine's verdict (relay-scenario), not ours
        scenario = Scenario.UNREGISTERED_SENDER
        if lookup.acceptance is Acceptance.UNCERTAIN:
            via = lookup.via.name if lookup.via else "?"
            severity = Severity.WARNING
            message = (
                f"sender domain {domain} is accepted only through MatchSubDomains of {via}; "
                f"if Exchange Online does not count that, it is the {scenario.value} scenario "
                "(relay-scenario says whether it relays)"
            )
        else:
            severity = Severity.INFO
            message = (
                f"sender domain {domain} is not an accepted domain: mail sent as it is the "
                f"{scenario.value} scenario, which needs a certificate connector whose domain is "
                "accepted (relay-scenario says whether it relays)"
            )
        findings.append(
            Finding(
                check=CheckId.ACCEPTED_DOMAIN,
                severity=severity,
                subject=domain,
                message=message,
                details={
                    "scenario": scenario.value,
                    "acceptance": lookup.acceptance.value,
                    "certificate_connectors": [name for name, _ in (*usable, *undocumented)],
                },
                cause="sender-domain",
            )
        )
    return findings


# --------------------------------------------------------------------------- drift


def drift_findings(
    *,
    config_domains: Sequence[str],
    live: Sequence[AcceptedDomain],
    graph_domains: Iterable[GraphDomain] = (),
    previous: frozenset[str] | None = None,
) -> list[Finding]:
    """Compare the tenant's live accepted domains with config and with the previous run.

    `live` is what the exports and Graph say is accepted now; `previous` is the set seen by the
    last run, or None when there is no history yet (then the config is the baseline)."""
    findings: list[Finding] = []
    live_names = {d.name: d for d in live}
    graph = {d.name: d for d in graph_domains}
    missing: set[str] = set()
    for name in config_domains:
        if name in live_names:
            continue
        missing.add(name)
        entry = graph.get(name)
        if entry is not None and not entry.is_verified:
            problem = "is in the tenant but not verified"
        elif entry is not None:
            problem = "is in the tenant but Email is not among its supportedServices"
        else:
            problem = "is listed in config but is not an accepted domain of the tenant"
        findings.append(
            Finding(
                check=CheckId.ACCEPTED_DOMAIN,
                severity=Severity.WARNING,
                subject=name,
                message=f"{name} {problem}",
                details={"sources": sorted({d.source for d in live})},
                cause="drift-missing",
            )
        )
    baseline = previous if previous is not None else frozenset(config_domains)
    since = "since the last run" if previous is not None else "and is not in the config"
    # with neither history nor a config list there is no baseline: nothing "appeared"
    appeared = set(live_names) - baseline if previous is not None or config_domains else set()
    for name in sorted(appeared):
        findings.append(
            Finding(
                check=CheckId.ACCEPTED_DOMAIN,
                severity=Severity.INFO,
                subject=name,
                message=f"{name} is an accepted domain of the tenant {since} (appeared)",
                details={"source": live_names[name].source},
                cause="drift-appeared",
            )
        )
    if previous is not None:
        for name in sorted(previous - set(live_names) - missing):
            findings.append(
                Finding(
                    check=CheckId.ACCEPTED_DOMAIN,
                    severity=Severity.WARNING,
                    subject=name,
                    message=f"{name} was an accepted domain in the last run and no longer is",
                    cause="drift-disappeared",
                )
            )
    return findings
