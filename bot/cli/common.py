"""What several commands share: finding the configuration and reading the clock.

The clock is read here, in the shell, and passed into the rules as `now`; `--at` lets an admin
ask "will this still relay on the day the certificate expires?" without touching the system clock.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from checks.config import load_config
from checks.errors import ConfigError, RelaycheckError
from checks.i18n import set_language
from checks.model import Config
from checks.report import EXIT_UNKNOWN

T = TypeVar("T")

CONFIG_ENV = "RELAYCHECK_CONFIG"
DEFAULT_NAME = "relaycheck.toml"
# The example tenant shipped with the source tree: the embedded default for a first run.
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "contoso" / "relaycheck.toml"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"configuration file (default: ${CONFIG_ENV}, ./{DEFAULT_NAME}, else the built-in "
        "Contoso example)",
    )


def add_tenant_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tenant",
        metavar="NAME",
        help="whose state to read (default: the configuration's [tenant] name); one store can "
        "hold several tenants",
    )


def add_time_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="judge certificates as of this ISO 8601 time instead of now (what-if)",
    )


def config_path(args: argparse.Namespace) -> Path:
    """The configuration file to use, in order: --config, $RELAYCHECK_CONFIG, ./relaycheck.toml."""
    explicit = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    local = Path(DEFAULT_NAME)
    if local.is_file():
        return local
    if EXAMPLE_CONFIG.is_file():
        print(
            f"relaycheck: no configuration given; using the built-in Contoso example "
            f"(pass --config FILE or set {CONFIG_ENV})",
            file=sys.stderr,
        )
        return EXAMPLE_CONFIG
    raise ConfigError(f"no configuration: pass --config FILE or set {CONFIG_ENV}")


def resolve_config(args: argparse.Namespace) -> Config:
    """The configuration; its `[locale] language` becomes the output's unless --lang was given."""
    config = load_config(config_path(args))
    if config.locale.language is not None and not getattr(args, "lang", None):
        set_language(config.locale.language)
    return config


def now_from(args: argparse.Namespace) -> datetime:
    text = getattr(args, "at", None)
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RelaycheckError(
            f"--at: {text!r} is not an ISO 8601 time (e.g. 2027-03-01T00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def monitoring_command(parser: argparse.ArgumentParser) -> None:
    """Mark a subcommand that speaks the monitoring-plugin convention (`scan`, `run-once`):
    there 2 means critical, so bad input (usage, config, a missing file) exits 3, UNKNOWN."""
    # read by the CLI's parser class for usage errors, and by main() for RelaycheckError
    parser.bad_input_exit = EXIT_UNKNOWN  # type: ignore[attr-defined]
    parser.set_defaults(bad_input_exit=EXIT_UNKNOWN)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, with the result handed out through a holder, not returned by it.

    On Python 3.11 `asyncio.run` builds the repr of the value it returns while it restores the
    SIGINT handler: tens of milliseconds for a scan report of thousands of findings (whose
    certificates carry their DER bytes), seconds for a cycle's. The holder costs nothing."""
    import asyncio  # here, not at the top: `explain` on file sources never needs a loop

    holder: list[T] = []

    async def keep() -> None:
        holder.append(await main)

    asyncio.run(keep())
    return holder[0]


def keep_freed_memory() -> None:
    """Let a one-shot probing command keep the heap memory it frees (glibc; elsewhere nothing).

    asyncio gives every TLS connection a 256 KiB read buffer. Under glibc's dynamic thresholds a
    fresh process keeps trimming and re-faulting that memory as connections come and go: the
    same 500-endpoint scan took 15,000 to 48,000 page faults from run to run, and up to a tenth
    of a second more system time. Heap allocations up to 1 MiB and no trimming under 64 MiB
    made it ~11,000 every time. Not for `serve`: a daemon should give memory back."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to ask, or one without mallopt (musl)
        return
    mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: below this, from the heap
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: keep this much free heap before trimming
