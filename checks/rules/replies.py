"""Triage of what Exchange Online answered: an NDR line, a queue viewer error, a protocol log line.

During an incident the on-call engineer has a reply in hand, not a sender/recipient pair. The
replies are recognised by their tokens (`ATTR36`, `TenantAttribution`, `5.7.64` ...) and never
by whole lines: Microsoft rewords the prose between releases, NDRs wrap it in HTML, queue viewers
prefix it with `LastError:`, and Slack escapes `&`, `<` and `>` in whatever was pasted. The
entries are tried most specific first (`TenantInboundAttribution` before `5.7.64` on its own),
so the first one whose token appears is the answer; any other replies in the same paste are
listed in `also`. Each entry names the relaycheck checks that would have caught the cause before
mail bounced, so the answer ends in something to run, not only something to read.

The texts follow DOMAIN.md section 4 and the Microsoft articles cited there; where a code is
documented only by a seed brief (`451 4.4.4 ... ATTR36`), the entry says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from checks.errors import RelaycheckError
from checks.model import CheckId, Scenario

# A pasted NDR with its diagnostic block fits easily; a whole message trace does not belong here.
MAX_INPUT_LENGTH = 4000


class TriageInputError(RelaycheckError):
    """Text handed to triage that is refused before any matching (too long to be one reply)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Triage:
    """What a recognised Exchange Online reply means and what to do about it."""

    key: str  # stable short name of the entry: "attr36", "tenant-attribution" ...
    code: str  # the reply code as people search for it, e.g. "550 5.7.64 ATTR36"
    reply: str  # the reply as Exchange Online words it today
    meaning: str
    causes: tuple[str, ...]
    fixes: tuple[str, ...]
    check_ids: tuple[CheckId, ...]
    scenarios: tuple[Scenario, ...] = ()
    matched: tuple[str, ...] = ()  # the tokens found in the input, as written there
    also: tuple[str, ...] = ()  # codes of other recognised replies in the same input
    note: str | None = None  # a caveat about the source of the entry

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "code": self.code,
            "reply": self.reply,
            "meaning": self.meaning,
            "causes": list(self.causes),
            "fixes": list(self.fixes),
            "check_ids": [c.value for c in self.check_ids],
            "scenarios": [s.value for s in self.scenarios],
            "matched": list(self.matched),
            "also": list(self.also),
            "note": self.note,
        }


def _code(text: str) -> str:
    """An enhanced status code as a token: `5.7.64` but not `5.7.640`, `15.7.64` or `5.7.64.1`."""
    return r"(?<![A-Za-z0-9.])" + re.escape(text) + r"(?!\.?\d)"


def _word(text: str) -> str:
    return r"(?<![A-Za-z0-9])" + re.escape(text) + r"(?![A-Za-z0-9])"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    triage: Triage
    tokens: tuple[str, ...]  # regular expressions, matched case-insensitively
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        joined = "|".join(f"(?:{t})" for t in self.tokens)
        object.__setattr__(self, "pattern", re.compile(joined, re.IGNORECASE))


_CONNECTOR_CERT_CHECKS = (
    CheckId.SAN_COVERAGE,
    CheckId.CERT_CHAIN,
    CheckId.CERT_EXPIRY,
    CheckId.TLS_HANDSHAKE,
)
# the scenarios that need a certificate connector (ATTR36), and every relay (no connector at all)
_RELAY_SCENARIOS = (Scenario.NDR, Scenario.UNREGISTERED_SENDER, Scenario.FORWARDING)
_ALL_RELAYS = (Scenario.ACCEPTED_SENDER, *_RELAY_SCENARIOS)

