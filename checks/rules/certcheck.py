"""Certificate and TLS-endpoint rules: observations in, findings out, `now` passed in.

Findings about served certificates are grouped by the chain a server sent, not by address:
one certificate on four addresses is one finding naming the four addresses, and a pool behind
one name where two addresses still serve the old certificate shows up as two findings with
different `cause`s (the classic half-renewed pool). Connection failures are per address.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checks.i18n import N_, _, format_day, format_moment, ngettext
from checks.model import (
    AcceptedDomain,
    CheckId,
    Connector,
    Endpoint,
    EndpointRole,
    Finding,
    RevocationSettings,
    Severity,
    Thresholds,
)
from checks.observations import FailureKind, ProbeStage, TlsObservation
from checks.rules.certificates import CertificateFacts, ChainStatus, validity_problem
from checks.rules.chain import TrustAnchors, verify_chain
from checks.rules.names import (
    DomainStanding,
    NameMatch,
    certificate_covers_host,
    connector_domain_standing,
    match_connector,
    parse_connector_name,
)
from checks.rules.revocation import RevocationEvidence, check_revocation

WEAK_HASHES = frozenset({"sha1", "md5"})
MIN_RSA_BITS = 2048
OLD_TLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1"})

# an English msgid: show it with `_(EKU_EXPLANATION)` (compare it the same way)
EKU_EXPLANATION = N_(
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
        "key_type": facts.key_type,
        "key_bits": facts.key_bits,
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


def label(facts: CertificateFacts) -> str:
    """A certificate as people name it: its CN (else subject) and key type, so the RSA and the
    ECDSA certificate of one dual-certificate server are never confused."""
    return f"{facts.common_name or facts.subject} ({facts.key_type})"


def _element_kind(facts: CertificateFacts) -> str:
    return "root" if facts.self_issued and facts.is_ca else "intermediate"


def check_expiry(
    subject: str,
    leaf: CertificateFacts,
    *,
    now: datetime,
    thresholds: Thresholds,
    cause: str,
    details: dict[str, Any],
    chain: Sequence[CertificateFacts] = (),
) -> Finding:
    """The leaf's expiry, and (given the `chain` it was sent with) every issuing certificate
    sent, each one within `[thresholds]` named by subject and date: an expired intermediate
    breaks the chain as surely as an expired leaf. One finding per chain, as bad as its worst
    element; `days_left` is when the chain breaks (the earliest end), so expiry steps escalate
    on that day, and `leaf_days_left` is the leaf's own."""
    left = days_left(leaf, now)
    date = format_moment(leaf.not_after)
    severity = expiry_severity(leaf.not_after, now, thresholds)
    if now >= leaf.not_after:
        ago = -left if left < 0 else 0
        when = ngettext(
            "expired on {date} ({days} day ago)", "expired on {date} ({days} days ago)", ago
        ).format(date=date, days=ago)
    else:
        when = ngettext(
            "expires on {date} ({days} day left)", "expires on {date} ({days} days left)", left
        ).format(date=date, days=left)
    message = _("certificate {name} {when}").format(name=label(leaf), when=when)
    elements = _elements_at_issue(chain, now, thresholds)
    if elements:
        parts = [text for _, text, _ in elements]
        if severity is Severity.OK:
            message = "; ".join(parts) + _(" (the certificate {name} itself {when})").format(
                name=label(leaf), when=when
            )
        else:
            message = "; ".join([message, *parts])
        severity = max(severity, *(s for s, _, _ in elements))
        earliest = min((e for _, _, e in elements), key=lambda e: e.not_after)
        details = {
            **details,
            "leaf_days_left": left,
            "days_left": min(left, days_until(earliest.not_after, now)),
            "chain_expiry": [
                {
                    "element": chain.index(e) + 1,  # 1 = the leaf, as monitoring plugins count
                    "kind": _element_kind(e),
                    "subject": e.subject,
                    "not_after": iso(e.not_after),
                    "days_left": days_left(e, now),
                    "fingerprint_sha256": e.fingerprint_sha256,
                }
                for _, _, e in elements
            ],
        }
    return _finding(CheckId.CERT_EXPIRY, severity, subject, message, details, cause)


