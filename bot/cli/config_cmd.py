"""`relaycheck config check FILE` and `relaycheck config schema`.

`check` lists EVERY problem in one run, one line each (file: key: problem) on stderr, exit 2:
the keys (all of them, not the first), the files the configuration names (exports, ca_file,
certificate files, a PFX with its password variable) and the Slack variables `serve` would
read. A clean file prints what was understood and which optional parts are active.
`schema` prints the JSON Schema (draft 2020-12) generated from the parser's own declarations.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.slack.settings import load_settings
from checks.config import config_schema, read_toml, validate_config
from checks.config_files import file_problems
from checks.errors import ConfigError, SettingsError
from checks.i18n import _
from checks.model import Config
from checks.observe import shown_path
from checks.probes.exports import load_tenant
from checks.report import escape_invisible
from checks.rules.names import display_domain


def _say(line: str) -> None:
    """Tenant and connector names come from exports: shown with invisible characters escaped."""
    print(escape_invisible(line))


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        dest="config_action", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    check = actions.add_parser("check", help="validate a configuration file and print what it says")
    check.add_argument("file", metavar="FILE", help="configuration file (TOML)")
    check.set_defaults(handler=run_check)
    schema = actions.add_parser(
        "schema",
        help="print the configuration's JSON Schema (draft 2020-12)",
        description="Print the JSON Schema of the configuration file (draft 2020-12), generated "
        "from the declarations the parser uses; editors and CI can validate with it.",
    )
    schema.set_defaults(handler=run_schema)


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0


def problems(path: Path, environ: Mapping[str, str]) -> tuple[Config | None, list[str]]:
    """Every problem of the file as one line each (file: key: problem)."""
    try:
        raw = read_toml(path)
    except ConfigError as err:
        return None, [str(err)]
    config, errors = validate_config(raw, base_dir=path.resolve().parent, source=str(path))
    lines = [str(e) for e in errors]
    lines.extend(str(e) for e in file_problems(config, environ))
    try:
        load_settings(environ, mode=config.slack.mode)
    except SettingsError as err:
        lines.append(f"{path}: environment: {err}")
    return config, lines


def active_parts(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Which optional parts this configuration turns on, one line each."""
    m365 = config.microsoft365
    if m365.enabled:
        secret = "set" if environ.get(m365.client_secret_env) else "not set"
        cert = environ.get(m365.client_certificate_env)
        credential = (
            f"certificate from ${m365.client_certificate_env}"
            if cert
            else f"secret ${m365.client_secret_env} ({secret})"
        )
        graph = f"on (tenant {m365.tenant_id}, {credential})"
    else:
        graph = "off (no [microsoft365] tenant_id/client_id)"
    dns = config.dns
    if dns.enabled:
        via = ", ".join(dns.nameservers) if dns.nameservers else "the system resolver"
        dns_line = f"on, asking {via}"
    else:
        dns_line = "off (add a [dns] section or [tenant] mx_expected)"
    settings = load_settings(environ, mode=config.slack.mode)
    slack = config.slack
    if settings.console:
        slack_line = "console (no Slack variables: alerts go to the log)"
    elif slack.mode.value == "http":
        slack_line = f"http mode on {slack.host}:{slack.port}/slack/events"
    else:
        slack_line = "socket mode"
    if not settings.console:
        slack_line += (
            f", alerts to {slack.alerts_channel}" if slack.alerts_channel else ", no alerts_channel"
        )
    server = config.server
    metrics = (
        f"on http://{server.host}:{server.metrics_port} (/metrics, /healthz, /readyz)"
        if server.enabled
        else "off (set [server] metrics_port)"
    )
    return [
        f"Microsoft Graph: {graph}",
        f"DNS checks (mx, dns): {dns_line}",
        f"Slack: {slack_line}",
        f"Metrics and health: {metrics}",
        f"Logs: {config.log.format.value} at {config.log.level}",
        f"State: {shown_path(config.state.path)}",
    ]


def run_check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    config, lines = problems(path, os.environ)
    if lines:
        for line in lines:
            print(escape_invisible(line), file=sys.stderr)
        return 2
    assert config is not None
    facts = load_tenant(config)
    _say(_("{file}: OK").format(file=args.file))
    sources = [s if s == "config" else shown_path(Path(s)) for s in facts.sources]
    _say(
        _("Tenant: {name} (sources: {sources})").format(name=facts.name, sources=", ".join(sources))
    )
    _say(_("Accepted domains:"))
    for domain in facts.accepted_domains:
        extra = [domain.domain_type or "", _("default") if domain.default else ""]
        if domain.match_subdomains:
            extra.append("MatchSubDomains")
        shown = ", ".join(e for e in extra if e)
        _say(f"  {display_domain(domain.name)}" + (f" ({shown})" if shown else ""))
    if not facts.accepted_domains:
        _say("  " + _("(none)"))
    _say(_("Connectors:"))
    for c in facts.connectors:
        ident = []
        if c.tls_sender_certificate_name:
            ident.append(_("certificate {name}").format(name=c.tls_sender_certificate_name))
        if c.sender_ip_addresses:
            ident.append("IP " + ", ".join(c.sender_ip_addresses))
        state = _("enabled") if c.enabled else _("DISABLED")
        cert = ""
        if c.certificate is not None:
            file = c.certificate.file
            origin = (
                shown_path(file)
                if file
                else _("endpoint {name}").format(name=c.certificate.endpoint)
            )
            cert = "; " + _("certificate from {origin}").format(origin=origin)
        how = _(" and ").join(ident) or _("no identification")
        _say(f"  {c.name}: {c.type.value}, {state}, {how}{cert}")
    if not facts.connectors:
        _say("  " + _("(none)"))
    _say(_("Endpoints:"))
    for e in config.endpoints:
        where = f"{e.address} " if e.address else ""
        _say(
            f"  {e.name}: {e.host} {where}"
            + _("port {port}").format(port=e.port)
            + f" {e.tls.value} ({e.role.value})"
        )
    if not config.endpoints:
        _say("  " + _("(none)"))
    if config.forwards:
        _say(_("Forwards:"))
        for f in config.forwards:
            _say(f"  {f.mailbox} -> {f.to}")
    scenarios = ", ".join(s.value for s in config.tenant.relay_scenarios) or "none"
    _say(f"Relay readiness (relay-scenario): {scenarios}")
    policy = config.checks
    if policy.disabled:
        _say(
            _("Checks disabled: {checks}").format(
                checks=", ".join(sorted(c.value for c in policy.disabled))
            )
        )
    for check, severity in sorted(policy.severity.items()):
        _say(f"Check {check.value} reported as {severity.value}")
    _say("Active:")
    for line in active_parts(config, os.environ):
        _say(f"  {line}")
    for note in facts.notes:
        _say(_("Note: {note}").format(note=note))
    return 0
