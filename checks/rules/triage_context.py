"""What this tenant's configuration and last scan say about a triaged reply (pure).

A reply alone says what Exchange Online refused; the tenant says why it refused *this* tenant's
mail. ATTR36 over a tenant whose only OnPremises connector is IP-based is not a mystery, and a
TenantAttribution right after a renewal that dropped the connector's name is the renewal. The
hints are built from facts passed in (connectors and accepted domains from the config and its
exports, the open findings and served certificates the state file recorded), so the CLI and the
Slack command give the same hints, and a test gives them from plain values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from checks.i18n import _, format_day
from checks.model import AcceptedDomain, Connector, ConnectorType, Finding, Severity
from checks.rules.lifecycle import CertificateSnapshot
from checks.rules.names import (
    InvalidName,
    NameMatch,
    connector_covers,
    connector_domain_standing,
    parse_connector_name,
)
from checks.rules.replies import Triage

# the replies whose cause is the shape of the connectors (ATTR36 family, no attribution at all)
_CONNECTOR_SHAPE = {
    "attr36",
    "relay-access-denied",
    "unregistered-domains",
    "wrong-region",
    "direct-send-rejected",
}
# the replies whose cause is the certificate the connector expects
_CERTIFICATE = {
    "tenant-attribution",
    "relay-access-denied",
    "direct-send-rejected",
    "untrusted-root",
}
MAX_FINDING_HINTS = 5


def _on_premises(connectors: Sequence[Connector]) -> list[Connector]:
    return [c for c in connectors if c.enabled and c.type is ConnectorType.ON_PREMISES]


def _shape_hints(connectors: Sequence[Connector], accepted: Sequence[AcceptedDomain]) -> list[str]:
    on_prem = _on_premises(connectors)
    if not on_prem:
        return [_("this tenant has no enabled OnPremises connector")]
    hints: list[str] = []
    certificate_based = [c for c in on_prem if c.certificate_based]
    if not certificate_based:
        if len(on_prem) == 1:
            hints.append(
                _(
                    "your only OnPremises connector '{name}' is IP-based: NDRs, sender domains "
                    "that are not accepted and forwards cannot be relayed over it"
                ).format(name=on_prem[0].name)
            )
        else:
            hints.append(
                _(
                    "all {count} OnPremises connectors are IP-based: NDRs, sender domains that "
                    "are not accepted and forwards need a certificate-based connector"
                ).format(count=len(on_prem))
            )
    for connector in certificate_based:
        try:
            name = parse_connector_name(connector.tls_sender_certificate_name or "")
        except InvalidName:
            continue
        standing = connector_domain_standing(name, accepted)
        if not standing.standing.attributes_relay:
            hints.append(
                _(
                    "connector '{name}' identifies the server by certificate {certificate}, but "
                    "{domain} is not an accepted domain"
                ).format(name=connector.name, certificate=str(name), domain=name.domain)
            )
    return hints


def _certificate_hints(
    connectors: Sequence[Connector], certificates: Mapping[str, CertificateSnapshot]
) -> list[str]:
    hints: list[str] = []
    for connector in _on_premises(connectors):
        if not connector.certificate_based:
            continue
        try:
            name = parse_connector_name(connector.tls_sender_certificate_name or "")
        except InvalidName:
            continue
        for source, snapshot in sorted(certificates.items()):
            if any(connector_covers(name, n) is NameMatch.COVERED for n in snapshot.names):
                continue
            hints.append(
                _(
                    "the certificate {source} served at the last scan ({names}, valid until "
                    "{until}) does not carry {certificate}, the name connector '{name}' expects"
                ).format(
                    source=source,
                    names=", ".join(snapshot.names) or snapshot.subject,
                    until=format_day(snapshot.not_after),
                    certificate=str(name),
                    name=connector.name,
                )
            )
    return hints


def _finding_hints(answer: Triage, findings: Sequence[tuple[Finding, datetime]]) -> list[str]:
    wanted = set(answer.check_ids)
    relevant = [
        (f, opened)
        for f, opened in findings
        if f.check in wanted and f.severity >= Severity.WARNING
    ]
    relevant.sort(key=lambda pair: (-pair[0].severity.rank, pair[1]))
    return [
        _("the last scan has {check} open since {day} for {subject}: {message}").format(
            check=f.check.value, day=format_day(opened), subject=f.subject, message=f.message
        )
        for f, opened in relevant[:MAX_FINDING_HINTS]
    ]


def tenant_hints(
    answer: Triage,
    *,
    connectors: Sequence[Connector],
    accepted: Sequence[AcceptedDomain],
    findings: Sequence[tuple[Finding, datetime]] = (),
    certificates: Mapping[str, CertificateSnapshot] | None = None,
) -> tuple[str, ...]:
    """Lines about this tenant that bear on `answer`'s likely cause, most telling first.

    `findings` are the open findings of the last scan with the time each opened;
    `certificates` the served certificates it recorded (endpoint/address -> snapshot).
    """
    hints: list[str] = []
    if answer.key in _CONNECTOR_SHAPE:
        hints.extend(_shape_hints(connectors, accepted))
    if answer.key in _CERTIFICATE and certificates:
        hints.extend(_certificate_hints(connectors, certificates))
    hints.extend(_finding_hints(answer, findings))
    return tuple(dict.fromkeys(hints))


def with_tenant_hints(
    answers: Sequence[Triage],
    *,
    connectors: Sequence[Connector],
    accepted: Sequence[AcceptedDomain],
    findings: Sequence[tuple[Finding, datetime]] = (),
    certificates: Mapping[str, CertificateSnapshot] | None = None,
) -> tuple[Triage, ...]:
    """Every answer with the hints of `tenant_hints` attached."""
    return tuple(
        replace(
            a,
            hints=tenant_hints(
                a,
                connectors=connectors,
                accepted=accepted,
                findings=findings,
                certificates=certificates,
            ),
        )
        for a in answers
    )
