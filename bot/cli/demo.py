"""`relaycheck demo`: the whole chain on loopback, no configuration, no network, no Slack."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from bot.cli.common import EXAMPLE_CONFIG
from bot.demo import run_demo
from checks.errors import ConfigError


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serves the Contoso example's smart host on 127.0.0.1 with a throwaway CA, runs two "
        "scheduled checks around a bad renewal, prints the alerts as 'serve' does without "
        "Slack, and explains the bounce. Nothing leaves this machine."
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    del args
    if not EXAMPLE_CONFIG.is_file():
        raise ConfigError("the built-in Contoso example is missing from this installation")
    return asyncio.run(run_demo(EXAMPLE_CONFIG, out=sys.stdout, now=datetime.now(UTC)))
