"""Certificate and TLS-endpoint rules: observations in, findings out, `now` passed in.

Findings about served certificates are grouped by the chain a server sent, not by address:
one certificate on four addresses is one finding naming the four addresses, and a pool behind
one name where two addresses still serve the old certificate shows up as two findings with
different `cause`s (the classic half-renewed pool). Connection failures are per address.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checks.model import (
    AcceptedDomain,
    CheckId,
    Connector,
    Endpoint,
    EndpointRole,
    Finding,
    Severity,
    Thresholds,
)
from checks.observations import FailureKind, ProbeStage, TlsObservation
from checks.rules.certificates import CertificateFacts, ChainStatus
from checks.rules.chain import TrustAnchors, verify_chain
from checks.rules.names import (
    DomainStanding,
    NameMatch,
    certificate_covers_host,
    connector_domain_standing,
    match_connector,
    parse_connector_name,
)

WEAK_HASHES = frozenset({"sha1", "md5"})
MIN_RSA_BITS = 2048
OLD_TLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1"})

EKU_EXPLANATION = (
    "the certificate has no clientAuth extended key usage, which public CAs leave out of "
    "certificates issued after 2026-05-01; the MTA presents it as a TLS client to Exchange "
    "Online, and whether Exchange Online enforces clientAuth is not documented (runbook: "
    "docs/runbook.md#cert-eku)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedChain:
    """One distinct chain and the addresses that served it."""

    chain: tuple[CertificateFacts, ...]
    addresses: tuple[str, ...]
    cause: str

    @property
    def leaf(self) -> CertificateFacts:
        return self.chain[0]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def days_left(facts: CertificateFacts, now: datetime) -> int:
    """Days until expiry (negative once expired), see `days_until`."""
    return days_until(facts.not_after, now)


def days_until(not_after: datetime, now: datetime) -> int:
    """Days until `not_after`, to the nearest day: a certificate issued "for 3 days" a moment
    ago has 3 days left, not 2 (rounding down would say 2 for 2 days 23 hours 59 minutes)."""
    return math.floor((not_after - now) / timedelta(days=1) + 0.5)


def expiry_severity(not_after: datetime, now: datetime, thresholds: Thresholds) -> Severity:
    """`[thresholds]` applied to a validity end: the one place that says how close is too close.

    Judged on the days people are shown, so "8 days left" is never critical at 7."""
    left = days_until(not_after, now)
    if now >= not_after or left <= thresholds.critical_days:
        return Severity.CRITICAL
    if left <= thresholds.warning_days:
        return Severity.WARNING
    return Severity.OK


def certificate_details(facts: CertificateFacts, now: datetime) -> dict[str, Any]:
    return {
        "fingerprint_sha256": facts.fingerprint_sha256,
        "subject": facts.subject,
        "issuer": facts.issuer,
        "serial": facts.serial,
        "common_name": facts.common_name,
        "san_dns_names": list(facts.san_dns_names),
        "not_before": iso(facts.not_before),
        "not_after": iso(facts.not_after),
        "days_left": days_left(facts, now),
    }


def group_chains(observations: Sequence[TlsObservation]) -> tuple[ServedChain, ...]:
    """Distinct chains served, in first-seen order, with a `cause` naming the leaf."""
    groups: dict[tuple[str, ...], list[str]] = {}
    chains: dict[tuple[str, ...], tuple[CertificateFacts, ...]] = {}
    for obs in observations:
        if not obs.ok:
            continue
        key = tuple(c.fingerprint_sha256 for c in obs.chain)
        groups.setdefault(key, []).append(obs.address or obs.host)
        chains[key] = obs.chain
    leaves = [key[0] for key in groups]
    result = []
    for key, addresses in groups.items():
        cause = f"sha256:{key[0][:16]}"
        if leaves.count(key[0]) > 1:  # same leaf, different intermediates sent
            cause += "/chain:" + hashlib.sha256("".join(key).encode()).hexdigest()[:8]
        result.append(ServedChain(chain=chains[key], addresses=tuple(addresses), cause=cause))
    return tuple(result)


# --------------------------------------------------------------------------- certificate checks


def _finding(
    check: CheckId,
    severity: Severity,
    subject: str,
    message: str,
    details: dict[str, Any],
    cause: str,
) -> Finding:
    return Finding(
        check=check,
        severity=severity,
        subject=subject,
        message=message,
        details=details,
        cause=cause,
    )


def check_expiry(
    subject: str,
    leaf: CertificateFacts,
    *,
    now: datetime,
    thresholds: Thresholds,
    cause: str,
    details: dict[str, Any],
) -> Finding:
    left = days_left(leaf, now)
    date = f"{leaf.not_after:%Y-%m-%d %H:%M} UTC"
    severity = expiry_severity(leaf.not_after, now, thresholds)
    if now >= leaf.not_after:
        ago = -left if left < 0 else 0
        message = (
            f"certificate {leaf.common_name or leaf.subject} expired on {date} ({ago} days ago)"
        )
    else:
        message = (
            f"certificate {leaf.common_name or leaf.subject} expires on {date} ({left} days left)"
        )
    return _finding(CheckId.CERT_EXPIRY, severity, subject, message, details, cause)


def check_not_yet_valid(
    subject: str, leaf: CertificateFacts, *, now: datetime, cause: str, details: dict[str, Any]
) -> Finding:
    date = f"{leaf.not_before:%Y-%m-%d %H:%M} UTC"
    if now < leaf.not_before:
        return _finding(
            CheckId.CERT_NOT_YET_VALID,
            Severity.CRITICAL,
            subject,
            f"certificate {leaf.common_name or leaf.subject} is not valid before {date}: "
            "peers reject it until then (check the clock of the issuing system)",
            details,
            cause,
        )
    return _finding(
        CheckId.CERT_NOT_YET_VALID, Severity.OK, subject, f"valid since {date}", details, cause
    )


def check_chain(
    subject: str,
    chain: Sequence[CertificateFacts],
    *,
    anchors: TrustAnchors,
    now: datetime,
    thresholds: Thresholds,
    cause: str,
    details: dict[str, Any],
) -> Finding:
    """Trust of the presented chain, judged apart from the leaf's own dates.

    An expired leaf is `cert-expiry`'s business; verifying at a moment inside the leaf's
    validity keeps this finding about the chain only, so one expired certificate is not
    reported twice as critical.
    """
    leaf = chain[0]
    moment = min(max(now, leaf.not_before), leaf.not_after)
    verdict = verify_chain(chain, anchors, now=moment)
    info = {
        **details,
        "chain_status": verdict.status.value,
        "presented": [c.subject for c in chain],
    }
    if not verdict.trusted:
        label = {
            ChainStatus.SELF_SIGNED: "self-signed",
            ChainStatus.MISSING_INTERMEDIATE: "missing intermediate",
            ChainStatus.UNTRUSTED_ROOT: "untrusted",
            ChainStatus.INVALID: "invalid chain",
        }[verdict.status]
        return _finding(
            CheckId.CERT_CHAIN,
            Severity.CRITICAL,
            subject,
            f"{label}: {verdict.detail}",
            info,
            cause,
        )
    # intermediates sent by the server: expired now, or expiring before the leaf
    for inter in chain[1:]:
        if inter.self_issued:
            continue
        if now >= inter.not_after:
            return _finding(
                CheckId.CERT_CHAIN,
                Severity.CRITICAL,
                subject,
                f"intermediate {inter.subject} expired on {inter.not_after:%Y-%m-%d}",
                {
                    **info,
                    "intermediate": inter.subject,
                    "intermediate_not_after": iso(inter.not_after),
                },
                cause,
            )
        if inter.not_after < leaf.not_after:
            left = days_left(inter, now)
            severity = Severity.CRITICAL if left <= thresholds.critical_days else Severity.WARNING
            return _finding(
                CheckId.CERT_CHAIN,
                severity,
                subject,
                f"intermediate {inter.subject} expires on {inter.not_after:%Y-%m-%d} "
                f"({left} days left), before the certificate itself "
                f"({leaf.not_after:%Y-%m-%d}): the chain breaks first",
                {
                    **info,
                    "intermediate": inter.subject,
                    "intermediate_not_after": iso(inter.not_after),
                },
                cause,
            )
    return _finding(
        CheckId.CERT_CHAIN,
        Severity.OK,
        subject,
        "chain verified: " + " <- ".join(verdict.path),
        {**info, "path": list(verdict.path)},
        cause,
    )


def check_weak_certificate(
    subject: str, chain: Sequence[CertificateFacts], *, cause: str, details: dict[str, Any]
) -> Finding:
    problems: list[str] = []
    for index, cert in enumerate(chain):
        what = "certificate" if index == 0 else f"intermediate {cert.subject}"
        if cert.self_issued and index > 0:
            continue  # a root's self-signature is never checked by anyone
        if (
            cert.key_type in ("RSA", "DSA")
            and cert.key_bits is not None
            and cert.key_bits < MIN_RSA_BITS
        ):
            problems.append(f"{what} has a {cert.key_bits}-bit {cert.key_type} key (minimum 2048)")
        if cert.signature_hash in WEAK_HASHES:
            problems.append(f"{what} is signed with {cert.signature_hash.upper()}")
    if problems:
        return _finding(
            CheckId.CERT_WEAK,
            Severity.CRITICAL,
            subject,
            "; ".join(problems),
            {**details, "problems": problems},
            cause,
        )
    leaf = chain[0]
    return _finding(
        CheckId.CERT_WEAK,
        Severity.OK,
        subject,
        f"{leaf.key_type} {leaf.key_bits or '?'} bits, {leaf.signature_hash or 'unknown'} signature",
        details,
        cause,
    )


def check_tls_version(subject: str, obs: TlsObservation) -> Finding:
    cause = f"tls:{obs.address or obs.host}"
    details = {"address": obs.address, "tls_version": obs.tls_version, "cipher": obs.cipher}
    if obs.tls_version in OLD_TLS:
        return _finding(
            CheckId.CERT_WEAK,
            Severity.CRITICAL,
            subject,
            f"{obs.address} negotiated {obs.tls_version}: Exchange Online requires TLS 1.2 or "
            "later ('421 4.7.66 TLS 1.0 and 1.1 are not supported')",
            details,
            cause,
        )
    return _finding(
        CheckId.CERT_WEAK,
        Severity.OK,
        subject,
        f"{obs.address} negotiated {obs.tls_version}",
        details,
        cause,
    )


def check_hostname(
    endpoint: Endpoint, leaf: CertificateFacts, *, cause: str, details: dict[str, Any]
) -> Finding:
    names = list(leaf.san_dns_names) or ([leaf.common_name] if leaf.common_name else [])
    if certificate_covers_host(
        endpoint.host, common_name=leaf.common_name, san_dns_names=leaf.san_dns_names
    ):
        return _finding(
            CheckId.CERT_HOSTNAME,
            Severity.OK,
            endpoint.name,
            f"certificate covers {endpoint.host}",
            details,
            cause,
        )
    severity = Severity.WARNING if endpoint.role is EndpointRole.MX else Severity.CRITICAL
    shown = ", ".join(names) if names else "no DNS names"
    return _finding(
        CheckId.CERT_HOSTNAME,
        severity,
        endpoint.name,
        f"certificate does not cover {endpoint.host} (it names {shown})",
        {**details, "host": endpoint.host},
        cause,
    )


def check_eku(
    subject: str, leaf: CertificateFacts, *, cause: str, details: dict[str, Any]
) -> Finding:
    eku = list(leaf.extended_key_usage) if leaf.extended_key_usage is not None else None
    info = {**details, "extended_key_usage": eku}
    if leaf.client_auth_allowed:
        return _finding(
            CheckId.CERT_EKU,
            Severity.OK,
            subject,
            "clientAuth is allowed (TLS client use)",
            info,
            cause,
        )
    return _finding(
        CheckId.CERT_EKU,
        Severity.WARNING,
        subject,
        f"{leaf.common_name or leaf.subject}: {EKU_EXPLANATION}",
        info,
        cause,
    )


def chain_findings(
    subject: str,
    chain: Sequence[CertificateFacts],
    *,
    now: datetime,
    thresholds: Thresholds,
    anchors: TrustAnchors,
    cause: str,
    extra: dict[str, Any] | None = None,
) -> list[Finding]:
    """The checks every observed chain gets: expiry, not-yet-valid, chain, weak."""
    leaf = chain[0]
    details = {**certificate_details(leaf, now), **(extra or {})}
    return [
        check_expiry(subject, leaf, now=now, thresholds=thresholds, cause=cause, details=details),
        check_not_yet_valid(subject, leaf, now=now, cause=cause, details=details),
        check_chain(
            subject,
            chain,
            anchors=anchors,
            now=now,
            thresholds=thresholds,
            cause=cause,
            details=details,
        ),
        check_weak_certificate(subject, chain, cause=cause, details=details),
    ]


# --------------------------------------------------------------------------- endpoints

_FAILURE_CHECK = {
    ProbeStage.RESOLVE: CheckId.ENDPOINT_UNREACHABLE,
    ProbeStage.CONNECT: CheckId.ENDPOINT_UNREACHABLE,
    ProbeStage.GREETING: CheckId.ENDPOINT_UNREACHABLE,
    ProbeStage.EHLO: CheckId.ENDPOINT_UNREACHABLE,
    ProbeStage.STARTTLS: CheckId.STARTTLS_MISSING,
    ProbeStage.HANDSHAKE: CheckId.TLS_HANDSHAKE,
    ProbeStage.QUIT: CheckId.TLS_HANDSHAKE,
}
_CONNECTION_CHECKS = (CheckId.ENDPOINT_UNREACHABLE, CheckId.STARTTLS_MISSING, CheckId.TLS_HANDSHAKE)


def failure_finding(endpoint: Endpoint, obs: TlsObservation) -> Finding:
    failure = obs.failure
    assert failure is not None
    check = _FAILURE_CHECK[failure.stage]
    where = obs.address or endpoint.host
    message = f"{where} port {endpoint.port}: {failure.reason}"
    if failure.temporary:
        message += " - a temporary (4xx) refusal: the server says to try again later"
    if failure.kind is FailureKind.NOT_OFFERED:
        message = f"{where} port {endpoint.port}: STARTTLS is not offered (EHLO lists no STARTTLS)"
    if failure.server_words:
        message += f"; server said: {failure.server_words!r}"
    return _finding(
        check,
        Severity.CRITICAL,
        endpoint.name,
        message,
        {
            "host": endpoint.host,
            "address": obs.address,
            "port": endpoint.port,
            "stage": failure.stage.value,
            "reason": failure.kind.value,
            "code": failure.code,
            "temporary": failure.temporary,
            "server_words": failure.server_words,
        },
        obs.address or endpoint.host,
    )


def evaluate_endpoint(
    endpoint: Endpoint,
    observations: Sequence[TlsObservation],
    *,
    now: datetime,
    thresholds: Thresholds,
    anchors: TrustAnchors,
) -> list[Finding]:
    """Findings for one endpoint from the probes of each of its addresses."""
    findings: list[Finding] = []
    for obs in observations:
        if obs.failure is not None:
            findings.append(failure_finding(endpoint, obs))
            continue
        if not obs.chain:
            findings.append(
                _finding(
                    CheckId.TLS_HANDSHAKE,
                    Severity.CRITICAL,
                    endpoint.name,
                    f"{obs.address} completed TLS but sent no certificate we could parse",
                    {"address": obs.address, "port": endpoint.port},
                    obs.address or endpoint.host,
                )
            )
            continue
        for check in _CONNECTION_CHECKS:
            findings.append(
                _finding(
                    check,
                    Severity.OK,
                    endpoint.name,
                    f"{obs.address} port {endpoint.port}: {endpoint.tls.value} with {obs.tls_version}",
                    {"address": obs.address, "port": endpoint.port, "tls_version": obs.tls_version},
                    obs.address or endpoint.host,
                )
            )
        findings.append(check_tls_version(endpoint.name, obs))
    groups = group_chains(observations)
    for group in groups:
        extra: dict[str, Any] = {
            "host": endpoint.host,
            "port": endpoint.port,
            "addresses": list(group.addresses),
        }
        if len(groups) > 1:
            extra["pool_certificates"] = len(groups)
        found = chain_findings(
            endpoint.name,
            group.chain,
            now=now,
            thresholds=thresholds,
            anchors=anchors,
            cause=group.cause,
            extra=extra,
        )
        found.append(
            check_hostname(endpoint, group.leaf, cause=group.cause, details=found[0].details)
        )
        if len(groups) > 1:
            note = (
                f" [served by {', '.join(group.addresses)}; {len(groups)} different certificates "
                f"behind {endpoint.host}]"
            )
            found = [_with_note(f, note) if f.severity is not Severity.OK else f for f in found]
        findings.extend(found)
    return findings


def _with_note(finding: Finding, note: str) -> Finding:
    return Finding(
        check=finding.check,
        severity=finding.severity,
        subject=finding.subject,
        message=finding.message + note,
        details=finding.details,
        cause=finding.cause,
    )


# --------------------------------------------------------------------------- connectors


def connector_domain_finding(
    connector: Connector, accepted: Sequence[AcceptedDomain]
) -> Finding | None:
    """Is the connector's certificate domain an accepted domain (relay rule, DOMAIN.md section 3)?"""
    if not connector.tls_sender_certificate_name:
        return None
    name = parse_connector_name(connector.tls_sender_certificate_name)
    standing = connector_domain_standing(name, accepted)
    details = {
        "connector_name": str(name),
        "domain": standing.domain,
        "standing": standing.standing.value,
    }
    if standing.standing is DomainStanding.ACCEPTED:
        return _finding(
            CheckId.SAN_COVERAGE,
            Severity.OK,
            connector.name,
            f"connector domain {standing.domain} is an accepted domain",
            details,
            "domain",
        )
    if standing.standing is DomainStanding.PARENT_ACCEPTED:
        message = (
            f"connector name {name} is not an accepted domain; only its parent "
            f"{standing.accepted_as} is. Undocumented territory: Microsoft recommends "
            f"'*.{standing.accepted_as}' on the connector"
        )
        return _finding(
            CheckId.SAN_COVERAGE, Severity.WARNING, connector.name, message, details, "domain"
        )
    if standing.standing is DomainStanding.UNCERTAIN:
        message = (
            f"connector domain {standing.domain} is accepted only through MatchSubDomains of "
            f"{standing.accepted_as}, whose effect on relay is undocumented"
        )
        return _finding(
            CheckId.SAN_COVERAGE, Severity.WARNING, connector.name, message, details, "domain"
        )
    return _finding(
        CheckId.SAN_COVERAGE,
        Severity.CRITICAL,
        connector.name,
        f"connector domain {standing.domain} is not an accepted domain: Exchange Online cannot "
        "attribute mail to the tenant by this certificate (relay-scenario says which mail that "
        "refuses)",
        details,
        "domain",
    )


