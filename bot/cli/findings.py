"""`relaycheck findings`: the open findings from the state file, worst first."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from bot.alerting.store import Store, state_url
from bot.cli.common import add_config_argument, add_tenant_argument, resolve_config
from bot.cli.text import paint, plural, terminal_width, use_colour, wrap
from bot.records import OpenFinding
from checks.i18n import _
from checks.report import escape_invisible


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List the findings that are open in the state ([state] path or url), worst first, "
        "for one tenant (--tenant; default: the config's [tenant] name)."
    )
    add_config_argument(parser)
    add_tenant_argument(parser)
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
    items: list[OpenFinding] = []
    last = None
    # an sqlite file that does not exist yet stays so: listing creates nothing
    if state_url(config.state, os.environ) or config.state.path.exists():
        with Store.from_config(config, os.environ, tenant=args.tenant) as store:
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
        print(
            _("no scheduled run has recorded anything yet (relaycheck serve or run-once)"),
            file=out,
        )
        return 0
    outcome = "completed" if last.ok else "failed inside relaycheck (its checks did not run)"
    print(
        f"last run ({last.job}) {outcome} {last.started_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        file=out,
    )
    if not items:
        print(_("no open findings"), file=out)
        return 0
    colour = use_colour(out)
    width = terminal_width(out)
    check_width = max(len(i.finding.check.value) for i in items)
    indent = " " * (8 + 2 + check_width + 2)
    for item in items:
        f = item.finding
        notes = [f"open since {item.opened_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"]
        if item.acknowledged_by:
            notes.append(_("acknowledged by {user}").format(user=item.acknowledged_by))
        if item.snoozed_until:
            notes.append(f"snoozed until {item.snoozed_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        if item.flapping:
            notes.append(_("flapping"))
        where = f"{f.subject} ({f.cause})" if f.cause else f.subject
        cell = f"{f.severity.value.upper():<8}"
        if colour:
            cell = paint(f.severity, cell)
        text = f"{escape_invisible(where)}: {escape_invisible(f.message)}"
        first, *more = wrap(text, width, indent)
        print(f"{cell}  {f.check.value:<{check_width}}  {first}", file=out)
        for line in [*more, *wrap(escape_invisible("; ".join(notes)), width, indent)]:
            print(indent + line, file=out)
    print(plural(len(items), "open finding"), file=out)
    return 0
