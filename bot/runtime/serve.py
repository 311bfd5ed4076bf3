"""`relaycheck serve`: the one place that wires config, secrets, Slack and background work.

Three ways to run, chosen by `[slack] mode` and which secrets exist:
socket (default: an outbound WebSocket, no public URL), http (bolt's aiohttp adapter on
`[slack] port`, path `/slack/events`) and console (no Slack secrets at all: the scheduled
checks still run and alerts go to the console). The background work (scheduler, delivery) is
started through `bot.runtime.daemon.start_background` and stopped again on SIGTERM/SIGINT, before the
Slack connection closes, so nothing in flight is cut off mid-post.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.alerting.store import Store
from bot.runtime.daemon import start_background
from bot.slack.app import build_app, build_client
from bot.slack.settings import Settings
from checks.model import Config, SlackMode

EVENTS_PATH = "/slack/events"
_log = logging.getLogger("relaycheck.serve")


async def serve(
    config: Config,
    settings: Settings,
    *,
    stop: asyncio.Event,
    store: Store,
    host: str = "0.0.0.0",  # noqa: S104 - http mode must be reachable by Slack's request URL
    port: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until `stop` is set; `on_ready` gets a short description once serving."""
    client = None if settings.console else build_client(config, settings)
    background = await start_background(config=config, store=store, client=client)
    try:
        if settings.console:
            _log.info("no Slack secrets: console mode (alerts are written to the console)")
            if on_ready:
                on_ready("console")
            await stop.wait()
            return
        app = build_app(config, settings, client=client, store=store)
        await app.prepare()  # channel names in [slack] allowed_channels -> ids, once
        if settings.mode is SlackMode.SOCKET:
            assert settings.app_token is not None
            handler = AsyncSocketModeHandler(
                app, app_token=settings.app_token.reveal(), web_client=client
            )
            await handler.connect_async()  # type: ignore[no-untyped-call]
            try:
                if on_ready:
                    on_ready("socket")
                await stop.wait()
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]
            return
        runner = web.AppRunner(app.web_app(path=EVENTS_PATH), handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port if port is not None else config.slack.port)
            await site.start()
            if on_ready:
                on_ready(f"http {site.name}{EVENTS_PATH}")
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        await background.stop()
        if client is not None and client.session is not None:
            await client.session.close()


async def serve_until_signalled(
    config: Config,
    settings: Settings,
    *,
    store: Store,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """`serve` with SIGTERM/SIGINT setting the stop event (the CLI entry point)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(config, settings, stop=stop, store=store, on_ready=on_ready)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
