"""Names for people of the closed sets relaycheck reports on: check ids and triage statuses.

The ids stay English and stable (scripts and runbook anchors use them); these titles are what a
message shows beside an id, in the current language (`checks.i18n`). A test walks every id of
`CheckId` and every triage entry, in every language, so a new id without a title fails there.
"""

from __future__ import annotations

from checks.i18n import N_, _
from checks.model import CheckId

CHECK_TITLES: dict[CheckId, str] = {
    CheckId.CERT_EXPIRY: N_("certificate expiry"),
    CheckId.CERT_NOT_YET_VALID: N_("certificate not yet valid"),
    CheckId.CERT_CHAIN: N_("certificate chain"),
    CheckId.SAN_COVERAGE: N_("connector name covered by the certificate"),
    CheckId.CERT_HOSTNAME: N_("host name covered by the certificate"),
    CheckId.CERT_WEAK: N_("weak key, signature or TLS version"),
    CheckId.CERT_NOT_DEPLOYED: N_("renewed certificate not deployed"),
    CheckId.CERT_EKU: N_("certificate without TLS client authentication (clientAuth)"),
    CheckId.CERT_CHANGED: N_("served certificate changed"),
    CheckId.CERT_SOURCE: N_("connector certificate not observed"),
    CheckId.CERT_REVOKED: N_("certificate revoked (OCSP, CRL)"),
    CheckId.ENDPOINT_UNREACHABLE: N_("endpoint unreachable"),
    CheckId.STARTTLS_MISSING: N_("STARTTLS not offered"),
    CheckId.TLS_HANDSHAKE: N_("TLS handshake failed"),
    CheckId.ACCEPTED_DOMAIN: N_("accepted domains"),
    CheckId.TENANT_SOURCE: N_("tenant source unusable"),
    CheckId.MX: N_("MX records"),
    CheckId.DNS: N_("SPF, MTA-STS and TLSA"),
    CheckId.RELAY_SCENARIO: N_("relay scenarios the tenant relies on"),
    CheckId.RELAYCHECK: N_("a check failed inside relaycheck"),
}

# the triage entries of checks.rules.replies, by key
TRIAGE_TITLES: dict[str, str] = {
    "direct-send-rejected": N_("Direct Send rejected (RejectDirectSend)"),
    "tenant-attribution": N_("connector no longer matches (TenantAttribution)"),
    "attr36": N_("relay refused for the sender domain (ATTR36)"),
    "wrong-region": N_("message not attributed to a tenant (ATTR35)"),
    "unregistered-domains": N_("blocked for sending from unregistered domains"),
    "starttls-required": N_("STARTTLS required but not offered"),
    "untrusted-root": N_("certificate chain not trusted (UntrustedRoot)"),
    "send-connector-certificate": N_("send connector certificate not found"),
    "out-of-date-exchange": N_("on-premises Exchange out of date"),
    "tenant-threshold": N_("tenant exceeded its sending threshold"),
    "ip-not-accepted": N_("sending IP not accepted"),
    "mail-loop": N_("mail loop (ATTR34)"),
    "legacy-tls": N_("TLS 1.0/1.1 not supported"),
    "relay-access-denied": N_("relay access denied"),
    "unknown-code": N_("a status code relaycheck does not know"),
}


def check_title(check: CheckId) -> str:
    """What the check judges, in the current language (the id itself when it has no title)."""
    title = CHECK_TITLES.get(check)
    return _(title) if title else check.value


def triage_title(key: str) -> str:
    """What a triage status is, in the current language (the key itself when unknown)."""
    title = TRIAGE_TITLES.get(key)
    return _(title) if title else key
