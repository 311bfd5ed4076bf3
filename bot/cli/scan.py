"""`relaycheck scan`: run every check once, print a table or JSON, exit like a monitoring plugin."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from bot.cli.common import (
    EXAMPLE_CONFIG,
    add_config_argument,
    add_time_argument,
    keep_freed_memory,
    monitoring_command,
    now_from,
    resolve_config,
    run_async,
)
from bot.cli.text import paint, terminal_width, use_colour
from checks.errors import RelaycheckError
from checks.model import CheckId, Config, Finding, Severity
from checks.report import EXIT_UNKNOWN, dumps_json, exit_code, render_nagios, render_table

if TYPE_CHECKING:
    from datetime import datetime

    from checks.scan import Progress, ScanReport


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Probe every configured endpoint (SMTP STARTTLS or implicit TLS), read certificate "
        "files, and judge certificates, connectors, domains and the relay scenarios the "
        "tenant relies on. Exit code (as monitoring plugins): 0 ok, 1 warning, 2 critical, "
        "3 unknown: bad input (config, --only, a missing file) or the scan could not run."
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
        "--format",
        choices=("table", "json", "nagios"),
        default=None,
        help="table (default), json (the same as --json), or nagios: one monitoring-plugin "
        "status line with perfdata (days left per certificate), then one line per problem",
    )
    parser.add_argument(
        "--only",
        metavar="CHECK",
        help="run one check only: " + ", ".join(c.value for c in CheckId),
    )
    parser.add_argument("--all", action="store_true", help="list OK findings in the table too")
    parser.set_defaults(handler=run)
    monitoring_command(parser)


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


def example_hints(config: Config, findings: tuple[Finding, ...] | list[Finding]) -> list[str]:
    """What the shipped example needs to scan cleanly: its smart host is a loopback listener
    that only `relaycheck demo` starts, so out of the box the scan cannot reach it."""
    if config.source is None or config.source.resolve() != EXAMPLE_CONFIG.resolve():
        return []
    down = sorted(
        {
            f.subject
            for f in findings
            if f.check is CheckId.ENDPOINT_UNREACHABLE and f.severity is Severity.CRITICAL
        }
    )
    hints = []
    for name in down:
        endpoint = config.endpoint(name)
        if endpoint is None or endpoint.address is None:
            continue
        hints.append(
            f"Note: the example's smart host {name} ({endpoint.address}:{endpoint.port}) only "
            "runs while `relaycheck demo` does: run `relaycheck demo` to see a scan against it, "
            "or copy examples/contoso/relaycheck.toml and point [[endpoints]] at your smart host."
        )
    return hints


def scan_once(
    config: Config, *, now: datetime, only: CheckId | None, progress: Progress | None
) -> ScanReport:
    """`run_scan` on a fresh event loop (see `run_async` for why not plain `asyncio.run`)."""
    from checks.scan import run_scan  # the probes load only for a scan that runs (not --help)

    keep_freed_memory()
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
        if args.format == "nagios" and not args.json:  # a monitor reads stdout only
            print(f"RELAYCHECK UNKNOWN - scan could not run: {type(err).__name__}")
        return EXIT_UNKNOWN
    finally:
        if bar is not None:
            bar.finish()
    hints = example_hints(config, report.findings)
    output = "json" if args.json else (args.format or "table")
    if output == "nagios":
        sys.stdout.write(
            render_nagios(report.findings, report.summary, thresholds=config.thresholds)
        )
    elif output == "json":
        # one write: json.dump to a pipe made ~300,000 small writes at 500 endpoints
        sys.stdout.write(dumps_json(report.findings, report.summary, pretty=args.pretty) + "\n")
        for hint in hints:
            print(f"relaycheck: {hint}", file=sys.stderr)
    else:
        sys.stdout.write(
            render_table(
                report.findings,
                report.summary,
                show_ok=args.all,
                width=terminal_width(sys.stdout),
                style=paint if use_colour(sys.stdout) else None,
            )
        )
        for hint in hints:
            sys.stdout.write(hint + "\n")
    return exit_code(report.findings)