def check_san_coverage(
    connector: Connector, leaf: CertificateFacts, *, cause: str, details: dict[str, Any]
) -> Finding:
    assert connector.tls_sender_certificate_name
    name = parse_connector_name(connector.tls_sender_certificate_name)
    match = match_connector(name, common_name=leaf.common_name, san_dns_names=leaf.san_dns_names)
    info = {
        **details,
        "connector_name": str(name),
        "via_cn": match.via_cn.value,
        "via_san": match.via_san.value,
    }
    shown = ", ".join(leaf.names) or "no names"
    if match.fully_covered:
        return _finding(
            CheckId.SAN_COVERAGE,
            Severity.OK,
            connector.name,
            f"{name} covers the certificate's CN and SAN",
            info,
            cause,
        )
    if match.covered:
        only = "CN" if match.via_cn is NameMatch.COVERED else "SAN"
        other = "SAN dNSNames" if only == "CN" else "subject CN"
        return _finding(
            CheckId.SAN_COVERAGE,
            Severity.WARNING,
            connector.name,
            f"{name} matches the certificate only through its {only} ({', '.join(match.matching_names)}), "
            f"not its {other}; sources disagree on which one Exchange Online reads",
            info,
            cause,
        )
    if match.uncertain:
        return _finding(
            CheckId.SAN_COVERAGE,
            Severity.WARNING,
            connector.name,
            f"the certificate's wildcard name ({', '.join(match.matching_names)}) against connector "
            f"name {name} is undocumented; set the connector to '*.' form or use a certificate "
            "naming the host",
            info,
            cause,
        )
    return _finding(
        CheckId.SAN_COVERAGE,
        Severity.CRITICAL,
        connector.name,
        f"connector name {name} covers none of the certificate's names ({shown}): Exchange Online "
        "will not match this connector by its certificate (relay-scenario says which mail that "
        "refuses)",
        info,
        cause,
    )


