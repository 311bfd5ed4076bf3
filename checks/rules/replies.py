"""Triage of what Exchange Online answered: an NDR, a queue viewer error, a log excerpt.

During an incident the on-call engineer has a reply in hand, not a sender/recipient pair, and
often a whole bounce with its headers or a log with several different errors. Every distinct
status in the text is explained, in the order it appears, and each answer is headed with the
status *as pasted* (`451 4.4.4 ATTR36` stays `451 4.4.4`; a temporary 4.x.x is never turned into
a permanent 5.x.x), because the code is what the user searches for and what the sender's queue
did with the message (4.x.x: it retries; 5.x.x: it bounced).

Replies are recognised by their tokens (`ATTR36`, `TenantAttribution`, `5.7.64` ...) and never
by whole lines: Microsoft rewords the prose between releases, NDRs wrap it in HTML and write it
in the recipient's language (a Japanese NDR keeps the codes and tokens in ASCII), queue viewers
prefix it with `LastError:`, and Slack escapes `&`, `<` and `>` in whatever was pasted. Inside
one status the entries are tried most specific first (`TenantInboundAttribution` before `5.7.64`
on its own). A known token next to a code relaycheck does not know is explained by the token,
and the answer says that the code itself is unknown instead of swapping in another code.

Each entry names the relaycheck checks that would have caught the cause before mail bounced, so
the answer ends in something to run, not only something to read. The texts follow DOMAIN.md
section 4 and the Microsoft articles cited there; they are English msgids marked with `N_()` and
translated when an answer is built (`checks.i18n`), so one table serves every language.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from checks.errors import RelaycheckError
from checks.i18n import N_, _
from checks.model import CheckId, Scenario

# A whole NDR with headers, or a log excerpt; refused beyond this many bytes (UTF-8).
MAX_INPUT_BYTES = 1024 * 1024
MAX_INPUT_LENGTH = MAX_INPUT_BYTES  # characters never exceed bytes; kept for callers and tests
UNKNOWN_KEY = "unknown-code"


class TriageInputError(RelaycheckError):
    """Text handed to triage that is refused before any matching (too long)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Triage:
    """What one status in the text means and what to do about it.

    `code` is the status as pasted (basic code, enhanced code, and the token that tells replies
    with the same code apart: `451 4.4.4 ATTR36`); `known_as` is the form relaycheck's entry is
    filed under. `permanent` is None when neither the text nor the entry has a status class.
    """

    key: str  # stable short name of the entry: "attr36", "tenant-attribution" ...
    code: str
    reply: str  # the reply as Exchange Online words it today
    meaning: str
    causes: tuple[str, ...]
    fixes: tuple[str, ...]
    check_ids: tuple[CheckId, ...]
    scenarios: tuple[Scenario, ...] = ()
    matched: tuple[str, ...] = ()  # the tokens found in the input, as written there
    also: tuple[str, ...] = ()  # codes of the other statuses in the same input
    note: str | None = None  # a caveat about the entry
    known_as: str = ""
    enhanced: str | None = None  # the enhanced status code in the text, e.g. "4.4.4"
    permanent: bool | None = None
    known_code: bool = True  # False: the text's code is not one this entry is documented with
    hints: tuple[str, ...] = ()  # what this tenant's config and last scan say (triage_context)

    @property
    def status_class(self) -> str | None:
        """`"permanent"` (5.x.x: bounced), `"temporary"` (4.x.x: retried) or None."""
        if self.permanent is None:
            return None
        return "permanent" if self.permanent else "temporary"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "code": self.code,
            "known_as": self.known_as,
            "class": self.status_class,
            "known_code": self.known_code,
            "reply": self.reply,
            "meaning": self.meaning,
            "message": self.meaning,
            "causes": list(self.causes),
            "fixes": list(self.fixes),
            "check_ids": [c.value for c in self.check_ids],
            "scenarios": [s.value for s in self.scenarios],
            "matched": list(self.matched),
            "also": list(self.also),
            "note": self.note,
            "hints": list(self.hints),
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
    codes: tuple[str, ...]  # the enhanced codes this reply is documented with
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
        codes=("5.7.68",),
        triage=Triage(
            key="direct-send-rejected",
            code="550 5.7.68 TenantInboundAttribution",
            reply=(
                "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
                "organization from unauthorized sources"
            ),
            meaning=N_(
                "RejectDirectSend is on and the sending server matched no inbound connector, "
                "so Exchange Online treated the message as unauthorised Direct Send"
            ),
            causes=(
                N_(
                    "the on-prem server or application sends as an accepted domain without "
                    "matching any connector (source IP not in SenderIPAddresses, or its certificate "
                    "does not match TlsSenderCertificateName)"
                ),
                N_("a certificate connector stopped matching after a renewal with other names"),
                N_(
                    "the source IP changed (new NAT, new egress) and the IP connector still lists "
                    "the old one"
                ),
            ),
            fixes=(
                N_("Get-OrganizationConfig | fl RejectDirectSend: confirm it is $true"),
                N_(
                    "Get-InboundConnector | fl Name,Enabled,SenderIPAddresses,TlsSenderCertificateName"
                    ": compare with the server's public IP and its certificate names"
                ),
                N_(
                    "add a Partner or OnPremises connector that matches the sender by certificate "
                    "(preferred) or IP"
                ),
                N_(
                    "run `relaycheck scan --only san-coverage` to compare the certificate with the "
                    "connector"
                ),
            ),
            check_ids=(CheckId.SAN_COVERAGE, CheckId.TLS_HANDSHAKE, CheckId.CERT_CHAIN),
            scenarios=(Scenario.TO_TENANT,),
        ),
    ),
    _Entry(
        tokens=(_word("TenantAttribution"),),
        codes=("5.7.64",),
        triage=Triage(
            key="tenant-attribution",
            code="550 5.7.64 TenantAttribution",
            reply="550 5.7.64 TenantAttribution; Relay Access Denied SMTP",
            meaning=N_(
                "the inbound OnPremises connector no longer matches the submitting server, so "
                "the message is not attributed to the tenant and relay is refused"
            ),
            causes=(
                N_(
                    "the on-prem certificate was renewed or replaced with other names, and the "
                    "connector's TlsSenderCertificateName no longer matches it"
                ),
                N_(
                    "the server sends only its leaf certificate: the chain does not verify "
                    "(CAPI2 800B0109, 'terminated in a root certificate which is not trusted')"
                ),
                N_("the certificate expired, or TLS failed before the certificate was seen"),
                N_("the public IP changed and no longer matches SenderIPAddresses"),
            ),
            fixes=(
                N_("Get-InboundConnector | fl Name,TlsSenderCertificateName,SenderIPAddresses"),
                N_(
                    "Get-ExchangeCertificate | fl Subject,CertificateDomains,NotAfter,Services,"
                    "Status: the certificate bound to SMTP must carry the connector's name"
                ),
                N_(
                    "import the intermediate certificates into LocalMachine\\CA so the full chain "
                    "is sent"
                ),
                N_(
                    "re-run the Hybrid Configuration Wizard and select the new certificate, or set "
                    "TlsSenderCertificateName (e.g. *.contoso.com)"
                ),
                N_("run `relaycheck scan` and look at san-coverage, cert-chain and cert-expiry"),
            ),
            check_ids=(*_CONNECTOR_CERT_CHECKS, CheckId.CERT_CHANGED, CheckId.CERT_NOT_DEPLOYED),
            scenarios=_ALL_RELAYS,
        ),
    ),
    _Entry(
        tokens=(_word("ATTR36"),),
        codes=("5.7.64", "4.4.4"),
        triage=Triage(
            key="attr36",
            code="550 5.7.64 ATTR36",
            reply="550 5.7.64 Relay Access Denied ATTR36",
            meaning=N_(
                "relay refused: no certificate connector whose certificate domain is an "
                "accepted domain matched, and the envelope sender (P1 MAIL FROM) is not an "
                "accepted domain either"
            ),
            causes=(
                N_(
                    "an NDR (MAIL FROM <>) relayed over an IP-only connector: refused since "
                    "November 2023"
                ),
                N_(
                    "a sender domain that is not an accepted domain (application, scanner, "
                    "partner) relayed over an IP-only connector"
                ),
                N_(
                    "an on-prem forward to an external address that keeps the original external "
                    "sender, over an IP-only connector"
                ),
                N_(
                    "a certificate connector whose certificate name is not under an accepted "
                    "domain (the Hybrid Configuration Wizard warns about it)"
                ),
            ),
            fixes=(
                N_(
                    '`relaycheck explain "SENDER -> RECIPIENT"` with the envelope of the refused '
                    "message: it names the scenario and the missing piece"
                ),
                N_(
                    "Get-AcceptedDomain: is the envelope sender's domain (not the From header) listed?"
                ),
                N_(
                    "create a certificate-based OnPremises connector whose TlsSenderCertificateName "
                    "(e.g. *.contoso.com) is, or is a wildcard over, an accepted domain, and make "
                    "the on-prem server present that certificate"
                ),
                N_("or add the sender's domain as an accepted domain"),
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN, CheckId.SAN_COVERAGE),
            scenarios=_RELAY_SCENARIOS,
            note=N_(
                "'451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36' is the form "
                "Microsoft's 2016 notice (KB 3169958) quoted; Exchange Online answers "
                "'550 5.7.64 Relay Access Denied ATTR36' today. Both mean the same refusal."
            ),
        ),
    ),
    _Entry(
        tokens=(_word("ATTR35"), _code("4.4.62")),
        codes=("4.4.62",),
        triage=Triage(
            key="wrong-region",
            code="451 4.4.62 ATTR35",
            reply="451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35",
            meaning=N_(
                "deferred: Exchange Online could not attribute the message to a tenant, "
                "because the smart host is wrong or no inbound connector matched for an "
                "external recipient"
            ),
            causes=(
                N_(
                    "the smart host is a legacy name (mail.messaging.microsoft.com, "
                    "mail.global.frontbridge.com) or an IP address"
                ),
                N_("mail for external recipients is sent without a matching inbound connector"),
                N_(
                    "MX of an accepted domain points somewhere other than "
                    "<tenant>.mail.protection.outlook.com"
                ),
            ),
            fixes=(
                N_("Get-SendConnector | fl SmartHosts: use <tenant>.mail.protection.outlook.com"),
                N_("Get-InboundConnector: a connector must match this server by certificate or IP"),
                N_("run `relaycheck scan --only mx` for the MX records of the accepted domains"),
            ),
            check_ids=(CheckId.MX, CheckId.SAN_COVERAGE, CheckId.ENDPOINT_UNREACHABLE),
            scenarios=_ALL_RELAYS,
        ),
    ),
    _Entry(
        tokens=(_code("5.7.750"), r"unregistered\s+domains?"),
        codes=("5.7.750",),
        triage=Triage(
            key="unregistered-domains",
            code="550 5.7.750",
            reply=(
                "550 5.7.750 Service unavailable. Client blocked from sending from "
                "unregistered domains"
            ),
            meaning=N_(
                "the tenant is blocked after a large volume of mail from sender domains that "
                "are not accepted domains"
            ),
            causes=(
                N_("applications or devices relaying as domains the tenant does not own"),
                N_("a compromised on-prem server or a rogue connector relaying spam"),
            ),
            fixes=(
                N_("add the legitimate sender domains as accepted domains"),
                N_(
                    "use a certificate-based connector whose certificate domain is an accepted "
                    "and validated domain"
                ),
                N_("Get-InboundConnector: look for connectors nobody can explain"),
                N_("run `relaycheck scan --only accepted-domain` against [tenant] sender_domains"),
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN, CheckId.SAN_COVERAGE),
            scenarios=(Scenario.UNREGISTERED_SENDER,),
        ),
    ),
    _Entry(
        tokens=(r"STARTTLS\s+is\s+required",),
        codes=("5.7.3",),
        triage=Triage(
            key="starttls-required",
            code="451 5.7.3",
            reply=(
                "450 4.4.317 Cannot connect to remote server [Message=451 5.7.3 STARTTLS is "
                "required to send mail]"
            ),
            meaning=N_(
                "the receiving server wanted TLS but did not offer STARTTLS, usually because "
                "its receive connector names a certificate that is gone"
            ),
            causes=(
                N_(
                    "a new certificate was installed and the old one removed, leaving the receive "
                    "connector's TlsCertificateName stale (event 12014)"
                ),
                N_("the new certificate is not enabled for the SMTP service"),
            ),
            fixes=(
                N_(
                    "Enable-ExchangeCertificate <thumbprint> -Services SMTP (answer No to "
                    "replacing the default certificate)"
                ),
                N_(
                    "clear or set the receive connector's TlsCertificateName, then re-run the "
                    "Hybrid Configuration Wizard"
                ),
                N_("run `relaycheck scan --only starttls-missing` against the endpoint"),
            ),
            check_ids=(CheckId.STARTTLS_MISSING, CheckId.CERT_NOT_DEPLOYED, CheckId.CERT_CHANGED),
        ),
    ),
    _Entry(
        tokens=(_word("UntrustedRoot"), _code("4.4.317")),
        codes=("4.4.317",),
        triage=Triage(
            key="untrusted-root",
            code="450 4.4.317",
            reply="450 4.4.317 Cannot connect to remote server [Message=UntrustedRoot]",
            meaning=N_(
                "Exchange Online could not verify the on-prem server's certificate chain: the "
                "server sent only its leaf, and Exchange Online does not fetch intermediates"
            ),
            causes=(
                N_("the intermediate certificates are not installed on the on-prem server"),
                N_(
                    "a self-signed or private-CA certificate on the endpoint Exchange Online "
                    "connects to"
                ),
            ),
            fixes=(
                N_(
                    "import the intermediates into LocalMachine\\CA (Windows) or append them to "
                    "the served chain file (Postfix smtpd_tls_chain_files)"
                ),
                N_("run `relaycheck scan --only cert-chain`: it names the missing intermediate"),
            ),
            check_ids=(CheckId.CERT_CHAIN, CheckId.TLS_HANDSHAKE),
            note=N_("if the [Message=...] part names another error, that error is the real cause"),
        ),
    ),
    _Entry(
        tokens=(
            r"(?<!\d)454[\s-]+4\.7\.5(?!\.?\d)",
            r"TlsCertificateName\s+of\s+the\s+Send\s*Connector",
            _word("NoCredentials"),
        ),
        codes=("4.7.5",),
        triage=Triage(
            key="send-connector-certificate",
            code="454 4.7.5",
            reply=(
                "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector "
                "could not be found"
            ),
            meaning=N_(
                "the on-prem Exchange send connector names a certificate (<I>issuer<S>subject) "
                "that is no longer in the store or cannot be used"
            ),
            causes=(
                N_(
                    "the certificate was renewed with another issuer or subject and the old one "
                    "removed"
                ),
                N_(
                    "the certificate is not enabled for SMTP, or its private key is not accessible "
                    "(TLS negotiation failed with error NoCredentials)"
                ),
                N_("the certificate is expired or its status is RevocationCheckFailure"),
            ),
            fixes=(
                N_(
                    "Get-ExchangeCertificate | fl Thumbprint,Issuer,Subject,Services,Status,NotAfter"
                ),
                N_(
                    "$c = Get-ExchangeCertificate <thumbprint>; Set-SendConnector <name> "
                    "-TlsCertificateName ('<I>'+$c.Issuer+'<S>'+$c.Subject)"
                ),
                N_(
                    "run `relaycheck scan --only cert-changed` (and cert-not-deployed) to see "
                    "what changed"
                ),
            ),
            check_ids=(CheckId.CERT_CHANGED, CheckId.CERT_NOT_DEPLOYED, CheckId.CERT_EXPIRY),
        ),
    ),
    _Entry(
        tokens=(_code("4.7.230"), _code("5.7.230")),
        codes=("4.7.230", "5.7.230"),
        triage=Triage(
            key="out-of-date-exchange",
            code="450 4.7.230 / 550 5.7.230",
            reply=(
                "450 4.7.230 Connecting Exchange server version is out-of-date; connection to "
                "Exchange Online throttled"
            ),
            meaning=N_(
                "Transport-based Enforcement: the on-prem Exchange server is below the patch "
                "level Exchange Online requires, first throttled (4.7.230), then blocked "
                "(5.7.230)"
            ),
            causes=(
                N_("the on-prem Exchange server misses a supported cumulative or security update"),
            ),
            fixes=(
                N_("install the current CU and SU on every server that sends to Exchange Online"),
                N_("Get-OnPremServerReportInfo lists the servers Exchange Online sees"),
                N_(
                    "for time to patch: New-TenantExemptionInfo -BlockingScenario "
                    "UnpatchedOnPremServer -NumberOfDays 90"
                ),
            ),
            check_ids=(),
            note=N_("relaycheck does not check Exchange versions; no check catches this one"),
        ),
    ),
    _Entry(
        tokens=(_code("5.7.705"),),
        codes=("5.7.705",),
        triage=Triage(
            key="tenant-threshold",
            code="5.7.705",
            reply="5.7.705 Access denied, tenant has exceeded threshold",
            meaning=N_(
                "Exchange Online stopped accepting mail from the tenant: too much spam or bulk "
                "mail was sent through it"
            ),
            causes=(
                N_("a compromised on-prem server or account relaying spam through the connector"),
                N_("a connector created by an attacker with a compromised admin account"),
            ),
            fixes=(
                N_(
                    "Get-InboundConnector: look for connectors nobody created, and for wide "
                    "SenderIPAddresses ranges"
                ),
                N_(
                    "find and stop the source of the volume in message trace, then open a case "
                    "with Microsoft support to lift the block"
                ),
            ),
            check_ids=(),
            note=N_("a volume block; no relaycheck check catches it"),
        ),
    ),
    _Entry(
        tokens=(_code("5.7.708"),),
        codes=("5.7.708",),
        triage=Triage(
            key="ip-not-accepted",
            code="550 5.7.708",
            reply="550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP",
            meaning=N_(
                "the sending IP has a low reputation (typical of new or trial tenants), so "
                "Exchange Online refuses it"
            ),
            causes=(
                N_("mail relayed from a new tenant or a new egress IP with no reputation yet"),
            ),
            fixes=(
                N_(
                    "relay from an IP with a sending history, or open a case with Microsoft support"
                ),
            ),
            check_ids=(),
            note=N_("an IP reputation block; no relaycheck check catches it"),
        ),
    ),
    _Entry(
        tokens=(_word("ATTR34"), _code("5.4.14")),
        codes=("5.4.14",),
        triage=Triage(
            key="mail-loop",
            code="554 5.4.14 ATTR34",
            reply="554 5.4.14 Hop count exceeded - possible mail loop ATTR34",
            meaning=N_("the message went round in a loop between on-prem and Exchange Online"),
            causes=(
                N_(
                    "an outbound connector to on-prem and an on-prem route back to Exchange Online "
                    "for the same domain (often an InternalRelay domain whose recipients exist "
                    "nowhere)"
                ),
                N_("a forwarding rule that points back at the original mailbox"),
            ),
            fixes=(
                N_("Get-AcceptedDomain | fl DomainName,DomainType: check InternalRelay domains"),
                N_(
                    "Get-OutboundConnector | fl Name,RecipientDomains,SmartHosts, and the on-prem "
                    "send connector's address space for the same domain"
                ),
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN,),
        ),
    ),
    _Entry(
        tokens=(_code("4.7.66"), r"TLS\s*1\.0\s+and\s+1\.1\s+are\s+not\s+supported"),
        codes=("4.7.66",),
        triage=Triage(
            key="legacy-tls",
            code="421 4.7.66",
            reply="421 4.7.66 TLS 1.0 and 1.1 are not supported",
            meaning=N_("the client negotiated TLS 1.0 or 1.1; Exchange Online requires TLS 1.2"),
            causes=(
                N_(
                    "an old OS or SMTP stack (Windows Server without TLS 1.2 enabled for "
                    ".NET/SChannel, an old device or application)"
                ),
            ),
            fixes=(
                N_(
                    "enable TLS 1.2 (SChannel and .NET SchUseStrongCrypto on Windows) or update "
                    "the device's firmware"
                ),
                N_("run `relaycheck scan --only tls-handshake` (cert-weak reports TLS below 1.2)"),
            ),
            check_ids=(CheckId.TLS_HANDSHAKE, CheckId.CERT_WEAK),
        ),
    ),
    _Entry(
        tokens=(_code("5.7.64"), r"Relay\s+Access\s+Denied"),
        codes=("5.7.64",),
        triage=Triage(
            key="relay-access-denied",
            code="550 5.7.64",
            reply="550 5.7.64 Relay Access Denied",
            meaning=N_(
                "relay refused; the rest of the reply says which kind: ATTR36 (no connector or "
                "sender domain qualifies) or TenantAttribution (the connector no longer matches)"
            ),
            causes=(
                N_(
                    "ATTR36: an NDR, a foreign sender domain or a forward relayed over an IP-only "
                    "connector"
                ),
                N_("TenantAttribution: the certificate or IP changed, or the chain is not sent"),
            ),
            fixes=(
                N_(
                    "paste the whole reply line (with ATTR36 or TenantAttribution) for a precise "
                    "answer"
                ),
                N_('`relaycheck explain "SENDER -> RECIPIENT"` with the refused envelope'),
                N_(
                    "run `relaycheck scan` and look at accepted-domain, san-coverage and cert-chain"
                ),
            ),
            check_ids=(CheckId.ACCEPTED_DOMAIN, *_CONNECTOR_CERT_CHECKS),
            scenarios=_ALL_RELAYS,
        ),
    ),
)


