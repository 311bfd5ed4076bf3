"""`python -m bot.cli`: the same entry point as the `relaycheck` script."""

from bot.cli.main import console

console()
