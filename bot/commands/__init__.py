"""CLI subcommands; each module has `register(subparsers)`. Add a new command to COMMANDS."""

from __future__ import annotations

from types import ModuleType

from bot.commands import config_cmd, demo, explain, findings, run_once, triage
from bot.commands import scan as scan_cmd
from bot.commands import serve as serve_cmd

COMMANDS: tuple[ModuleType, ...] = (
    explain,
    config_cmd,
    scan_cmd,
    serve_cmd,
    findings,
    run_once,
    demo,
    triage,
)
