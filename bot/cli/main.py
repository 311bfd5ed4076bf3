"""The `relaycheck` command line: one parser, one subcommand per module in `bot/cli/`.

Each command module exposes `register(parser)`, which adds its arguments to the subparser made
here and sets `handler`; the handler returns the exit code. Input problems raise
`RelaycheckError`, which is printed here as one line: exit code 2, or 3 (UNKNOWN) for the
monitoring commands `scan` and `run-once`, whose 2 means critical. No traceback reaches the user
for anything they typed or configured.

Only the chosen command's module is imported. Importing every command pulled Slack, aiohttp,
APScheduler and the demo into a plain `relaycheck explain` (about half a second of a 0.7 s
start); the one-line help of the others lives in `COMMANDS` so `relaycheck --help` still lists
them all without importing any.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import NamedTuple

from bot.cli.text import degrade_unencodable
from checks.errors import RelaycheckError
from checks.i18n import Language, language_from_environ, using
from checks.report import escape_invisible

EXIT_USAGE = 2


class Command(NamedTuple):
    name: str
    module: str  # imported only when this command runs
    help: str


# one module per subcommand, in the order `--help` lists them; add a new command here
COMMANDS: tuple[Command, ...] = (
    Command(
        "explain",
        "bot.cli.explain",
        "explain which relay scenario a sender/recipient pair is and whether it relays",
    ),
    Command("config", "bot.cli.config_cmd", "work with configuration files"),
    Command("scan", "bot.cli.scan", "check certificates, endpoints and domains now"),
    Command(
        "preflight",
        "bot.cli.preflight",
        "before binding a renewed certificate: would relay and every check still hold?",
    ),
    Command(
        "serve", "bot.cli.serve", "run the Slack bot (socket or http mode) and the scheduled checks"
    ),
    Command(
        "findings",
        "bot.cli.findings",
        "list open findings from the state file (what the scheduled checks found)",
    ),
    Command(
        "status",
        "bot.cli.status",
        "last and next scheduled runs, open findings by severity, the outbox",
    ),
    Command(
        "run-once",
        "bot.cli.run_once",
        "run one scheduled cycle now and deliver its alerts (for cron)",
    ),
    Command("state", "bot.cli.state", "manage the state store (migrate its schema)"),
    Command(
        "demo",
        "bot.cli.demo",
        "watch relaycheck catch a certificate renewal that breaks relay (all on loopback)",
    ),
    Command(
        "triage",
        "bot.cli.triage",
        "explain an Exchange Online reply, a whole bounce, a log excerpt or a message trace",
    ),
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
    from importlib import metadata  # ~35 ms of start-up: only for --version

    try:
        return metadata.version("relaycheck")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class _Version(argparse.Action):
    """`--version`, reading the installed version only when asked (it costs a file lookup)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        print(f"relaycheck {_version()}")  # stdout, as argparse's own version action
        parser.exit(0)


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (its first positional word), if any."""
    names = {c.name for c in COMMANDS}
    words = iter(argv)
    for word in words:
        if word == "--lang":  # the global option's value is not the command
            next(words, None)
        elif not word.startswith("-"):
            return word if word in names else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the command it names is imported and fully registered
    (the others are listed by name and help, which is all `--help` shows of them)."""
    wanted = chosen_command(argv) if argv is not None else None
    parser = _Parser(
        prog="relaycheck",
        description=(
            "Checks that on-premises mail relays through Exchange Online: connectors, "
            "certificates, accepted domains; explains why a message would bounce."
        ),
    )
    parser.add_argument(
        "--lang",
        choices=[lang.value for lang in Language],
        help="language of the output (default: [locale] language, else LC_ALL/LC_MESSAGES/LANG)",
    )
    parser.add_argument("--version", action=_Version)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help)
        if argv is None or command.name == wanted:
            importlib.import_module(command.module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    degrade_unencodable(sys.stdout, sys.stderr)  # cp1252 and friends: `→` prints as `->`
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args, extra = parser.parse_known_args(arguments)
    if extra:
        # what parse_args would say, with the chosen subcommand's exit code (3 for scan/run-once)
        print(f"{parser.prog}: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return int(getattr(args, "bad_input_exit", EXIT_USAGE))
    # --lang, else the environment; a command that loads a config with [locale] language
    # switches to it when --lang was not given (bot.cli.common.resolve_config)
    language = Language(args.lang) if args.lang else language_from_environ(os.environ)
    try:
        with using(language):
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


def console() -> None:
    """The process entry point (`relaycheck`, `python -m bot.cli`): `main`, then exit with its code.

    The cycle collector is tuned for the process, not for a library: a young-generation
    threshold of 10,000 allocations instead of 700 (imports, probes and findings allocate in
    bursts, and a 500-endpoint scan spent ~75 ms in ~150 collections that found little; with
    this, ~20 ms, at the same peak RSS), and objects are frozen before exit, because the
    interpreter's collections at exit would walk every object the command made (another ~5% of
    such a scan) only to free memory the OS takes back anyway. atexit handlers and the final
    flushes still run. Kept out of `main`, which tests call in-process."""
    gc.set_threshold(10_000, 10, 10)
    code = main()
    gc.freeze()
    sys.exit(code)
