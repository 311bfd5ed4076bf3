"""Plain data shared by every layer: configuration targets, findings and their vocabularies.

Everything here is frozen, slotted and keyword-only so that values can be passed between the
pure rules, the probes and the bot without anyone mutating what another layer relies on. Closed
sets (severities, check ids, scenario ids) are enums whose values are the public contract: users
script against them (`--only cert-expiry`, JSON `"scenario": "ndr"`), so values never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from checks.i18n import N_, Language, _


class Severity(StrEnum):
    """How bad a finding is; ordered so that `max()` over findings gives the worst."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    # Ranks are looked up by the member's string value: an Enum member hashes in Python
    # (`hash(self._name_)`), and `max()` over thousands of findings compares this often.
    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self._value_]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _SEVERITY_RANK[self._value_] < _SEVERITY_RANK[other._value_]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _SEVERITY_RANK[self._value_] <= _SEVERITY_RANK[other._value_]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _SEVERITY_RANK[self._value_] > _SEVERITY_RANK[other._value_]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _SEVERITY_RANK[self._value_] >= _SEVERITY_RANK[other._value_]


_SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}


class CheckId(StrEnum):
    """Stable identifiers of checks; each finding carries exactly one."""

    CERT_EXPIRY = "cert-expiry"
    CERT_NOT_YET_VALID = "cert-not-yet-valid"
    CERT_CHAIN = "cert-chain"
    SAN_COVERAGE = "san-coverage"
    CERT_HOSTNAME = "cert-hostname"
    CERT_WEAK = "cert-weak"
    CERT_NOT_DEPLOYED = "cert-not-deployed"
    CERT_EKU = "cert-eku"
    CERT_CHANGED = "cert-changed"
    CERT_SOURCE = "cert-source"
    CERT_REVOKED = "cert-revoked"
    ENDPOINT_UNREACHABLE = "endpoint-unreachable"
    STARTTLS_MISSING = "starttls-missing"
    TLS_HANDSHAKE = "tls-handshake"
    ACCEPTED_DOMAIN = "accepted-domain"
    TENANT_SOURCE = "tenant-source"
    MX = "mx"
    DNS = "dns"
    RELAY_SCENARIO = "relay-scenario"
    RELAYCHECK = "relaycheck"


class Scenario(StrEnum):
    """The relay scenarios of KB 3169958 plus the two unrestricted cases."""

    TO_TENANT = "to-tenant"
    ACCEPTED_SENDER = "accepted-sender"
    NDR = "ndr"
    UNREGISTERED_SENDER = "unregistered-sender"
    FORWARDING = "forwarding"

    @property
    def title(self) -> str:  # type: ignore[override]  # a name for people, not str.title()
        return _(_SCENARIO_TITLES[self])

    @property
    def needs_certificate_connector(self) -> bool:
        return self in (Scenario.NDR, Scenario.UNREGISTERED_SENDER, Scenario.FORWARDING)


# the relay scenarios a tenant can rely on (`[tenant] relay_scenarios`); to-tenant is no relay
RELAY_SCENARIOS = (
    Scenario.ACCEPTED_SENDER,
    Scenario.NDR,
    Scenario.FORWARDING,
    Scenario.UNREGISTERED_SENDER,
)


_SCENARIO_TITLES = {
    Scenario.TO_TENANT: N_("Delivery into the tenant (not a relay)"),
    Scenario.ACCEPTED_SENDER: N_("Outbound relay from an accepted sender domain"),
    Scenario.NDR: N_("Non-delivery report (NDR) to an internet sender"),
    Scenario.UNREGISTERED_SENDER: N_("Sender domain that is not an accepted domain"),
    Scenario.FORWARDING: N_("On-premises forward to an external address"),
}


class ConnectorType(StrEnum):
    ON_PREMISES = "OnPremises"
    PARTNER = "Partner"


