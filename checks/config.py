"""Configuration: one TOML file, validated completely at load.

Every table and key is declared once, in `SPEC` below (name, type, default, allowed values,
range, a line of documentation). Both the parser and `config_schema()` (the JSON Schema that
`relaycheck config schema` prints) are driven by those declarations, so a key cannot be parsed
without being in the schema, or the other way round. What a declaration cannot say (a valid
domain, an IPv4 range, a cron expression, one key depending on another) is checked by the
builders after it.

`parse_config(raw, base_dir=..., source=...)` is a pure function of the values passed in (tests
call it with dicts); `load_config(path)` only reads the file and hands over. Unknown keys are
errors, not ignored: a typo such as `warning_day = 30` would otherwise silently fall back to the
default and page nobody. Parsing does not stop at the first problem: every problem is collected
(each naming the file, the key and the problem) and raised together as `ConfigErrors`, so
`relaycheck config check` can list all of them in one run instead of one per edit.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import tomli

from checks.errors import AddressError, ConfigError, ConfigErrors
from checks.i18n import N_, Language, _
from checks.model import (
    RELAY_SCENARIOS,
    AcceptedDomain,
    AlertSettings,
    CertificateSource,
    CheckId,
    CheckPolicy,
    Config,
    Connector,
    ConnectorType,
    DnsSettings,
    Endpoint,
    EndpointRole,
    Forward,
    HaSettings,
    LocaleSettings,
    LogFormat,
    LogSettings,
    Microsoft365Settings,
    ProbeSettings,
    RevocationSettings,
    Scenario,
    ScheduleSettings,
    ServerSettings,
    Severity,
    SlackMode,
    SlackSettings,
    StateSettings,
    Tenant,
    Thresholds,
    TlsMode,
    Trust,
)
from checks.rules.addresses import parse_address
from checks.rules.names import InvalidName, parse_connector_name, to_ascii_domain
from checks.rules.schedule import InvalidSchedule, validate_schedule

T = TypeVar("T")

EXCHANGE_ONLINE_MX = "exchange-online"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# --------------------------------------------------------------------------- declarations


class Kind(StrEnum):
    """The value types a key can have (TOML's, as JSON Schema names them)."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRINGS = "strings"  # a list of strings; a single string is taken as a list of one
    INTEGERS = "integers"


_KIND_NAMES = {
    Kind.STRING: "a string",
    Kind.INTEGER: "an integer",
    Kind.NUMBER: "a number",
    Kind.BOOLEAN: "a boolean",
    Kind.STRINGS: "a list of strings",
    Kind.INTEGERS: "a list of whole numbers",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    """One key of a table: what the parser accepts and what the schema says, declared once."""

    name: str
    kind: Kind
    doc: str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()  # matched case-insensitively, stored as written here
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    port: bool = False  # 1-65535 (0 too when `minimum=0`)
    url: bool = False  # http(s) URL
    min_items: int | None = None
    # values outside `choices` that deserve their own answer: (value, problem)
    refusals: tuple[tuple[str, str], ...] = ()
    # what a value outside `choices` is called ("check id": "unknown check id 'x' (one of ...)")
    unknown: str | None = None

    def choose(self, text: str) -> tuple[str | None, str | None]:
        """The declared choice `text` names (any case), or the problem with it."""
        wanted = text.strip().lower()
        match = next((c for c in self.choices if c.lower() == wanted), None)
        if match is not None:
            return match, None
        refusal = next((p for v, p in self.refusals if v.lower() == wanted), None)
        if refusal is not None:
            return None, refusal
        if self.unknown is not None:
            return None, _("unknown {what} {value} (one of {choices})").format(
                what=self.unknown, value=repr(text), choices=", ".join(self.choices)
            )
        return None, _("must be one of {choices}, got {value}").format(
            choices=", ".join(self.choices), value=repr(text)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A table (`[name]`), an array of tables (`[[name]]`) or an inline table."""

    name: str
    doc: str
    keys: tuple[Key, ...] = ()
    tables: tuple[Table, ...] = ()
    array: bool = False
    required: bool = False
    # a table whose keys are names from a closed set (`[checks.severity]`: check ids), each
    # value checked by `entries`; None: only the declared keys
    entries: Key | None = None
    entry_names: tuple[str, ...] = ()
    entry_noun: str = "name"

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


def _port(name: str, doc: str, default: int | None = None, *, zero: bool = False) -> Key:
    return Key(
        name=name,
        kind=Kind.INTEGER,
        doc=doc,
        default=default,
        port=True,
        minimum=0 if zero else 1,
        maximum=65535,
    )


def _seconds(name: str, doc: str, default: float) -> Key:
    return Key(name=name, kind=Kind.NUMBER, doc=doc, default=default, exclusive_minimum=0)


def _count(name: str, doc: str, default: int) -> Key:
    """A whole number of at least 1 (days, runs, bytes, connections)."""
    return Key(name=name, kind=Kind.INTEGER, doc=doc, default=default, exclusive_minimum=0)


def _str(name: str, doc: str, default: str | None = None, **extra: Any) -> Key:
    return Key(name=name, kind=Kind.STRING, doc=doc, default=default, **extra)


def _strs(name: str, doc: str) -> Key:
    return Key(name=name, kind=Kind.STRINGS, doc=doc)


_PROBE = ProbeSettings()
_REVOCATION = RevocationSettings()
_HA = HaSettings()
_DNS = DnsSettings()
_M365 = Microsoft365Settings()
_SLACK = SlackSettings()
_SCHEDULE = ScheduleSettings()
_ALERTS = AlertSettings()
_SERVER = ServerSettings()
_LOG = LogSettings()

SPEC = Table(
    name="",
    doc="relaycheck configuration (one TOML file; relative paths resolve against its folder)",
    tables=(
        Table(
            name="tenant",
            doc="The Microsoft 365 tenant: accepted domains and where its exports are",
            required=True,
            keys=(
                _str("name", "a name for the tenant, shown in answers", "tenant"),
                _strs("accepted_domains", "accepted domains (besides or instead of the export)"),
                _str("accepted_domains_file", "Get-AcceptedDomain | ConvertTo-Json export"),
                _str("connectors_file", "Get-InboundConnector | ConvertTo-Json export"),
                _strs("sender_domains", "MAIL FROM domains the on-prem servers send as"),
                Key(
                    name="relay_scenarios",
                    kind=Kind.STRINGS,
                    doc="the relay scenarios relay-scenario judges on every scan",
                    default=[s.value for s in RELAY_SCENARIOS],
                    choices=tuple(s.value for s in RELAY_SCENARIOS),
                    unknown="scenario id",
                    refusals=(
                        (
                            Scenario.TO_TENANT.value,
                            "to-tenant is delivery into the tenant, not a relay scenario",
                        ),
                    ),
                ),
                _strs(
                    "mx_expected", '"exchange-online" or host patterns such as "*.mx.contoso.com"'
                ),
            ),
        ),
        Table(
            name="connectors",
            doc="Inbound connectors (the export wins for a connector named in both)",
            array=True,
            keys=(
                _str("name", "the connector's name in Exchange Online", required=True),
                _str(
                    "type",
                    "ConnectorType (any case)",
                    ConnectorType.ON_PREMISES.value,
                    choices=tuple(t.value for t in ConnectorType),
                ),
                Key(name="enabled", kind=Kind.BOOLEAN, doc="Enabled", default=True),
                _str(
                    "tls_sender_certificate_name",
                    "TlsSenderCertificateName: certificate-based when set (*.contoso.com)",
                ),
                _strs("sender_ip_addresses", "SenderIPAddresses: IPv4 addresses or CIDR ranges"),
                _strs("associated_accepted_domains", "AssociatedAcceptedDomains"),
            ),
            tables=(
                Table(
                    name="certificate",
                    doc="where the connector's certificate is seen: an endpoint, a file, or both",
                    keys=(
                        _str("endpoint", "the name of an [[endpoints]] entry"),
                        _str("file", "a PEM chain or a PFX/PKCS#12 file the MTA presents"),
                        _str("password_env", "the environment variable holding the PFX password"),
                    ),
                ),
            ),
        ),
        Table(
            name="endpoints",
            doc="SMTP listeners to probe",
            array=True,
            keys=(
                _str("name", "a short name, unique among endpoints", required=True),
                _str("host", "the host name (certificates are checked against it)", required=True),
                _str("address", "connect here instead of resolving host (IPv4 or IPv6)"),
                _port("port", "TCP port", 25),
                _str(
                    "tls",
                    "starttls, or implicit (the default on port 465)",
                    choices=tuple(t.value for t in TlsMode),
                ),
                _str(
                    "role",
                    "what the listener is",
                    EndpointRole.SMARTHOST.value,
                    choices=tuple(r.value for r in EndpointRole),
                ),
            ),
        ),
        Table(
            name="forwards",
            doc="On-prem forwarding rules (tell the forwarding scenario apart)",
            array=True,
            keys=(
                _str("mailbox", "the on-prem mailbox that forwards", required=True),
                _str("to", "where it forwards to", required=True),
            ),
        ),
        Table(
            name="thresholds",
            doc="Certificate expiry thresholds in days",
            keys=(
                Key(
                    name="warning_days",
                    kind=Kind.INTEGER,
                    doc="warning at this many days left",
                    default=30,
                    minimum=0,
                ),
                Key(
                    name="critical_days",
                    kind=Kind.INTEGER,
                    doc="critical at this many days left (not above warning_days)",
                    default=7,
                    minimum=0,
                ),
                _count(
                    "max_validity_days",
                    "a leaf valid longer than this is a cert-weak warning",
                    Thresholds().max_validity_days,
                ),
            ),
        ),
        Table(
            name="revocation",
            doc="OCSP (stapled, then the AIA responder) or the CRL of every sent certificate",
            keys=(
                Key(
                    name="enabled",
                    kind=Kind.BOOLEAN,
                    doc="check revocation",
                    default=_REVOCATION.enabled,
                ),
                _seconds("timeout_seconds", "each OCSP/CRL request", _REVOCATION.timeout_seconds),
                Key(
                    name="soft_fail",
                    kind=Kind.BOOLEAN,
                    doc="an unreachable responder is info (true) or critical (false)",
                    default=_REVOCATION.soft_fail,
                ),
            ),
        ),
        Table(
            name="trust",
            doc="Extra trust anchors besides the system store",
            keys=(_str("ca_file", "a PEM bundle of extra trust anchors"),),
        ),
        Table(
            name="probe",
            doc="SMTP/TLS probing",
            keys=(
                _str(
                    "ehlo_name",
                    "EHLO name: a fully qualified name, never localhost",
                    _PROBE.ehlo_name,
                ),
                _seconds("timeout_seconds", "each SMTP/TLS stage", _PROBE.timeout_seconds),
                _seconds(
                    "greeting_timeout_seconds",
                    "the banner (tarpits wait on purpose)",
                    _PROBE.greeting_timeout_seconds,
                ),
                _seconds(
                    "deadline_seconds", "everything for one endpoint", _PROBE.deadline_seconds
                ),
                _count("concurrency", "endpoints probed at once", _PROBE.concurrency),
                _count("max_reply_bytes", "the longest SMTP reply read", _PROBE.max_reply_bytes),
                _port("mx_port", "MX hosts found in DNS are probed on this port", _PROBE.mx_port),
                Key(
                    name="every_key_type",
                    kind=Kind.BOOLEAN,
                    doc="one more handshake per address offering only the other key type",
                    default=_PROBE.every_key_type,
                ),
            ),
        ),
        Table(
            name="dns",
            doc="MX/SPF/MTA-STS/TLSA checks (on when this table exists or mx_expected is set)",
            keys=(
                Key(name="enabled", kind=Kind.BOOLEAN, doc="false turns the DNS checks off"),
                _strs("nameservers", "resolver IP addresses (default: the system resolver)"),
                _port("port", "the resolvers' port", _DNS.port),
                _seconds("timeout_seconds", "each DNS query", _DNS.timeout_seconds),
                _port("mta_sts_port", "the MTA-STS policy host's HTTPS port", _DNS.mta_sts_port),
            ),
        ),
        Table(
            name="microsoft365",
            doc="Live accepted domains from Microsoft Graph (app-only, Domain.Read.All)",
            keys=(
                _str("tenant_id", "the directory (tenant) id"),
                _str("client_id", "the application (client) id"),
                _str(
                    "client_secret_env",
                    "the environment variable holding the client secret",
                    _M365.client_secret_env,
                ),
                _str(
                    "client_certificate_env",
                    "the environment variable holding a PEM path for a certificate credential",
                    _M365.client_certificate_env,
                ),
                _str(
                    "graph_url",
                    "Microsoft Graph (national clouds differ)",
                    _M365.graph_url,
                    url=True,
                ),
                _str("login_url", "the token endpoint's host", _M365.login_url, url=True),
                _seconds("timeout_seconds", "each Graph request", _M365.timeout_seconds),
            ),
        ),
        Table(
            name="slack",
            doc="The Slack app (secrets come from the environment, never from this file)",
            keys=(
                _str(
                    "mode",
                    "socket (no public URL) or http",
                    _SLACK.mode.value,
                    choices=tuple(m.value for m in SlackMode),
                ),
                _port("port", "http mode: the port Slack's requests arrive on", _SLACK.port),
                _str("host", "http mode: the address to listen on", _SLACK.host),
                _str("alerts_channel", "the channel id alerts go to"),
                _str(
                    "api_url",
                    "Slack's Web API (GovSlack or a test server)",
                    _SLACK.api_url,
                    url=True,
                ),
                _strs(
                    "allowed_channels",
                    "where /relaycheck may be used: channel ids or #names (empty: anywhere)",
                ),
                _strs(
                    "allowed_users",
                    "Slack user ids who may use relaycheck (empty: anyone in its channels)",
                ),
                _strs("probe_allowed_domains", "ad-hoc /relaycheck cert HOST only within these"),
                Key(
                    name="allow_private_targets",
                    kind=Kind.BOOLEAN,
                    doc="let ad-hoc probes reach private and loopback addresses",
                    default=False,
                ),
            ),
        ),
        Table(
            name="schedule",
            doc="When serve runs the checks: cron (day names for weekdays, @daily) or 'every 30m'",
            keys=(
                _str("timezone", "IANA time zone of the cron expressions", _SCHEDULE.timezone),
                _str("certificates", "the certificate job", _SCHEDULE.certificates),
                _str("domains", "the domain and DNS job", _SCHEDULE.domains),
                _str("digest", "the weekly digest", _SCHEDULE.digest),
            ),
        ),
        Table(
            name="state",
            doc="The state: an sqlite file (path) or a PostgreSQL database (url)",
            keys=(
                _str("path", "sqlite file; default: relaycheck.sqlite3 in the working folder"),
                _str(
                    "url",
                    "postgresql:// URL (the password may come from RELAYCHECK_STATE_URL[_FILE])",
                ),
            ),
        ),
        Table(
            name="ha",
            doc="Leadership among replicas sharing one PostgreSQL store",
            keys=(
                _seconds("lease_seconds", "the scheduler lease's length", _HA.lease_seconds),
                _str(
                    "replica",
                    "this replica's name (default $RELAYCHECK_REPLICA, else host and pid)",
                ),
            ),
        ),
        Table(
            name="alerts",
            doc="Alerting",
            keys=(
                _str("runbook_url", "linked from every alert", url=True),
                Key(
                    name="expiry_steps",
                    kind=Kind.INTEGERS,
                    doc="days-left steps that escalate an open cert-expiry",
                    default=list(_ALERTS.expiry_steps),
                    minimum=0,
                    min_items=1,
                ),
                _count(
                    "flap_runs",
                    "runs a finding must stay put before it is no longer flapping",
                    _ALERTS.flap_runs,
                ),
                _count(
                    "digest_days",
                    "the digest lists certificates expiring within this many days",
                    _ALERTS.digest_days,
                ),
            ),
        ),
        Table(
            name="checks",
            doc="Per-check policy: checks not to run, severities read differently",
            keys=(
                Key(
                    name="disabled",
                    kind=Kind.STRINGS,
                    doc="check ids not to run",
                    choices=tuple(c.value for c in CheckId if c is not CheckId.RELAYCHECK),
                    unknown="check id",
                    refusals=(
                        (CheckId.RELAYCHECK.value, "relaycheck's own failures cannot be disabled"),
                    ),
                ),
            ),
            tables=(
                Table(
                    name="severity",
                    doc="check id = the severity its problems are reported with",
                    entries=_str(
                        "severity",
                        "the severity for this check's problems",
                        choices=tuple(v.value for v in Severity if v is not Severity.OK),
                        refusals=(
                            (
                                Severity.OK.value,
                                "must be one of info, warning, critical (disable the check instead)",
                            ),
                        ),
                    ),
                    entry_names=tuple(c.value for c in CheckId if c is not CheckId.RELAYCHECK),
                    entry_noun="check id",
                ),
            ),
        ),
        Table(
            name="locale",
            doc="the language of channel alerts, the digest and answers without a user locale",
            keys=(
                _str(
                    "language",
                    "ja or en (default en; the CLI then follows LC_ALL/LC_MESSAGES/LANG)",
                    choices=tuple(lang.value for lang in Language),
                    unknown="language",
                ),
            ),
        ),
        Table(
            name="server",
            doc="serve's health and metrics listener (/healthz, /readyz, /metrics)",
            keys=(
                _str("host", "the address to listen on", _SERVER.host),
                _port(
                    "metrics_port",
                    "the port; unset: no listener; 0: any free port (logged)",
                    zero=True,
                ),
            ),
        ),
        Table(
            name="log",
            doc="serve's log lines",
            keys=(
                _str(
                    "format",
                    "keyvalue (key=value pairs) or json (one object per line)",
                    _LOG.format.value,
                    choices=tuple(f.value for f in LogFormat),
                ),
                _str(
                    "level",
                    "the lowest level written",
                    _LOG.level,
                    choices=("debug", "info", "warning", "error"),
                ),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------- validation


def _type_name(value: Any) -> str:
    name = _TYPE_NAMES.get(type(value))
    return _(name) if name is not None else type(value).__name__


_TYPE_NAMES = {
    bool: N_("a boolean"),
    int: N_("an integer"),
    float: N_("a number"),
    str: N_("a string"),
    list: N_("a list"),
    dict: N_("a table"),
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range_problem(key: Key, value: float) -> str | None:
    if key.port and not (key.minimum or 0) <= value <= 65535:
        low = int(key.minimum or 0)
        return _("{value} is not a TCP port ({low}-65535)").format(value=value, low=low)
    if key.exclusive_minimum is not None and value <= key.exclusive_minimum:
        return _("must be greater than {minimum}").format(minimum=f"{key.exclusive_minimum:g}")
    if key.minimum is not None and value < key.minimum:
        if key.minimum == 0:
            return _("cannot be negative")
        return _("must be at least {minimum}").format(minimum=f"{key.minimum:g}")
    if key.maximum is not None and value > key.maximum:
        return _("must be at most {maximum}").format(maximum=f"{key.maximum:g}")
    return None


def check_value(key: Key, value: Any) -> tuple[Any, str | None]:
    """The value as the parser keeps it, or the problem with it (per the declaration alone).

    A problem with one item of a list starts with its index (`[2]: ...`)."""
    kind = key.kind
    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            return None, _("expected a boolean, got {type}").format(type=_type_name(value))
        return value, None
    if kind is Kind.INTEGER or kind is Kind.NUMBER:
        if kind is Kind.INTEGER and not (isinstance(value, int) and not isinstance(value, bool)):
            return None, _("expected an integer, got {type}").format(type=_type_name(value))
        if not _number(value):
            return None, _("expected a number, got {type}").format(type=_type_name(value))
        if kind is Kind.NUMBER:
            try:
                value = float(value)
            except OverflowError:
                return None, _("is too large a number")
            if not math.isfinite(value):
                # nan fails every comparison (every endpoint "timed out"); inf removes a deadline
                return None, _("must be a finite number, got {value}").format(value=value)
        problem = _range_problem(key, value)
        return (None, problem) if problem else (value, None)
    if kind is Kind.STRING:
        if not isinstance(value, str):
            return None, _("expected a string, got {type}").format(type=_type_name(value))
        if key.choices:
            return key.choose(value)
        if key.url and not value.startswith(("https://", "http://")):
            return None, _("{value} is not an http(s) URL").format(value=repr(value))
        return value, None
    if kind is Kind.STRINGS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, _("expected a list of strings")
        if key.choices:
            out = []
            for index, item in enumerate(value):
                match, problem = key.choose(item)
                if match is None:
                    return None, f"[{index}]: {problem}"
                if match not in out:
                    out.append(match)
            return tuple(out), None
        return tuple(value), None
    # Kind.INTEGERS
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return None, _("expected a list of whole numbers, such as [30, 14, 7, 3, 1]")
    if key.min_items and len(value) < key.min_items:
        return None, _("needs at least {count} value").format(count=key.min_items)
    for item in value:
        problem = _range_problem(key, item)
        if problem:
            return None, f"{item}: {problem}"
    return tuple(value), None


class _Reader:
    """One table checked against its declaration; problems go to the shared `errors` list.

    Every key present is checked at once (type, allowed values, range, unknown keys), so one
    run reports all of them; builders then read checked values with `get` and report what
    only they can judge with `report`."""

    def __init__(
        self, table: Any, spec: Table, *, path: str, file: str, errors: list[ConfigError]
    ) -> None:
        self.spec = spec
        self.path = path
        self.file = file
        self.errors = errors
        self.values: dict[str, Any] = {}
        self.present: set[str] = set()
        self.raw: Mapping[str, Any] = {}
        if not isinstance(table, Mapping):
            self.errors.append(
                ConfigError(
                    _("expected a table, got {type}").format(type=_type_name(table)),
                    file=file,
                    key=path or None,
                )
            )
            return
        self.raw = table
        keys = {k.name: k for k in spec.keys}
        tables = {t.name for t in spec.tables}
        for name, value in table.items():
            if name in tables:
                self.present.add(name)
                continue
            key = keys.get(name)
            if key is None and spec.entries is not None:
                if name not in spec.entry_names:
                    self.report(
                        name,
                        _("unknown {what} {value} (one of {choices})").format(
                            what=spec.entry_noun,
                            value=repr(name),
                            choices=", ".join(spec.entry_names),
                        ),
                    )
                    continue
                key = spec.entries
            if key is None:
                self.report(name, _unknown(name, [*keys, *tables]))
                continue
            self.present.add(name)
            checked, problem = check_value(key, value)
            if problem and problem.startswith("[") and "]: " in problem:
                index, text = problem.split(": ", 1)
                self.report(name + index, text)
            elif problem:
                self.report(name, problem)
            else:
                self.values[name] = checked
        for key in spec.keys:
            if key.required and key.name not in table:
                self.report(key.name, _("is required"))

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def report(self, name: str, problem: str) -> None:
        self.errors.append(ConfigError(problem, file=self.file, key=self.key(name)))

    def has(self, name: str) -> bool:
        return name in self.present

    def entries(self) -> dict[str, Any]:
        """The checked values of a table declared with `entries` (name -> value)."""
        return dict(self.values)

    def ok(self, name: str) -> bool:
        """Present and valid as declared (so a builder may judge it further)."""
        return name in self.values

    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        default = self.spec.key(name).default
        return tuple(default) if isinstance(default, list) else default

    def sub(self, name: str) -> _Reader:
        return _Reader(
            self.raw.get(name, {}),
            self.spec.table(name),
            path=self.key(name),
            file=self.file,
            errors=self.errors,
        )

    def items(self, name: str) -> list[_Reader]:
        value = self.raw.get(name, [])
        if not isinstance(value, list):
            self.report(
                name,
                _("expected an array of tables ([[{name}]]), got {type}").format(
                    name=name, type=_type_name(value)
                ),
            )
            return []
        spec = self.spec.table(name)
        return [
            _Reader(item, spec, path=f"{self.key(name)}[{i}]", file=self.file, errors=self.errors)
            for i, item in enumerate(value)
        ]


def _unknown(name: str, known: list[str]) -> str:
    import difflib  # only a misspelt key needs it: off every good config's start-up

    close = difflib.get_close_matches(name, known, n=1)
    hint = (
        _("did you mean {name}?").format(name=repr(close[0]))
        if close
        else _("check the spelling; see examples/")
    )
    return _("unknown key ({hint})").format(hint=hint)


# --------------------------------------------------------------------------- builders


def _domain(reader: _Reader, name: str, value: str) -> str | None:
    try:
        return to_ascii_domain(value)
    except InvalidName as err:
        reader.report(
            name, _("{value} is not a valid domain ({error})").format(value=repr(value), error=err)
        )
        return None


def _domains(reader: _Reader, name: str, *, strip_wildcard: bool = False) -> tuple[str, ...]:
    out = []
    for index, value in enumerate(reader.get(name) or ()):
        domain = _domain(
            reader, f"{name}[{index}]", value.removeprefix("*.") if strip_wildcard else value
        )
        if domain is not None:
            out.append(domain)
    return tuple(out)


def _path(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _opt_path(reader: _Reader, name: str, base_dir: Path) -> Path | None:
    value = reader.get(name)
    return _path(base_dir, value) if value else None


def _relay_scenarios(reader: _Reader) -> tuple[Scenario, ...]:
    return tuple(Scenario(v) for v in reader.get("relay_scenarios"))


def _checks(reader: _Reader) -> CheckPolicy:
    disabled = frozenset(CheckId(v) for v in reader.get("disabled") or ())
    severities = {
        CheckId(name): Severity(value) for name, value in reader.sub("severity").entries().items()
    }
    return CheckPolicy(disabled=disabled, severity=severities)


def _tenant(reader: _Reader, base_dir: Path) -> Tenant:
    accepted = tuple(
        AcceptedDomain(name=d, source="config") for d in _domains(reader, "accepted_domains")
    )
    mx_expected: tuple[str, ...] = reader.get("mx_expected") or ()
    for index, pattern in enumerate(mx_expected):
        if pattern == EXCHANGE_ONLINE_MX:
            continue
        body = pattern[2:] if pattern.startswith("*.") else pattern
        if "*" in body:
            reader.report(
                f"mx_expected[{index}]", _("a wildcard is only allowed as a leading '*.'")
            )
            continue
        _domain(reader, f"mx_expected[{index}]", body)
    return Tenant(
        name=reader.get("name"),
        accepted_domains=accepted,
        accepted_domains_file=_opt_path(reader, "accepted_domains_file", base_dir),
        connectors_file=_opt_path(reader, "connectors_file", base_dir),
        sender_domains=_domains(reader, "sender_domains"),
        relay_scenarios=_relay_scenarios(reader),
        mx_expected=tuple(p.lower() for p in mx_expected),
    )


def _ipv4_list(reader: _Reader, name: str) -> tuple[str, ...]:
    values: tuple[str, ...] = reader.get(name) or ()
    for index, value in enumerate(values):
        try:
            ipaddress.IPv4Network(value, strict=False)
        except ValueError:
            reader.report(
                f"{name}[{index}]",
                _(
                    "{value} is not an IPv4 address or CIDR range (Exchange Online takes IPv4 only)"
                ).format(value=repr(value)),
            )
    return values


def _certificate_source(reader: _Reader, base_dir: Path) -> CertificateSource | None:
    if not reader.has("certificate"):
        return None
    sub = reader.sub("certificate")
    endpoint = sub.get("endpoint")
    file = sub.get("file")
    password_env = sub.get("password_env")
    # both: the file is what the MTA presents, the endpoint shows whether it is deployed
    if not sub.has("endpoint") and not sub.has("file"):
        reader.report(
            "certificate",
            _(
                "give exactly one of 'endpoint' or 'file', or both to check that a renewed file "
                "is served"
            ),
        )
    if password_env is not None and not sub.has("file"):
        sub.report("password_env", _("only applies to a certificate 'file' (PFX)"))
    return CertificateSource(
        endpoint=endpoint, file=_path(base_dir, file) if file else None, password_env=password_env
    )


def _connector(reader: _Reader, base_dir: Path) -> Connector:
    tls_name = reader.get("tls_sender_certificate_name")
    if tls_name is not None:
        try:
            parse_connector_name(tls_name)
        except InvalidName as err:
            reader.report("tls_sender_certificate_name", f"{tls_name!r}: {err}")
    return Connector(
        name=reader.get("name") or "",
        type=ConnectorType(reader.get("type")),
        enabled=reader.get("enabled"),
        tls_sender_certificate_name=tls_name,
        sender_ip_addresses=_ipv4_list(reader, "sender_ip_addresses"),
        certificate=_certificate_source(reader, base_dir),
        associated_accepted_domains=_domains(reader, "associated_accepted_domains"),
        source="config",
    )


def _endpoint(reader: _Reader) -> Endpoint:
    host = reader.get("host") or ""
    if host:
        _domain(reader, "host", host)
    address = reader.get("address")
    if address is not None:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            reader.report(
                "address", _("{value} is not an IPv4 or IPv6 address").format(value=repr(address))
            )
    port: int = reader.get("port")
    tls = reader.get("tls")
    return Endpoint(
        name=reader.get("name") or "",
        host=host,
        address=address,
        port=port,
        tls=TlsMode(tls) if tls else (TlsMode.IMPLICIT if port == 465 else TlsMode.STARTTLS),
        role=EndpointRole(reader.get("role")),
    )


def _forward(reader: _Reader) -> Forward:
    for key in ("mailbox", "to"):
        if reader.ok(key):
            try:
                parse_address(reader.get(key), role=key)
            except AddressError as err:
                reader.report(key, str(err))
    return Forward(mailbox=reader.get("mailbox") or "", to=reader.get("to") or "")


def _unique(
    items: list[T], key: Callable[[T], str], what: str, file: str, errors: list[ConfigError]
) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        value = key(item)
        if value and value in seen:
            errors.append(
                ConfigError(
                    _("duplicate name {value}").format(value=repr(value)),
                    file=file,
                    key=f"{what}[{index}].name",
                )
            )
        seen.add(value)


def _url(reader: _Reader, name: str) -> str:
    value: str = reader.get(name)
    return value if value.endswith("/") else value + "/"


def _probe(reader: _Reader) -> ProbeSettings:
    ehlo = reader.get("ehlo_name")
    ehlo_ascii = _domain(reader, "ehlo_name", ehlo) or ProbeSettings().ehlo_name
    if ehlo_ascii in ("localhost", "localhost.localdomain") or "." not in ehlo_ascii:
        reader.report(
            "ehlo_name", _("use a fully qualified name of the probing host, not localhost")
        )
    return ProbeSettings(
        timeout_seconds=reader.get("timeout_seconds"),
        greeting_timeout_seconds=reader.get("greeting_timeout_seconds"),
        deadline_seconds=reader.get("deadline_seconds"),
        concurrency=reader.get("concurrency"),
        ehlo_name=ehlo_ascii,
        max_reply_bytes=reader.get("max_reply_bytes"),
        mx_port=reader.get("mx_port"),
        every_key_type=reader.get("every_key_type"),
    )


def _dns(reader: _Reader, *, enabled_by_default: bool) -> DnsSettings:
    servers: tuple[str, ...] = reader.get("nameservers") or ()
    for index, value in enumerate(servers):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            reader.report(
                f"nameservers[{index}]", _("{value} is not an IP address").format(value=repr(value))
            )
    enabled = reader.get("enabled")
    return DnsSettings(
        enabled=enabled_by_default if enabled is None else enabled,
        nameservers=servers,
        port=reader.get("port"),
        timeout_seconds=reader.get("timeout_seconds"),
        mta_sts_port=reader.get("mta_sts_port"),
    )


def _microsoft365(reader: _Reader) -> Microsoft365Settings:
    settings = Microsoft365Settings(
        tenant_id=reader.get("tenant_id"),
        client_id=reader.get("client_id"),
        client_secret_env=reader.get("client_secret_env"),
        client_certificate_env=reader.get("client_certificate_env"),
        graph_url=_url(reader, "graph_url"),
        login_url=_url(reader, "login_url"),
        timeout_seconds=reader.get("timeout_seconds"),
    )
    if bool(settings.tenant_id) != bool(settings.client_id):
        missing = "client_id" if settings.tenant_id else "tenant_id"
        reader.report(missing, _("is required when the other of tenant_id/client_id is set"))
    return settings


def _host(reader: _Reader, name: str) -> str:
    """An address to listen on: an IP address, or a name such as localhost."""
    value: str = reader.get(name)
    if not value.strip():
        reader.report(name, _("expected an IP address or a host name, got an empty string"))
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        _domain(reader, name, value)
    return value


_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_NAME = re.compile(r"#?[a-z0-9][a-z0-9._-]{0,79}")


def _users(reader: _Reader) -> tuple[str, ...]:
    values: tuple[str, ...] = reader.get("allowed_users") or ()
    for index, value in enumerate(values):
        if not _USER_ID.fullmatch(value):
            reader.report(
                f"allowed_users[{index}]",
                _(
                    "{value} is not a Slack user id (such as U0123ABCD; names can change, ids not)"
                ).format(value=repr(value)),
            )
    return values


def _channels(reader: _Reader) -> tuple[str, ...]:
    values: tuple[str, ...] = reader.get("allowed_channels") or ()
    for index, value in enumerate(values):
        if not (_CHANNEL_ID.fullmatch(value) or _CHANNEL_NAME.fullmatch(value)):
            reader.report(
                f"allowed_channels[{index}]",
                _("{value} is neither a channel id (C0123ABCD) nor a channel name (#ops)").format(
                    value=repr(value)
                ),
            )
    return values


def _slack(reader: _Reader) -> SlackSettings:
    return SlackSettings(
        mode=SlackMode(reader.get("mode")),
        port=reader.get("port"),
        host=_host(reader, "host"),
        alerts_channel=reader.get("alerts_channel"),
        api_url=_url(reader, "api_url"),
        allowed_channels=_channels(reader),
        allowed_users=_users(reader),
        probe_allowed_domains=_domains(reader, "probe_allowed_domains", strip_wildcard=True),
        allow_private_targets=reader.get("allow_private_targets"),
    )


def _schedule(reader: _Reader) -> ScheduleSettings:
    timezone: str = reader.get("timezone")
    if timezone != "UTC":  # always known; zoneinfo (and its tz path lookup) only for others
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            reader.report(
                "timezone", _("{value} is not a known IANA time zone").format(value=repr(timezone))
            )
            timezone = "UTC"
    values = {}
    for name in ("certificates", "domains", "digest"):
        text: str = reader.get(name)
        try:
            values[name] = validate_schedule(text, timezone)
        except InvalidSchedule as err:
            reader.report(name, f"{text!r}: {err}")
            values[name] = getattr(ScheduleSettings(), name)
    return ScheduleSettings(timezone=timezone, **values)


def _alerts(reader: _Reader) -> AlertSettings:
    steps: tuple[int, ...] = reader.get("expiry_steps")
    return AlertSettings(
        runbook_url=reader.get("runbook_url"),
        expiry_steps=tuple(sorted(set(steps), reverse=True)),
        flap_runs=reader.get("flap_runs"),
        digest_days=reader.get("digest_days"),
    )


def _thresholds(reader: _Reader) -> Thresholds:
    warning_days: int = reader.get("warning_days")
    critical_days: int = reader.get("critical_days")
    if critical_days > warning_days:
        reader.report("critical_days", _("must not be larger than warning_days"))
    return Thresholds(
        warning_days=warning_days,
        critical_days=critical_days,
        max_validity_days=reader.get("max_validity_days"),
    )


def _revocation(reader: _Reader) -> RevocationSettings:
    return RevocationSettings(
        enabled=reader.get("enabled"),
        timeout_seconds=reader.get("timeout_seconds"),
        soft_fail=reader.get("soft_fail"),
    )


def _locale(reader: _Reader) -> LocaleSettings:
    text: str | None = reader.get("language")
    return LocaleSettings(language=Language(text) if text is not None else None)


_DATABASE_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def _state(reader: _Reader, base_dir: Path) -> StateSettings:
    path = reader.get("path")
    url = reader.get("url")
    if path is not None and url is not None:
        reader.report("url", _("set either [state] path (sqlite) or [state] url, not both"))
        return StateSettings()
    if url is not None:
        if not url.startswith(_DATABASE_SCHEMES):
            scheme = url.split("://", 1)[0] if "://" in url else "no scheme"
            # only the scheme is shown: the rest may carry a password
            reader.report(
                "url", _("must be a postgresql:// URL (got {scheme})").format(scheme=scheme)
            )
            return StateSettings()
        return StateSettings(url=url)
    # unset: in the working folder (where the daemon or cron job runs), not the config's
    return StateSettings(path=_path(base_dir, path)) if path else StateSettings()


def _ha(reader: _Reader) -> HaSettings:
    return HaSettings(lease_seconds=reader.get("lease_seconds"), replica=reader.get("replica"))


def _server(reader: _Reader) -> ServerSettings:
    return ServerSettings(host=_host(reader, "host"), metrics_port=reader.get("metrics_port"))


def _log(reader: _Reader) -> LogSettings:
    return LogSettings(format=LogFormat(reader.get("format")), level=reader.get("level"))


def parse_config(raw: Mapping[str, Any], *, base_dir: Path, source: str = "<config>") -> Config:
    """Validate a parsed TOML document; relative paths resolve against `base_dir`.

    Raises `ConfigErrors` holding every problem found (its message is the first one)."""
    config, errors = validate_config(raw, base_dir=base_dir, source=source)
    if errors:
        raise ConfigErrors(errors)
    return config


def validate_config(
    raw: Mapping[str, Any], *, base_dir: Path, source: str = "<config>"
) -> tuple[Config, tuple[ConfigError, ...]]:
    """Every problem of a parsed TOML document, and the configuration as far as it goes
    (defaults where a value was unusable): `config check` goes on to check the files it
    names even when some key is wrong."""
    errors: list[ConfigError] = []
    top = _Reader(raw, SPEC, path="", file=source, errors=errors)
    if not top.has("tenant"):
        errors.append(ConfigError(_("the [tenant] table is required"), file=source, key="tenant"))
    tenant = _tenant(top.sub("tenant"), base_dir)
    connectors = [_connector(r, base_dir) for r in top.items("connectors")]
    endpoints = [_endpoint(r) for r in top.items("endpoints")]
    forwards = [_forward(r) for r in top.items("forwards")]
    _unique(connectors, lambda c: c.name, "connectors", source, errors)
    _unique(endpoints, lambda e: e.name, "endpoints", source, errors)
    names = {e.name for e in endpoints}
    for index, connector in enumerate(connectors):
        ref = connector.certificate.endpoint if connector.certificate else None
        if ref is not None and ref not in names:
            errors.append(
                ConfigError(
                    f"names endpoint {ref!r}, which no [[endpoints]] entry defines",
                    file=source,
                    key=f"connectors[{index}].certificate.endpoint",
                )
            )
    trust = top.sub("trust")
    config = Config(
        source=Path(source) if source != "<config>" else None,
        tenant=tenant,
        connectors=tuple(connectors),
        endpoints=tuple(endpoints),
        forwards=tuple(forwards),
        thresholds=_thresholds(top.sub("thresholds")),
        trust=Trust(ca_file=_opt_path(trust, "ca_file", base_dir)),
        revocation=_revocation(top.sub("revocation")),
        probe=_probe(top.sub("probe")),
        # DNS checks ask a resolver about the tenant's domains: they run when the config says
        # which resolver ([dns]) or what the MX must be (mx_expected), never by surprise
        dns=_dns(top.sub("dns"), enabled_by_default=top.has("dns") or bool(tenant.mx_expected)),
        microsoft365=_microsoft365(top.sub("microsoft365")),
        slack=_slack(top.sub("slack")),
        schedule=_schedule(top.sub("schedule")),
        state=_state(top.sub("state"), base_dir),
        ha=_ha(top.sub("ha")),
        alerts=_alerts(top.sub("alerts")),
        locale=_locale(top.sub("locale")),
        checks=_checks(top.sub("checks")),
        server=_server(top.sub("server")),
        log=_log(top.sub("log")),
    )
    return config, tuple(errors)


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document of a file; a missing, unreadable or malformed file is a `ConfigError`."""
    shown = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(_("file not found"), file=shown) from None
    except IsADirectoryError:
        raise ConfigError(_("is a directory, not a configuration file"), file=shown) from None
    except OSError as err:
        raise ConfigError(
            _("cannot read ({error})").format(error=err.strerror), file=shown
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(_("is not UTF-8 text"), file=shown) from None
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as err:
        raise ConfigError(_("not valid TOML ({error})").format(error=err), file=shown) from None
    except RecursionError:
        raise ConfigError(_("not a usable configuration (nested too deeply)"), file=shown) from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ConfigError(
            _("not valid TOML ({error})").format(error=str(err)[:120]), file=shown
        ) from None


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration file."""
    return parse_config(read_toml(path), base_dir=path.resolve().parent, source=str(path))


# --------------------------------------------------------------------------- JSON Schema


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def _key_schema(key: Key) -> dict[str, Any]:
    schema: dict[str, Any]
    number: dict[str, Any] = {}
    if key.minimum is not None:
        number["minimum"] = key.minimum if key.kind is Kind.NUMBER else int(key.minimum)
    if key.exclusive_minimum is not None:
        number["exclusiveMinimum"] = key.exclusive_minimum
    if key.maximum is not None:
        number["maximum"] = key.maximum
    elif key.port:
        number["maximum"] = 65535
    if key.kind is Kind.STRINGS:
        item: dict[str, Any] = {"type": "string"}
        if key.choices:
            alternatives = "|".join(_any_case(c) for c in key.choices)
            item["pattern"] = f"^\\s*(?:{alternatives})\\s*$"
        schema = {"anyOf": [item, {"type": "array", "items": item}]}
    elif key.kind is Kind.INTEGERS:
        schema = {"type": "array", "items": {"type": "integer", **number}}
        if key.min_items:
            schema["minItems"] = key.min_items
    elif key.kind in (Kind.INTEGER, Kind.NUMBER):
        schema = {"type": key.kind.value, **number}
    else:
        schema = {"type": key.kind.value}
    if key.choices and key.kind is Kind.STRING:
        # the parser takes any case; JSON Schema's enum cannot, so a pattern says the same
        alternatives = "|".join(_any_case(c) for c in key.choices)
        schema["pattern"] = f"^\\s*(?:{alternatives})\\s*$"
        schema["examples"] = list(key.choices)
    if key.url:
        schema["pattern"] = "^https?://"
    schema["description"] = key.doc
    if key.default is not None:
        schema["default"] = key.default
    return schema


def _table_schema(table: Table) -> dict[str, Any]:
    properties: dict[str, Any] = {k.name: _key_schema(k) for k in table.keys}
    for sub in table.tables:
        properties[sub.name] = _sub_schema(sub)
    schema: dict[str, Any] = {
        "type": "object",
        "description": table.doc,
        "properties": properties,
        "additionalProperties": False,
    }
    if table.entries is not None:
        schema["propertyNames"] = {"enum": list(table.entry_names)}
        schema["additionalProperties"] = _key_schema(table.entries)
    required = [k.name for k in table.keys if k.required] + [
        t.name for t in table.tables if t.required
    ]
    if required:
        schema["required"] = required
    return schema


def _sub_schema(table: Table) -> dict[str, Any]:
    if table.array:
        return {"type": "array", "description": table.doc, "items": _table_schema(table)}
    return _table_schema(table)


def config_schema() -> dict[str, Any]:
    """The configuration as a JSON Schema (draft 2020-12), generated from `SPEC`.

    It says what the declarations say (types, allowed values, ranges, unknown keys); what only
    the builders judge (valid domains, cron, keys that depend on each other) needs
    `relaycheck config check`."""
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "relaycheck configuration",
        **_table_schema(SPEC),
    }