_ENTRIES: tuple[_Entry, ...] = (
    _Entry(
        tokens=(_word("TenantInboundAttribution"), _code("5.7.68")),
        triage=Triage(
            key="direct-send-rejected",
            code="550 5.7.68 TenantInboundAttribution",
            reply=(
                "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
                "organization from unauthorized sources"
            ),
            meaning=(
                "RejectDirectSend is on and the sending server matched no inbound connector, "
                "so Exchange Online treated the message as unauthorised Direct Send"
            ),
            causes=(
                "the on-prem server or application sends as an accepted domain without "
                "matching any connector (source IP not in SenderIPAddresses, or its certificate "
                "does not match TlsSenderCertificateName)",
                "a certificate connector stopped matching after a renewal with other names",
                "the source IP changed (new NAT, new egress) and the IP connector still lists "
                "the old one",
            ),
            fixes=(
                "Get-OrganizationConfig | fl RejectDirectSend: confirm it is $true",
                "Get-InboundConnector | fl Name,Enabled,SenderIPAddresses,TlsSenderCertificateName"
                ": compare with the server's public IP and its certificate names",
                "add a Partner or OnPremises connector that matches the sender by certificate "
                "(preferred) or IP",
                "run `relaycheck scan --only san-coverage` to compare the certificate with the "
                "connector",
            ),
            check_ids=(CheckId.SAN_COVERAGE, CheckId.TLS_HANDSHAKE, CheckId.CERT_CHAIN),
            scenarios=(Scenario.TO_TENANT,),
        ),
    ),
    _Entry(
        tokens=(_word("TenantAttribution"),),
        triage=Triage(
            key="tenant-attribution",
            code="550 5.7.64 TenantAttribution",
            reply="550 5.7.64 TenantAttribution; Relay Access Denied SMTP",
            meaning=(
                "the inbound OnPremises connector no longer matches the submitting server, so "
                "the message is not attributed to the tenant and relay is refused"
            ),
            causes=(
                "the on-prem certificate was renewed or replaced with other names, and the "
                "connector's TlsSenderCertificateName no longer matches it",
                "the server sends only its leaf certificate: the chain does not verify "
                "(CAPI2 800B0109, 'terminated in a root certificate which is not trusted')",
                "the certificate expired, or TLS failed before the certificate was seen",
                "the public IP changed and no longer matches SenderIPAddresses",
            ),
            fixes=(
                "Get-InboundConnector | fl Name,TlsSenderCertificateName,SenderIPAddresses",
                "Get-ExchangeCertificate | fl Subject,CertificateDomains,NotAfter,Services,"
                "Status: the certificate bound to SMTP must carry the connector's name",
                "import the intermediate certificates into LocalMachine\\CA so the full chain "
                "is sent",
                "re-run the Hybrid Configuration Wizard and select the new certificate, or set "
                "TlsSenderCertificateName (e.g. *.contoso.com)",
                "run `relaycheck scan` and look at san-coverage, cert-chain and cert-expiry",
            ),
            check_ids=(*_CONNECTOR_CERT_CHECKS, CheckId.CERT_CHANGED, CheckId.CERT_NOT_DEPLOYED),
            scenarios=_ALL_RELAYS,
        ),
    ),
    _Entry(
        tokens=(_word("ATTR36"),),
        triage=Triage(
            key="attr36",
            code="550 5.7.64 ATTR36",
            reply="550 5.7.64 Relay Access Denied ATTR36",
            meaning=(
                "relay refused: no certificate connector whose certificate domain is an "
                "accepted domain matched, and the envelope sender (P1 MAIL FROM) is not an "
                "accepted domain either"
            ),
            causes=(
                "an NDR (MAIL FROM <>) relayed over an IP-only connector: refused since "
                "November 2023",
                "a sender domain that is not an accepted domain (application, scanner, "
                "partner) relayed over an IP-only connector",
                "an on-prem forward to an external address that keeps the original external "
                "sender, over an IP-only connector",
                "a certificate connector whose certificate name is not under an accepted "
                "domain (the Hybrid Configuration Wizard warns about it)",
            ),
            fixes=(
                '`relaycheck explain "SENDER -> RECIPIENT"` with the envelope of the refused '
                "message: it names the scenario and the missing piece",
                "Get-AcceptedDomain: is the envelope sender's domain (not the From header) listed?",
                "create a certificate-based OnPremises connector whose TlsSenderCertificateName "
                "(e.g. *.contoso.com) is, or is a wildcard over, an accepted domain, and make "
                "the on-prem server present that certificate",
                "or add the sender's domain as an accepted domain",
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN, CheckId.SAN_COVERAGE),
            scenarios=_RELAY_SCENARIOS,
            note=(
                "'451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36' comes from "
                "a seed brief and was not found in Microsoft's documentation"
            ),
        ),
    ),
    _Entry(
        tokens=(_word("ATTR35"), _code("4.4.62")),
        triage=Triage(
            key="wrong-region",
            code="451 4.4.62 ATTR35",
            reply="451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35",
            meaning=(
                "deferred: Exchange Online could not attribute the message to a tenant, "
                "because the smart host is wrong or no inbound connector matched for an "
                "external recipient"
            ),
            causes=(
                "the smart host is a legacy name (mail.messaging.microsoft.com, "
                "mail.global.frontbridge.com) or an IP address",
                "mail for external recipients is sent without a matching inbound connector",
                "MX of an accepted domain points somewhere other than "
                "<tenant>.mail.protection.outlook.com",
            ),
            fixes=(
                "Get-SendConnector | fl SmartHosts: use <tenant>.mail.protection.outlook.com",
                "Get-InboundConnector: a connector must match this server by certificate or IP",
                "run `relaycheck scan --only mx` for the MX records of the accepted domains",
            ),
            check_ids=(CheckId.MX, CheckId.SAN_COVERAGE, CheckId.ENDPOINT_UNREACHABLE),
            scenarios=_ALL_RELAYS,
        ),
    ),
    _Entry(
        tokens=(_code("5.7.750"), r"unregistered\s+domains?"),
        triage=Triage(
            key="unregistered-domains",
            code="550 5.7.750",
            reply=(
                "550 5.7.750 Service unavailable. Client blocked from sending from "
                "unregistered domains"
            ),
            meaning=(
                "the tenant is blocked after a large volume of mail from sender domains that "
                "are not accepted domains"
            ),
            causes=(
                "applications or devices relaying as domains the tenant does not own",
                "a compromised on-prem server or a rogue connector relaying spam",
            ),
            fixes=(
                "add the legitimate sender domains as accepted domains",
                "use a certificate-based connector whose certificate domain is an accepted "
                "and validated domain",
                "Get-InboundConnector: look for connectors nobody can explain",
                "run `relaycheck scan --only accepted-domain` against [tenant] sender_domains",
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN, CheckId.SAN_COVERAGE),
            scenarios=(Scenario.UNREGISTERED_SENDER,),
        ),
    ),
    _Entry(
        tokens=(r"STARTTLS\s+is\s+required",),
        triage=Triage(
            key="starttls-required",
            code="451 5.7.3",
            reply=(
                "450 4.4.317 Cannot connect to remote server [Message=451 5.7.3 STARTTLS is "
                "required to send mail]"
            ),
            meaning=(
                "the receiving server wanted TLS but did not offer STARTTLS, usually because "
                "its receive connector names a certificate that is gone"
            ),
            causes=(
                "a new certificate was installed and the old one removed, leaving the receive "
                "connector's TlsCertificateName stale (event 12014)",
                "the new certificate is not enabled for the SMTP service",
            ),
            fixes=(
                "Enable-ExchangeCertificate <thumbprint> -Services SMTP (answer No to "
                "replacing the default certificate)",
                "clear or set the receive connector's TlsCertificateName, then re-run the "
                "Hybrid Configuration Wizard",
                "run `relaycheck scan --only starttls-missing` against the endpoint",
            ),
            check_ids=(CheckId.STARTTLS_MISSING, CheckId.CERT_NOT_DEPLOYED, CheckId.CERT_CHANGED),
        ),
    ),
    _Entry(
        tokens=(_word("UntrustedRoot"), _code("4.4.317")),
        triage=Triage(
            key="untrusted-root",
            code="450 4.4.317",
            reply="450 4.4.317 Cannot connect to remote server [Message=UntrustedRoot]",
            meaning=(
                "Exchange Online could not verify the on-prem server's certificate chain: the "
                "server sent only its leaf, and Exchange Online does not fetch intermediates"
            ),
            causes=(
                "the intermediate certificates are not installed on the on-prem server",
                "a self-signed or private-CA certificate on the endpoint Exchange Online "
                "connects to",
            ),
            fixes=(
                "import the intermediates into LocalMachine\\CA (Windows) or append them to "
                "the served chain file (Postfix smtpd_tls_chain_files)",
                "run `relaycheck scan --only cert-chain`: it names the missing intermediate",
            ),
            check_ids=(CheckId.CERT_CHAIN, CheckId.TLS_HANDSHAKE),
            note="if the [Message=...] part names another error, that error is the real cause",
        ),
    ),
    _Entry(
        tokens=(
            r"(?<!\d)454[\s-]+4\.7\.5(?!\.?\d)",
            r"TlsCertificateName\s+of\s+the\s+Send\s*Connector",
            _word("NoCredentials"),
        ),
        triage=Triage(
            key="send-connector-certificate",
            code="454 4.7.5",
            reply=(
                "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector "
                "could not be found"
            ),
            meaning=(
                "the on-prem Exchange send connector names a certificate (<I>issuer<S>subject) "
                "that is no longer in the store or cannot be used"
            ),
            causes=(
                "the certificate was renewed with another issuer or subject and the old one "
                "removed",
                "the certificate is not enabled for SMTP, or its private key is not accessible "
                "(TLS negotiation failed with error NoCredentials)",
                "the certificate is expired or its status is RevocationCheckFailure",
            ),
            fixes=(
                "Get-ExchangeCertificate | fl Thumbprint,Issuer,Subject,Services,Status,NotAfter",
                "$c = Get-ExchangeCertificate <thumbprint>; Set-SendConnector <name> "
                "-TlsCertificateName ('<I>'+$c.Issuer+'<S>'+$c.Subject)",
                "run `relaycheck scan --only cert-changed` (and cert-not-deployed) to see "
                "what changed",
            ),
            check_ids=(CheckId.CERT_CHANGED, CheckId.CERT_NOT_DEPLOYED, CheckId.CERT_EXPIRY),
        ),
    ),
    _Entry(
        tokens=(_code("4.7.230"), _code("5.7.230")),
        triage=Triage(
            key="out-of-date-exchange",
            code="450 4.7.230 / 550 5.7.230",
            reply=(
                "450 4.7.230 Connecting Exchange server version is out-of-date; connection to "
                "Exchange Online throttled"
            ),
            meaning=(
                "Transport-based Enforcement: the on-prem Exchange server is below the patch "
                "level Exchange Online requires, first throttled (4.7.230), then blocked "
                "(5.7.230)"
            ),
            causes=(
                "the on-prem Exchange server misses a supported cumulative or security update",
            ),
            fixes=(
                "install the current CU and SU on every server that sends to Exchange Online",
                "Get-OnPremServerReportInfo lists the servers Exchange Online sees",
                "for time to patch: New-TenantExemptionInfo -BlockingScenario "
                "UnpatchedOnPremServer -NumberOfDays 90",
            ),
            check_ids=(),
            note="relaycheck does not check Exchange versions; no check catches this one",
        ),
    ),
    _Entry(
        tokens=(_code("5.7.705"),),
        triage=Triage(
            key="tenant-threshold",
            code="5.7.705",
            reply="5.7.705 Access denied, tenant has exceeded threshold",
            meaning=(
                "Exchange Online stopped accepting mail from the tenant: too much spam or bulk "
                "mail was sent through it"
            ),
            causes=(
                "a compromised on-prem server or account relaying spam through the connector",
                "a connector created by an attacker with a compromised admin account",
            ),
            fixes=(
                "Get-InboundConnector: look for connectors nobody created, and for wide "
                "SenderIPAddresses ranges",
                "find and stop the source of the volume in message trace, then open a case "
                "with Microsoft support to lift the block",
            ),
            check_ids=(),
            note="a volume block; no relaycheck check catches it",
        ),
    ),
    _Entry(
        tokens=(_code("5.7.708"),),
        triage=Triage(
            key="ip-not-accepted",
            code="550 5.7.708",
            reply="550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP",
            meaning=(
                "the sending IP has a low reputation (typical of new or trial tenants), so "
                "Exchange Online refuses it"
            ),
            causes=("mail relayed from a new tenant or a new egress IP with no reputation yet",),
            fixes=(
                "relay from an IP with a sending history, or open a case with Microsoft support",
            ),
            check_ids=(),
            note="an IP reputation block; no relaycheck check catches it",
        ),
    ),
    _Entry(
        tokens=(_word("ATTR34"), _code("5.4.14")),
        triage=Triage(
            key="mail-loop",
            code="554 5.4.14 ATTR34",
            reply="554 5.4.14 Hop count exceeded - possible mail loop ATTR34",
            meaning="the message went round in a loop between on-prem and Exchange Online",
            causes=(
                "an outbound connector to on-prem and an on-prem route back to Exchange Online "
                "for the same domain (often an InternalRelay domain whose recipients exist "
                "nowhere)",
                "a forwarding rule that points back at the original mailbox",
            ),
            fixes=(
                "Get-AcceptedDomain | fl DomainName,DomainType: check InternalRelay domains",
                "Get-OutboundConnector | fl Name,RecipientDomains,SmartHosts, and the on-prem "
                "send connector's address space for the same domain",
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN,),
        ),
    ),
    _Entry(
        tokens=(_code("4.7.66"), r"TLS\s*1\.0\s+and\s+1\.1\s+are\s+not\s+supported"),
        triage=Triage(
            key="legacy-tls",
            code="421 4.7.66",
            reply="421 4.7.66 TLS 1.0 and 1.1 are not supported",
            meaning="the client negotiated TLS 1.0 or 1.1; Exchange Online requires TLS 1.2",
            causes=(
                "an old OS or SMTP stack (Windows Server without TLS 1.2 enabled for "
                ".NET/SChannel, an old device or application)",
            ),
            fixes=(
                "enable TLS 1.2 (SChannel and .NET SchUseStrongCrypto on Windows) or update "
                "the device's firmware",
                "run `relaycheck scan --only tls-handshake` (cert-weak reports TLS below 1.2)",
            ),
            check_ids=(CheckId.TLS_HANDSHAKE, CheckId.CERT_WEAK),
        ),
    ),
    _Entry(
        tokens=(_code("5.7.64"), r"Relay\s+Access\s+Denied"),
        triage=Triage(
            key="relay-access-denied",
            code="550 5.7.64",
            reply="550 5.7.64 Relay Access Denied",
            meaning=(
                "relay refused; the rest of the reply says which kind: ATTR36 (no connector or "
                "sender domain qualifies) or TenantAttribution (the connector no longer matches)"
            ),
            causes=(
                "ATTR36: an NDR, a foreign sender domain or a forward relayed over an IP-only "
                "connector",
                "TenantAttribution: the certificate or IP changed, or the chain is not sent",
            ),
            fixes=(
                "paste the whole reply line (with ATTR36 or TenantAttribution) for a precise "
                "answer",
                '`relaycheck explain "SENDER -> RECIPIENT"` with the refused envelope',
                "run `relaycheck scan` and look at accepted-domain, san-coverage and cert-chain",
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN, *_CONNECTOR_CERT_CHECKS),
            scenarios=_ALL_RELAYS,
        ),
    ),
)

