"""`relaycheck serve --config FILE`: run the Slack bot and the scheduled checks."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bot.alerting.store import Store
from bot.cli.logopts import add_log_format_argument, setup_logging
from bot.runtime.serve import serve_until_signalled
from bot.slack.settings import load_settings
from checks.config import load_config


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the Slack bot and the scheduled checks. Secrets come from the environment: "
        "SLACK_BOT_TOKEN, SLACK_APP_TOKEN (socket mode), SLACK_SIGNING_SECRET (http mode), "
        "or their *_FILE variants. Without any, checks run and alerts go to the console. "
        "[server] metrics_port turns on /healthz, /readyz and /metrics."
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE")
    add_log_format_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = load_settings(os.environ, mode=config.slack.mode)
    setup_logging(args, config, settings)

    def ready(description: str) -> None:
        print(f"relaycheck: serving ({description})", file=sys.stderr, flush=True)

    with Store.from_config(config, os.environ) as store:
        asyncio.run(serve_until_signalled(config, settings, store=store, on_ready=ready))
    return 0