KNOWN_CODES: tuple[str, ...] = tuple(e.triage.code for e in _ENTRIES)
ENTRY_KEYS: tuple[str, ...] = tuple(e.triage.key for e in _ENTRIES)

# A status: optional basic code (`550 `, `550-`), then an enhanced code of class 4 or 5.
_STATUS = re.compile(
    r"(?<![A-Za-z0-9.])(?:(?P<basic>[45]\d\d)(?:[ \t]*-[ \t]*|[ \t]+))?"
    r"(?P<enhanced>[45]\.\d{1,3}\.\d{1,3})(?!\.?\d)"
)
_SEGMENT_CHARS = 500  # a status's own words follow it closely; a blank line ends them sooner
_WRAPPER = re.compile(r"\[\s*Message\s*=\s*$", re.IGNORECASE)
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def _unescape(text: str) -> str:
    # Slack escapes exactly these three in pasted text; `&amp;` last so `&amp;lt;` stays `&lt;`.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _check_size(text: str) -> None:
    # a lone surrogate (from a broken paste or file) counts as the replacement it will print as
    size = len(text) if len(text) > MAX_INPUT_BYTES else len(text.encode("utf-8", errors="replace"))
    if size > MAX_INPUT_BYTES:
        raise TriageInputError(
            f"the text is too long ({size} bytes; at most {MAX_INPUT_BYTES}, 1 MB): "
            "pass the bounce or the log excerpt, not a whole mailbox or log file"
        )


