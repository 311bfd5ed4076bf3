"""Renewal preflight: would relay, the send connector and every check still hold with CERT bound?

KB 3169958's outages start with a renewal: other names, a new intermediate, no chain sent, no
clientAuth. Every check relaycheck has says so once the certificate is *served*; this module asks
the same questions before it is bound, by judging the tenant twice with the same engines:

- `before`: today's certificate observations, exactly as `scan` and `explain` see them;
- `after`: the same observations with the candidate chain substituted for the target (the
  connector or endpoint whose certificate it replaces).

Relay verdicts come only from the relay-readiness engine (`checks.readiness.relay_findings`),
certificate verdicts only from `checks.rules.certcheck`, and the change list only from the
`cert-changed` diff (`checks.rules.lifecycle.certificate_changes`), so a preflight can never
disagree with the scan that runs once the certificate is live. Pure: tenant facts, today's
observations, the candidate chain, the trust anchors and `now` come in; a result comes out.
Reading CERT and probing today's certificate happen in the shell (`bot/cli/preflight.py`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509

from checks.errors import RelaycheckError
from checks.i18n import N_, _, ngettext
from checks.model import (
    CheckId,
    Config,
    Connector,
    ConnectorType,
    Endpoint,
    Finding,
    Scenario,
    Severity,
)
from checks.readiness import relay_findings
from checks.rules.certcheck import (
    certificate_details,
    chain_findings,
    check_hostname,
    evaluate_connector_certificate,
    label,
)
from checks.rules.certificates import CertificateFacts, CertificateObservation
from checks.rules.chain import TrustAnchors, verify_chain
from checks.rules.lifecycle import CertificateSnapshot, certificate_changes
from checks.rules.names import Acceptance, lookup_accepted
from checks.rules.revocation import RevocationEvidence, check_revocation
from checks.rules.tenant import TenantFacts

SAFE_TO_BIND = "SAFE TO BIND"
BREAKS_RELAY = "BINDING BREAKS RELAY"
BIND_WITH_CARE = "BIND WITH CARE"
VERIFY_STEP = "relaycheck scan --only relay-scenario"
SEND_CONNECTOR_PLACEHOLDER = "<send connector to Exchange Online>"

# how people name the mail a scenario stands for, in a verdict line
_SCENARIO_MAIL = {
    Scenario.NDR: N_("NDRs"),
    Scenario.FORWARDING: N_("forwards"),
    Scenario.UNREGISTERED_SENDER: N_("mail from unregistered sender domains"),
    Scenario.ACCEPTED_SENDER: N_("mail from accepted domains"),
    Scenario.TO_TENANT: N_("mail into the tenant"),
}


class Verdict(StrEnum):
    """The preflight's answer; the exit code follows it (0, 1, 2; 3 is bad input)."""

    SAFE = "safe"
    CARE = "care"
    BREAKS = "breaks"

    @property
    def exit_code(self) -> int:
        return {Verdict.SAFE: 0, Verdict.CARE: 1, Verdict.BREAKS: 2}[self]


class TargetError(RelaycheckError):
    """`--for` names nothing, several things, or cannot be guessed: one line with the candidates."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What the candidate certificate replaces: connectors judged with it, and the endpoint
    (listener) that will serve it, whose `host` it must cover."""

    name: str
    kind: str  # "connector" or "endpoint"
    connectors: tuple[Connector, ...] = ()
    endpoint: Endpoint | None = None

    @property
    def identity(self) -> tuple[tuple[str, ...], str]:
        """Two names for the same thing (a connector and the endpoint it is observed at) are one
        target, so they never make `--for` ambiguous."""
        return (
            tuple(sorted(c.name for c in self.connectors)),
            self.endpoint.name if self.endpoint else "",
        )

    @property
    def label(self) -> str:
        if self.kind == "connector":
            return _("connector '{name}'").format(name=self.name)
        return _("endpoint '{name}'").format(name=self.name)


def _relay_connectors(facts: TenantFacts) -> tuple[Connector, ...]:
    return tuple(c for c in facts.connectors if c.enabled and c.type is ConnectorType.ON_PREMISES)