def _elements_at_issue(
    chain: Sequence[CertificateFacts], now: datetime, thresholds: Thresholds
) -> list[tuple[Severity, str, CertificateFacts]]:
    """Issuing certificates sent after the leaf whose expiry is within the thresholds."""
    result: list[tuple[Severity, str, CertificateFacts]] = []
    seen: set[str] = set()
    for element in chain[1:]:
        if element.fingerprint_sha256 in seen:
            continue  # sent twice is cert-chain's business; one expiry is named once
        seen.add(element.fingerprint_sha256)
        severity = expiry_severity(element.not_after, now, thresholds)
        if severity is Severity.OK:
            continue
        left = days_left(element, now)
        date = format_moment(element.not_after)
        kind = _("root") if _element_kind(element) == "root" else _("intermediate")
        if now >= element.not_after:
            text = _(
                "{kind} {subject} (sent in the chain) expired on {date} ({days} days ago): the "
                "chain no longer verifies"
            ).format(kind=kind, subject=element.subject, date=date, days=-left if left < 0 else 0)
        else:
            text = _(
                "{kind} {subject} (sent in the chain) expires on {date} ({days} days left)"
            ).format(kind=kind, subject=element.subject, date=date, days=left)
            if element.not_after < chain[0].not_after:
                text += _(", before the certificate itself: the chain breaks first")
        result.append((severity, text, element))
    return result


def check_not_yet_valid(
    subject: str,
    leaf: CertificateFacts,
    *,
    now: datetime,
    cause: str,
    details: dict[str, Any],
    chain: Sequence[CertificateFacts] = (),
) -> Finding:
    """The leaf, and every issuing certificate sent with it, before its validity starts."""
    date = format_moment(leaf.not_before)
    problems = []
    if now < leaf.not_before:
        problems.append(
            _(
                "certificate {name} is not valid before {date}: peers reject it until then "
                "(check the clock of the issuing system)"
            ).format(name=label(leaf), date=date)
        )
    early = [e for e in dict.fromkeys(chain[1:]) if now < e.not_before]
    for element in early:
        problems.append(
            _(
                "{kind} {subject} (sent in the chain) is not valid before {date}: the chain "
                "does not verify until then"
            ).format(
                kind=_("root") if _element_kind(element) == "root" else _("intermediate"),
                subject=element.subject,
                date=format_moment(element.not_before),
            )
        )
    if problems:
        info = details
        if early:
            info = {
                **details,
                "not_yet_valid": [
                    {"subject": e.subject, "not_before": iso(e.not_before)} for e in early
                ],
            }
        return _finding(
            CheckId.CERT_NOT_YET_VALID, Severity.CRITICAL, subject, "; ".join(problems), info, cause
        )
    return _finding(
        CheckId.CERT_NOT_YET_VALID,
        Severity.OK,
        subject,
        _("valid since {date}").format(date=date),
        details,
        cause,
    )


def _verification_moment(chain: Sequence[CertificateFacts], now: datetime) -> datetime:
    """A moment inside every sent certificate's validity, as close to `now` as possible.

    Dates are `cert-expiry` / `cert-not-yet-valid` business, element by element; verifying
    inside them keeps `cert-chain` about trust only, so one expired intermediate is one finding
    naming it, not also a generic "not valid at validation time". When no such moment exists,
    the leaf's own validity is used (the chain is then judged as it was on the leaf's terms)."""
    leaf = chain[0]
    start = max(c.not_before for c in chain)
    end = min(c.not_after for c in chain)
    if start > end:
        start, end = leaf.not_before, leaf.not_after
    return min(max(now, start), end)


