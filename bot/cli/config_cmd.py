"""`relaycheck config check FILE`: validate a configuration and show what was understood."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from checks.config import load_config
from checks.i18n import _
from checks.observe import shown_path
from checks.probes.exports import load_tenant
from checks.rules.names import display_domain


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
    print(_("{file}: OK").format(file=args.file))
    sources = [s if s == "config" else shown_path(Path(s)) for s in facts.sources]
    print(
        _("Tenant: {name} (sources: {sources})").format(name=facts.name, sources=", ".join(sources))
    )
    print(_("Accepted domains:"))
    for domain in facts.accepted_domains:
        extra = [domain.domain_type or "", _("default") if domain.default else ""]
        if domain.match_subdomains:
            extra.append("MatchSubDomains")
        shown = ", ".join(e for e in extra if e)
        print(f"  {display_domain(domain.name)}" + (f" ({shown})" if shown else ""))
    if not facts.accepted_domains:
        print("  " + _("(none)"))
    print(_("Connectors:"))
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
        print(f"  {c.name}: {c.type.value}, {state}, {how}{cert}")
    if not facts.connectors:
        print("  " + _("(none)"))
    print(_("Endpoints:"))
    for e in config.endpoints:
        where = f"{e.address} " if e.address else ""
        print(
            f"  {e.name}: {e.host} {where}"
            + _("port {port}").format(port=e.port)
            + f" {e.tls.value} ({e.role.value})"
        )
    if not config.endpoints:
        print("  " + _("(none)"))
    if config.forwards:
        print(_("Forwards:"))
        for f in config.forwards:
            print(f"  {f.mailbox} -> {f.to}")
    dns = config.dns
    if dns.enabled:
        via = ", ".join(dns.nameservers) if dns.nameservers else _("the system resolver")
        print(_("DNS checks (mx, dns): on, asking {via}").format(via=via))
    else:
        print(_("DNS checks (mx, dns): off (add a [dns] section or [tenant] mx_expected)"))
    scenarios = ", ".join(s.value for s in config.tenant.relay_scenarios) or _("none")
    print(_("Relay readiness (relay-scenario): {scenarios}").format(scenarios=scenarios))
    policy = config.checks
    if policy.disabled:
        print(
            _("Checks disabled: {checks}").format(
                checks=", ".join(sorted(c.value for c in policy.disabled))
            )
        )
    for check, severity in sorted(policy.severity.items()):
        print(
            _("Check {check} reported as {severity}").format(
                check=check.value, severity=severity.value
            )
        )
    for note in facts.notes:
        print(_("Note: {note}").format(note=note))
    return 0
