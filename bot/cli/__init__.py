"""The `relaycheck` command line: `main` parses, one module per subcommand does the work.

Lives here: the parser (`bot.cli.main`), the shared argument helpers (`common`, `logopts`),
terminal text (`text`: plurals, colour, encodings) and one module per subcommand, each with `register(subparsers)` setting the handler that returns the exit code.
May import everything below it (`bot.demo`, `bot.runtime`, `bot.slack`, `bot.alerting`, the
shared modules) and `checks`; nothing in `bot` imports the CLI.
"""

from bot.cli.main import main

__all__ = ["main"]
