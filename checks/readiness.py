"""Relay readiness: KB 3169958's question, asked for this tenant on every scan.

"Will the mail this organisation relays through Exchange Online still be relayed?" is answered
here by the explain engine itself (`checks.explain.explain`), for one representative envelope
per relay scenario the tenant relies on (`[tenant] relay_scenarios`):

- `accepted-sender`: ordinary outbound mail from the default (else first) accepted domain;
- `ndr`: a bounce from on-prem (`MAIL FROM:<>`) to an internet address;
- `forwarding`: one per `[[forwards]]` entry, an outside sender's mail forwarded by the mailbox;
- `unregistered-sender`: one per `[tenant] sender_domains` entry that is not accepted.

Each envelope is also written as a pair `relaycheck explain` accepts (`details.pair`), so the
on-call engineer can ask the same question by hand and get the same verdict: scan and explain
cannot disagree because there is only one engine. Pure: tenant facts, the certificates the scan
observed and `now` come in; findings come out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from checks.explain import OUTSIDE_SENDER, ConnectorSession, Explanation, Match, explain
from checks.i18n import _
from checks.model import CheckId, Config, Finding, Scenario, Severity
from checks.rules.addresses import Address, Envelope, parse_address
from checks.rules.certcheck import EKU_EXPLANATION
from checks.rules.certificates import CertificateObservation
from checks.rules.names import Acceptance, display_domain, lookup_accepted
from checks.rules.tenant import TenantFacts

# where representative mail goes: a reserved name (RFC 2606) that no tenant accepts
EXTERNAL_RECIPIENT = Address(local="someone", domain="external.example")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioCase:
    """One representative envelope of a relay scenario the tenant relies on."""

    scenario: Scenario
    cause: str  # tells entries of one scenario apart: the mailbox, the domain
    envelope: Envelope
    what: str  # the mail it stands for, as a person says it ("NDRs from on-prem ...")

    @property
    def pair(self) -> str:
        """The envelope as `relaycheck explain` reads it back."""
        env = self.envelope
        sender = str(env.sender) if env.sender is not None else "<>"
        text = f"{sender} -> {env.recipient}"
        return f"{text} via {env.via}" if env.via is not None else text


def _default_domain(facts: TenantFacts) -> str | None:
    chosen = next((d for d in facts.accepted_domains if d.default), None)
    if chosen is None and facts.accepted_domains:
        chosen = facts.accepted_domains[0]
    return chosen.name if chosen else None


def _sent_as(scenario: Scenario, domain: str, what: str) -> ScenarioCase:
    """Mail the on-prem server sends as `domain` to the internet."""
    sender = Address(local="postmaster", domain=domain)
    return ScenarioCase(
        scenario=scenario,
        cause=domain,
        envelope=Envelope(sender=sender, recipient=EXTERNAL_RECIPIENT),
        what=what,
    )


def relay_cases(config: Config, facts: TenantFacts) -> tuple[ScenarioCase, ...]:
    """The envelopes to judge, in the order of `[tenant] relay_scenarios`."""
    cases: list[ScenarioCase] = []
    for scenario in config.tenant.relay_scenarios:
        if scenario is Scenario.ACCEPTED_SENDER:
            domain = _default_domain(facts)
            if domain is not None:
                what = _("Messages from {domain} to the internet").format(
                    domain=display_domain(domain)
                )
                cases.append(_sent_as(scenario, domain, what))
        elif scenario is Scenario.NDR:
            cases.append(
                ScenarioCase(
                    scenario=scenario,
                    cause="",
                    envelope=Envelope(sender=None, recipient=EXTERNAL_RECIPIENT),
                    what=_("NDRs from on-prem to internet senders"),
                )
            )
        elif scenario is Scenario.FORWARDING:
            for forward in config.forwards:
                mailbox = parse_address(forward.mailbox, role="forwarding mailbox")
                target = parse_address(forward.to, role="forward target")
                cases.append(
                    ScenarioCase(
                        scenario=scenario,
                        cause=str(mailbox),
                        envelope=Envelope(sender=OUTSIDE_SENDER, recipient=target, via=mailbox),
                        what=_("Forwards by {mailbox} to {target}").format(
                            mailbox=mailbox.display, target=target.display
                        ),
                    )
                )
        elif scenario is Scenario.UNREGISTERED_SENDER:
            for domain in config.tenant.sender_domains:
                lookup = lookup_accepted(domain, facts.accepted_domains)
                if lookup.acceptance is Acceptance.ACCEPTED:
                    continue  # an accepted sender domain is the accepted-sender scenario
                what = _("Messages sent as {domain} (not an accepted domain)").format(
                    domain=display_domain(domain)
                )
                cases.append(_sent_as(scenario, domain, what))
    return tuple(cases)


def carrying_session(result: Explanation) -> ConnectorSession | None:
    """The connector session the relay verdict rests on (None: refused, or not a relay)."""
    if not result.relay or not result.accepted:
        return None
    return next(
        (s for s in result.sessions if s.connector.name == result.connector and s.matches), None
    )


def caveats(result: Explanation) -> tuple[str, ...]:
    """What the "relays" verdict assumes that explain already states: a certificate that was
    not observed, or matching Microsoft does not document. clientAuth is `cert-eku`'s to say."""
    session = carrying_session(result)
    if session is None:
        return ()
    found = [w for w in session.warnings if w != _(EKU_EXPLANATION)]
    # explain's own warning says "not observed" in the language of the run
    if session.match is Match.ASSUMED and not any(_("not observed") in w for w in found):
        found.append(
            _("certificate for connector '{name}' not observed").format(name=session.connector.name)
        )
    return tuple(dict.fromkeys(found))