@dataclass(slots=True)
class _Found:
    start: int
    basic: str | None
    enhanced: str | None
    entry: _Entry | None
    tokens: list[str]
    words: bool  # a token other than the status's own code matched


def _match(segment: str, enhanced: str | None) -> tuple[_Entry | None, list[str], bool]:
    """The most specific entry whose tokens are in `segment`; code-only matches come last."""
    fallback: tuple[_Entry, list[str]] | None = None
    for entry in _ENTRIES:
        tokens = list(dict.fromkeys(m.group(0) for m in entry.pattern.finditer(segment)))
        if not tokens:
            continue
        words = [t for t in tokens if enhanced is None or t.lower() != enhanced.lower()]
        if words:
            return entry, tokens, True
        if fallback is None:
            fallback = (entry, tokens)
    if fallback is not None:
        return fallback[0], fallback[1], False
    return None, [], False


def _segments(text: str) -> list[_Found]:
    statuses = list(_STATUS.finditer(text))
    found: list[_Found] = []
    covered: list[tuple[int, int]] = []
    for index, match in enumerate(statuses):
        nxt = statuses[index + 1].start() if index + 1 < len(statuses) else len(text)
        end = min(nxt, match.start() + _SEGMENT_CHARS)
        blank = text.find("\n\n", match.end(), end)
        if blank >= 0:
            end = blank
        segment = text[match.start() : end]
        covered.append((match.start(), end))
        entry, tokens, words = _match(segment, match.group("enhanced"))
        # `450 4.4.317 Cannot connect [Message=451 5.7.3 ...]`: the inner reply is the cause
        if not words and end == nxt and _WRAPPER.search(segment):
            continue
        found.append(
            _Found(
                match.start(), match.group("basic"), match.group("enhanced"), entry, tokens, words
            )
        )
    # tokens outside every status (`[Message=UntrustedRoot]`, `ATTR36` on its own)
    outside = list(text)
    for start, end in covered:
        outside[start:end] = " " * (end - start)
    rest = "".join(outside)
    for entry in _ENTRIES:
        matches = list(entry.pattern.finditer(rest))
        if matches:
            tokens = list(dict.fromkeys(m.group(0) for m in matches))
            found.append(_Found(matches[0].start(), None, None, entry, tokens, True))
    found.sort(key=lambda f: f.start)
    return found


