"""Revocation (`cert-revoked`): what to ask, and what the answers mean. Pure, `now` passed in.

A CA that revoked a certificate says so through OCSP (the responder named in the certificate's
Authority Information Access) or a CRL (its CRL Distribution Points). The probe
(`checks.probes.revocation`) only fetches bytes; this module builds the OCSP request with
cryptography's builder, and judges each answer: a response counts only when its signature
verifies (by the issuer, or by a responder certificate the issuer delegated OCSP signing to),
it is about this very certificate, and it is current. An answer that fails any of these is
"unavailable", never "good".

Severity (`[revocation] soft_fail`, default true, as browsers do): revoked is critical, an
unknown status a warning, a responder that could not be asked (or gave no usable answer) info;
with `soft_fail = false` an unusable responder is critical.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from checks.i18n import _, format_moment
from checks.model import CheckId, Finding, RevocationSettings, Severity
from checks.rules.certificates import CertificateFacts, facts_from_x509

# clocks differ: a response "produced" a little in the future is still fine
CLOCK_SKEW = timedelta(minutes=5)


class RevocationStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # the responder does not know the certificate
    UNAVAILABLE = "unavailable"  # no usable answer: unreachable, malformed, unsigned, stale
    NOT_CHECKED = "not-checked"  # the certificate names no OCSP responder and no CRL


class Method(StrEnum):
    STAPLED = "ocsp-stapled"
    OCSP = "ocsp"
    CRL = "crl"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationTarget:
    """One sent certificate to ask about, with its issuer and where to ask."""

    index: int  # position in the sent chain (0 = leaf)
    cert: CertificateFacts
    issuer: CertificateFacts
    ocsp_urls: tuple[str, ...]
    crl_urls: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationEvidence:
    """What the probe fetched for one target: response bytes, or why there are none."""

    target: RevocationTarget
    method: Method
    url: str | None = None
    response: bytes | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationResult:
    index: int
    subject: str
    serial: str
    method: Method
    status: RevocationStatus
    detail: str
    url: str | None = None
    revoked_at: datetime | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "element": self.index + 1,
            "subject": self.subject,
            "serial": self.serial,
            "method": self.method.value,
            "status": self.status.value,
            "detail": self.detail,
            "url": self.url,
            "revoked_at": self.revoked_at.isoformat().replace("+00:00", "Z")
            if self.revoked_at
            else None,
            "reason": self.reason,
        }


def _load(facts: CertificateFacts) -> x509.Certificate:
    return x509.load_der_x509_certificate(facts.der)


def _http_urls(names: Sequence[x509.GeneralName]) -> tuple[str, ...]:
    return tuple(
        n.value
        for n in names
        if isinstance(n, x509.UniformResourceIdentifier)
        and n.value.lower().startswith(("http://", "https://"))
    )


def responder_urls(facts: CertificateFacts) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(OCSP responder URLs, CRL URLs) the certificate names; http(s) only (LDAP is not asked)."""
    cert = _load(facts)
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp_urls = _http_urls(
            [
                d.access_location
                for d in aia
                if d.access_method == AuthorityInformationAccessOID.OCSP
            ]
        )
    except (x509.ExtensionNotFound, ValueError):
        ocsp_urls = ()
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        crl_urls = tuple(url for point in points for url in _http_urls(list(point.full_name or ())))
    except (x509.ExtensionNotFound, ValueError):
        crl_urls = ()
    return ocsp_urls, crl_urls


def revocation_targets(
    chain: Sequence[CertificateFacts], anchors: Mapping[x509.Name, x509.Certificate]
) -> tuple[RevocationTarget, ...]:
    """Every sent certificate whose issuer is known (sent too, or a trust anchor, keyed by
    subject `x509.Name`: hashing those is ~50x cheaper than RFC 4514 strings of a system store
    of 150 roots); roots are never asked about (nobody revokes a root by OCSP)."""
    targets = []
    for index, cert in enumerate(chain):
        if cert.self_issued:
            continue
        issuer = next(
            (c for c in chain if c.subject == cert.issuer and c is not cert and c.is_ca), None
        )
        if issuer is None:
            anchor = anchors.get(_load(cert).issuer)
            if anchor is None:
                continue  # the chain check reports the missing issuer; nothing to ask with
            issuer = facts_from_x509(anchor)
        ocsp_urls, crl_urls = responder_urls(cert)
        targets.append(
            RevocationTarget(
                index=index, cert=cert, issuer=issuer, ocsp_urls=ocsp_urls, crl_urls=crl_urls
            )
        )
    return tuple(targets)