def targets(config: Config, facts: TenantFacts) -> tuple[Target, ...]:
    """Everything `--for` may name: certificate connectors (and connectors with a certificate
    source), then endpoints, in configuration order."""
    found: list[Target] = []
    connectors = _relay_connectors(facts)
    for connector in connectors:
        if not (connector.certificate_based or connector.certificate is not None):
            continue
        source = connector.certificate
        endpoint = config.endpoint(source.endpoint) if source and source.endpoint else None
        found.append(
            Target(
                name=connector.name, kind="connector", connectors=(connector,), endpoint=endpoint
            )
        )
    for endpoint in config.endpoints:
        users = tuple(
            c
            for c in connectors
            if c.certificate is not None
            and c.certificate.endpoint == endpoint.name
            and c.certificate.file is None  # a file is what that MTA presents, not the listener
        )
        found.append(
            Target(name=endpoint.name, kind="endpoint", connectors=users, endpoint=endpoint)
        )
    return tuple(found)


def _listing(found: Sequence[Target]) -> str:
    return ", ".join(t.label for t in found) or _("none configured")


def _distinct(found: Sequence[Target]) -> list[Target]:
    seen: dict[tuple[tuple[str, ...], str], Target] = {}
    for target in found:
        seen.setdefault(target.identity, target)
    return list(seen.values())


def _names(leaf: CertificateFacts) -> frozenset[str]:
    return frozenset(n.lower().rstrip(".") for n in leaf.names)


def choose_target(
    config: Config,
    facts: TenantFacts,
    *,
    requested: str | None,
    candidate: CertificateFacts,
    current: Mapping[str, CertificateObservation],
) -> Target:
    """The target the candidate replaces, or a `TargetError` listing the candidates.

    `--for` matches a connector or endpoint name exactly (any case), else as the start of one
    name. Without it: the only certificate connector, else the target whose current certificate
    (`current`, keyed by target name) shares the most names with the candidate."""
    every = targets(config, facts)
    if not every:
        raise TargetError(
            _(
                "this configuration has no certificate connector and no endpoint, so CERT "
                "replaces nothing: add the connector's certificate source or the [[endpoints]] "
                "that serves it"
            )
        )
    if requested is not None:
        wanted = requested.strip().casefold()
        exact = [t for t in every if t.name.casefold() == wanted]
        matches = _distinct(exact or [t for t in every if t.name.casefold().startswith(wanted)])
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise TargetError(
                _(
                    "--for {requested}: no connector or endpoint of that name; candidates: "
                    "{candidates}"
                ).format(requested=repr(requested), candidates=_listing(every))
            )
        raise TargetError(
            _("--for {requested} is ambiguous: it names {matches}; pass one of them").format(
                requested=repr(requested), matches=_listing(matches)
            )
        )
    certificate_connectors = [
        t for t in every if t.kind == "connector" and t.connectors[0].certificate_based
    ]
    if len(certificate_connectors) == 1:
        return certificate_connectors[0]
    wanted_names = _names(candidate)
    scored: dict[int, list[Target]] = {}
    for target in every:
        observed = current.get(target.name)
        leaf = observed.leaf if observed is not None else None
        if leaf is None:
            continue
        shared = len(wanted_names & _names(leaf))
        if shared:
            scored.setdefault(shared, []).append(target)
    if not scored:
        raise TargetError(
            _(
                "no current certificate shares a name with CERT, so the certificate it replaces "
                "cannot be guessed; pass --for with one of: {candidates}"
            ).format(candidates=_listing(every))
        )
    best = _distinct(scored[max(scored)])
    if len(best) > 1:
        raise TargetError(
            _(
                "CERT shares as many names with the certificates of {targets}; "
                "pass --for with one of them"
            ).format(targets=_listing(best))
        )
    return best[0]


# --------------------------------------------------------------------------- the judgement