def _merge(found: list[_Found]) -> list[_Found]:
    """One answer per distinct status: repeats of a code (the DSN's `Status: 5.7.64`, Postfix's
    `dsn=4.4.62` before its `said: 451 4.4.62 ...`) fold into the status they repeat."""
    merged: list[_Found] = []
    for item in found:
        same = next(
            (
                m
                for m in merged
                if (item.enhanced is not None and m.enhanced == item.enhanced)
                and (
                    m.entry is item.entry
                    or m.entry is None
                    or item.entry is None
                    or not item.words
                    or not m.words
                )
            ),
            None,
        )
        if same is None and item.enhanced is None:
            same = next((m for m in merged if m.entry is item.entry), None)
        if same is None:
            merged.append(item)
            continue
        if same.basic is None:
            same.basic = item.basic
        if item.entry is not None and (same.entry is None or (item.words and not same.words)):
            same.entry, same.words = item.entry, item.words
        same.tokens = list(dict.fromkeys([*same.tokens, *item.tokens]))
    return merged


def _label(item: _Found) -> str | None:
    """The token that tells replies with one code apart (ATTR36, TenantAttribution)."""
    for token in item.tokens:
        if _LABEL.fullmatch(token) and (item.enhanced is None or token != item.enhanced):
            return token
    return None


