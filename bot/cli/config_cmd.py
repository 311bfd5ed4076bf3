"""`relaycheck config check FILE`: validate a configuration and show what was understood."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from checks.config import load_config
from checks.observe import shown_path
from checks.probes.exports import load_tenant
from checks.report import escape_invisible
from checks.rules.names import display_domain


def _say(line: str) -> None:
    """Tenant and connector names come from exports: shown with invisible characters escaped."""
    print(escape_invisible(line))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="work with configuration files")
    actions = parser.add_subparsers(
        dest="config_action", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    check = actions.add_parser("check", help="validate a configuration file and print what it says")
    check.add_argument("file", metavar="FILE", help="configuration file (TOML)")
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    config = load_config(Path(args.file))
    facts = load_tenant(config)
    _say(f"{args.file}: OK")
    sources = [s if s == "config" else shown_path(Path(s)) for s in facts.sources]
    _say(f"Tenant: {facts.name} (sources: {', '.join(sources)})")
    _say("Accepted domains:")
    for domain in facts.accepted_domains:
        extra = [domain.domain_type or "", "default" if domain.default else ""]
        if domain.match_subdomains:
            extra.append("MatchSubDomains")
        shown = ", ".join(e for e in extra if e)
        _say(f"  {display_domain(domain.name)}" + (f" ({shown})" if shown else ""))
    if not facts.accepted_domains:
        _say("  (none)")
    _say("Connectors:")
    for c in facts.connectors:
        ident = []
        if c.tls_sender_certificate_name:
            ident.append(f"certificate {c.tls_sender_certificate_name}")
        if c.sender_ip_addresses:
            ident.append("IP " + ", ".join(c.sender_ip_addresses))
        state = "enabled" if c.enabled else "DISABLED"
        cert = ""
        if c.certificate is not None:
            file = c.certificate.file
            origin = shown_path(file) if file else f"endpoint {c.certificate.endpoint}"
            cert = f"; certificate from {origin}"
        _say(
            f"  {c.name}: {c.type.value}, {state}, {' and '.join(ident) or 'no identification'}{cert}"
        )
    if not facts.connectors:
        _say("  (none)")
    _say("Endpoints:")
    for e in config.endpoints:
        where = f"{e.address} " if e.address else ""
        _say(f"  {e.name}: {e.host} {where}port {e.port} {e.tls.value} ({e.role.value})")
    if not config.endpoints:
        _say("  (none)")
    if config.forwards:
        _say("Forwards:")
        for f in config.forwards:
            _say(f"  {f.mailbox} -> {f.to}")
    dns = config.dns
    if dns.enabled:
        via = ", ".join(dns.nameservers) if dns.nameservers else "the system resolver"
        _say(f"DNS checks (mx, dns): on, asking {via}")
    else:
        _say("DNS checks (mx, dns): off (add a [dns] section or [tenant] mx_expected)")
    scenarios = ", ".join(s.value for s in config.tenant.relay_scenarios) or "none"
    _say(f"Relay readiness (relay-scenario): {scenarios}")
    policy = config.checks
    if policy.disabled:
        _say("Checks disabled: " + ", ".join(sorted(c.value for c in policy.disabled)))
    for check, severity in sorted(policy.severity.items()):
        _say(f"Check {check.value} reported as {severity.value}")
    for note in facts.notes:
        _say(f"Note: {note}")
    return 0
