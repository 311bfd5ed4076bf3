"""Background work of `relaycheck serve`: the scheduler and the outbox worker.

`start_background` is the one entry point the Slack side calls; it returns a `Background` whose
`stop()` halts the scheduler first (no new alerts, the lease handed back) and then the delivery
worker. Every replica delivers from the outbox; only the one holding the tenant's lease runs the
scheduler (`bot.runtime.leadership`). Anything still
in the outbox stays there and is delivered by the next start: stopping never drops an alert.

`python -m bot.runtime.daemon --config FILE` runs the same background work without the Slack app (tests
use it to kill -9 a delivering process; admins can use it where no slash command is wanted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.delivery import DeliveryWorker
from bot.alerting.lease import Fence
from bot.alerting.store import LeaseLost, Store, replica_id
from bot.runtime.leadership import Leadership
from bot.runtime.logs import configure_logging
from bot.runtime.metrics import Metrics
from bot.runtime.scheduler import Scheduler
from bot.slack.settings import load_bot_token
from checks.config import load_config
from checks.model import Config

log = logging.getLogger("relaycheck.daemon")


@dataclass(slots=True)
class Background:
    """The running background work; `scheduler` is set only while this replica leads."""

    leadership: Leadership
    worker: DeliveryWorker
    tasks: tuple[asyncio.Task[None], ...]
    scheduler: Scheduler | None = None
    owns_store: Store | None = None

    async def stop(self) -> None:
        scheduler, self.scheduler = self.scheduler, None  # stopped here, not again on loss
        if scheduler is not None:
            await scheduler.stop()  # a run in progress may finish its store write first
        await self.leadership.stop()  # then the lease is handed back
        self.worker.stop()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=20)
        if self.owns_store is not None:
            self.owns_store.close()


async def start_background(
    *,
    config: Config,
    store: Store | None,
    client: AsyncWebClient | None,
    scan: Callable[..., Awaitable[Any]] | None = None,
    min_interval: float = 1.0,
    replica: str | None = None,
    metrics: Metrics | None = None,
) -> Background:
    """Deliver from the outbox (every replica) and run the schedule (only while leading)."""
    owned = None
    if store is None:
        store = owned = Store.from_config(config, os.environ)
    name = replica or config.ha.replica or replica_id(os.environ)
    if metrics is not None:
        metrics.replica = name  # relaycheck_leader{replica}: this replica shows 0 or 1
    channel = config.slack.alerts_channel
    if client is not None and not channel:
        log.warning("[slack] alerts_channel is not set: alerts are written to the console")
        client = None
    worker = DeliveryWorker(
        store,
        client,
        min_interval=min_interval,
        replica=name,
        on_api_error=metrics.slack_error if metrics is not None else None,
    )
    holder: list[Background] = []

    async def gain(fence: Fence) -> None:
        scheduler = Scheduler(
            config,
            store,
            on_queued=worker.wake,
            scan=scan,
            channel=channel if client is not None else None,
            fence=fence,
            metrics=metrics,
        )
        holder[0].scheduler = scheduler
        try:
            scheduler.start()
        except LeaseLost as err:  # lost between winning and starting: the next check decides
            log.warning("scheduler not started: %s", err.problem)

    async def loss() -> None:
        scheduler, holder[0].scheduler = holder[0].scheduler, None
        if scheduler is not None:
            await scheduler.stop(grace_seconds=0)  # a run in progress is cancelled, unwritten

    leadership = Leadership(
        store,
        name,
        lease_seconds=config.ha.lease_seconds,
        on_gain=gain,
        on_loss=loss,
    )
    tasks = (
        asyncio.create_task(worker.run_forever(), name="relaycheck-delivery"),
        asyncio.create_task(leadership.run_forever(), name="relaycheck-leadership"),
    )
    background = Background(leadership=leadership, worker=worker, tasks=tasks, owns_store=owned)
    holder.append(background)
    return background


async def _main(config: Config) -> None:
    token = load_bot_token(os.environ)
    client = AsyncWebClient(token=token.reveal(), base_url=config.slack.api_url) if token else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    background = await start_background(config=config, store=None, client=client)
    print("relaycheck: background running", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await background.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.runtime.daemon")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    configure_logging(fmt=config.log.format, level=config.log.level)
    asyncio.run(_main(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
