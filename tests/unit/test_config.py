"""Configuration: every documented key loads; every mistake names file, key and problem."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest

from checks.config import load_config, parse_config
from checks.errors import ConfigError, ExportError
from checks.model import ConnectorType, EndpointRole, SlackMode, TlsMode
from checks.probes.exports import load_tenant
from checks.rules.schedule import InvalidSchedule, build_trigger, validate_schedule
from checks.rules.tenant import parse_accepted_domains, parse_inbound_connectors

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "contoso" / "relaycheck.toml"

FULL = """
[tenant]
name = "contoso"
accepted_domains = ["contoso.com", "contoso.co.jp"]
accepted_domains_file = "exports/accepted-domains.json"
connectors_file = "exports/inbound-connectors.json"
sender_domains = ["contoso.com"]
mx_expected = ["exchange-online"]

[[connectors]]
name = "From on-prem"
type = "OnPremises"
enabled = true
tls_sender_certificate_name = "*.contoso.com"
sender_ip_addresses = ["203.0.113.10"]
certificate = { endpoint = "mail1" }

[[connectors]]
name = "From the MTA file"
tls_sender_certificate_name = "*.contoso.com"
certificate = { file = "certs/mail1.pfx", password_env = "MAIL1_PFX_PASSWORD" }

[[endpoints]]
name = "mail1"
host = "mail1.contoso.com"
address = "192.0.2.25"
port = 25
tls = "starttls"
role = "smarthost"

[[endpoints]]
name = "submission"
host = "smtp.contoso.com"
port = 465
role = "submission"

[[forwards]]
mailbox = "kate@contoso.com"
to = "kate@tailspintoys.com"

[thresholds]
warning_days = 30
critical_days = 7

[trust]
ca_file = "certs/private-ca.pem"

[probe]
timeout_seconds = 5
concurrency = 8
ehlo_name = "probe.contoso.com"

[dns]
nameservers = ["127.0.0.1"]
port = 5353

[microsoft365]
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "11111111-1111-1111-1111-111111111111"

[slack]
mode = "http"
port = 3000
alerts_channel = "C0123ALERTS"
api_url = "https://slack.com/api/"
allowed_channels = []

[schedule]
timezone = "Asia/Tokyo"
certificates = "every 30m"
domains = "15 7 * * *"
digest = "0 9 * * MON"