class TlsMode(StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


class EndpointRole(StrEnum):
    SMARTHOST = "smarthost"
    MX = "mx"
    SUBMISSION = "submission"


class SlackMode(StrEnum):
    SOCKET = "socket"
    HTTP = "http"


class LogFormat(StrEnum):
    """How `serve` writes its log lines: `key=value` pairs (default) or one JSON object each."""

    KEYVALUE = "keyvalue"
    JSON = "json"


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedDomain:
    """An accepted domain of the tenant, stored as its IDNA (A-label) lower-case form."""

    name: str
    domain_type: str | None = None  # Authoritative / InternalRelay; None when the source has none
    default: bool = False
    match_subdomains: bool = False
    source: str = "config"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateSource:
    """Where a connector's certificate is observed: a configured endpoint or a file."""

    endpoint: str | None = None
    file: Path | None = None
    password_env: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Connector:
    """An inbound connector as Exchange Online knows it (from config or Get-InboundConnector)."""

    name: str
    type: ConnectorType = ConnectorType.ON_PREMISES
    enabled: bool = True
    tls_sender_certificate_name: str | None = None
    sender_ip_addresses: tuple[str, ...] = ()
    certificate: CertificateSource | None = None
    associated_accepted_domains: tuple[str, ...] = ()
    source: str = "config"

    @property
    def certificate_based(self) -> bool:
        return bool(self.tls_sender_certificate_name)

    @property
    def ip_based(self) -> bool:
        return bool(self.sender_ip_addresses)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """An SMTP listener to probe: an on-prem smart host, an MX host or a submission port."""

    name: str
    host: str
    address: str | None = None
    port: int = 25
    tls: TlsMode = TlsMode.STARTTLS
    role: EndpointRole = EndpointRole.SMARTHOST


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """An on-prem forwarding rule: mail to `mailbox` is forwarded to `to`."""

    mailbox: str
    to: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    name: str
    accepted_domains: tuple[AcceptedDomain, ...] = ()
    accepted_domains_file: Path | None = None
    connectors_file: Path | None = None
    sender_domains: tuple[str, ...] = ()
    # the relay scenarios judged by `relay-scenario` on every scan (forwarding and
    # unregistered-sender only where [[forwards]] / sender_domains give them something to judge)
    relay_scenarios: tuple[Scenario, ...] = RELAY_SCENARIOS
    # "exchange-online" or host patterns such as "mx*.contoso.com"; empty: not checked
    mx_expected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    warning_days: int = 30
    critical_days: int = 7
    # a leaf valid longer than this is a cert-weak warning (public CAs: at most 398 days)
    max_validity_days: int = 398


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationSettings:
    """`[revocation]`: OCSP (stapled, then the AIA responder) or the CRL of every sent
    certificate. `soft_fail`: an unreachable responder is info (true) or critical (false)."""

    enabled: bool = True
    timeout_seconds: float = 5.0
    soft_fail: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSettings:
    timeout_seconds: float = 10.0
    greeting_timeout_seconds: float = 30.0
    deadline_seconds: float = 60.0
    concurrency: int = 20
    ehlo_name: str = "relaycheck.invalid"
    max_reply_bytes: int = 65536
    # MX hosts found in DNS are probed on this port (25; labs and tests move it)
    mx_port: int = 25
    # one more handshake per address offering only the other key type (RSA / ECDSA), so a
    # server holding two certificates shows both
    every_key_type: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsSettings:
    # false: no DNS checks and no MX discovery. Parsing sets it true when the config has a
    # [dns] section or [tenant] mx_expected (see checks.config), false otherwise.
    enabled: bool = True
    nameservers: tuple[str, ...] = ()  # empty: the system resolver's
    port: int = 53
    timeout_seconds: float = 5.0
    # the MTA-STS policy host's HTTPS port (443; labs and tests move it)
    mta_sts_port: int = 443


@dataclass(frozen=True, slots=True, kw_only=True)
class Microsoft365Settings:
    """App-only Graph access; secrets come from the environment variables named here."""

    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str = "RELAYCHECK_M365_CLIENT_SECRET"  # noqa: S105 - a variable name
    client_certificate_env: str = "RELAYCHECK_M365_CLIENT_CERTIFICATE"
    graph_url: str = "https://graph.microsoft.com/"
    login_url: str = "https://login.microsoftonline.com/"
    timeout_seconds: float = 20.0

    @property
    def enabled(self) -> bool:
        return bool(self.tenant_id and self.client_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackSettings:
    mode: SlackMode = SlackMode.SOCKET
    port: int = 3000
    # http mode's bind address: Slack's request URL must reach it, so all interfaces by default
    host: str = "0.0.0.0"  # noqa: S104
    alerts_channel: str | None = None
    api_url: str = "https://slack.com/api/"
    allowed_channels: tuple[str, ...] = ()  # channel ids, or names resolved to ids at start
    allowed_users: tuple[str, ...] = ()  # user ids; empty: anyone (see README, access policy)
    probe_allowed_domains: tuple[str, ...] = ()
    allow_private_targets: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSettings:
    timezone: str = "UTC"
    certificates: str = "0 */6 * * *"
    domains: str = "15 7 * * *"
    digest: str = "0 9 * * MON"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """The health and metrics listener of `serve`: off unless `metrics_port` is set.

    Loopback by default: /metrics names the tenant's hosts and certificates, so exposing it
    beyond the machine (a container, a scrape from another host) is a decision, not a default.
    `metrics_port = 0` takes a free port (the ready line and the log say which)."""

    host: str = "127.0.0.1"
    metrics_port: int | None = None

    @property
    def enabled(self) -> bool:
        return self.metrics_port is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    format: LogFormat = LogFormat.KEYVALUE
    level: str = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSettings:
    """Where the state lives: an sqlite file (`path`, the default) or a database `url`.

    `url` (PostgreSQL) may omit the password: `RELAYCHECK_STATE_URL`/`_FILE` in the
    environment then supply the whole URL, and a URL is only ever shown with `***`."""

    path: Path = Path("relaycheck.sqlite3")
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HaSettings:
    """Leadership among replicas sharing one PostgreSQL store: the lease's length, and this
    replica's name (default `$RELAYCHECK_REPLICA`, else host name and process id)."""

    lease_seconds: float = 30.0
    replica: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    runbook_url: str | None = None
    expiry_steps: tuple[int, ...] = (30, 14, 7, 3, 1)
    flap_runs: int = 3
    digest_days: int = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class LocaleSettings:
    """`[locale]`: the language of channel alerts, the digest and answers without a user locale.

    None: not configured (English for Slack; the CLI then follows LC_ALL/LC_MESSAGES/LANG)."""

    language: Language | None = None

    @property
    def effective(self) -> Language:
        return self.language or Language.EN


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPolicy:
    """Per-check policy (`[checks]`): checks a team has decided not to run, and severities it
    has decided to read differently (a `cert-eku` warning it accepted as `info`, say)."""

    disabled: frozenset[CheckId] = frozenset()
    severity: Mapping[CheckId, Severity] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole validated configuration; `source` is the file it came from, if any."""

    source: Path | None
    tenant: Tenant
    connectors: tuple[Connector, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    forwards: tuple[Forward, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    trust: Trust = field(default_factory=Trust)
    revocation: RevocationSettings = field(default_factory=RevocationSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    microsoft365: Microsoft365Settings = field(default_factory=Microsoft365Settings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    state: StateSettings = field(default_factory=StateSettings)
    ha: HaSettings = field(default_factory=HaSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    locale: LocaleSettings = field(default_factory=LocaleSettings)
    checks: CheckPolicy = field(default_factory=CheckPolicy)
    server: ServerSettings = field(default_factory=ServerSettings)
    log: LogSettings = field(default_factory=LogSettings)

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """What a rule concluded about one subject.

    `cause` distinguishes findings of the same check about the same subject (an address of a
    pool, a certificate fingerprint); (check, subject, cause) is the identity the finding
    lifecycle tracks across runs. `details` holds JSON-ready values only.
    """

    check: CheckId
    severity: Severity
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    cause: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.check.value, self.subject, self.cause)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check.value,
            "severity": self.severity.value,
            "subject": self.subject,
            "message": self.message,
            "details": self.details,
            "cause": self.cause,
        }


def worst(severities: Any) -> Severity:
    """The worst of an iterable of severities (OK for none)."""
    return max(severities, default=Severity.OK)