@dataclass(frozen=True, slots=True, kw_only=True)
class SendConnectorSelector:
    """Exchange's send connector picks its certificate by `<I>issuer<S>subject` (454 4.7.5 when
    nothing in the store matches), so a new issuer or subject needs `Set-SendConnector`."""

    value: str
    previous: str | None
    changed: bool
    command: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tls_certificate_name": self.value,
            "previous": self.previous,
            "changed": self.changed,
            "command": self.command,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PreflightResult:
    """A preflight's answer: the verdict line first, then what it rests on."""

    target: Target
    source: str  # where the candidate came from (the CERT argument, a file in the config)
    verdict: Verdict
    verdict_line: str
    reasons: tuple[str, ...]
    before: tuple[Finding, ...]
    after: tuple[Finding, ...]
    changes: dict[str, Any] | None
    send_connector: SendConnectorSelector
    steps: tuple[str, ...]
    fingerprint: str
    notes: tuple[str, ...] = field(default=())
    # relay-scenario findings refused after binding that relay today (what "breaks" means)
    newly_refused: tuple[Finding, ...] = ()
    # short names of what needs care: check ids, "send connector", "names removed"
    concerns: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict_line,
            "result": self.verdict.value,
            "exit_code": self.exit_code,
            "reasons": list(self.reasons),
            "target": {
                "name": self.target.name,
                "kind": self.target.kind,
                "connectors": [c.name for c in self.target.connectors],
                "endpoint": self.target.endpoint.name if self.target.endpoint else None,
            },
            "certificate": {"source": self.source, "fingerprint_sha256": self.fingerprint},
            "before": [f.to_json() for f in self.before],
            "after": [f.to_json() for f in self.after],
            "changes": self.changes,
            "send_connector": self.send_connector.to_json(),
            "steps": list(self.steps),
            "notes": list(self.notes),
        }


def exchange_name(der: bytes, *, issuer: bool) -> str:
    """A distinguished name as Exchange prints it (`Get-ExchangeCertificate` Issuer/Subject:
    most specific first, `, ` between parts), the form `TlsCertificateName` compares."""
    cert = x509.load_der_x509_certificate(der)
    name = cert.issuer if issuer else cert.subject
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


def tls_certificate_name(leaf: CertificateFacts) -> str:
    return f"<I>{exchange_name(leaf.der, issuer=True)}<S>{exchange_name(leaf.der, issuer=False)}"


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def send_connector_selector(
    candidate: CertificateFacts, current: CertificateFacts | None, *, name: str | None = None
) -> SendConnectorSelector:
    value = tls_certificate_name(candidate)
    previous = tls_certificate_name(current) if current is not None else None
    return SendConnectorSelector(
        value=value,
        previous=previous,
        changed=previous is not None and previous != value,
        command=(
            f"Set-SendConnector -Identity {_ps_quote(name or SEND_CONNECTOR_PLACEHOLDER)} "
            f"-TlsCertificateName {_ps_quote(value)}"
        ),
    )


def snapshot(source: str, chain: Sequence[CertificateFacts]) -> CertificateSnapshot:
    """A chain reduced to what the `cert-changed` diff compares."""
    leaf = chain[0]
    return CertificateSnapshot(
        source=source,
        fingerprint=leaf.fingerprint_sha256,
        subject=leaf.subject,
        issuer=leaf.issuer,
        names=tuple(sorted(_names(leaf))),
        not_after=leaf.not_after,
        chain_length=len(chain),
        chain_fingerprints=tuple(c.fingerprint_sha256 for c in chain),
        client_auth=leaf.client_auth_allowed,
    )


def certificate_diff(
    source: str,
    current: Sequence[CertificateFacts],
    candidate: Sequence[CertificateFacts],
    *,
    now: datetime,
) -> dict[str, Any]:
    """What changes against today's certificate, from the `cert-changed` diff (plus key type)."""
    events = certificate_changes(
        {source: snapshot(source, current)}, {source: snapshot(source, candidate)}, now=now
    )
    key = [_key_text(current[0]), _key_text(candidate[0])]
    if not events:
        return {
            "same_certificate": True,
            "summary": _("the same certificate that is in use today"),
            "names_added": [],
            "names_removed": [],
            "issuer_changed": False,
            "subject_changed": False,
            "key_type": key,
            "key_type_changed": False,
        }
    event = events[0]
    details = {k: v for k, v in event.details.items() if k != "sources"}
    summary = event.reason
    if key[0] != key[1]:
        summary = f"{summary}; key {key[0]} -> {key[1]}"
    return {
        "same_certificate": False,
        "summary": summary,
        **details,
        "key_type": key,
        "key_type_changed": key[0] != key[1],
    }


