"""`relaycheck serve --config FILE`: run the Slack bot and the scheduled checks."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.alerting.store import Store
from bot.runtime.logs import configure_logging
from bot.runtime.serve import serve_until_signalled
from bot.slack.settings import Settings, load_settings
from checks.config import load_config
from checks.model import Config, LogFormat


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=[f.value for f in LogFormat],
        help="log lines as key=value pairs (default) or JSON objects; overrides [log] format",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the Slack bot (socket or http mode) and the scheduled checks",
        description=(
            "Run the Slack bot and the scheduled checks. Secrets come from the environment: "
            "SLACK_BOT_TOKEN, SLACK_APP_TOKEN (socket mode), SLACK_SIGNING_SECRET (http mode), "
            "or their *_FILE variants. Without any, checks run and alerts go to the console. "
            "[server] metrics_port turns on /healthz, /readyz and /metrics."
        ),
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE")
    add_log_format_argument(parser)
    parser.set_defaults(handler=run)


def secret_values(
    config: Config, settings: Settings | None, environ: Mapping[str, str]
) -> list[str]:
    """Every secret this process may hold, so the log can mask it wherever it shows up."""
    values = []
    if settings is not None:
        for secret in (settings.bot_token, settings.app_token, settings.signing_secret):
            if secret is not None:
                values.append(secret.reveal())
    names = [config.microsoft365.client_secret_env]
    names += [
        c.certificate.password_env
        for c in config.connectors
        if c.certificate is not None and c.certificate.password_env
    ]
    values += [environ[name] for name in names if environ.get(name)]
    return values


def setup_logging(args: argparse.Namespace, config: Config, settings: Settings | None) -> None:
    fmt = LogFormat(args.log_format) if getattr(args, "log_format", None) else config.log.format
    configure_logging(
        fmt=fmt, level=config.log.level, secrets=secret_values(config, settings, os.environ)
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = load_settings(os.environ, mode=config.slack.mode)
    setup_logging(args, config, settings)

    def ready(description: str) -> None:
        print(f"relaycheck: serving ({description})", file=sys.stderr, flush=True)

    with Store.open(config.state.path) as store:
        asyncio.run(serve_until_signalled(config, settings, store=store, on_ready=ready))
    return 0
