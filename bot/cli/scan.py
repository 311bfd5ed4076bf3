"""`relaycheck scan`: run every check once, print a table or JSON, exit like a monitoring plugin."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from bot.cli.common import (
    add_config_argument,
    add_time_argument,
    now_from,
    resolve_config,
    run_async,
)
from checks.errors import RelaycheckError
from checks.model import CheckId, Config
from checks.report import EXIT_UNKNOWN, dumps_json, exit_code, render_table

if TYPE_CHECKING:
    from datetime import datetime

    from checks.scan import Progress, ScanReport


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Probe every configured endpoint (SMTP STARTTLS or implicit TLS), read certificate "
        "files, and judge certificates, connectors and domains. Exit code: 0 ok, 1 warning, "
        "2 critical, 3 the scan could not run."
    )
    add_config_argument(parser)
    add_time_argument(parser)
    parser.add_argument(
        "--json", action="store_true", help='print {"findings": [...], "summary": {...}}'
    )
    parser.add_argument(
        "--pretty", action="store_true", help="indent the JSON for people (default: compact)"
    )
    parser.add_argument(
        "--only",
        metavar="CHECK",
        help="run one check only: " + ", ".join(c.value for c in CheckId),
    )
    parser.add_argument("--all", action="store_true", help="list OK findings in the table too")
    parser.set_defaults(handler=run)


def parse_check(value: str | None) -> CheckId | None:
    if value is None:
        return None
    try:
        return CheckId(value.strip().lower())
    except ValueError:
        raise RelaycheckError(
            f"--only: unknown check {value!r}; one of: {', '.join(c.value for c in CheckId)}"
        ) from None


class ProgressBar:
    """A one-line bar on a terminal's stderr; silent when stderr is a file or a pipe."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total == 0:
            return
        width = 30
        filled = width * done // total
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} endpoints")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def scan_once(
    config: Config, *, now: datetime, only: CheckId | None, progress: Progress | None
) -> ScanReport:
    """`run_scan` on a fresh event loop (see `run_async` for why not plain `asyncio.run`)."""
    from checks.scan import run_scan  # the probes load only for a scan that runs (not --help)

    return run_async(run_scan(config, now=now, only=only, progress=progress))


def run(args: argparse.Namespace) -> int:
    only = parse_check(args.only)
    config = resolve_config(args)
    now = now_from(args)
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        report = scan_once(config, now=now, only=only, progress=bar)
    except RelaycheckError:
        raise
    except Exception as err:  # the scan itself could not run: UNKNOWN, one line, no traceback
        print(f"relaycheck: scan could not run: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_UNKNOWN
    finally:
        if bar is not None:
            bar.finish()
    if args.json:
        # one write: json.dump to a pipe made ~300,000 small writes at 500 endpoints
        sys.stdout.write(dumps_json(report.findings, report.summary, pretty=args.pretty) + "\n")
    else:
        sys.stdout.write(render_table(report.findings, report.summary, show_ok=args.all))
    return exit_code(report.findings)