def _key_text(leaf: CertificateFacts) -> str:
    return f"{leaf.key_type} {leaf.key_bits}" if leaf.key_bits else leaf.key_type


def certificate_findings(
    target: Target,
    chain: Sequence[CertificateFacts],
    *,
    source: str,
    config: Config,
    anchors: TrustAnchors,
    now: datetime,
    revocation: Mapping[str, Sequence[RevocationEvidence]] | None = None,
) -> list[Finding]:
    """Every certificate check the target's chain gets in a scan, from certcheck's functions;
    `cert-revoked` too when OCSP/CRL evidence was fetched for this chain (keyed by `cause`)."""
    cause = f"sha256:{chain[0].fingerprint_sha256[:16]}"
    findings: list[Finding] = []
    subjects = [c.name for c in target.connectors] or (
        [target.endpoint.name] if target.endpoint is not None else []
    )
    evidence = revocation.get(cause) if revocation is not None else None
    if evidence is not None:
        findings.extend(
            check_revocation(
                subject,
                evidence,
                now=now,
                settings=config.revocation,
                cause=cause,
                details={**certificate_details(chain[0], now), "source": source},
                leaf_label=label(chain[0]),
            )
            for subject in subjects
        )
    for connector in target.connectors:
        findings.extend(
            evaluate_connector_certificate(
                connector,
                chain,
                now=now,
                thresholds=config.thresholds,
                anchors=anchors,
                cause=cause,
                source=source,
                full=True,
            )
        )
    endpoint = target.endpoint
    if endpoint is not None:
        if not target.connectors:
            findings.extend(
                chain_findings(
                    endpoint.name,
                    chain,
                    now=now,
                    thresholds=config.thresholds,
                    anchors=anchors,
                    cause=cause,
                    extra={"host": endpoint.host, "source": source},
                )
            )
        findings.append(check_hostname(endpoint, chain[0], cause=cause, details={"source": source}))
    return findings


def _substituted(
    today: Mapping[str, CertificateObservation],
    target: Target,
    observation: CertificateObservation,
) -> dict[str, CertificateObservation]:
    result = dict(today)
    for connector in target.connectors:
        result[connector.name] = observation
    return result


def _row_key(finding: Finding) -> tuple[str, str, str]:
    cause = finding.cause if finding.check is CheckId.RELAY_SCENARIO else ""
    return (finding.check.value, finding.subject, cause)


def _refused(finding: Finding) -> bool:
    return finding.check is CheckId.RELAY_SCENARIO and finding.details.get("accepted") is False


def _scenario(finding: Finding) -> Scenario:
    return Scenario(finding.subject)


def _mail_phrase(findings: Sequence[Finding]) -> str:
    """ "NDRs and forwards would be refused with 550 5.7.64 TenantAttribution; ..."."""
    by_response: dict[str, list[Finding]] = {}
    for finding in findings:
        by_response.setdefault(str(finding.details.get("smtp_response")), []).append(finding)
    return "; ".join(
        _("{mail} would be refused with {response}").format(
            mail=_mail_list(found), response=response
        )
        for response, found in by_response.items()
    )


def _inbound_rename(
    target: Target, candidate: CertificateFacts, facts: TenantFacts, after: Sequence[Finding]
) -> list[str]:
    """`Set-InboundConnector` lines when the candidate's names left the connector's name but
    fall under another accepted domain (the connector must follow the certificate)."""
    lines = []
    uncovered = {
        f.subject
        for f in after
        if f.check is CheckId.SAN_COVERAGE
        and f.severity is Severity.CRITICAL
        and f.cause != "domain"
    }
    for connector in target.connectors:
        if connector.name not in uncovered:
            continue
        for name in sorted(_names(candidate)):
            labels = name.removeprefix("*.").split(".")
            domain = next(
                (
                    ".".join(labels[i:])
                    for i in range(len(labels) - 1)
                    if lookup_accepted(".".join(labels[i:]), facts.accepted_domains).acceptance
                    is Acceptance.ACCEPTED
                ),
                None,
            )
            if domain is not None:
                lines.append(
                    _(
                        "Update the inbound connector to the certificate's new name, in the same "
                        "change: {command}"
                    ).format(
                        command=f"Set-InboundConnector -Identity {_ps_quote(connector.name)} "
                        f"-TlsSenderCertificateName {_ps_quote('*.' + domain)}"
                    )
                )
                break
    return lines