def _class_of(code: str | None) -> bool | None:
    return None if not code else code.strip()[0] == "5"


def _localised(entry: _Entry) -> Triage:
    t = entry.triage
    return replace(
        t,
        meaning=_(t.meaning),
        causes=tuple(_(c) for c in t.causes),
        fixes=tuple(_(f) for f in t.fixes),
        note=_(t.note) if t.note else None,
        known_as=t.code,
    )


def _answer(item: _Found) -> Triage:
    pasted = " ".join(p for p in (item.basic, item.enhanced) if p)
    label = _label(item)
    code = " ".join(p for p in (pasted, label) if p) or ", ".join(item.tokens)
    if item.entry is None:
        return Triage(
            key=UNKNOWN_KEY,
            code=code,
            reply="",
            meaning=_(
                "code {code} is not one relaycheck knows, and nothing next to it is either"
            ).format(code=pasted),
            causes=(),
            fixes=(
                _("search Microsoft's NDR reference for the enhanced code {code}").format(
                    code=item.enhanced or pasted
                ),
            ),
            check_ids=(),
            matched=tuple(item.tokens),
            enhanced=item.enhanced,
            permanent=_class_of(item.enhanced or item.basic),
            known_code=False,
        )
    base = _localised(item.entry)
    known = item.enhanced is None or item.enhanced in item.entry.codes
    meaning = base.meaning
    if not known:
        meaning = _(
            "code {code} is not one relaycheck knows; the token {token} usually means {meaning}"
        ).format(code=item.enhanced, token=label or item.tokens[0], meaning=base.meaning)
    return replace(
        base,
        code=code,
        meaning=meaning,
        matched=tuple(item.tokens),
        enhanced=item.enhanced,
        permanent=(
            _class_of(item.enhanced or item.basic)
            if (item.enhanced or item.basic)
            else _canonical_class(item.entry)
        ),
        known_code=known,
    )