def evaluate_connector_certificate(
    connector: Connector,
    chain: Sequence[CertificateFacts],
    *,
    now: datetime,
    thresholds: Thresholds,
    anchors: TrustAnchors,
    cause: str,
    source: str,
    full: bool,
) -> list[Finding]:
    """Connector checks on one observed chain; `full` adds expiry/chain/weak (file sources,
    whose certificate no endpoint finding covers)."""
    extra = {"source": source}
    findings = (
        chain_findings(
            connector.name,
            chain,
            now=now,
            thresholds=thresholds,
            anchors=anchors,
            cause=cause,
            extra=extra,
        )
        if full
        else []
    )
    details = {**certificate_details(chain[0], now), **extra}
    if connector.tls_sender_certificate_name:
        findings.append(check_san_coverage(connector, chain[0], cause=cause, details=details))
    findings.append(check_eku(connector.name, chain[0], cause=cause, details=details))
    return findings


def _addresses_text(addresses: Sequence[str], adverb: str = "") -> str:
    """'192.0.2.1 serves' / '192.0.2.1, 192.0.2.2 still serve'."""
    verb = "serves" if len(addresses) == 1 else "serve"
    return " ".join(part for part in (", ".join(addresses), adverb, verb) if part)


def check_not_deployed(
    connector: Connector,
    file_leaf: CertificateFacts,
    served: Sequence[ServedChain],
    *,
    now: datetime,
    thresholds: Thresholds,
) -> list[Finding]:
    """A renewed certificate in the file that the listener does not serve yet."""
    findings = []
    for group in served:
        leaf = group.leaf
        details = {
            "file": certificate_details(file_leaf, now),
            "served": certificate_details(leaf, now),
            "addresses": list(group.addresses),
        }
        if leaf.fingerprint_sha256 == file_leaf.fingerprint_sha256:
            findings.append(
                _finding(
                    CheckId.CERT_NOT_DEPLOYED,
                    Severity.OK,
                    connector.name,
                    f"{_addresses_text(group.addresses)} the certificate in the file",
                    details,
                    group.cause,
                )
            )
            continue
        # newer = issued later, or (same issue time) valid longer
        if (file_leaf.not_before, file_leaf.not_after) > (leaf.not_before, leaf.not_after):
            left = days_left(leaf, now)
            severity = Severity.CRITICAL if left <= thresholds.critical_days else Severity.WARNING
            findings.append(
                _finding(
                    CheckId.CERT_NOT_DEPLOYED,
                    severity,
                    connector.name,
                    f"renewed but not bound: the file holds a certificate valid until "
                    f"{file_leaf.not_after:%Y-%m-%d}, but "
                    f"{_addresses_text(group.addresses, 'still')} the older one valid until {leaf.not_after:%Y-%m-%d} ({left} days left)",
                    details,
                    group.cause,
                )
            )
        else:
            findings.append(
                _finding(
                    CheckId.CERT_NOT_DEPLOYED,
                    Severity.INFO,
                    connector.name,
                    f"{_addresses_text(group.addresses)} a newer certificate than the file "
                    f"(served valid until {leaf.not_after:%Y-%m-%d}, file until "
                    f"{file_leaf.not_after:%Y-%m-%d}): is the file still the one the MTA uses?",
                    details,
                    group.cause,
                )
            )
    return findings
