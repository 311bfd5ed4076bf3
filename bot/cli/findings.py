"""`relaycheck findings`: the open findings from the state file, worst first."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from bot.alerting.store import Store
from bot.cli.common import add_config_argument, resolve_config
from bot.records import OpenFinding
from checks.report import escape_invisible


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "findings",
        help="list open findings from the state file (what the scheduled checks found)",
        description="List the findings that are open in the state file ([state] path), worst first.",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help='print {"findings": [...]}')
    parser.set_defaults(handler=run)


def _json(item: OpenFinding) -> dict[str, Any]:
    return {
        **item.finding.to_json(),
        "opened_at": item.opened_at.isoformat(),
        "last_seen_at": item.last_seen_at.isoformat(),
        "acknowledged_by": item.acknowledged_by,
        "snoozed_until": item.snoozed_until.isoformat() if item.snoozed_until else None,
        "flapping": item.flapping,
    }


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    now = datetime.now(UTC)
    path = config.state.path
    items: list[OpenFinding] = []
    last = None
    if path.exists():
        with Store.open(path) as store:
            items = store.open_findings(now=now)
            last = store.last_run()
    if args.json:
        print(
            json.dumps(
                {
                    "findings": [_json(i) for i in items],
                    "last_run": last.started_at.isoformat() if last else None,
                },
                indent=2,
            )
        )
        return 0
    out = sys.stdout
    if last is None:
        print("no scheduled run has recorded anything yet (relaycheck serve or run-once)", file=out)
        return 0
    print(
        f"last run: {last.started_at:%Y-%m-%d %H:%M} UTC ({'ok' if last.ok else 'failed'})",
        file=out,
    )
    if not items:
        print("no open findings", file=out)
        return 0
    for item in items:
        f = item.finding
        notes = [f"open since {item.opened_at:%Y-%m-%d %H:%M}"]
        if item.acknowledged_by:
            notes.append(f"acknowledged by {item.acknowledged_by}")
        if item.snoozed_until:
            notes.append(f"snoozed until {item.snoozed_until:%Y-%m-%d %H:%M}")
        if item.flapping:
            notes.append("flapping")
        where = f"{f.subject} ({f.cause})" if f.cause else f.subject
        line = f"{escape_invisible(where)}: {escape_invisible(f.message)}"
        print(f"{f.severity.value.upper():8} {f.check.value:20} {line}", file=out)
        print(f"{'':8} {'':20} {escape_invisible('; '.join(notes))}", file=out)
    return 0