def ocsp_request(target: RevocationTarget) -> bytes:
    """The DER OCSP request for one certificate (SHA-1 CertID: what every responder reads)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        _load(target.cert),
        _load(target.issuer),
        hashes.SHA1(),  # noqa: S303 - RFC 5019 CertIDs use SHA-1; it identifies, it does not sign
    )
    return builder.build().public_bytes(Encoding.DER)


def _signature_ok(
    key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _responder_key(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> list[Any]:
    """Keys allowed to sign this response: the issuer's, and any responder certificate in the
    response that the issuer signed and delegated OCSP signing to (RFC 6960 4.2.2.2)."""
    keys: list[Any] = [issuer.public_key()]
    for delegate in response.certificates:
        try:
            eku = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku or delegate.issuer != issuer.subject:
            continue
        if _signature_ok(
            issuer.public_key(),
            delegate.signature,
            delegate.tbs_certificate_bytes,
            delegate.signature_hash_algorithm,
        ):
            keys.append(delegate.public_key())
    return keys


def _result(
    target: RevocationTarget, method: Method, status: RevocationStatus, detail: str, **extra: Any
) -> RevocationResult:
    return RevocationResult(
        index=target.index,
        subject=target.cert.subject,
        serial=target.cert.serial,
        method=method,
        status=status,
        detail=detail,
        **extra,
    )


def judge_ocsp(
    target: RevocationTarget, response_der: bytes, *, now: datetime, method: Method, url: str | None
) -> RevocationResult:
    """What one OCSP response says about the target, if it can be believed."""

    def unusable(why: str) -> RevocationResult:
        return _result(target, method, RevocationStatus.UNAVAILABLE, why, url=url)

    try:
        response = ocsp.load_der_ocsp_response(response_der)
    except ValueError:
        return unusable(_("the OCSP answer is not an OCSP response"))
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return unusable(
            _("the responder answered {status}").format(status=response.response_status.name)
        )
    cert = _load(target.cert)
    issuer = _load(target.issuer)
    single = next(
        (s for s in response.responses if s.serial_number == cert.serial_number),
        None,
    )
    if single is None:
        return unusable(_("the OCSP response is about another certificate"))
    if not any(
        _signature_ok(
            key, response.signature, response.tbs_response_bytes, response.signature_hash_algorithm
        )
        for key in _responder_key(response, issuer)
    ):
        return unusable(_("the OCSP response's signature does not verify against the issuer"))
    # the CertID must name this issuer (same serial from another CA is another certificate)
    expected = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, single.hash_algorithm)
    request = expected.build()
    if (request.issuer_key_hash, request.issuer_name_hash) != (
        single.issuer_key_hash,
        single.issuer_name_hash,
    ):
        return unusable(_("the OCSP response names another issuer"))
    if single.this_update_utc > now + CLOCK_SKEW:
        return unusable(
            _("the OCSP response is dated in the future ({moment})").format(
                moment=format_moment(single.this_update_utc)
            )
        )
    if single.next_update_utc is not None and single.next_update_utc < now - CLOCK_SKEW:
        return unusable(
            _("the OCSP response is stale (next update was {moment})").format(
                moment=format_moment(single.next_update_utc)
            )
        )
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason.value if single.revocation_reason else None
        revoked_at = single.revocation_time_utc
        return _result(
            target,
            method,
            RevocationStatus.REVOKED,
            _("revoked on {moment}").format(moment=format_moment(revoked_at))
            if revoked_at
            else _("revoked"),
            url=url,
            revoked_at=revoked_at,
            reason=reason,
        )
    if status is ocsp.OCSPCertStatus.UNKNOWN:
        return _result(
            target, method, RevocationStatus.UNKNOWN, _("the responder does not know it"), url=url
        )
    return _result(target, method, RevocationStatus.GOOD, _("good"), url=url)


def judge_crl(
    target: RevocationTarget, crl_bytes: bytes, *, now: datetime, url: str | None
) -> RevocationResult:
    """What one CRL says about the target, if it can be believed."""

    def unusable(why: str) -> RevocationResult:
        return _result(target, Method.CRL, RevocationStatus.UNAVAILABLE, why, url=url)

    try:
        if crl_bytes.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(crl_bytes)
        else:
            crl = x509.load_der_x509_crl(crl_bytes)
    except ValueError:
        return unusable(_("the CRL could not be parsed"))
    issuer = _load(target.issuer)
    if crl.issuer != issuer.subject:
        return unusable(_("the CRL is issued by another CA"))
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, UnsupportedAlgorithm, ValueError):
        signed = False
    if not signed:
        return unusable(_("the CRL's signature does not verify against the issuer"))
    if crl.next_update_utc is not None and crl.next_update_utc < now - CLOCK_SKEW:
        return unusable(
            _("the CRL is stale (next update was {moment})").format(
                moment=format_moment(crl.next_update_utc)
            )
        )
    entry = crl.get_revoked_certificate_by_serial_number(_load(target.cert).serial_number)
    if entry is None:
        return _result(target, Method.CRL, RevocationStatus.GOOD, _("not on the CRL"), url=url)
    reason: str | None = None
    with contextlib.suppress(x509.ExtensionNotFound):
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    return _result(
        target,
        Method.CRL,
        RevocationStatus.REVOKED,
        _("revoked on {moment} (on the CRL)").format(
            moment=format_moment(entry.revocation_date_utc)
        ),
        url=url,
        revoked_at=entry.revocation_date_utc,
        reason=reason,
    )


def judge_evidence(evidence: RevocationEvidence, *, now: datetime) -> RevocationResult:
    target = evidence.target
    if evidence.method is Method.NONE:
        return _result(
            target,
            Method.NONE,
            RevocationStatus.NOT_CHECKED,
            _("names no OCSP responder and no CRL"),
        )
    if evidence.response is None:
        return _result(
            target,
            evidence.method,
            RevocationStatus.UNAVAILABLE,
            evidence.error or _("no answer"),
            url=evidence.url,
        )
    if evidence.method is Method.CRL:
        return judge_crl(target, evidence.response, now=now, url=evidence.url)
    return judge_ocsp(target, evidence.response, now=now, method=evidence.method, url=evidence.url)


_SEVERITY = {
    RevocationStatus.GOOD: Severity.OK,
    RevocationStatus.NOT_CHECKED: Severity.OK,
    RevocationStatus.REVOKED: Severity.CRITICAL,
    RevocationStatus.UNKNOWN: Severity.WARNING,
}


def _what(result: RevocationResult) -> str:
    return (
        _("certificate")
        if result.index == 0
        else _("intermediate {subject}").format(subject=result.subject)
    )


def check_revocation(
    subject: str,
    evidence: Sequence[RevocationEvidence],
    *,
    now: datetime,
    settings: RevocationSettings,
    cause: str,
    details: dict[str, Any],
    leaf_label: str,
) -> Finding:
    """One `cert-revoked` finding per served chain, as bad as its worst element."""
    results = [judge_evidence(e, now=now) for e in evidence]
    unreachable = Severity.INFO if settings.soft_fail else Severity.CRITICAL

    def severity(result: RevocationResult) -> Severity:
        return _SEVERITY.get(result.status, unreachable)

    info = {**details, "revocation": [r.to_json() for r in results]}
    problems = [r for r in results if severity(r) > Severity.OK]
    if problems:
        worst = max(severity(r) for r in problems)
        parts = []
        for r in sorted(problems, key=severity, reverse=True):
            who = _("certificate {name}").format(name=leaf_label) if r.index == 0 else _what(r)
            where = f" ({r.method.value} {r.url})" if r.url else f" ({r.method.value})"
            if r.status is RevocationStatus.REVOKED:
                text = _("{what} is REVOKED: {detail}").format(what=who, detail=r.detail)
                if r.reason:
                    text += _(", reason {reason}").format(reason=r.reason)
                text += where + _("; replace it now, peers that check revocation refuse it")
            elif r.status is RevocationStatus.UNKNOWN:
                text = _("{what}: the OCSP responder does not know this certificate{where}").format(
                    what=who, where=where
                )
            else:
                text = _("{what}: revocation could not be checked: {detail}{where}").format(
                    what=who, detail=r.detail, where=where
                )
                if settings.soft_fail:
                    text += _(" (soft fail: [revocation] soft_fail = true)")
            parts.append(text)
        return Finding(
            check=CheckId.CERT_REVOKED,
            severity=worst,
            subject=subject,
            message="; ".join(parts),
            details=info,
            cause=cause,
        )
    checked = [r for r in results if r.status is RevocationStatus.GOOD]
    if not checked:
        message = _(
            "certificate {name}: no OCSP responder or CRL named, revocation not checked"
        ).format(name=leaf_label)
    else:
        how = ", ".join(sorted({r.method.value for r in checked}))
        message = _("certificate {name}: not revoked ({count} checked by {how})").format(
            name=leaf_label, count=len(checked), how=how
        )
    return Finding(
        check=CheckId.CERT_REVOKED,
        severity=Severity.OK,
        subject=subject,
        message=message,
        details=info,
        cause=cause,
    )