[state]
path = "state/relaycheck.sqlite3"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relaycheck.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_config_loads_with_documented_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.tenant.name == "contoso"
    assert [d.name for d in config.tenant.accepted_domains] == ["contoso.com", "contoso.co.jp"]
    assert config.tenant.accepted_domains_file == tmp_path / "exports/accepted-domains.json"
    first, second = config.connectors
    assert first.type is ConnectorType.ON_PREMISES
    assert first.certificate is not None
    assert first.certificate.endpoint == "mail1"
    assert second.certificate is not None
    assert second.certificate.file == tmp_path / "certs/mail1.pfx"
    assert second.certificate.password_env == "MAIL1_PFX_PASSWORD"
    mail1, submission = config.endpoints
    assert mail1.tls is TlsMode.STARTTLS
    assert mail1.role is EndpointRole.SMARTHOST
    assert submission.tls is TlsMode.IMPLICIT  # port 465 defaults to implicit TLS
    assert config.trust.ca_file == tmp_path / "certs/private-ca.pem"
    assert config.slack.mode is SlackMode.HTTP
    assert config.schedule.certificates == "every 30m"
    assert config.state.path == tmp_path / "state/relaycheck.sqlite3"
    assert config.microsoft365.enabled


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    facts = load_tenant(config)
    assert "contoso.com" in facts.accepted_names()
    names = [c.name for c in facts.connectors]
    assert "Inbound from Contoso on-prem" in names
    merged = next(c for c in facts.connectors if c.name == "Inbound from Contoso on-prem")
    assert merged.tls_sender_certificate_name == "*.contoso.com"
    assert merged.certificate is not None  # config adds the source to the exported connector


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({}, "tenant", "required"),
    ({"tenant": {"nmae": "x"}}, "tenant.nmae", "unknown key"),
    ({"tenant": {}, "extra": 1}, "extra", "unknown key"),
    (
        {"tenant": {"accepted_domains": "contoso..com"}},
        "tenant.accepted_domains[0]",
        "not a valid domain",
    ),
    ({"tenant": {"accepted_domains": [1]}}, "tenant.accepted_domains", "list of strings"),
    ({"tenant": {}, "connectors": [{}]}, "connectors[0].name", "required"),
    ({"tenant": {}, "connectors": {"name": "x"}}, "connectors", "array of tables"),
    (
        {"tenant": {}, "connectors": [{"name": "x", "type": "Onprem"}]},
        "connectors[0].type",
        "OnPremises, Partner",
    ),
    (
        {
            "tenant": {},
            "connectors": [{"name": "x", "tls_sender_certificate_name": "mail.*.contoso.com"}],
        },
        "connectors[0].tls_sender_certificate_name",
        "wildcard",
    ),
    (
        {"tenant": {}, "connectors": [{"name": "x", "sender_ip_addresses": ["2001:db8::1"]}]},
        "sender_ip_addresses[0]",
        "IPv4",
    ),
    (
        {"tenant": {}, "connectors": [{"name": "x", "certificate": {}}]},
        "connectors[0].certificate",
        "exactly one",
    ),
    (
        {"tenant": {}, "connectors": [{"name": "x", "certificate": {"endpoint": "nope"}}]},
        "certificate.endpoint",
        "no [[endpoints]]",
    ),
    (
        {"tenant": {}, "connectors": [{"name": "x"}, {"name": "x"}]},
        "connectors[1].name",
        "duplicate",
    ),
    ({"tenant": {}, "endpoints": [{"name": "a"}]}, "endpoints[0].host", "required"),
    (
        {"tenant": {}, "endpoints": [{"name": "a", "host": "h.example", "port": 70000}]},
        "endpoints[0].port",
        "TCP port",
    ),
    (
        {"tenant": {}, "endpoints": [{"name": "a", "host": "h.example", "tls": "ssl"}]},
        "endpoints[0].tls",
        "starttls, implicit",
    ),
    (
        {"tenant": {}, "endpoints": [{"name": "a", "host": "h.example", "address": "mail"}]},
        "endpoints[0].address",
        "IPv4 or IPv6",
    ),
    (
        {"tenant": {}, "forwards": [{"mailbox": "kate", "to": "k@t.com"}]},
        "forwards[0].mailbox",
        "no '@'",
    ),
    (
        {"tenant": {}, "thresholds": {"warning_days": 5, "critical_days": 7}},
        "thresholds.critical_days",
        "larger",
    ),
    ({"tenant": {}, "thresholds": {"warning_days": True}}, "thresholds.warning_days", "boolean"),
    ({"tenant": {}, "probe": {"ehlo_name": "localhost"}}, "probe.ehlo_name", "not localhost"),
    ({"tenant": {}, "probe": {"concurrency": 0}}, "probe.concurrency", "greater than 0"),
    ({"tenant": {}, "schedule": {"digest": "0 9 * * 1"}}, "schedule.digest", "day names"),
    ({"tenant": {}, "schedule": {"certificates": "every 5s"}}, "schedule.certificates", "1 minute"),
    ({"tenant": {}, "schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone", "time zone"),
    (
        {"tenant": {}, "schedule": {"certificates": "99 * * * *"}},
        "schedule.certificates",
        "not a valid cron",
    ),
    (
        {"tenant": {}, "schedule": {"domains": "0 0 31 2-13 *"}},
        "schedule.domains",
        "not a valid cron",
    ),
    ({"tenant": {}, "slack": {"mode": "rtm"}}, "slack.mode", "socket, http"),
    ({"tenant": {}, "microsoft365": {"tenant_id": "x"}}, "microsoft365.client_id", "required"),
    ({"tenant": {}, "dns": {"nameservers": ["dns.example"]}}, "dns.nameservers[0]", "IP address"),
]


@pytest.mark.parametrize(("raw", "key", "problem"), BAD)
def test_bad_config_names_file_key_and_problem(raw: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir=Path("."), source="site.toml")
    message = str(caught.value)
    assert message.startswith("site.toml: ")
    assert key in message
    assert problem in message
    assert "\n" not in message


