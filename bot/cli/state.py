"""`relaycheck state migrate`: bring the state's schema to this relaycheck's, once, on purpose.

`serve` and the other commands migrate on open too (PostgreSQL: under an advisory lock, so
replicas starting together migrate once); this command lets an upgrade migrate first, before
any replica of the new version starts, and says what it did.
"""

from __future__ import annotations

import argparse
import os
import sys

from bot.alerting.store import Store, state_url
from bot.cli.common import add_config_argument, add_tenant_argument, resolve_config


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Manage the state store named by [state] path or url (or RELAYCHECK_STATE_URL)."
    )
    actions = parser.add_subparsers(dest="state_command", metavar="ACTION")
    actions.required = True
    migrate = actions.add_parser(
        "migrate",
        help="upgrade the schema to this version's (rows from before tenants join the tenant)",
        description=(
            "Upgrade the state's schema to this relaycheck's. Rows written before tenants "
            "existed become the tenant's (--tenant, default: the configuration's [tenant] name)."
        ),
    )
    add_config_argument(migrate)
    add_tenant_argument(migrate)
    migrate.set_defaults(handler=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    where = state_url(config.state, os.environ) or config.state.path
    before, now = Store.upgrade(where, tenant=args.tenant or config.tenant.name)
    with Store.open(where, migrate=False) as store:
        shown = store.where
    if before == now:
        print(f"{shown}: schema already at {now}", file=sys.stdout)
    else:
        print(f"{shown}: schema migrated from {before or 'an empty or pre-0001 state'} to {now}")
    return 0
