"""Background work of `relaycheck serve`: the scheduler and the outbox worker.

`start_background` is the one entry point the Slack side calls; it returns a `Background` whose
`stop()` halts the scheduler first (no new alerts) and then the delivery worker. Anything still
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
from bot.alerting.store import Store
from bot.runtime.logs import configure_logging
from bot.runtime.metrics import Metrics
from bot.runtime.scheduler import Scheduler
from bot.slack.settings import load_bot_token
from checks.config import load_config
from checks.model import Config

log = logging.getLogger("relaycheck.daemon")


@dataclass(slots=True)
class Background:
    scheduler: Scheduler
    worker: DeliveryWorker
    task: asyncio.Task[None]
    owns_store: Store | None = None

    async def stop(self) -> None:
        await self.scheduler.stop()
        self.worker.stop()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self.task, timeout=20)
        if self.owns_store is not None:
            self.owns_store.close()


async def start_background(
    *,
    config: Config,
    store: Store | None,
    client: AsyncWebClient | None,
    scan: Callable[..., Awaitable[Any]] | None = None,
    min_interval: float = 1.0,
    metrics: Metrics | None = None,
) -> Background:
    owned = None
    if store is None:
        store = owned = Store.open(config.state.path)
    channel = config.slack.alerts_channel
    if client is not None and not channel:
        log.warning("[slack] alerts_channel is not set: alerts are written to the console")
        client = None
    worker = DeliveryWorker(
        store,
        client,
        min_interval=min_interval,
        on_api_error=metrics.slack_error if metrics is not None else None,
    )
    scheduler = Scheduler(
        config,
        store,
        on_queued=worker.wake,
        scan=scan,
        channel=channel if client is not None else None,
        metrics=metrics,
    )
    task = asyncio.create_task(worker.run_forever(), name="relaycheck-delivery")
    scheduler.start()
    return Background(scheduler=scheduler, worker=worker, task=task, owns_store=owned)


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