def _canonical_class(entry: _Entry) -> bool | None:
    match = _STATUS.search(entry.triage.reply) or _STATUS.search(entry.triage.code)
    return _class_of(match.group("enhanced")) if match else None


def triage_all(text: str) -> tuple[Triage, ...]:
    """Every distinct status in `text`, in order of appearance; () when nothing is recognised.

    Statuses relaycheck does not know (a basic and an enhanced code, nothing else known next to
    them) are included as `unknown-code` answers when something else in the text is known, so a
    log with two errors never hides one. Raises TriageInputError above MAX_INPUT_BYTES.
    """
    _check_size(text)
    cleaned = unicodedata.normalize("NFKC", _unescape(text))
    found = _merge(_segments(cleaned))
    kept = [f for f in found if f.entry is not None or f.basic is not None]
    if not any(f.entry is not None for f in kept):
        return ()
    answers = [_answer(f) for f in kept]
    codes = [a.code for a in answers]
    return tuple(
        replace(a, also=tuple(c for j, c in enumerate(codes) if j != i))
        for i, a in enumerate(answers)
    )


def triage(text: str) -> Triage | None:
    """The first recognised status in `text` (the others in `also`), or None.

    Raises TriageInputError for input longer than MAX_INPUT_BYTES, before matching anything.
    """
    answers = triage_all(text)
    return next((a for a in answers if a.key != UNKNOWN_KEY), None)