def preflight(
    config: Config,
    facts: TenantFacts,
    today: Mapping[str, CertificateObservation],
    candidate: Sequence[CertificateFacts],
    target: Target,
    *,
    current: CertificateObservation | None,
    anchors: TrustAnchors,
    now: datetime,
    source: str = "CERT",
    send_connector: str | None = None,
    revocation: Mapping[str, Sequence[RevocationEvidence]] | None = None,
) -> PreflightResult:
    """Judge the tenant as it is (`today`, `current` for the target) and as if `candidate` were
    bound on `target`; the verdict says whether binding it breaks relay, needs care, or is safe."""
    chain = tuple(candidate)
    assert chain, "a candidate has at least its leaf"
    leaf = chain[0]
    observation = CertificateObservation(
        source=source, chain=chain, verdict=verify_chain(chain, anchors, now=now)
    )
    before_relay = relay_findings(config, facts, today, now=now)
    after_relay = relay_findings(config, facts, _substituted(today, target, observation), now=now)
    current_chain = current.chain if current is not None else ()
    notes: list[str] = []
    before_certs: list[Finding] = []
    if current_chain:
        before_certs = certificate_findings(
            target,
            current_chain,
            source=current.source if current else "",
            config=config,
            anchors=anchors,
            now=now,
            revocation=revocation,
        )
    else:
        why = current.error if current is not None and current.error else _("no certificate source")
        notes.append(
            _("today's certificate for {target} was not observed ({why})").format(
                target=target.label, why=why
            )
        )
    after_certs = certificate_findings(
        target, chain, source=source, config=config, anchors=anchors, now=now, revocation=revocation
    )
    before = (*before_relay, *before_certs)
    after = (*after_relay, *after_certs)

    changes = (
        certificate_diff(target.name, current_chain, chain, now=now) if current_chain else None
    )
    selector = send_connector_selector(
        leaf, current_chain[0] if current_chain else None, name=send_connector
    )

    refused_before = {_row_key(f) for f in before_relay if _refused(f)}
    newly_refused = [f for f in after_relay if _refused(f) and _row_key(f) not in refused_before]
    still_refused = [f for f in after_relay if _refused(f) and _row_key(f) in refused_before]
    reasons: list[str] = []
    concerns: list[str] = []
    if still_refused:
        reasons.append(
            _("already refused today, and still after binding: {phrase}").format(
                phrase=_mail_phrase(still_refused)
            )
        )
        concerns.append("relay already refused")
    # worst first: what is broken, then what breaks unless done with the binding, then warnings
    for wanted in (Severity.CRITICAL, None, Severity.WARNING):
        if wanted is None:
            if selector.changed:
                reasons.append(
                    _(
                        "the issuer or subject changes: an Exchange send connector selecting its "
                        "certificate by TlsCertificateName must be updated with the binding, or "
                        "mail stops with 454 4.7.5"
                    )
                )
                concerns.append("send connector TlsCertificateName")
            continue
        for finding in after:
            if finding.severity is not wanted or _refused(finding):
                continue
            prefix = "" if finding.check is CheckId.RELAY_SCENARIO else f"{finding.check.value}: "
            reasons.append(prefix + finding.message)
            concerns.append(finding.check.value)
    if changes is not None and changes.get("names_removed"):
        reasons.append(
            _("names removed: {names}").format(names=", ".join(changes["names_removed"]))
        )
        concerns.append("names removed")
    reasons = list(dict.fromkeys(reasons))

    if newly_refused:
        verdict = Verdict.BREAKS
        line = f"{BREAKS_RELAY}: {_mail_phrase(newly_refused)}"
    elif reasons:
        verdict = Verdict.CARE
        line = f"{BIND_WITH_CARE}: {reasons[0]}"
        if len(reasons) > 1:
            line += _(" (and {count} more below)").format(count=len(reasons) - 1)
    else:
        verdict = Verdict.SAFE
        line = SAFE_TO_BIND

    steps: list[str] = []
    if verdict is Verdict.BREAKS:
        fixes = [str(step) for f in newly_refused for step in f.details.get("fix", [])]
        steps.extend(_("Before binding: {fix}").format(fix=fix) for fix in dict.fromkeys(fixes))
    where = (
        _("{host} (endpoint {name})").format(host=target.endpoint.host, name=target.endpoint.name)
        if target.endpoint is not None
        else _("the on-prem server that presents the certificate of {connectors}").format(
            connectors=", ".join(
                _("connector '{name}'").format(name=c.name) for c in target.connectors
            )
        )
    )
    sent = len(chain) - 1
    steps.append(
        ngettext(
            "Bind the certificate ({name}, sha256 {fingerprint}…) on {where}, sending the leaf "
            "with its {count} intermediate certificate.",
            "Bind the certificate ({name}, sha256 {fingerprint}…) on {where}, sending the leaf "
            "with its {count} intermediate certificates.",
            sent,
        ).format(
            name=leaf.common_name or leaf.subject,
            fingerprint=leaf.fingerprint_sha256[:16],
            where=where,
            count=sent,
        )
    )
    if selector.changed or current_chain == ():
        update = (
            _(
                "Update the send connector in the same change: {command} (Get-ExchangeCertificate "
                "-Thumbprint {thumbprint} shows the Issuer and Subject exactly as Exchange "
                "compares them)"
            )
            if selector.changed
            else _(
                "Update the send connector in the same change if its TlsCertificateName names "
                "another certificate: {command} (Get-ExchangeCertificate -Thumbprint "
                "{thumbprint} shows the Issuer and Subject exactly as Exchange compares them)"
            )
        )
        steps.append(update.format(command=selector.command, thumbprint=fingerprint_sha1(leaf)))
    steps.extend(_inbound_rename(target, leaf, facts, after))
    steps.append(_("Verify once it is served: {command}").format(command=VERIFY_STEP))
    return PreflightResult(
        target=target,
        source=source,
        verdict=verdict,
        verdict_line=line,
        reasons=tuple(reasons),
        before=before,
        after=after,
        changes=changes,
        send_connector=selector,
        steps=tuple(steps),
        fingerprint=leaf.fingerprint_sha256,
        notes=tuple(notes),
        newly_refused=tuple(newly_refused),
        concerns=tuple(dict.fromkeys(concerns)),
    )