def relay_finding(case: ScenarioCase, result: Explanation) -> Finding:
    """One scenario's verdict as a `relay-scenario` finding."""
    notes = caveats(result)
    if not result.relay:
        severity = Severity.OK
        message = _("{what}: delivered into the tenant, not a relay").format(what=case.what)
    elif result.accepted:
        severity = Severity.WARNING if notes else Severity.OK
        message = _("{what} relay through connector '{connector}'").format(
            what=case.what, connector=result.connector
        )
        if result.assumption:
            message += f", {result.assumption}"
        others = [n for n in notes if _("not observed") not in n]
        if others:
            message += _("; but {caveats}").format(caveats="; ".join(others))
    else:
        severity = Severity.CRITICAL
        message = _("{what} are refused: {reply}").format(
            what=case.what, reply=result.smtp_response
        )
    return Finding(
        check=CheckId.RELAY_SCENARIO,
        severity=severity,
        subject=case.scenario.value,
        message=message,
        details={
            "scenario": result.scenario.value,
            "accepted": result.accepted,
            "smtp_response": result.smtp_response,
            "pair": case.pair,
            "connector": result.connector,
            "fix": list(result.fix),
            "caveats": list(notes),
            # None: no certificate connector took part in the verdict
            "certificate_observed": None
            if result.certificate_connector is None
            else result.certificate is not None and result.certificate.leaf is not None,
        },
        cause=case.cause,
    )


def relay_findings(
    config: Config,
    facts: TenantFacts,
    certificates: Mapping[str, CertificateObservation],
    *,
    now: datetime,
) -> list[Finding]:
    """Judge every relay scenario the tenant relies on with the explain engine.

    A tenant whose connectors relaycheck does not know (none in the config or the exports) is
    not judged: there is no setup to judge, and `--only relay-scenario` says what to add."""
    if not facts.connectors:
        return []
    return [
        relay_finding(
            case,
            explain(
                case.envelope,
                facts,
                forwards=config.forwards,
                certificates=certificates,
                now=now,
            ),
        )
        for case in relay_cases(config, facts)
    ]
