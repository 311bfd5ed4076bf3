"""`--log-format` and the log set-up shared by `serve` and `run-once`.

The secrets to mask are collected here, where the settings and the environment are at hand:
the Slack tokens and signing secret (as read, direct or from `*_FILE`), the Graph client secret
and every PFX password variable the configuration names.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from bot.runtime.logs import configure_logging
from bot.slack.settings import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, Settings
from checks.model import Config, LogFormat


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=[f.value for f in LogFormat],
        help="log lines as key=value pairs (default) or JSON objects; overrides [log] format",
    )


def secret_values(
    config: Config, settings: Settings | None, environ: Mapping[str, str]
) -> list[str]:
    """Every secret this process may hold, so the log can mask it wherever it shows up."""
    values = []
    if settings is not None:
        for secret in (settings.bot_token, settings.app_token, settings.signing_secret):
            if secret is not None:
                values.append(secret.reveal())
    names = [BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, config.microsoft365.client_secret_env]
    names += [
        c.certificate.password_env
        for c in config.connectors
        if c.certificate is not None and c.certificate.password_env
    ]
    values += [environ[name].strip() for name in names if environ.get(name, "").strip()]
    return values


def setup_logging(args: argparse.Namespace, config: Config, settings: Settings | None) -> None:
    fmt = LogFormat(args.log_format) if getattr(args, "log_format", None) else config.log.format
    configure_logging(
        fmt=fmt, level=config.log.level, secrets=secret_values(config, settings, os.environ)
    )