def waiting_note(result: PreflightResult, where: str) -> str:
    """One sentence for an alert about a renewal that is staged but not bound yet, short enough
    to survive a Slack line: "the renewed certificate waiting on mail1 would break relay of
    NDRs and forwards (550 5.7.64 ...)"."""
    if result.verdict is Verdict.BREAKS:
        by_response: dict[str, list[Finding]] = {}
        for finding in result.newly_refused:
            by_response.setdefault(str(finding.details.get("smtp_response")), []).append(finding)
        parts = [f"{_mail_list(found)} ({response})" for response, found in by_response.items()]
        return _(
            "preflight: the renewed certificate waiting on {where} would break relay of {mail}"
        ).format(where=where, mail="; ".join(parts))
    if result.verdict is Verdict.CARE:
        return _(
            "preflight: the renewed certificate waiting on {where} needs care when bound "
            "({concerns})"
        ).format(where=where, concerns=", ".join(result.concerns))
    return _("preflight: the renewed certificate waiting on {where} is safe to bind").format(
        where=where
    )


def _mail_list(findings: Sequence[Finding]) -> str:
    mail = list(
        dict.fromkeys(
            _(_SCENARIO_MAIL[_scenario(f)]) if _scenario(f) in _SCENARIO_MAIL else f.subject
            for f in findings
        )
    )
    return mail[0] if len(mail) == 1 else ", ".join(mail[:-1]) + _(" and ") + mail[-1]


# --------------------------------------------------------------------------- rendering


