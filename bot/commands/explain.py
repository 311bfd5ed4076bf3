"""`relaycheck explain "SENDER -> RECIPIENT"`: which relay scenario, and would EXO relay it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from bot.commands.common import add_config_argument, add_time_argument, now_from, resolve_config
from checks.explain import Explanation, explain
from checks.observe import observe_connector_certificates
from checks.rules.addresses import parse_pair
from checks.tenant import load_tenant


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain which relay scenario a sender/recipient pair is and whether it relays",
        description=(
            "Classify SENDER -> RECIPIENT (the SMTP envelope: MAIL FROM and RCPT TO) into a relay "
            "scenario (to-tenant, accepted-sender, ndr, unregistered-sender, forwarding) and say "
            "whether Exchange Online would relay it with today's connectors and certificates."
        ),
    )
    add_config_argument(parser)
    add_time_argument(parser)
    parser.add_argument(
        "--via", metavar="ADDR", help="the on-prem mailbox that forwarded the message"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "pair", nargs="+", metavar="PAIR", help='"SENDER -> RECIPIENT" (use <> for a bounce)'
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    envelope = parse_pair(" ".join(args.pair), via=args.via)
    config = resolve_config(args)
    now = now_from(args)
    facts = load_tenant(config)
    certificates = asyncio.run(observe_connector_certificates(config, facts, now=now))
    result = explain(envelope, facts, forwards=config.forwards, certificates=certificates, now=now)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(result, now=now))
    return 0


def _certificate_line(result: Explanation, now: datetime) -> str | None:
    observation = result.certificate
    if observation is None:
        return None
    leaf = observation.leaf
    if leaf is None:
        return f"not observed ({observation.error})"
    days = (leaf.not_after - now).days
    chain = observation.verdict.status.value if observation.verdict else "not verified"
    return (
        f"{', '.join(leaf.names) or leaf.subject}; valid until {leaf.not_after:%Y-%m-%d} "
        f"({days} days); chain {chain}; from {observation.source}"
    )


def render_text(result: Explanation, *, now: datetime, indent: str = "") -> str:
    env = result.envelope
    sender = env.sender.display if env.sender else "<>"
    lines = [
        f"{indent}{sender} -> {env.recipient.display}"
        + (f" (via {env.via.display})" if env.via else "")
    ]
    lines.append(f"{indent}Scenario:    {result.scenario.value} - {result.scenario.title}")
    if not result.relay:
        verdict = "ACCEPTED: delivered into the tenant (not a relay)"
    elif result.accepted:
        verdict = f"RELAYED through connector '{result.connector}'"
    else:
        verdict = f"REFUSED: {result.smtp_response}"
        if result.smtp_response_aliases:
            verdict += (
                f"\n{indent}             (also seen as: {'; '.join(result.smtp_response_aliases)})"
            )
    lines.append(f"{indent}Verdict:     {verdict}")
    cert = _certificate_line(result, now)
    if cert:
        lines.append(f"{indent}Certificate: {cert}")
    lines.append(f"{indent}Why:")
    lines.extend(f"{indent}  - {reason}" for reason in result.reasons)
    if result.warnings:
        lines.append(f"{indent}Warnings:")
        lines.extend(f"{indent}  ! {warning}" for warning in result.warnings)
    if result.fix:
        lines.append(f"{indent}Fix:")
        lines.extend(f"{indent}  {n}. {step}" for n, step in enumerate(result.fix, 1))
    return "\n".join(lines) + "\n"
