"""`relaycheck run-once`: one scheduled cycle now, for cron users who do not run the daemon.

Runs the full check cycle (scan -> lifecycle -> outbox), the weekly digest if one is due, and
then delivers the outbox (Slack when SLACK_BOT_TOKEN and `[slack] alerts_channel` are set, else
the console). Alerts Slack did not accept stay queued and go out with the next run. The exit code
is the scan's: 0 ok, 1 warning, 2 critical, 3 the scan could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.cycle import run_cycle, run_digest
from bot.alerting.delivery import DeliveryWorker
from bot.alerting.lease import Fence
from bot.alerting.store import StateError, Store, replica_id
from bot.cli.common import (
    add_config_argument,
    keep_freed_memory,
    monitoring_command,
    resolve_config,
)
from bot.cli.logopts import add_log_format_argument, setup_logging
from bot.runtime.scheduler import missed_run
from bot.slack.settings import load_bot_token
from checks.model import Config
from checks.report import EXIT_UNKNOWN
from checks.rules.schedule import build_trigger

DELIVERY_BUDGET_SECONDS = 60.0


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run one scheduled cycle now (scan, lifecycle, alerts) and deliver its alerts: to "
        "Slack when SLACK_BOT_TOKEN and [slack] alerts_channel are set, else to the console. "
        "For cron users who do not run the daemon. Exit code (as monitoring plugins): 0 ok, "
        "1 warning, 2 critical, 3 unknown: bad input or the scan could not run."
    )
    add_config_argument(parser)
    add_log_format_argument(parser)
    parser.set_defaults(handler=run)
    monitoring_command(parser)


async def cycle_and_deliver(config: Config, environ: dict[str, str]) -> int:
    token = load_bot_token(environ)  # SLACK_BOT_TOKEN or SLACK_BOT_TOKEN_FILE, validated
    channel = config.slack.alerts_channel
    client = (
        AsyncWebClient(token=token.reveal(), base_url=config.slack.api_url)
        if token is not None and channel
        else None
    )
    now = datetime.now(UTC)
    replica = config.ha.replica or replica_id(environ)
    with Store.from_config(config, environ) as store:
        # a run-once is a replica for one cycle: it runs only while no `serve` leads the tenant
        lease = store.try_lead(replica, lease_seconds=config.ha.lease_seconds)
        if lease is None or lease.holder != replica:
            who = lease.holder if lease is not None else "another replica"
            raise StateError(
                store.where,
                f"replica {who} leads tenant {store.tenant!r}; its scheduled runs cover this one",
            )
        fence = Fence(holder=replica, epoch=lease.epoch)
        try:
            result = await run_cycle(
                config,
                store,
                now=now,
                job="certificates",
                channel=channel if client else None,
                fence=fence,
            )
            digest = build_trigger(config.schedule.digest, config.schedule.timezone)
            last_digest = store.last_job_run("digest")
            if last_digest is None:
                store.mark_job("digest", now, fence=fence)
            elif missed_run(digest, last_digest, now):
                await run_digest(
                    config, store, now=now, channel=channel if client else None, fence=fence
                )
        finally:
            store.release_lead(replica)
        worker = DeliveryWorker(store, client, replica=replica)
        deadline = time.monotonic() + DELIVERY_BUDGET_SECONDS
        while True:
            wait = await worker.drain()
            if wait is None or time.monotonic() + wait > deadline:
                break
            await asyncio.sleep(wait)
    return result.exit_code


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    setup_logging(args, config, None)
    keep_freed_memory()  # one cycle, then exit: like scan
    try:
        return asyncio.run(cycle_and_deliver(config, dict(os.environ)))
    except StateError as err:
        # like a scan that could not run: the state is unusable or another replica leads
        print(f"relaycheck: error: {err}", file=sys.stderr)
        return EXIT_UNKNOWN
