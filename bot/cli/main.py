"""The `relaycheck` command line: one parser, one subcommand per module in `bot/cli/`.

Each command module exposes `register(subparsers)` and sets `handler` on its parser; the handler
returns the exit code. Input problems raise `RelaycheckError`, which is printed here as one line
with exit code 2: no traceback reaches the user for anything they typed or configured.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from importlib import metadata
from types import ModuleType

from bot.cli import config_cmd, demo, explain, findings, preflight, run_once, state, status, triage
from bot.cli import scan as scan_cmd
from bot.cli import serve as serve_cmd
from bot.cli.text import degrade_unencodable
from checks.errors import RelaycheckError
from checks.report import escape_invisible

EXIT_USAGE = 2

# one module per subcommand, in the order `--help` lists them; add a new command here
COMMANDS: tuple[ModuleType, ...] = (
    explain,
    config_cmd,
    scan_cmd,
    preflight,
    serve_cmd,
    findings,
    status,
    run_once,
    state,
    demo,
    triage,
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits with a single line, like every other input error.

    The exit code is 2, except for the monitoring commands (`scan`, `run-once`), whose 2 means
    "critical": they set `bad_input_exit` to 3 (UNKNOWN), as monitoring plugins do.
    """

    bad_input_exit = EXIT_USAGE

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(self.bad_input_exit, f"{self.prog}: error: {message}\n")


def _version() -> str:
    try:
        return metadata.version("relaycheck")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="relaycheck",
        description=(
            "Checks that on-premises mail relays through Exchange Online: connectors, "
            "certificates, accepted domains; explains why a message would bounce."
        ),
    )
    parser.add_argument("--version", action="version", version=f"relaycheck {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    degrade_unencodable(sys.stdout, sys.stderr)  # cp1252 and friends: `→` prints as `->`
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # what parse_args would say, with the chosen subcommand's exit code (3 for scan/run-once)
        print(f"{parser.prog}: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return int(getattr(args, "bad_input_exit", EXIT_USAGE))
    try:
        code: int = args.handler(args)
    except RelaycheckError as err:
        # one line, whatever the input held (a newline or an escape sequence in a file name)
        print(f"relaycheck: error: {escape_invisible(str(err))}", file=sys.stderr)
        return int(getattr(args, "bad_input_exit", EXIT_USAGE))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `relaycheck findings --json | head`: the reader left; say nothing more (Python docs'
        # recipe: point stdout at devnull so the interpreter's final flush cannot fail again)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code