KNOWN_CODES: tuple[str, ...] = tuple(e.triage.code for e in _ENTRIES)


def _unescape(text: str) -> str:
    # Slack escapes exactly these three in pasted text; `&amp;` last so `&amp;lt;` stays `&lt;`.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def triage(text: str) -> Triage | None:
    """The most specific recognised reply in `text`, or None when no token is known.

    Raises TriageInputError for input longer than MAX_INPUT_LENGTH, before matching anything.
    """
    if len(text) > MAX_INPUT_LENGTH:
        raise TriageInputError(
            f"the text is too long ({len(text)} characters; at most {MAX_INPUT_LENGTH}): "
            "paste the reply line, not the whole message"
        )
    cleaned = _unescape(text)
    found: list[tuple[_Entry, tuple[str, ...]]] = []
    for entry in _ENTRIES:
        tokens = tuple(dict.fromkeys(m.group(0) for m in entry.pattern.finditer(cleaned)))
        if tokens:
            found.append((entry, tokens))
    if not found:
        return None
    (best, matched), rest = found[0], found[1:]
    # the generic 5.7.64 entry is a fallback: when anything more specific matched, it adds nothing
    also = tuple(e.triage.code for e, _ in rest if e.triage.key != "relay-access-denied")
    return replace(best.triage, matched=matched, also=also)