_CHAIN_LABEL = {
    ChainStatus.SELF_SIGNED: N_("self-signed"),
    ChainStatus.MISSING_INTERMEDIATE: N_("missing intermediate"),
    ChainStatus.UNTRUSTED_ROOT: N_("untrusted"),
    ChainStatus.INVALID: N_("invalid chain"),
}


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
    """Trust of the presented chain, judged apart from the certificates' own dates and hashes.

    Expired or not-yet-valid elements are `cert-expiry`'s and `cert-not-yet-valid`'s business,
    SHA-1 and MD5 `cert-weak`'s: one problem is one finding. What stays here is trust (the
    path to a root), and an intermediate that will expire before the leaf while its own expiry
    is still far off (when it is near, `cert-expiry` names it).
    """
    leaf = chain[0]
    verdict = verify_chain(chain, anchors, now=_verification_moment(chain, now))
    info = {
        **details,
        "chain_status": verdict.status.value,
        "presented": [c.subject for c in chain],
    }
    if verdict.status is ChainStatus.WEAK_SIGNATURE:
        return _finding(
            CheckId.CERT_CHAIN,
            Severity.INFO,
            subject,
            f"{verdict.detail}: " + " <- ".join(verdict.path),
            {**info, "path": list(verdict.path)},
            cause,
        )
    if not verdict.trusted:
        return _finding(
            CheckId.CERT_CHAIN,
            Severity.CRITICAL,
            subject,
            f"{_(_CHAIN_LABEL[verdict.status])}: {verdict.detail}",
            info,
            cause,
        )
    outside = [c for c in dict.fromkeys(chain[1:]) if validity_problem(c, now) is not None]
    if outside:
        named = "; ".join(f"{c.subject} {validity_problem(c, now)}" for c in outside)
        return _finding(
            CheckId.CERT_CHAIN,
            Severity.INFO,
            subject,
            _(
                "trusted apart from the validity dates of {named} (reported under cert-expiry / "
                "cert-not-yet-valid): {path}"
            ).format(named=named, path=" <- ".join(verdict.path)),
            {**info, "path": list(verdict.path)},
            cause,
        )
    for inter in chain[1:]:
        if inter.self_issued or now >= inter.not_after or inter.not_after >= leaf.not_after:
            continue
        # expiring before the leaf: the chain breaks first. Near expiry is cert-expiry's.
        if expiry_severity(inter.not_after, now, thresholds) is not Severity.OK:
            continue
        return _finding(
            CheckId.CERT_CHAIN,
            Severity.WARNING,
            subject,
            _(
                "intermediate {subject} expires on {date} ({days} days left), before the "
                "certificate itself ({leaf_date}): the chain breaks first; install the CA's "
                "current intermediate"
            ).format(
                subject=inter.subject,
                date=format_day(inter.not_after),
                days=days_left(inter, now),
                leaf_date=format_day(leaf.not_after),
            ),
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
        _("chain verified: {path}").format(path=" <- ".join(verdict.path)),
        {**info, "path": list(verdict.path)},
        cause,
    )