def test_unreadable_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[tenant\nname = 1"))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


# --- PowerShell exports ----------------------------------------------------------------------

DOMAINS = [
    {
        "DomainName": "contoso.com",
        "DomainType": "Authoritative",
        "Default": True,
        "MatchSubDomains": False,
    },
    {"DomainName": "Contoso.CO.JP", "DomainType": 2, "Default": False},
]


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
        lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        lambda text: text.encode("utf-16-le"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le-no-bom"],
)
def test_accepted_domains_load_in_every_powershell_encoding(encode: Any) -> None:
    domains = parse_accepted_domains(encode(json.dumps(DOMAINS, indent=4)), "domains.json")
    assert [d.name for d in domains] == ["contoso.com", "contoso.co.jp"]
    assert domains[0].default
    assert (
        domains[1].domain_type == "InternalRelay"
    )  # Windows PowerShell 5.1 writes enums as numbers


def test_single_object_export_is_one_record() -> None:
    one = json.dumps(
        {"Name": "c", "ConnectorType": "OnPremises", "TlsSenderCertificateName": "*.contoso.com"}
    )
    connectors = parse_inbound_connectors(one.encode(), "connectors.json")
    assert len(connectors) == 1
    assert connectors[0].tls_sender_certificate_name == "*.contoso.com"
    assert connectors[0].enabled


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "is empty"),
        (b'[{"DomainName": "contoso.com"', "not valid JSON"),
        (b"\xff\xfe\x00\xd8", "not UTF-8 or UTF-16"),
        (b'[{"Name": "x"}]', "no DomainName"),
        (b'"contoso.com"', "expected Get-AcceptedDomain objects"),
        (b'[{"DomainName": 5}]', "not a string"),
    ],
)
def test_bad_accepted_domain_exports(data: bytes, problem: str) -> None:
    with pytest.raises(ExportError) as caught:
        parse_accepted_domains(data, "domains.json")
    assert problem in str(caught.value)
    assert str(caught.value).startswith("domains.json")


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"ConnectorType": "OnPremises"}, "no Name"),
        ({"Name": "c"}, "no ConnectorType"),
        ({"Name": "c", "ConnectorType": 2}, "is not OnPremises or Partner"),
        (
            {"Name": "c", "ConnectorType": "OnPremises", "TlsSenderCertificateName": "a.*.b.com"},
            "wildcard",
        ),
        ({"Name": "c", "ConnectorType": "OnPremises", "Enabled": "yes"}, "Enabled"),
        (
            {"Name": "c", "ConnectorType": "OnPremises", "SenderIPAddresses": [1]},
            "SenderIPAddresses",
        ),
    ],
)
def test_bad_connector_exports(record: dict[str, Any], problem: str) -> None:
    with pytest.raises(ExportError, match=problem):
        parse_inbound_connectors(json.dumps([record]).encode(), "connectors.json")


def test_state_defaults_to_the_working_folder(tmp_path: Path) -> None:
    """Issue 6: `[state] path` defaults to the working folder, not the config's folder."""
    config = load_config(write(tmp_path, '[tenant]\nname = "x"\n'))
    assert config.state.path == Path("relaycheck.sqlite3")
    assert not config.state.path.is_absolute()
    explicit = load_config(write(tmp_path, '[tenant]\nname = "x"\n[state]\npath = "s.db"\n'))
    assert explicit.state.path == tmp_path / "s.db"


@pytest.mark.parametrize(
    ("raw", "enabled"),
    [
        ({"tenant": {"accepted_domains": ["contoso.com"]}}, False),
        ({"tenant": {"accepted_domains": ["contoso.com"]}, "dns": {}}, True),
        ({"tenant": {"mx_expected": "exchange-online"}}, True),
        ({"tenant": {"mx_expected": "exchange-online"}, "dns": {"enabled": False}}, False),
        ({"tenant": {}, "dns": {"nameservers": ["127.0.0.1"]}}, True),
    ],
)
def test_dns_checks_run_when_the_config_asks_for_them(raw: dict[str, Any], enabled: bool) -> None:
    assert parse_config(raw, base_dir=Path(".")).dns.enabled is enabled


def test_access_policy_keys_are_validated() -> None:
    def slack(**values: Any) -> Any:
        return parse_config({"tenant": {"name": "c"}, "slack": values}, base_dir=Path()).slack

    settings = slack(allowed_users=["U0123ONCALL"], allowed_channels=["C0123OPS", "#mail-ops"])
    assert settings.allowed_users == ("U0123ONCALL",)
    assert settings.allowed_channels == ("C0123OPS", "#mail-ops")
    with pytest.raises(ConfigError, match=r"slack\.allowed_users\[0\].*not a Slack user id"):
        slack(allowed_users=["kate"])
    with pytest.raises(ConfigError, match=r"slack\.allowed_channels\[0\].*neither a channel id"):
        slack(allowed_channels=["#Mail Ops!"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ConfigError, match=r"probe\.timeout_seconds.*finite"):
        parse_config(
            {"tenant": {"name": "c"}, "probe": {"timeout_seconds": value}}, base_dir=Path()
        )


@pytest.mark.parametrize(
    "expression",
    [
        "0 */6 * * *",
        "15 7 * * *",
        "0 9 * * MON",
        "*/15 8-18 * * mon-fri",
        "0,30 1,2 1-31/2 1-12 SAT,sun",
        "59 23 31 12 *",
        "60 * * * *",
        "0 24 * * *",
        "0 0 0 * *",
        "0 0 31 2-13 *",
        "0 0 * * FRI-MON",
        "*/0 * * * *",
        "0 0 L * *",
        "0 0 * jan *",
        "5-2 * * * *",
    ],
)
def test_schedule_fast_path_agrees_with_apscheduler(expression: str) -> None:
    """Plain cron fields are validated without APScheduler; the verdict must be the same."""
    try:
        build_trigger(expression, "UTC")
        expected = True
    except InvalidSchedule:
        expected = False
    try:
        validate_schedule(expression, "UTC")
        got = True
    except InvalidSchedule:
        got = False
    assert got == expected, expression
