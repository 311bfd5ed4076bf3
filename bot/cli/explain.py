"""`relaycheck explain "SENDER -> RECIPIENT"`: which relay scenario, and would EXO relay it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime

from bot.cli.common import add_config_argument, add_time_argument, now_from, resolve_config
from bot.terminal import render_text
from checks.explain import explain
from checks.model import Config
from checks.observe import observe_connector_certificates
from checks.rules.addresses import parse_pair
from checks.rules.certificates import CertificateObservation
from checks.rules.tenant import TenantFacts
from checks.sources import explain_tenant


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Classify SENDER -> RECIPIENT (the SMTP envelope: MAIL FROM and RCPT TO) into a relay "
        "scenario (to-tenant, accepted-sender, ndr, unregistered-sender, forwarding) and say "
        "whether Exchange Online would relay it with today's connectors and certificates."
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
    facts, certificates = asyncio.run(_observe(config, now))
    result = explain(envelope, facts, forwards=config.forwards, certificates=certificates, now=now)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(result, now=now))
    return 0


async def _observe(
    config: Config, now: datetime
) -> tuple[TenantFacts, dict[str, CertificateObservation]]:
    """Everything the answer depends on that is read from the world: tenant and certificates."""
    facts = await explain_tenant(config, now=now, environ=os.environ)
    return facts, await observe_connector_certificates(config, facts, now=now)