def check_chain_hygiene(
    subject: str,
    chain: Sequence[CertificateFacts],
    *,
    cause: str,
    details: dict[str, Any],
) -> list[Finding]:
    """How the chain was sent: a root inside it (harmless, wasted bytes), a certificate sent
    twice, or issuers not following the certificates they signed (strict clients fail)."""
    findings = []
    info = {**details, "presented": [c.subject for c in chain]}
    roots = [c for c in chain[1:] if c.self_issued and c.is_ca]
    if roots:
        findings.append(
            _finding(
                CheckId.CERT_CHAIN,
                Severity.INFO,
                subject,
                _(
                    "the server sends the root {subject} in its chain: unnecessary (peers use "
                    "their own copy of a root), remove it from the chain file"
                ).format(subject=roots[0].subject),
                {**info, "root_sent": roots[0].subject},
                f"{cause}/root-sent",
            )
        )
    fingerprints = [c.fingerprint_sha256 for c in chain]
    duplicates = [c for i, c in enumerate(chain) if c.fingerprint_sha256 in fingerprints[:i]]
    if duplicates:
        findings.append(
            _finding(
                CheckId.CERT_CHAIN,
                Severity.INFO,
                subject,
                _(
                    "the server sends {subject} more than once in its chain: remove the "
                    "duplicate from the chain file"
                ).format(subject=duplicates[0].subject),
                {**info, "duplicate": duplicates[0].subject},
                f"{cause}/duplicate",
            )
        )
    unique = [c for i, c in enumerate(chain) if c.fingerprint_sha256 not in fingerprints[:i]]
    subjects = [c.subject for c in unique]
    for index, cert in enumerate(unique[:-1]):
        if cert.self_issued:
            continue
        issuer_later = cert.issuer in subjects[index + 2 :]
        if unique[index + 1].subject != cert.issuer and issuer_later:
            findings.append(
                _finding(
                    CheckId.CERT_CHAIN,
                    Severity.WARNING,
                    subject,
                    _(
                        "the chain is sent out of order: {subject} is not followed by its issuer "
                        "{issuer}; strict TLS clients fail on this. Send the leaf, then each "
                        "issuer in turn"
                    ).format(subject=cert.subject, issuer=cert.issuer),
                    {**info, "out_of_order_at": index + 1},
                    f"{cause}/order",
                )
            )
            break
    return findings


def validity_days(facts: CertificateFacts) -> int:
    """The whole validity period of a certificate, in (rounded) days."""
    return days_until(facts.not_after, facts.not_before)


