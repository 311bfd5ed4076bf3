"""The relay-scenario engine: which scenario a message is, and would Exchange Online relay it.

Pure: an envelope, the tenant facts, the observed connector certificates and `now` go in; an
`Explanation` comes out. The rule (DOMAIN.md section 2, since 2023-11-01): EXO relays a message
from on-prem to an external recipient only if the session matches an enabled OnPremises
connector (by sending IP or by certificate) AND the certificate domain or the envelope sender
(P1) domain is an accepted domain. Attribution order: certificate domain, P1 domain, recipient.

relaycheck assumes the message comes from the on-prem server the connectors were set up for: its
IP is the IP connector's, and the certificate it presents is the one observed for the
certificate connector (from a file or a STARTTLS probe). When no certificate was observed the
verdict says so and assumes the configured certificate satisfies the connector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from checks.model import Connector, ConnectorType, Forward, Scenario
from checks.rules.addresses import Address, Envelope, parse_address
from checks.rules.certcheck import EKU_EXPLANATION
from checks.rules.certificates import CertificateObservation, ChainStatus, validity_problem
from checks.rules.names import (
    Acceptance,
    AcceptedLookup,
    ConnectorDomain,
    ConnectorMatch,
    ConnectorName,
    DomainStanding,
    connector_domain_standing,
    display_domain,
    lookup_accepted,
    match_connector,
    parse_connector_name,
)
from checks.rules.tenant import TenantFacts

ATTR36 = "550 5.7.64 Relay Access Denied ATTR36"
ATTR36_SEED = "451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36"
TENANT_ATTRIBUTION = "550 5.7.64 TenantAttribution; Relay Access Denied SMTP"
OUTSIDE_SENDER = Address(local="sender", domain="external.example")


class Match(StrEnum):
    """How an on-prem session relates to one connector."""

    MATCHED = "matched"
    ASSUMED = "assumed"  # certificate connector whose certificate was not observed
    NOT_MATCHED = "not-matched"
    IGNORED = "ignored"  # disabled or Partner: never authorises relay


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSession:
    """One connector's verdict for a session from the on-prem server."""

    connector: Connector
    via: str  # "ip" or "certificate"
    match: Match
    summary: str
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    domain: ConnectorDomain | None = None
    names: ConnectorMatch | None = None
    certificate: CertificateObservation | None = None

    @property
    def matches(self) -> bool:
        return self.match in (Match.MATCHED, Match.ASSUMED)

    @property
    def domain_counts(self) -> bool:
        """Does this session's certificate domain count as the tenant's for relay?"""
        return (
            self.via == "certificate"
            and self.domain is not None
            and self.domain.standing.attributes_relay
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """The answer to "what happens to SENDER -> RECIPIENT", for the CLI, JSON and Slack."""

    envelope: Envelope
    scenario: Scenario
    relay: bool
    accepted: bool
    connector: str | None
    smtp_response: str | None
    reasons: tuple[str, ...]
    fix: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    certificate: CertificateObservation | None = None
    certificate_connector: str | None = None
    forwarded: Explanation | None = None
    sessions: tuple[ConnectorSession, ...] = field(default=(), repr=False)
    # the verdict rests on a certificate relaycheck did not observe (assumed to satisfy the
    # connector): say "assuming the configured certificate", never a plain RELAYED
    certificate_assumed: bool = False

    @property
    def assumption(self) -> str | None:
        """Why the verdict is an assumption, in words (None: it is not)."""
        if not self.certificate_assumed:
            return None
        why = self.certificate.error if self.certificate and self.certificate.error else None
        return "assuming the configured certificate" + (
            f" (not observed: {why})" if why else " (not observed)"
        )

    @property
    def smtp_response_aliases(self) -> tuple[str, ...]:
        return (ATTR36_SEED,) if self.smtp_response == ATTR36 else ()

    def to_json(self) -> dict[str, Any]:
        env = self.envelope
        return {
            "input": {
                "sender": str(env.sender) if env.sender else "<>",
                "recipient": str(env.recipient),
                "via": str(env.via) if env.via else None,
            },
            "scenario": self.scenario.value,
            "scenario_title": self.scenario.title,
            "relay": self.relay,
            "accepted": self.accepted,
            "connector": self.connector,
            "smtp_response": self.smtp_response,
            "smtp_response_aliases": list(self.smtp_response_aliases),
            "certificate_assumed": self.certificate_assumed,
            "reasons": list(self.reasons),
            "fix": list(self.fix),
            "warnings": list(self.warnings),
            "certificate": _certificate_json(self.certificate, self.certificate_connector),
            "connectors": [
                {
                    "name": s.connector.name,
                    "via": s.via,
                    "match": s.match.value,
                    "summary": s.summary,
                    "problems": list(s.problems),
                }
                for s in self.sessions
            ],
            "forwarded": self.forwarded.to_json() if self.forwarded else None,
        }


def _certificate_json(
    observation: CertificateObservation | None, connector: str | None
) -> dict[str, Any] | None:
    if observation is None:
        return None
    leaf = observation.leaf
    return {
        "connector": connector,
        "source": observation.source,
        "observed": leaf is not None,
        "error": observation.error,
        "subject": leaf.subject if leaf else None,
        "issuer": leaf.issuer if leaf else None,
        "names": list(leaf.names) if leaf else [],
        "not_after": leaf.not_after.isoformat() if leaf else None,
        "fingerprint_sha256": leaf.fingerprint_sha256 if leaf else None,
        "chain": observation.verdict.status.value if observation.verdict else None,
        "chain_length": len(observation.chain),
    }


# --------------------------------------------------------------------------- classification


def _domain_of(address: Address) -> str:
    return display_domain(address.domain)


def classify(
    envelope: Envelope,
    facts: TenantFacts,
    forwards: Sequence[Forward] = (),
    *,
    situation: Situation | None = None,
) -> tuple[Scenario, Address | None, list[str], list[str]]:
    """The scenario id, the forwarding mailbox (if any), reasons and warnings."""
    known = situation if situation is not None else Situation.of(facts, forwards, {}, None)
    reasons: list[str] = []
    warnings: list[str] = []
    rcpt = known.lookup(envelope.recipient.domain)
    if rcpt.acceptance is not Acceptance.NOT_ACCEPTED:
        if rcpt.acceptance is Acceptance.UNCERTAIN and rcpt.via is not None:
            warnings.append(
                f"{_domain_of(envelope.recipient)} is accepted only through MatchSubDomains on "
                f"{display_domain(rcpt.via.name)}; its effect on relay is not documented"
            )
        reasons.append(
            f"The recipient domain {_domain_of(envelope.recipient)} is an accepted domain: this is "
            "delivery into the tenant, not a relay."
        )
        return Scenario.TO_TENANT, None, reasons, warnings
    recipient_text = (
        f"the recipient domain {_domain_of(envelope.recipient)} is not an accepted domain"
    )
    if envelope.sender is None:
        reasons.append(
            f"MAIL FROM is the null sender <> (a bounce or DSN) and {recipient_text}: "
            "a non-delivery report relayed to the internet."
        )
        return Scenario.NDR, None, reasons, warnings
    sender = known.lookup(envelope.sender.domain)
    if sender.acceptance is Acceptance.ACCEPTED:
        reasons.append(
            f"The MAIL FROM domain {_domain_of(envelope.sender)} is an accepted domain and "
            f"{recipient_text}: an ordinary outbound relay."
        )
        if envelope.via is not None:
            reasons.append(
                f"It passed through {envelope.via.display}, but Exchange Online only sees the "
                "envelope, whose sender is accepted."
            )
        return Scenario.ACCEPTED_SENDER, None, reasons, warnings
    if sender.acceptance is Acceptance.UNCERTAIN and sender.via is not None:
        warnings.append(
            f"{_domain_of(envelope.sender)} falls under MatchSubDomains of "
            f"{display_domain(sender.via.name)}; whether that counts for relay is not documented, "
            "so relaycheck treats it as not accepted"
        )
    neither = (
        f"Neither the MAIL FROM domain {_domain_of(envelope.sender)} nor the recipient domain "
        f"{_domain_of(envelope.recipient)} is an accepted domain"
    )
    mailbox = envelope.via or known.forwarding_mailbox(envelope.recipient)
    if mailbox is not None:
        how = (
            "as given" if envelope.via is not None else "by a forwarding rule in the configuration"
        )
        reasons.append(
            f"{neither}: the on-prem mailbox {mailbox.display} ({how}) forwards to "
            f"{envelope.recipient.display}, keeping the original sender (KB 3169958 scenario 3)."
        )
        return Scenario.FORWARDING, mailbox, reasons, warnings
    reasons.append(
        f"{neither}: the on-prem server sends as a domain that is not registered in the tenant "
        "(KB 3169958 scenario 2; a forward looks the same, name the mailbox with 'via')."
    )
    return Scenario.UNREGISTERED_SENDER, None, reasons, warnings


def _parsed_forwards(forwards: Sequence[Forward]) -> tuple[tuple[Address, Address], ...]:
    """(mailbox, target) of each forwarding rule, parsed once per situation."""
    return tuple(
        (
            parse_address(forward.mailbox, role="forwarding mailbox"),
            parse_address(forward.to, role="forward target"),
        )
        for forward in forwards
    )


# --------------------------------------------------------------------------- connectors


def _describe(connector: Connector) -> str:
    ways = []
    if connector.tls_sender_certificate_name:
        ways.append(f"certificate {connector.tls_sender_certificate_name}")
    if connector.sender_ip_addresses:
        ways.append("IP " + ", ".join(connector.sender_ip_addresses))
    return (
        f"'{connector.name}' ({connector.type.value}, {' and '.join(ways) or 'no identification'})"
    )


def evaluate_connector(
    connector: Connector,
    facts: TenantFacts,
    observation: CertificateObservation | None,
    *,
    now: datetime,
) -> list[ConnectorSession]:
    """How the on-prem server's session relates to this connector, by IP and by certificate."""
    label = _describe(connector)
    if not connector.enabled:
        return [
            ConnectorSession(
                connector=connector,
                via="certificate" if connector.certificate_based else "ip",
                match=Match.IGNORED,
                summary=f"Connector {label} is disabled: it matches nothing.",
                problems=("disabled",),
                fixes=(
                    f"Enable it: Set-InboundConnector -Identity '{connector.name}' -Enabled $true",
                ),
            )
        ]
    if connector.type is ConnectorType.PARTNER:
        return [
            ConnectorSession(
                connector=connector,
                via="certificate" if connector.certificate_based else "ip",
                match=Match.IGNORED,
                summary=f"Connector {label} is a Partner connector: only OnPremises connectors relay.",
            )
        ]
    sessions = []
    common_warnings: list[str] = []
    if connector.associated_accepted_domains:
        common_warnings.append(
            f"connector '{connector.name}' has AssociatedAcceptedDomains "
            f"({', '.join(connector.associated_accepted_domains)}); that may keep bounces and "
            "foreign sender domains from using it (not documented)"
        )
    if connector.ip_based:
        sessions.append(
            ConnectorSession(
                connector=connector,
                via="ip",
                match=Match.MATCHED,
                summary=(
                    f"Connector {label} matches the on-prem server by its sending IP "
                    f"({', '.join(connector.sender_ip_addresses)})."
                ),
                warnings=tuple(common_warnings),
            )
        )
    if connector.certificate_based:
        sessions.append(
            _certificate_session(
                connector, facts, observation, now=now, label=label, warnings=common_warnings
            )
        )
    if not sessions:
        sessions.append(
            ConnectorSession(
                connector=connector,
                via="ip",
                match=Match.NOT_MATCHED,
                summary=f"Connector {label} names neither a certificate nor sender IPs.",
                problems=("no identification",),
            )
        )
    return sessions


def _certificate_session(
    connector: Connector,
    facts: TenantFacts,
    observation: CertificateObservation | None,
    *,
    now: datetime,
    label: str,
    warnings: list[str],
) -> ConnectorSession:
    tls_name = connector.tls_sender_certificate_name or ""
    name = parse_connector_name(tls_name)
    domain = _standing(name, facts)
    warns = list(warnings)
    fixes: list[str] = []
    if domain.standing is DomainStanding.PARENT_ACCEPTED:
        warns.append(
            f"the connector names {name} while only {display_domain(domain.accepted_as or '')} is "
            f"accepted: undocumented; Microsoft recommends *.{display_domain(domain.accepted_as or '')}"
        )
        fixes.append(
            f"Set-InboundConnector -Identity '{connector.name}' -TlsSenderCertificateName "
            f"'*.{domain.accepted_as}' (Microsoft's recommendation for several host names)"
        )
    elif domain.standing is DomainStanding.UNCERTAIN:
        warns.append(
            f"{display_domain(name.domain)} counts only through MatchSubDomains; not documented"
        )
    leaf = observation.leaf if observation else None
    if observation is None or leaf is None:
        why = observation.error if observation and observation.error else "no certificate source"
        return ConnectorSession(
            connector=connector,
            via="certificate",
            match=Match.ASSUMED,
            summary=(
                f"Connector {label}: certificate not observed ({why}); assuming the on-prem "
                f"server presents a valid CA-signed certificate covered by {tls_name}."
            ),
            warnings=(*warns, f"certificate for connector '{connector.name}' not observed: {why}"),
            fixes=tuple(fixes),
            domain=domain,
            certificate=observation,
        )
    problems: list[str] = []
    names = match_connector(name, common_name=leaf.common_name, san_dns_names=leaf.san_dns_names)
    shown_names = ", ".join(leaf.names) or "no names"
    if not names.covered and not names.uncertain:
        problems.append(f"its names ({shown_names}) are not covered by {tls_name}")
        fixes.append(
            f"Reissue the certificate with a name under {tls_name} (CN and SAN), or set the "
            f"connector to a name it carries: Set-InboundConnector -Identity '{connector.name}' "
            "-TlsSenderCertificateName '<name>'"
        )
    elif names.uncertain:
        warns.append(
            f"the certificate carries a wildcard name while the connector names {tls_name}: "
            "whether Exchange Online matches them is not documented"
        )
    elif not names.fully_covered:
        only = "CN" if names.via_cn.value == "covered" else "SAN"
        warns.append(
            f"{tls_name} is covered only through the certificate's {only}; sources disagree on "
            "which one Exchange Online reads, so put the name in both"
        )
    when = validity_problem(leaf, now)
    if when:
        problems.append(f"the certificate is {when}")
        fixes.append("Renew the certificate and bind the renewed one to the send connector/MTA.")
    verdict = observation.verdict
    if verdict is not None and not verdict.trusted:
        problems.append(f"its chain is not trusted: {verdict.detail or verdict.status.value}")
        fixes.append(_chain_fix(verdict.status))
    if not leaf.client_auth_allowed:
        warns.append(EKU_EXPLANATION)
    summary_state = "does not match" if problems else "matches"
    summary = (
        f"Connector {label} {summary_state} the certificate from {observation.source} "
        f"({shown_names}; valid until {leaf.not_after:%Y-%m-%d}; chain "
        f"{verdict.status.value if verdict else 'not verified'})"
    )
    if problems:
        summary += ": " + "; ".join(problems) + "."
    else:
        summary += "."
    return ConnectorSession(
        connector=connector,
        via="certificate",
        match=Match.NOT_MATCHED if problems else Match.MATCHED,
        summary=summary,
        problems=tuple(problems),
        warnings=tuple(warns),
        fixes=tuple(fixes),
        domain=domain,
        names=names,
        certificate=observation,
    )


def _chain_fix(status: ChainStatus) -> str:
    if status is ChainStatus.SELF_SIGNED:
        return "Replace the self-signed certificate with one from a publicly trusted CA."
    if status is ChainStatus.MISSING_INTERMEDIATE:
        return (
            "Send the full chain: install the intermediate certificate(s) on the on-prem server "
            "(Windows: LocalMachine\\CA; Postfix: leaf then intermediates in smtp_tls_chain_files)."
        )
    if status is ChainStatus.UNTRUSTED_ROOT:
        return "Use a certificate from a CA that Microsoft 365 trusts (a public CA)."
    return "Fix the certificate chain (see cert-chain in 'relaycheck scan')."


def _standing(name: ConnectorName, facts: TenantFacts) -> ConnectorDomain:
    return connector_domain_standing(name, facts.accepted_domains)


# --------------------------------------------------------------------------- the verdict


def _suggested_domain(facts: TenantFacts) -> str:
    default = next((d for d in facts.accepted_domains if d.default), None)
    chosen = default or next(
        (d for d in facts.accepted_domains if not d.name.endswith(".onmicrosoft.com")), None
    )
    if chosen is None and facts.accepted_domains:
        chosen = facts.accepted_domains[0]
    return chosen.name if chosen else "<your accepted domain>"


def _certificate_route_fix(facts: TenantFacts, sessions: Sequence[ConnectorSession]) -> list[str]:
    """The KB 3169958 steps, made concrete for this tenant."""
    domain = _suggested_domain(facts)
    on_prem = next(
        (s.connector for s in sessions if s.connector.type is ConnectorType.ON_PREMISES), None
    )
    if on_prem is not None:
        step1 = (
            f"Make connector '{on_prem.name}' identify the on-prem server by certificate: "
            f"Set-InboundConnector -Identity '{on_prem.name}' -TlsSenderCertificateName "
            f"'*.{domain}' (EAC: Mail flow > Connectors > edit > 'By verifying that the subject "
            "name on the certificate ... matches this domain name')."
        )
    else:
        step1 = (
            "Create an inbound connector from your organization's email server: New-InboundConnector "
            f"-Name 'From on-prem' -ConnectorType OnPremises -SenderDomains * -RequireTls $true "
            f"-TlsSenderCertificateName '*.{domain}'."
        )
    return [
        step1,
        f"Give the on-prem server a CA-signed certificate whose CN and SAN include a name under "
        f"{domain} (e.g. mail.{domain}), and make it send the full chain.",
        "Make the server present it to Exchange Online: Exchange: Set-SendConnector <name> "
        "-TlsCertificateName '<I>issuer<S>subject' (re-run the Hybrid Configuration Wizard in "
        "hybrid setups); Postfix: smtp_tls_chain_files with the key, leaf and intermediates.",
    ]


def _scenario_alternatives(scenario: Scenario, envelope: Envelope) -> list[str]:
    if scenario is Scenario.UNREGISTERED_SENDER and envelope.sender is not None:
        return [
            f"Or, if the organisation owns {_domain_of(envelope.sender)}, add it as an accepted "
            "domain: the message then relays as an accepted sender."
        ]
    if scenario is Scenario.FORWARDING:
        return [
            "Or have the on-prem server rewrite the envelope sender of forwarded mail to an "
            "accepted domain (SRS), which makes it an accepted-sender relay."
        ]
    return []


@dataclass(slots=True, eq=False)
class Situation:
    """Everything an answer depends on except the envelope: tenant, forwards, certificates, now.

    The connector sessions (how the on-prem server matches each connector) depend only on
    these, never on the sender or recipient, so they are evaluated once per situation instead
    of once per answer; accepted-domain lookups are remembered per domain. `prepare` builds
    one for many envelopes (`relaycheck explain --batch`); `explain` reuses the last one when
    it is asked about the same objects again. The inputs are values: a caller that changes
    them builds a new situation.
    """

    facts: TenantFacts
    forwards: Sequence[Forward]
    certificates: Mapping[str, CertificateObservation]
    now: datetime | None
    _sessions: tuple[ConnectorSession, ...] | None = None
    _lookups: dict[str, AcceptedLookup] = field(default_factory=dict)
    _forwards: tuple[tuple[Address, Address], ...] | None = None

    @classmethod
    def of(
        cls,
        facts: TenantFacts,
        forwards: Sequence[Forward],
        certificates: Mapping[str, CertificateObservation],
        now: datetime | None,
    ) -> Situation:
        return cls(facts=facts, forwards=forwards, certificates=certificates, now=now)

    def same(
        self,
        facts: TenantFacts,
        forwards: Sequence[Forward],
        certificates: Mapping[str, CertificateObservation],
        now: datetime,
    ) -> bool:
        return (
            self.facts is facts
            and self.forwards is forwards
            and self.certificates is certificates
            and self.now == now
        )

    def sessions(self) -> tuple[ConnectorSession, ...]:
        if self._sessions is None:
            assert self.now is not None
            self._sessions = tuple(
                session
                for connector in self.facts.connectors
                for session in evaluate_connector(
                    connector, self.facts, self.certificates.get(connector.name), now=self.now
                )
            )
        return self._sessions

    def lookup(self, domain: str) -> AcceptedLookup:
        found = self._lookups.get(domain)
        if found is None:
            if len(self._lookups) >= _LOOKUP_CACHE_SIZE:
                self._lookups.clear()
            found = lookup_accepted(domain, self.facts.accepted_domains)
            self._lookups[domain] = found
        return found

    def parsed_forwards(self) -> tuple[tuple[Address, Address], ...]:
        if self._forwards is None:
            self._forwards = _parsed_forwards(self.forwards)
        return self._forwards

    def forwarding_mailbox(self, recipient: Address) -> Address | None:
        """The on-prem mailbox a configured forwarding rule sends to `recipient` from."""
        for mailbox, target in self.parsed_forwards():
            if target.same_mailbox(recipient):
                return mailbox
        return None

    def forward_target(self, mailbox: Address) -> Address | None:
        """Where a configured forwarding rule sends the mail of `mailbox`."""
        for source, target in self.parsed_forwards():
            if source.same_mailbox(mailbox):
                return target
        return None


# distinct domains whose accepted-domain standing a situation remembers
_LOOKUP_CACHE_SIZE = 4096
_last: Situation | None = None


def prepare(
    facts: TenantFacts,
    *,
    forwards: Sequence[Forward] = (),
    certificates: Mapping[str, CertificateObservation] | None = None,
    now: datetime,
) -> Situation:
    """The situation to explain many envelopes in (see `explain_in`)."""
    return Situation.of(facts, forwards, certificates if certificates is not None else {}, now)


def explain_in(situation: Situation, envelope: Envelope) -> Explanation:
    """Classify the envelope and decide, in a prepared situation."""
    return _explain(envelope, situation, with_forward=True)


def explain(
    envelope: Envelope,
    facts: TenantFacts,
    *,
    forwards: Sequence[Forward] = (),
    certificates: Mapping[str, CertificateObservation] | None = None,
    now: datetime,
) -> Explanation:
    """Classify the envelope and decide whether Exchange Online would take it from on-prem."""
    global _last
    observed = certificates if certificates is not None else _NO_CERTIFICATES
    situation = _last
    if situation is None or not situation.same(facts, forwards, observed, now):
        situation = Situation.of(facts, forwards, observed, now)
        _last = situation
    return _explain(envelope, situation, with_forward=True)


_NO_CERTIFICATES: Mapping[str, CertificateObservation] = {}


def _explain(envelope: Envelope, situation: Situation, *, with_forward: bool) -> Explanation:
    facts = situation.facts
    scenario, _mailbox, reasons, warnings = classify(
        envelope, facts, situation.forwards, situation=situation
    )
    sessions = situation.sessions()
    for session in sessions:
        reasons.append(session.summary)
        warnings.extend(session.warnings)
    warnings.extend(facts.notes)
    matched = [s for s in sessions if s.matches]
    cert_ok = [s for s in matched if s.domain_counts]
    # disabled and Partner connectors never carry relay: they are reasons, not candidates
    cert_sessions = [s for s in sessions if s.via == "certificate" and s.match is not Match.IGNORED]
    shown_cert = next(iter(cert_ok or cert_sessions), None)
    fix: list[str] = []
    relay = scenario is not Scenario.TO_TENANT
    sender_accepted = scenario is Scenario.ACCEPTED_SENDER
    connector: str | None
    response: str | None = None
    assumed = False

    if not relay:
        accepted = True
        connector = matched[0].connector.name if matched else None
        if connector is None:
            reasons.append(
                "No connector matches the on-prem server, so Exchange Online treats the message as "
                "anonymous internet mail (still delivered, with spam filtering)."
            )
            if (
                envelope.sender is not None
                and situation.lookup(envelope.sender.domain).acceptance is Acceptance.ACCEPTED
            ):
                warnings.append(
                    "with RejectDirectSend on, mail from an accepted domain that matches no connector "
                    "is refused: 550 5.7.68 TenantInboundAttribution; Direct Send not allowed"
                )
    elif cert_ok:
        accepted = True
        chosen = cert_ok[0]
        connector = chosen.connector.name
        domain = chosen.domain.domain if chosen.domain else ""
        reasons.append(
            f"Relayed: the session matches certificate connector '{connector}' and its certificate "
            f"domain {display_domain(domain)} is an accepted domain (checked first, before the "
            "MAIL FROM domain)."
        )
        if chosen.match is Match.ASSUMED:
            assumed = True
            reasons.append(
                "This verdict assumes the certificate, which relaycheck did not observe."
            )
    elif matched and sender_accepted:
        accepted = True
        connector = matched[0].connector.name
        reasons.append(
            f"Relayed: the session matches connector '{connector}' and the MAIL FROM domain is "
            "accepted."
        )
        if cert_sessions and not any(s.matches for s in cert_sessions):
            warnings.append(
                "the certificate connector does not match; bounces, forwards and foreign sender "
                "domains are refused until it does"
            )
    elif matched:
        accepted = False
        connector = matched[0].connector.name
        response = ATTR36
        why = (
            "no certificate connector with an accepted certificate domain matches"
            if not cert_sessions
            else "the matching certificate connector's domain is not an accepted domain"
            if any(s.matches for s in cert_sessions)
            else "the certificate connector does not match, so only the IP connector is left"
        )
        reasons.append(
            f"Refused with '{ATTR36}': the session matches '{connector}', but {why}, and the "
            "MAIL FROM domain is not accepted."
        )
        for session in cert_sessions:
            fix.extend(session.fixes)
            if (
                session.matches
                and session.domain
                and session.domain.standing is DomainStanding.NOT_ACCEPTED
            ):
                fix.append(
                    f"Add {display_domain(session.domain.domain)} as an accepted (verified) domain, or "
                    f"set the connector to '*.{_suggested_domain(facts)}' with a certificate under it."
                )
        if not cert_sessions:
            fix.extend(_certificate_route_fix(facts, sessions))
        fix.extend(_scenario_alternatives(scenario, envelope))
    else:
        accepted = False
        connector = None
        response = TENANT_ATTRIBUTION
        reasons.append(
            f"Refused with '{TENANT_ATTRIBUTION}': the on-prem server matches no enabled "
            "OnPremises connector, so Exchange Online cannot attribute the message to the tenant."
        )
        for session in sessions:
            fix.extend(session.fixes)
        if not sessions:
            fix.extend(_certificate_route_fix(facts, sessions))
    if accepted and relay and shown_cert is not None:
        fix.extend(shown_cert.fixes)

    forwarded = None
    if with_forward and scenario is Scenario.ACCEPTED_SENDER and envelope.sender is not None:
        forwarded = _forward_outcome(envelope, situation)
        verdict = (
            "would be relayed"
            if forwarded.accepted
            else f"would be refused ({forwarded.smtp_response})"
        )
        reasons.append(
            f"Mail that {envelope.sender.display} forwards from an outside sender to "
            f"{forwarded.envelope.recipient.display} is the 'forwarding' scenario and {verdict}."
        )
    return Explanation(
        envelope=envelope,
        scenario=scenario,
        relay=relay,
        accepted=accepted,
        connector=connector,
        smtp_response=response,
        reasons=tuple(reasons),
        fix=tuple(dict.fromkeys(fix)),
        warnings=tuple(dict.fromkeys(warnings)),
        certificate=shown_cert.certificate if shown_cert else None,
        certificate_connector=shown_cert.connector.name if shown_cert else None,
        forwarded=forwarded,
        sessions=tuple(sessions),
        certificate_assumed=assumed,
    )


def _forward_outcome(envelope: Envelope, situation: Situation) -> Explanation:
    """What happens when this accepted-domain mailbox forwards mail from an outside sender."""
    assert envelope.sender is not None
    target = situation.forward_target(envelope.sender) or envelope.recipient
    forwarded_envelope = Envelope(sender=OUTSIDE_SENDER, recipient=target, via=envelope.sender)
    return _explain(forwarded_envelope, situation, with_forward=False)