def _cell(finding: Finding | None) -> str:
    if finding is None:
        return "-"
    if finding.check is CheckId.RELAY_SCENARIO:
        if finding.details.get("accepted") is False:
            return _("REFUSED {response}").format(response=finding.details.get("smtp_response"))
        if finding.details.get("scenario") == Scenario.TO_TENANT.value:
            return _("not a relay")
        connector = finding.details.get("connector")
        text = (
            _("relays via '{connector}'").format(connector=connector) if connector else _("relays")
        )
        return text + (_(" (with caveats)") if finding.severity is Severity.WARNING else "")
    return finding.severity.value.upper()


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide and fullwidth characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def render_text(result: PreflightResult) -> str:
    """The verdict line first, then the before/after table, what changes, and the steps."""
    lines = [result.verdict_line, ""]
    lines.append(
        _("Certificate: {source} (sha256 {fingerprint}…)").format(
            source=result.source, fingerprint=result.fingerprint[:16]
        )
    )
    lines.append(_("Replaces:    the certificate of {target}").format(target=result.target.label))
    lines.extend(_("Note:        {note}").format(note=note) for note in result.notes)
    lines.append("")
    before = {_row_key(f): f for f in result.before}
    after = {_row_key(f): f for f in result.after}
    keys = list(dict.fromkeys([*after, *before]))
    rows = [
        (
            key[0],
            key[1] + (f" ({key[2]})" if key[2] else ""),
            _cell(before.get(key)),
            _cell(after.get(key)),
        )
        for key in keys
    ]
    header = (_("CHECK"), _("SUBJECT"), _("BEFORE"), _("AFTER"))
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        lines.append(
            f"{_pad(row[0], widths[0])}  {_pad(row[1], widths[1])}  "
            f"{_pad(row[2], widths[2])}  {row[3]}".rstrip()
        )
    problems = [f for f in result.after if f.severity >= Severity.WARNING]
    if problems:
        lines.append("")
        lines.append(_("After binding:"))
        lines.extend(
            f"  - {f.severity.value.upper()} {f.check.value} {f.subject}: {f.message}"
            for f in problems
        )
    others = [r for r in result.reasons[1:] if not any(r.endswith(f.message) for f in problems)]
    if result.verdict is Verdict.CARE and others:
        lines.append("")
        lines.append(_("Also:"))
        lines.extend(f"  - {reason}" for reason in others)
    lines.append("")
    if result.changes is not None:
        lines.append(
            _("Changes against today's certificate: {summary}").format(
                summary=result.changes["summary"]
            )
        )
        if result.changes.get("names_added"):
            lines.append(
                _("  names added:   {names}").format(names=", ".join(result.changes["names_added"]))
            )
        if result.changes.get("names_removed"):
            lines.append(
                _("  names removed: {names}").format(
                    names=", ".join(result.changes["names_removed"])
                )
            )
        old_key, new_key = result.changes["key_type"]
        lines.append(_("  key:           {old} -> {new}").format(old=old_key, new=new_key))
        if result.changes.get("chain_length"):
            old_len, new_len = result.changes["chain_length"]
            lines.append(_("  chain length:  {old} -> {new}").format(old=old_len, new=new_len))
    selector = result.send_connector
    selector_line = (
        _("Send connector: TlsCertificateName changes {value}")
        if selector.changed
        else _("Send connector: TlsCertificateName stays {value}")
        if selector.previous
        else _("Send connector: TlsCertificateName would be {value}")
    )
    lines.append(selector_line.format(value=selector.value))
    if selector.changed:
        lines.append(
            _("  was {previous} (454 4.7.5 once the old certificate is gone)").format(
                previous=selector.previous
            )
        )
    lines.append("")
    lines.append(_("Steps:"))
    lines.extend(f"  {n}. {step}" for n, step in enumerate(result.steps, 1))
    return "\n".join(lines) + "\n"


def fingerprint_sha1(leaf: CertificateFacts) -> str:
    """Exchange's Thumbprint (SHA-1 of the DER), to find the certificate with
    `Get-ExchangeCertificate -Thumbprint`; not a security use of SHA-1."""
    return hashlib.sha1(leaf.der, usedforsecurity=False).hexdigest().upper()