def check_weak_certificate(
    subject: str,
    chain: Sequence[CertificateFacts],
    *,
    cause: str,
    details: dict[str, Any],
    max_validity_days: int | None = None,
) -> Finding:
    """Weak keys and hashes (critical), and a leaf valid longer than `max_validity_days`
    (a warning: public CAs issue at most 398 days; longer is a private CA or a stale policy)."""
    problems: list[str] = []
    severity = Severity.OK
    for index, cert in enumerate(chain):
        what = (
            _("certificate {name}").format(name=label(cert))
            if index == 0
            else _("intermediate {subject}").format(subject=cert.subject)
        )
        if cert.self_issued and index > 0:
            continue  # a root's self-signature is never checked by anyone
        if (
            cert.key_type in ("RSA", "DSA")
            and cert.key_bits is not None
            and cert.key_bits < MIN_RSA_BITS
        ):
            problems.append(
                _("{what} has a {bits}-bit {type} key (minimum 2048)").format(
                    what=what, bits=cert.key_bits, type=cert.key_type
                )
            )
            severity = Severity.CRITICAL
        if cert.signature_hash in WEAK_HASHES:
            problems.append(
                _("{what} is signed with {hash}, which current clients no longer trust").format(
                    what=what, hash=cert.signature_hash.upper()
                )
            )
            severity = Severity.CRITICAL
    leaf = chain[0]
    extra: dict[str, Any] = {"key_type": leaf.key_type, "key_bits": leaf.key_bits}
    if max_validity_days is not None:
        period = validity_days(leaf)
        extra["validity_days"] = period
        if period > max_validity_days:
            problems.append(
                f"certificate {label(leaf)} is valid for {period} days "
                f"({leaf.not_before:%Y-%m-%d} to {leaf.not_after:%Y-%m-%d}), longer than "
                f"[thresholds] max_validity_days = {max_validity_days} (public CAs issue at most 398)"
            )
            severity = max(severity, Severity.WARNING)
    if problems:
        return _finding(
            CheckId.CERT_WEAK,
            severity,
            subject,
            "; ".join(problems),
            {**details, **extra, "problems": problems},
            cause,
        )
    return _finding(
        CheckId.CERT_WEAK,
        Severity.OK,
        subject,
        f"{leaf.key_type} {leaf.key_bits or '?'} bits, {leaf.signature_hash or 'unknown'} signature",
        {**details, **extra},
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
            _(
                "{address} negotiated {version}: Exchange Online requires TLS 1.2 or later "
                "('421 4.7.66 TLS 1.0 and 1.1 are not supported')"
            ).format(address=obs.address, version=obs.tls_version),
            details,
            cause,
        )
    return _finding(
        CheckId.CERT_WEAK,
        Severity.OK,
        subject,
        _("{address} negotiated {version}").format(address=obs.address, version=obs.tls_version),
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
            _("certificate covers {host}").format(host=endpoint.host),
            details,
            cause,
        )
    severity = Severity.WARNING if endpoint.role is EndpointRole.MX else Severity.CRITICAL
    shown = ", ".join(names) if names else _("no DNS names")
    return _finding(
        CheckId.CERT_HOSTNAME,
        severity,
        endpoint.name,
        _("certificate does not cover {host} (it names {names})").format(
            host=endpoint.host, names=shown
        ),
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
            _("clientAuth is allowed (TLS client use)"),
            info,
            cause,
        )
    return _finding(
        CheckId.CERT_EKU,
        Severity.WARNING,
        subject,
        f"{leaf.common_name or leaf.subject}: {_(EKU_EXPLANATION)}",
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
    """The checks every observed chain gets: expiry and not-yet-valid (of the leaf and every
    issuing certificate sent), chain (trust, then how it was sent), weak. `[0]` is the
    expiry finding (callers take its details)."""
    leaf = chain[0]
    details = {**certificate_details(leaf, now), **(extra or {})}
    return [
        check_expiry(
            subject,
            leaf,
            now=now,
            thresholds=thresholds,
            cause=cause,
            details=details,
            chain=chain,
        ),
        check_not_yet_valid(subject, leaf, now=now, cause=cause, details=details, chain=chain),
        check_chain(
            subject,
            chain,
            anchors=anchors,
            now=now,
            thresholds=thresholds,
            cause=cause,
            details=details,
        ),
        check_weak_certificate(
            subject,
            chain,
            cause=cause,
            details=details,
            max_validity_days=thresholds.max_validity_days,
        ),
        *check_chain_hygiene(subject, chain, cause=cause, details=details),
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
    message = _("{where} port {port}: {reason}").format(
        where=where, port=endpoint.port, reason=failure.reason
    )
    if failure.temporary:
        message += _(" - a temporary (4xx) refusal: the server says to try again later")
    if failure.kind is FailureKind.NOT_OFFERED:
        message = _("{where} port {port}: STARTTLS is not offered (EHLO lists no STARTTLS)").format(
            where=where, port=endpoint.port
        )
    if failure.server_words:
        message += _("; server said: {words}").format(words=repr(failure.server_words))
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
    revocation: Mapping[str, Sequence[RevocationEvidence]] | None = None,
    revocation_settings: RevocationSettings | None = None,
) -> list[Finding]:
    """Findings for one endpoint from the probes of each of its addresses.

    `revocation` maps a served chain's `cause` (see `group_chains`) to the OCSP/CRL evidence
    fetched for it; a chain with an entry gets a `cert-revoked` finding."""
    findings: list[Finding] = []
    for obs in observations:
        if obs.key_offer is not None:
            continue  # a second certificate of that address: judged with the chains below
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
        key_types = sorted({g.leaf.key_type for g in groups})
        if len(key_types) > 1:
            extra["server_key_types"] = key_types
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
        if revocation is not None and group.cause in revocation:
            found.append(
                check_revocation(
                    endpoint.name,
                    revocation[group.cause],
                    now=now,
                    settings=revocation_settings or RevocationSettings(),
                    cause=group.cause,
                    details={**certificate_details(group.leaf, now), **extra},
                    leaf_label=label(group.leaf),
                )
            )
        if len(groups) > 1:
            note = (
                f" [{group.leaf.key_type} certificate served by {', '.join(group.addresses)}; "
                f"{len(groups)} different certificates behind {endpoint.host}]"
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
            _("connector domain {domain} is an accepted domain").format(domain=standing.domain),
            details,
            "domain",
        )
    if standing.standing is DomainStanding.PARENT_ACCEPTED:
        message = _(
            "connector name {name} is not an accepted domain; only its parent {parent} is. "
            "Undocumented territory: Microsoft recommends '*.{parent}' on the connector"
        ).format(name=name, parent=standing.accepted_as)
        return _finding(
            CheckId.SAN_COVERAGE, Severity.WARNING, connector.name, message, details, "domain"
        )
    if standing.standing is DomainStanding.UNCERTAIN:
        message = _(
            "connector domain {domain} is accepted only through MatchSubDomains of {parent}, "
            "whose effect on relay is undocumented"
        ).format(domain=standing.domain, parent=standing.accepted_as)
        return _finding(
            CheckId.SAN_COVERAGE, Severity.WARNING, connector.name, message, details, "domain"
        )
    return _finding(
        CheckId.SAN_COVERAGE,
        Severity.CRITICAL,
        connector.name,
        _(
            "connector domain {domain} is not an accepted domain: Exchange Online cannot "
            "attribute mail to the tenant by this certificate (relay-scenario says which mail "
            "that refuses)"
        ).format(domain=standing.domain),
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
    shown = ", ".join(leaf.names) or _("no names")
    if match.fully_covered:
        return _finding(
            CheckId.SAN_COVERAGE,
            Severity.OK,
            connector.name,
            _("{name} covers the certificate's CN and SAN").format(name=name),
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
            _(
                "{name} matches the certificate only through its {only} ({names}), not its "
                "{other}; sources disagree on which one Exchange Online reads"
            ).format(name=name, only=only, names=", ".join(match.matching_names), other=other),
            info,
            cause,
        )
    if match.uncertain:
        return _finding(
            CheckId.SAN_COVERAGE,
            Severity.WARNING,
            connector.name,
            _(
                "the certificate's wildcard name ({names}) against connector name {name} is "
                "undocumented; set the connector to '*.' form or use a certificate naming the host"
            ).format(names=", ".join(match.matching_names), name=name),
            info,
            cause,
        )
    return _finding(
        CheckId.SAN_COVERAGE,
        Severity.CRITICAL,
        connector.name,
        _(
            "connector name {name} covers none of the certificate's names ({names}): Exchange "
            "Online will not match this connector by its certificate (relay-scenario says which "
            "mail that refuses)"
        ).format(name=name, names=shown),
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
        addresses = ", ".join(group.addresses)
        count = len(group.addresses)
        if leaf.fingerprint_sha256 == file_leaf.fingerprint_sha256:
            findings.append(
                _finding(
                    CheckId.CERT_NOT_DEPLOYED,
                    Severity.OK,
                    connector.name,
                    ngettext(
                        "{addresses} serves the certificate in the file",
                        "{addresses} serve the certificate in the file",
                        count,
                    ).format(addresses=addresses),
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
                    ngettext(
                        "renewed but not bound: the file holds a certificate valid until "
                        "{file_date}, but {addresses} still serves the older one valid until "
                        "{served_date} ({days} days left)",
                        "renewed but not bound: the file holds a certificate valid until "
                        "{file_date}, but {addresses} still serve the older one valid until "
                        "{served_date} ({days} days left)",
                        count,
                    ).format(
                        file_date=format_day(file_leaf.not_after),
                        addresses=addresses,
                        served_date=format_day(leaf.not_after),
                        days=left,
                    ),
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
                    ngettext(
                        "{addresses} serves a newer certificate than the file (served valid "
                        "until {served_date}, file until {file_date}): is the file still the one "
                        "the MTA uses?",
                        "{addresses} serve a newer certificate than the file (served valid "
                        "until {served_date}, file until {file_date}): is the file still the one "
                        "the MTA uses?",
                        count,
                    ).format(
                        addresses=addresses,
                        served_date=format_day(leaf.not_after),
                        file_date=format_day(file_leaf.not_after),
                    ),
                    details,
                    group.cause,
                )
            )
    return findings
