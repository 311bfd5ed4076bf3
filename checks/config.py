"""Configuration: one TOML file, validated completely at load.

`parse_config(raw, base_dir=..., source=...)` is a pure function of the values passed in (tests
call it with dicts); `load_config(path)` only reads the file and hands over. Unknown keys are
errors, not ignored: a typo such as `warning_day = 30` would otherwise silently fall back to the
default and page nobody. Every error names the file, the key and the problem.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from checks.errors import AddressError, ConfigError
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
    Microsoft365Settings,
    ProbeSettings,
    RevocationSettings,
    Scenario,
    ScheduleSettings,
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
from checks.rules.schedule import InvalidSchedule, build_trigger, parse_schedule

T = TypeVar("T")

EXCHANGE_ONLINE_MX = "exchange-online"
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")


class _Reader:
    """Reads one table, remembering which keys were used so leftovers can be reported."""

    def __init__(self, table: Any, *, path: str, file: str) -> None:
        self.path = path
        self.file = file
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"expected a table, got {_type_name(table)}", file=file, key=path or None
            )
        self.table: Mapping[str, Any] = table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(problem, file=self.file, key=self.key(name))

    def has(self, name: str) -> bool:
        return name in self.table

    def _checked(self, name: str, kind: type[T]) -> T:
        value = self.table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise self.error(name, "is too large a number") from None
        if kind is int and isinstance(value, bool):
            raise self.error(name, "expected an integer, got a boolean")
        if not isinstance(value, kind):
            raise self.error(name, f"expected {_kind_name(kind)}, got {_type_name(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            # nan fails every comparison (every endpoint "timed out"); inf removes a deadline
            raise self.error(name, f"must be a finite number, got {value}")
        return value

    def get(self, name: str, kind: type[T], default: T) -> T:
        self.used.add(name)
        if name not in self.table:
            return default
        return self._checked(name, kind)

    def opt(self, name: str, kind: type[T]) -> T | None:
        self.used.add(name)
        if name not in self.table:
            return None
        return self._checked(name, kind)

    def required(self, name: str, kind: type[T]) -> T:
        self.used.add(name)
        if name not in self.table:
            raise self.error(name, "is required")
        return self._checked(name, kind)

    def strings(self, name: str) -> tuple[str, ...]:
        self.used.add(name)
        if name not in self.table:
            return ()
        value = self.table[name]
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "expected a list of strings")
        return tuple(value)

    def choice(self, name: str, enum: Callable[[str], T], default: T, allowed: str) -> T:
        text = self.opt(name, str)
        if text is None:
            return default
        try:
            return enum(text)
        except ValueError:
            raise self.error(name, f"must be one of {allowed}, got {text!r}") from None

    def positive(self, name: str, kind: type[T], default: T) -> T:
        value = self.get(name, kind, default)
        if value <= 0:  # type: ignore[operator]
            raise self.error(name, "must be greater than 0")
        return value

    def sub(self, name: str) -> _Reader:
        self.used.add(name)
        return _Reader(self.table.get(name, {}), path=self.key(name), file=self.file)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key (check the spelling; see examples/)")


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _kind_name(kind: type[Any]) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        kind, kind.__name__
    )


def _domain(reader: _Reader, name: str, value: str) -> str:
    try:
        return to_ascii_domain(value)
    except InvalidName as err:
        raise reader.error(name, f"{value!r} is not a valid domain ({err})") from None


def _path(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _relay_scenarios(reader: _Reader) -> tuple[Scenario, ...]:
    if not reader.has("relay_scenarios"):
        reader.used.add("relay_scenarios")
        return RELAY_SCENARIOS
    chosen: list[Scenario] = []
    allowed = ", ".join(s.value for s in RELAY_SCENARIOS)
    for index, value in enumerate(reader.strings("relay_scenarios")):
        key = f"relay_scenarios[{index}]"
        if value == Scenario.TO_TENANT.value:
            raise reader.error(key, "to-tenant is delivery into the tenant, not a relay scenario")
        try:
            scenario = Scenario(value)
        except ValueError:
            raise reader.error(key, f"unknown scenario id {value!r} (one of {allowed})") from None
        if scenario not in chosen:
            chosen.append(scenario)
    return tuple(chosen)


def _check_id(reader: _Reader, key: str, value: str) -> CheckId:
    try:
        return CheckId(value)
    except ValueError:
        known = ", ".join(c.value for c in CheckId if c is not CheckId.RELAYCHECK)
        raise reader.error(key, f"unknown check id {value!r} (one of {known})") from None


def _checks(reader: _Reader) -> CheckPolicy:
    disabled: set[CheckId] = set()
    for index, value in enumerate(reader.strings("disabled")):
        check = _check_id(reader, f"disabled[{index}]", value)
        if check is CheckId.RELAYCHECK:
            raise reader.error(f"disabled[{index}]", "relaycheck's own failures cannot be disabled")
        disabled.add(check)
    severities: dict[CheckId, Severity] = {}
    table = reader.sub("severity")
    allowed = ", ".join(s.value for s in Severity if s is not Severity.OK)
    for name in list(table.table):
        check = _check_id(table, name, name)
        text = table.required(name, str)
        try:
            severity = Severity(text)
        except ValueError:
            raise table.error(name, f"must be one of {allowed}, got {text!r}") from None
        if severity is Severity.OK:
            raise table.error(name, f"must be one of {allowed} (disable the check instead)")
        severities[check] = severity
    table.finish()
    reader.finish()
    return CheckPolicy(disabled=frozenset(disabled), severity=severities)


def _tenant(reader: _Reader, base_dir: Path) -> Tenant:
    name = reader.get("name", str, "tenant")
    accepted = []
    for index, value in enumerate(reader.strings("accepted_domains")):
        accepted.append(
            AcceptedDomain(
                name=_domain(reader, f"accepted_domains[{index}]", value), source="config"
            )
        )
    accepted_file = reader.opt("accepted_domains_file", str)
    connectors_file = reader.opt("connectors_file", str)
    senders = tuple(
        _domain(reader, f"sender_domains[{i}]", v)
        for i, v in enumerate(reader.strings("sender_domains"))
    )
    relay_scenarios = _relay_scenarios(reader)
    mx_expected = reader.strings("mx_expected")
    for index, pattern in enumerate(mx_expected):
        if pattern == EXCHANGE_ONLINE_MX:
            continue
        body = pattern[2:] if pattern.startswith("*.") else pattern
        if "*" in body:
            raise reader.error(
                f"mx_expected[{index}]", "a wildcard is only allowed as a leading '*.'"
            )
        _domain(reader, f"mx_expected[{index}]", body)
    reader.finish()
    return Tenant(
        name=name,
        accepted_domains=tuple(accepted),
        accepted_domains_file=_path(base_dir, accepted_file) if accepted_file else None,
        connectors_file=_path(base_dir, connectors_file) if connectors_file else None,
        sender_domains=senders,
        relay_scenarios=relay_scenarios,
        mx_expected=tuple(p.lower() for p in mx_expected),
    )


def _ipv4_list(reader: _Reader, name: str) -> tuple[str, ...]:
    values = reader.strings(name)
    for index, value in enumerate(values):
        try:
            ipaddress.IPv4Network(value, strict=False)
        except ValueError:
            raise reader.error(
                f"{name}[{index}]",
                f"{value!r} is not an IPv4 address or CIDR range (Exchange Online takes IPv4 only)",
            ) from None
    return values


def _certificate_source(reader: _Reader, base_dir: Path) -> CertificateSource | None:
    if not reader.has("certificate"):
        reader.used.add("certificate")
        return None
    sub = reader.sub("certificate")
    endpoint = sub.opt("endpoint", str)
    file = sub.opt("file", str)
    password_env = sub.opt("password_env", str)
    sub.finish()
    # both: the file is what the MTA presents, the endpoint shows whether it is deployed
    if endpoint is None and file is None:
        raise reader.error(
            "certificate",
            "give exactly one of 'endpoint' or 'file', or both to check that a renewed file is served",
        )
    if password_env is not None and file is None:
        raise sub.error("password_env", "only applies to a certificate 'file' (PFX)")
    return CertificateSource(
        endpoint=endpoint,
        file=_path(base_dir, file) if file else None,
        password_env=password_env,
    )


def _connector(reader: _Reader, base_dir: Path) -> Connector:
    name = reader.required("name", str)
    ctype = reader.choice("type", ConnectorType, ConnectorType.ON_PREMISES, "OnPremises, Partner")
    enabled = reader.get("enabled", bool, True)
    tls_name = reader.opt("tls_sender_certificate_name", str)
    if tls_name is not None:
        try:
            parse_connector_name(tls_name)
        except InvalidName as err:
            raise reader.error("tls_sender_certificate_name", f"{tls_name!r}: {err}") from None
    ips = _ipv4_list(reader, "sender_ip_addresses")
    associated = tuple(
        _domain(reader, f"associated_accepted_domains[{i}]", v)
        for i, v in enumerate(reader.strings("associated_accepted_domains"))
    )
    certificate = _certificate_source(reader, base_dir)
    reader.finish()
    return Connector(
        name=name,
        type=ctype,
        enabled=enabled,
        tls_sender_certificate_name=tls_name,
        sender_ip_addresses=ips,
        certificate=certificate,
        associated_accepted_domains=associated,
        source="config",
    )


def _endpoint(reader: _Reader) -> Endpoint:
    name = reader.required("name", str)
    host = reader.required("host", str)
    _domain(reader, "host", host)
    address = reader.opt("address", str)
    if address is not None:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise reader.error("address", f"{address!r} is not an IPv4 or IPv6 address") from None
    port = reader.get("port", int, 25)
    if not 0 < port < 65536:
        raise reader.error("port", f"{port} is not a TCP port (1-65535)")
    tls = reader.choice(
        "tls", TlsMode, TlsMode.IMPLICIT if port == 465 else TlsMode.STARTTLS, "starttls, implicit"
    )
    role = reader.choice("role", EndpointRole, EndpointRole.SMARTHOST, "smarthost, mx, submission")
    reader.finish()
    return Endpoint(name=name, host=host, address=address, port=port, tls=tls, role=role)


def _forward(reader: _Reader) -> Forward:
    mailbox = reader.required("mailbox", str)
    to = reader.required("to", str)
    for key, value in (("mailbox", mailbox), ("to", to)):
        try:
            parse_address(value, role=key)
        except AddressError as err:
            raise reader.error(key, str(err)) from None
    reader.finish()
    return Forward(mailbox=mailbox, to=to)


def _array(reader: _Reader, name: str) -> list[_Reader]:
    reader.used.add(name)
    value = reader.table.get(name, [])
    if not isinstance(value, list):
        raise reader.error(
            name, f"expected an array of tables ([[{name}]]), got {_type_name(value)}"
        )
    return [
        _Reader(item, path=f"{reader.key(name)}[{index}]", file=reader.file)
        for index, item in enumerate(value)
    ]


def _unique(items: list[T], key: Callable[[T], str], what: str, file: str) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        value = key(item)
        if value in seen:
            raise ConfigError(f"duplicate name {value!r}", file=file, key=f"{what}[{index}].name")
        seen.add(value)


def _url(reader: _Reader, name: str, default: str) -> str:
    value = reader.get(name, str, default)
    if not value.startswith(("https://", "http://")):
        raise reader.error(name, f"{value!r} is not an http(s) URL")
    return value if value.endswith("/") else value + "/"


def _probe(reader: _Reader) -> ProbeSettings:
    defaults = ProbeSettings()
    ehlo = reader.get("ehlo_name", str, defaults.ehlo_name)
    ehlo_ascii = _domain(reader, "ehlo_name", ehlo)
    if ehlo_ascii in ("localhost", "localhost.localdomain") or "." not in ehlo_ascii:
        raise reader.error(
            "ehlo_name", "use a fully qualified name of the probing host, not localhost"
        )
    settings = ProbeSettings(
        timeout_seconds=reader.positive("timeout_seconds", float, defaults.timeout_seconds),
        greeting_timeout_seconds=reader.positive(
            "greeting_timeout_seconds", float, defaults.greeting_timeout_seconds
        ),
        deadline_seconds=reader.positive("deadline_seconds", float, defaults.deadline_seconds),
        concurrency=reader.positive("concurrency", int, defaults.concurrency),
        ehlo_name=ehlo_ascii,
        max_reply_bytes=reader.positive("max_reply_bytes", int, defaults.max_reply_bytes),
        mx_port=reader.get("mx_port", int, defaults.mx_port),
        every_key_type=reader.get("every_key_type", bool, defaults.every_key_type),
    )
    if not 0 < settings.mx_port < 65536:
        raise reader.error("mx_port", f"{settings.mx_port} is not a TCP port (1-65535)")
    reader.finish()
    return settings


def _dns(reader: _Reader, *, enabled_by_default: bool) -> DnsSettings:
    defaults = DnsSettings()
    servers = reader.strings("nameservers")
    for index, value in enumerate(servers):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise reader.error(f"nameservers[{index}]", f"{value!r} is not an IP address") from None
    port = reader.get("port", int, 53)
    if not 0 < port < 65536:
        raise reader.error("port", f"{port} is not a UDP/TCP port (1-65535)")
    settings = DnsSettings(
        enabled=reader.get("enabled", bool, enabled_by_default),
        nameservers=servers,
        port=port,
        timeout_seconds=reader.positive("timeout_seconds", float, defaults.timeout_seconds),
        mta_sts_port=reader.get("mta_sts_port", int, defaults.mta_sts_port),
    )
    if not 0 < settings.mta_sts_port < 65536:
        raise reader.error("mta_sts_port", f"{settings.mta_sts_port} is not a TCP port (1-65535)")
    reader.finish()
    return settings


def _microsoft365(reader: _Reader) -> Microsoft365Settings:
    defaults = Microsoft365Settings()
    settings = Microsoft365Settings(
        tenant_id=reader.opt("tenant_id", str),
        client_id=reader.opt("client_id", str),
        client_secret_env=reader.get("client_secret_env", str, defaults.client_secret_env),
        client_certificate_env=reader.get(
            "client_certificate_env", str, defaults.client_certificate_env
        ),
        graph_url=_url(reader, "graph_url", defaults.graph_url),
        login_url=_url(reader, "login_url", defaults.login_url),
        timeout_seconds=reader.positive("timeout_seconds", float, defaults.timeout_seconds),
    )
    if bool(settings.tenant_id) != bool(settings.client_id):
        missing = "client_id" if settings.tenant_id else "tenant_id"
        raise reader.error(missing, "is required when the other of tenant_id/client_id is set")
    reader.finish()
    return settings


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_NAME = re.compile(r"#?[a-z0-9][a-z0-9._-]{0,79}")


def _users(reader: _Reader) -> tuple[str, ...]:
    values = reader.strings("allowed_users")
    for index, value in enumerate(values):
        if not _USER_ID.fullmatch(value):
            raise reader.error(
                f"allowed_users[{index}]",
                f"{value!r} is not a Slack user id (such as U0123ABCD; names can change, ids not)",
            )
    return values


def _channels(reader: _Reader) -> tuple[str, ...]:
    values = reader.strings("allowed_channels")
    for index, value in enumerate(values):
        if not (_CHANNEL_ID.fullmatch(value) or _CHANNEL_NAME.fullmatch(value)):
            raise reader.error(
                f"allowed_channels[{index}]",
                f"{value!r} is neither a channel id (C0123ABCD) nor a channel name (#ops)",
            )
    return values


def _slack(reader: _Reader) -> SlackSettings:
    defaults = SlackSettings()
    port = reader.get("port", int, defaults.port)
    if not 0 < port < 65536:
        raise reader.error("port", f"{port} is not a TCP port (1-65535)")
    domains = tuple(
        _domain(reader, f"probe_allowed_domains[{i}]", v.removeprefix("*."))
        for i, v in enumerate(reader.strings("probe_allowed_domains"))
    )
    settings = SlackSettings(
        mode=reader.choice("mode", SlackMode, defaults.mode, "socket, http"),
        port=port,
        alerts_channel=reader.opt("alerts_channel", str),
        api_url=_url(reader, "api_url", defaults.api_url),
        allowed_channels=_channels(reader),
        allowed_users=_users(reader),
        probe_allowed_domains=domains,
        allow_private_targets=reader.get("allow_private_targets", bool, False),
    )
    reader.finish()
    return settings


def _schedule(reader: _Reader) -> ScheduleSettings:
    defaults = ScheduleSettings()
    timezone = reader.get("timezone", str, defaults.timezone)
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise reader.error("timezone", f"{timezone!r} is not a known IANA time zone") from None
    values = {}
    for name in ("certificates", "domains", "digest"):
        text = reader.get(name, str, getattr(defaults, name))
        try:
            values[name] = parse_schedule(text).text
            build_trigger(text, timezone)
        except InvalidSchedule as err:
            raise reader.error(name, f"{text!r}: {err}") from None
    reader.finish()
    return ScheduleSettings(timezone=timezone, **values)


def _alerts(reader: _Reader) -> AlertSettings:
    defaults = AlertSettings()
    steps_value = reader.get("expiry_steps", list, list(defaults.expiry_steps))
    if not steps_value or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in steps_value
    ):
        raise reader.error(
            "expiry_steps", "expected a list of whole days, such as [30, 14, 7, 3, 1]"
        )
    runbook = reader.opt("runbook_url", str)
    if runbook is not None and not runbook.startswith(("https://", "http://")):
        raise reader.error("runbook_url", f"{runbook!r} is not an http(s) URL")
    settings = AlertSettings(
        runbook_url=runbook,
        expiry_steps=tuple(sorted(set(steps_value), reverse=True)),
        flap_runs=reader.positive("flap_runs", int, defaults.flap_runs),
        digest_days=reader.positive("digest_days", int, defaults.digest_days),
    )
    reader.finish()
    return settings


def parse_config(raw: Mapping[str, Any], *, base_dir: Path, source: str = "<config>") -> Config:
    """Validate a parsed TOML document; relative paths resolve against `base_dir`."""
    top = _Reader(raw, path="", file=source)
    if not top.has("tenant"):
        raise ConfigError("the [tenant] table is required", file=source, key="tenant")
    tenant = _tenant(top.sub("tenant"), base_dir)
    connectors = [_connector(r, base_dir) for r in _array(top, "connectors")]
    endpoints = [_endpoint(r) for r in _array(top, "endpoints")]
    forwards = [_forward(r) for r in _array(top, "forwards")]
    _unique(connectors, lambda c: c.name, "connectors", source)
    _unique(endpoints, lambda e: e.name, "endpoints", source)
    names = {e.name for e in endpoints}
    for index, connector in enumerate(connectors):
        ref = connector.certificate.endpoint if connector.certificate else None
        if ref is not None and ref not in names:
            raise ConfigError(
                f"names endpoint {ref!r}, which no [[endpoints]] entry defines",
                file=source,
                key=f"connectors[{index}].certificate.endpoint",
            )

    thresholds_reader = top.sub("thresholds")
    warning_days = thresholds_reader.get("warning_days", int, 30)
    critical_days = thresholds_reader.get("critical_days", int, 7)
    if critical_days < 0 or warning_days < 0:
        raise thresholds_reader.error("warning_days", "days cannot be negative")
    if critical_days > warning_days:
        raise thresholds_reader.error("critical_days", "must not be larger than warning_days")
    max_validity_days = thresholds_reader.positive("max_validity_days", int, 398)
    thresholds_reader.finish()

    revocation_reader = top.sub("revocation")
    revocation = RevocationSettings(
        enabled=revocation_reader.get("enabled", bool, True),
        timeout_seconds=revocation_reader.positive("timeout_seconds", float, 5.0),
        soft_fail=revocation_reader.get("soft_fail", bool, True),
    )
    revocation_reader.finish()

    trust_reader = top.sub("trust")
    ca_file = trust_reader.opt("ca_file", str)
    trust_reader.finish()

    state_reader = top.sub("state")
    state_path = state_reader.opt("path", str)
    state_reader.finish()

    config = Config(
        source=Path(source) if source != "<config>" else None,
        tenant=tenant,
        connectors=tuple(connectors),
        endpoints=tuple(endpoints),
        forwards=tuple(forwards),
        thresholds=Thresholds(
            warning_days=warning_days,
            critical_days=critical_days,
            max_validity_days=max_validity_days,
        ),
        trust=Trust(ca_file=_path(base_dir, ca_file) if ca_file else None),
        revocation=revocation,
        probe=_probe(top.sub("probe")),
        # DNS checks ask a resolver about the tenant's domains: they run when the config says
        # which resolver ([dns]) or what the MX must be (mx_expected), never by surprise
        dns=_dns(top.sub("dns"), enabled_by_default=top.has("dns") or bool(tenant.mx_expected)),
        microsoft365=_microsoft365(top.sub("microsoft365")),
        slack=_slack(top.sub("slack")),
        schedule=_schedule(top.sub("schedule")),
        # unset: in the working folder (where the daemon or cron job runs), not the config's
        state=StateSettings(path=_path(base_dir, state_path)) if state_path else StateSettings(),
        alerts=_alerts(top.sub("alerts")),
        checks=_checks(top.sub("checks")),
    )
    top.finish()
    return config


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration file."""
    shown = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", file=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a configuration file", file=shown) from None
    except OSError as err:
        raise ConfigError(f"cannot read ({err.strerror})", file=shown) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", file=shown) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML ({err})", file=shown) from None
    except RecursionError:
        raise ConfigError("not a usable configuration (nested too deeply)", file=shown) from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"not valid TOML ({str(err)[:120]})", file=shown) from None
    return parse_config(raw, base_dir=path.resolve().parent, source=shown)
