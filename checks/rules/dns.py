"""DNS rules: MX, SPF, MTA-STS and TLSA, judged from what the DNS probe saw.

The probe records answers and failures (NXDOMAIN, no answer, SERVFAIL, timeout) as data; these
functions only judge them, so every case is testable with values. SPF and MTA-STS policies are
tiny formats parsed here (RFC 7208 terms, RFC 8461 key/value lines); TLSA matching (RFC 6698,
RFC 7672 for SMTP) needs the chain the MX host served, which the certificate probe observed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from checks.i18n import _
from checks.model import CheckId, Endpoint, EndpointRole, Finding, Severity, TlsMode
from checks.rules.certificates import CertificateFacts
from checks.rules.names import InvalidName, rfc6125_name_matches, to_ascii_domain

EXCHANGE_ONLINE = "exchange-online"
# Exchange Online's inbound hosts: the classic `<tenant>.mail.protection.outlook.com` and the
# DNSSEC/DANE-capable `<tenant>.<id>.mx.microsoft` introduced in 2024.
EXCHANGE_ONLINE_MX_SUFFIXES = ("mail.protection.outlook.com", "mx.microsoft")
EXCHANGE_ONLINE_SPF = "spf.protection.outlook.com"
SPF_LOOKUP_LIMIT = 10


class Outcome(StrEnum):
    """What one DNS question got back; the failure kinds stay distinct on purpose."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NO_ANSWER = "no-answer"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def failed(self) -> bool:
        """The question could not be answered (as opposed to a definite 'nothing there')."""
        return self in (Outcome.SERVFAIL, Outcome.TIMEOUT, Outcome.ERROR)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup:
    """One DNS question and its outcome; `texts` holds TXT strings (joined per record)."""

    name: str
    rdtype: str
    outcome: Outcome
    texts: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MxRecord:
    preference: int
    exchange: str  # A-label, lower case, no trailing dot; "" for the null MX "."


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsaRecord:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MxHostObservation:
    host: str
    a: Lookup
    aaaa: Lookup
    addresses: tuple[str, ...] = ()
    tlsa: Lookup | None = None
    tlsa_records: tuple[TlsaRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MtaStsObservation:
    """The `_mta-sts` TXT answer and, when it announces a policy, the policy fetch."""

    txt: Lookup
    policy_url: str | None = None
    policy_text: str | None = None
    policy_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainDns:
    """Everything the DNS probe saw for one accepted domain."""

    domain: str
    mx: Lookup
    mx_records: tuple[MxRecord, ...] = ()
    hosts: tuple[MxHostObservation, ...] = ()
    # the domain's TXT and those of SPF include/redirect targets, by name
    spf: Mapping[str, Lookup] = field(default_factory=dict)
    mta_sts: MtaStsObservation | None = None

    @property
    def null_mx(self) -> bool:
        return len(self.mx_records) == 1 and self.mx_records[0].exchange == ""


# --------------------------------------------------------------------------- MX


def is_exchange_online_host(host: str) -> bool:
    return any(host.endswith("." + suffix) for suffix in EXCHANGE_ONLINE_MX_SUFFIXES)


def mx_pattern_matches(pattern: str, host: str) -> bool:
    """`[tenant] mx_expected` semantics: `exchange-online`, an exact host or `*.suffix`
    (any depth below the suffix: an operator listing `*.contoso.com` means "our own hosts")."""
    if pattern == EXCHANGE_ONLINE:
        return is_exchange_online_host(host)
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _failure_finding(check: CheckId, subject: str, lookup: Lookup, what: str) -> Finding:
    severity = {
        Outcome.NXDOMAIN: Severity.CRITICAL,
        Outcome.SERVFAIL: Severity.CRITICAL,
        Outcome.TIMEOUT: Severity.WARNING,
    }.get(lookup.outcome, Severity.WARNING)
    text = {
        Outcome.NXDOMAIN: _("{name} does not exist (NXDOMAIN)"),
        Outcome.SERVFAIL: _("no name server could answer for {name} (SERVFAIL)"),
        Outcome.TIMEOUT: _("the {type} lookup of {name} timed out"),
        Outcome.NO_ANSWER: _("{name} has no {type} record"),
    }.get(lookup.outcome, _("the {type} lookup of {name} failed"))
    text = text.format(name=lookup.name, type=lookup.rdtype)
    if lookup.detail and lookup.outcome in (Outcome.ERROR, Outcome.TIMEOUT):
        text = f"{text} ({lookup.detail})"
    return Finding(
        check=check,
        severity=severity,
        subject=subject,
        message=f"{what}: {text}",
        details={"name": lookup.name, "type": lookup.rdtype, "outcome": lookup.outcome.value},
        cause=lookup.outcome.value,
    )


def mx_findings(obs: DomainDns, *, expected: Sequence[str]) -> list[Finding]:
    """The `mx` check of one accepted domain."""
    domain = obs.domain
    if obs.mx.outcome is not Outcome.ANSWER and obs.mx.outcome is not Outcome.NO_ANSWER:
        return [_failure_finding(CheckId.MX, domain, obs.mx, _("MX lookup"))]
    if obs.mx.outcome is Outcome.NO_ANSWER or not obs.mx_records:
        severity = Severity.CRITICAL if expected else Severity.WARNING
        return [
            Finding(
                check=CheckId.MX,
                severity=severity,
                subject=domain,
                message=_(
                    "{domain} has no MX record: senders fall back to its A/AAAA record "
                    "(RFC 5321 implicit MX), so mail for it does not reach Exchange Online"
                ).format(domain=domain),
                details={"expected": list(expected)},
                cause="no-mx",
            )
        ]
    if obs.null_mx:
        return [
            Finding(
                check=CheckId.MX,
                severity=Severity.CRITICAL,
                subject=domain,
                message=_(
                    "{domain} publishes a null MX (RFC 7505): it declares it accepts no mail"
                ).format(domain=domain),
                cause="null-mx",
            )
        ]
    findings: list[Finding] = []
    hosts = {h.host: h for h in obs.hosts}
    names = [r.exchange for r in sorted(obs.mx_records, key=lambda r: (r.preference, r.exchange))]
    unresolved: list[str] = []
    for name in names:
        host = hosts.get(name)
        if host is not None and host.addresses:
            continue
        unresolved.append(name)
        lookups = (host.a, host.aaaa) if host is not None else ()
        failed = [lk for lk in lookups if lk.outcome.failed]
        reason = (
            _("its address lookup failed ({lookups})").format(
                lookups=", ".join(f"{lk.rdtype}: {lk.outcome.value}" for lk in failed)
            )
            if failed
            else _("it has no A or AAAA record")
        )
        findings.append(
            Finding(
                check=CheckId.MX,
                severity=Severity.WARNING,
                subject=domain,
                message=_("MX host {host} of {domain} does not resolve: {reason}").format(
                    host=name, domain=domain, reason=reason
                ),
                details={"host": name},
                cause=f"unresolvable:{name}",
            )
        )
    if unresolved and len(unresolved) == len(names):
        findings = [
            Finding(
                check=CheckId.MX,
                severity=Severity.CRITICAL,
                subject=domain,
                message=_(
                    "no MX host of {domain} resolves ({hosts}): mail cannot be delivered"
                ).format(domain=domain, hosts=", ".join(names)),
                details={"hosts": names},
                cause="unresolvable",
            )
        ]
    if expected:
        wrong = [n for n in names if not any(mx_pattern_matches(p, n) for p in expected)]
        if wrong:
            findings.append(
                Finding(
                    check=CheckId.MX,
                    severity=Severity.CRITICAL,
                    subject=domain,
                    message=_(
                        "MX of {domain} points to {hosts}, not where [tenant] mx_expected says "
                        "({expected})"
                    ).format(domain=domain, hosts=", ".join(wrong), expected=", ".join(expected)),
                    details={"hosts": names, "unexpected": wrong, "expected": list(expected)},
                    cause="unexpected-host",
                )
            )
    if not findings:
        findings.append(
            Finding(
                check=CheckId.MX,
                severity=Severity.OK,
                subject=domain,
                message=_("MX of {domain}: {hosts}").format(domain=domain, hosts=", ".join(names)),
                details={"hosts": names},
            )
        )
    return findings


def mx_endpoints(observations: Iterable[DomainDns], *, port: int = 25) -> tuple[Endpoint, ...]:
    """MX hosts that are not Exchange Online, as scan endpoints (their certificates matter)."""
    seen: dict[str, Endpoint] = {}
    for obs in observations:
        for record in sorted(obs.mx_records, key=lambda r: (r.preference, r.exchange)):
            host = record.exchange
            if not host or is_exchange_online_host(host) or host in seen:
                continue
            seen[host] = Endpoint(
                name=f"mx:{host}", host=host, port=port, tls=TlsMode.STARTTLS, role=EndpointRole.MX
            )
    return tuple(seen.values())


# --------------------------------------------------------------------------- SPF


def spf_records(texts: Iterable[str]) -> list[str]:
    """TXT strings that are SPF records (`v=spf1` followed by a space or the end)."""
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpfTerms:
    includes: tuple[str, ...]
    redirect: str | None
    all_qualifier: str | None


def parse_spf(record: str) -> SpfTerms:
    """The terms relaycheck needs from one SPF record (RFC 7208 section 4.6.1 syntax)."""
    includes: list[str] = []
    redirect: str | None = None
    all_qualifier: str | None = None
    for term in record.split()[1:]:
        lowered = term.lower()
        if lowered.startswith("redirect="):
            redirect = lowered.split("=", 1)[1].rstrip(".")
            continue
        qualifier = lowered[0] if lowered[:1] in ("+", "-", "~", "?") else "+"
        mechanism = lowered[1:] if lowered[:1] in ("+", "-", "~", "?") else lowered
        if mechanism.startswith("include:"):
            includes.append(mechanism.split(":", 1)[1].rstrip("."))
        elif mechanism == "all":
            all_qualifier = qualifier
    return SpfTerms(includes=tuple(includes), redirect=redirect, all_qualifier=all_qualifier)


def spf_targets(texts: Iterable[str]) -> tuple[str, ...]:
    """Names the probe must fetch next to follow this record's includes and redirect."""
    records = spf_records(texts)
    if len(records) != 1:
        return ()
    terms = parse_spf(records[0])
    return (*terms.includes, *((terms.redirect,) if terms.redirect else ()))


def _spf_reaches(
    name: str, lookups: Mapping[str, Lookup], path: tuple[str, ...]
) -> tuple[bool, list[str]]:
    """Does the SPF record of `name` include Exchange Online's, directly or nested?

    Returns (found, names whose record was not observed or unusable)."""
    if name == EXCHANGE_ONLINE_SPF:
        return True, []
    lookup = lookups.get(name)
    if lookup is None or lookup.outcome is not Outcome.ANSWER or name in path:
        return False, [name]
    records = spf_records(lookup.texts)
    if len(records) != 1:
        return False, [name]
    terms = parse_spf(records[0])
    missing: list[str] = []
    for target in (*terms.includes, *((terms.redirect,) if terms.redirect else ())):
        found, gaps = _spf_reaches(target, lookups, (*path, name))
        if found:
            return True, []
        missing.extend(gaps)
    return False, missing


def spf_findings(obs: DomainDns) -> list[Finding]:
    """SPF of an accepted domain must authorise Exchange Online, which sends its mail."""
    domain = obs.domain
    lookup = obs.spf.get(domain)
    if lookup is None:
        return []
    if lookup.outcome.failed or lookup.outcome is Outcome.NXDOMAIN:
        return [_failure_finding(CheckId.DNS, domain, lookup, _("SPF (TXT) lookup"))]
    records = spf_records(lookup.texts)
    if not records:
        return [
            Finding(
                check=CheckId.DNS,
                severity=Severity.WARNING,
                subject=domain,
                message=_(
                    "{domain} has no SPF record; mail relayed through Exchange Online should be "
                    "authorised with include:{spf}"
                ).format(domain=domain, spf=EXCHANGE_ONLINE_SPF),
                cause="spf-missing",
            )
        ]
    if len(records) > 1:
        return [
            Finding(
                check=CheckId.DNS,
                severity=Severity.WARNING,
                subject=domain,
                message=_(
                    "{domain} has {count} SPF records: receivers treat that as a permanent error"
                ).format(domain=domain, count=len(records)),
                details={"records": records},
                cause="spf-multiple",
            )
        ]
    found, gaps = _spf_reaches(domain, obs.spf, ())
    if found:
        return [
            Finding(
                check=CheckId.DNS,
                severity=Severity.OK,
                subject=domain,
                message=_("SPF of {domain} includes {spf}").format(
                    domain=domain, spf=EXCHANGE_ONLINE_SPF
                ),
                details={"record": records[0]},
                cause="spf",
            )
        ]
    unresolved = [g for g in gaps if g != domain]
    note = _(" (could not read: {names})").format(names=", ".join(unresolved)) if unresolved else ""
    return [
        Finding(
            check=CheckId.DNS,
            severity=Severity.WARNING,
            subject=domain,
            message=_(
                "SPF of {domain} does not include {spf}{note}: mail relayed "
                "through Exchange Online may fail SPF at the receiver"
            ).format(domain=domain, spf=EXCHANGE_ONLINE_SPF, note=note),
            details={"record": records[0], "unresolved": unresolved},
            cause="spf-no-exo",
        )
    ]


# --------------------------------------------------------------------------- MTA-STS


class PolicyError(ValueError):
    """An MTA-STS policy that does not follow RFC 8461 section 3.2."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MtaStsPolicy:
    mode: str
    mx: tuple[str, ...]
    max_age: int


def sts_txt_records(texts: Iterable[str]) -> list[str]:
    return [t for t in texts if t.replace(" ", "").lower().startswith("v=stsv1")]


def parse_mta_sts_policy(text: str) -> MtaStsPolicy:
    """Parse `key: value` lines (CRLF or LF); `mx` may repeat; unknown keys are ignored."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PolicyError(_("line {line} is not 'key: value'").format(line=repr(line[:40])))
        values.setdefault(key.strip().lower(), []).append(value.strip())
    if values.get("version") != ["STSv1"]:
        raise PolicyError(_("version is not STSv1"))
    mode = (values.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError(_("mode {mode} is not enforce, testing or none").format(mode=repr(mode)))
    try:
        max_age = int((values.get("max_age") or [""])[0])
    except ValueError:
        raise PolicyError(_("max_age is missing or not a number")) from None
    mx = tuple(m.lower().rstrip(".") for m in values.get("mx", ()))
    if mode != "none" and not mx:
        raise PolicyError(_("no mx pattern"))
    return MtaStsPolicy(mode=mode, mx=mx, max_age=max_age)


def sts_mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 section 4.1: `*.example.com` matches exactly one left-most label."""
    return rfc6125_name_matches(pattern, host)


def mta_sts_findings(obs: DomainDns) -> list[Finding]:
    """MTA-STS: when announced, the policy must be fetchable and list every MX host."""
    sts = obs.mta_sts
    domain = obs.domain
    if sts is None or sts.txt.outcome in (Outcome.NXDOMAIN, Outcome.NO_ANSWER):
        return []
    if sts.txt.outcome is not Outcome.ANSWER:
        return [_failure_finding(CheckId.DNS, domain, sts.txt, _("MTA-STS (_mta-sts TXT) lookup"))]
    if not sts_txt_records(sts.txt.texts):
        return []
    if sts.policy_text is None:
        return [
            Finding(
                check=CheckId.DNS,
                severity=Severity.WARNING,
                subject=domain,
                message=_(
                    "{domain} announces MTA-STS but its policy could not be fetched from "
                    "{url}: {error}"
                ).format(
                    domain=domain, url=sts.policy_url, error=sts.policy_error or _("no policy")
                ),
                details={"url": sts.policy_url},
                cause="mta-sts-fetch",
            )
        ]
    try:
        policy = parse_mta_sts_policy(sts.policy_text)
    except PolicyError as err:
        return [
            Finding(
                check=CheckId.DNS,
                severity=Severity.WARNING,
                subject=domain,
                message=_("MTA-STS policy of {domain} is invalid: {error}").format(
                    domain=domain, error=err
                ),
                details={"url": sts.policy_url},
                cause="mta-sts-invalid",
            )
        ]
    hosts = [r.exchange for r in obs.mx_records if r.exchange]
    outside = [h for h in hosts if not any(sts_mx_matches(p, h) for p in policy.mx)]
    details = {"mode": policy.mode, "mx": list(policy.mx), "hosts": hosts}
    if outside and policy.mode != "none":
        severity = Severity.CRITICAL if policy.mode == "enforce" else Severity.WARNING
        effect = (
            _("senders that enforce MTA-STS will not deliver to them")
            if policy.mode == "enforce"
            else _("in testing mode senders only report it")
        )
        return [
            Finding(
                check=CheckId.DNS,
                severity=severity,
                subject=domain,
                message=_(
                    "MTA-STS policy of {domain} (mode {mode}) does not list MX host(s) "
                    "{hosts}: {effect}"
                ).format(domain=domain, mode=policy.mode, hosts=", ".join(outside), effect=effect),
                details={**details, "unlisted": outside},
                cause="mta-sts-mismatch",
            )
        ]
    return [
        Finding(
            check=CheckId.DNS,
            severity=Severity.OK,
            subject=domain,
            message=_("MTA-STS policy of {domain} (mode {mode}) covers its MX hosts").format(
                domain=domain, mode=policy.mode
            ),
            details=details,
            cause="mta-sts",
        )
    ]


# --------------------------------------------------------------------------- TLSA


class TlsaResult(StrEnum):
    MATCH = "match"
    NO_MATCH = "no-match"
    NO_USABLE = "no-usable-record"
    NO_CHAIN = "no-chain"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsaVerdict:
    result: TlsaResult
    matched: tuple[str, ...] = ()  # the records that matched, as presentation text
    detail: str = ""


def _selected(cert: CertificateFacts, selector: int) -> bytes:
    if selector == 0:
        return cert.der
    spki = x509.load_der_x509_certificate(cert.der).public_key()
    return spki.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _associated(data: bytes, mtype: int) -> bytes | None:
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return None


def tlsa_matches(records: Sequence[TlsaRecord], chain: tuple[CertificateFacts, ...]) -> TlsaVerdict:
    """Match TLSA records against the chain an MX host served (leaf first).

    Usage 3 (DANE-EE) and 1 (PKIX-EE) match the leaf; 2 (DANE-TA) and 0 (PKIX-TA) match a
    certificate above it. PKIX validation of usages 0/1 is the certificate check's business.
    Unknown usages, selectors or matching types are unusable (RFC 7672 section 3.1.3)."""
    if not chain:
        return TlsaVerdict(result=TlsaResult.NO_CHAIN, detail=_("no certificate was observed"))
    usable = [
        r
        for r in records
        if r.usage in (0, 1, 2, 3) and r.selector in (0, 1) and r.mtype in (0, 1, 2)
    ]
    if not usable:
        return TlsaVerdict(result=TlsaResult.NO_USABLE, detail=_("no TLSA record is usable"))
    matched: list[str] = []
    for record in usable:
        candidates = chain[:1] if record.usage in (1, 3) else chain[1:]
        for cert in candidates:
            if _associated(_selected(cert, record.selector), record.mtype) == record.data:
                matched.append(str(record))
                break
    if matched:
        return TlsaVerdict(result=TlsaResult.MATCH, matched=tuple(matched))
    return TlsaVerdict(
        result=TlsaResult.NO_MATCH,
        detail=_("none of {count} usable TLSA record(s) matches").format(count=len(usable)),
    )


def tlsa_findings(
    domain: str, host: MxHostObservation, chain: tuple[CertificateFacts, ...] | None
) -> list[Finding]:
    """The `dns` finding for one MX host's TLSA records against the chain it served.

    `chain` None: the certificate probe did not look at this host (an Exchange Online MX is not
    probed), so only the presence of records is reported."""
    tlsa = host.tlsa
    if tlsa is None or tlsa.outcome in (Outcome.NXDOMAIN, Outcome.NO_ANSWER):
        return []
    subject = host.host
    if tlsa.outcome is not Outcome.ANSWER:
        return [_failure_finding(CheckId.DNS, subject, tlsa, _("TLSA lookup"))]
    records = [str(r) for r in host.tlsa_records]
    if chain is None:
        return [
            Finding(
                check=CheckId.DNS,
                severity=Severity.INFO,
                subject=subject,
                message=_(
                    "{name} has {count} TLSA record(s); the certificate was not probed"
                ).format(name=tlsa.name, count=len(records)),
                details={"domain": domain, "records": records},
                cause="tlsa",
            )
        ]
    verdict = tlsa_matches(host.tlsa_records, chain)
    details = {"domain": domain, "records": records, "result": verdict.result.value}
    if verdict.result is TlsaResult.MATCH:
        return [
            Finding(
                check=CheckId.DNS,
                severity=Severity.OK,
                subject=subject,
                message=_("the certificate of {host} matches its TLSA record(s)").format(
                    host=subject
                ),
                details={**details, "matched": list(verdict.matched)},
                cause="tlsa",
            )
        ]
    return [
        Finding(
            check=CheckId.DNS,
            severity=Severity.CRITICAL,
            subject=subject,
            message=_(
                "the certificate of {host} does not match {name} ({detail}): "
                "DANE-enforcing senders will not deliver to this MX"
            ).format(host=subject, name=tlsa.name, detail=verdict.detail),
            details=details,
            cause="tlsa-mismatch",
        )
    ]


def dns_findings(
    obs: DomainDns, *, chains: Mapping[str, tuple[CertificateFacts, ...]] | None = None
) -> list[Finding]:
    """The `dns` check of one accepted domain: SPF, MTA-STS and TLSA of its MX hosts.

    `chains` maps an MX host to the chain the certificate probe observed there."""
    findings = [*spf_findings(obs), *mta_sts_findings(obs)]
    for host in obs.hosts:
        chain = chains.get(host.host) if chains is not None else None
        findings.extend(tlsa_findings(obs.domain, host, chain))
    return findings


def normalise_host(name: str) -> str:
    """A DNS name as the rules compare it: A-label, lower case, no trailing dot."""
    try:
        return to_ascii_domain(name)
    except InvalidName:
        return name.lower().rstrip(".")
