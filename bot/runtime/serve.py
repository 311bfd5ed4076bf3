"""`relaycheck serve`: the one place that wires config, secrets, Slack and background work.

Three ways to run, chosen by `[slack] mode` and which secrets exist:
socket (default: an outbound WebSocket, no public URL), http (bolt's aiohttp adapter on
`[slack] port`, path `/slack/events`) and console (no Slack secrets at all: the scheduled
checks still run and alerts go to the console). The background work (scheduler, delivery) is
started through `bot.runtime.daemon.start_background` and stopped again on SIGTERM/SIGINT, before the
Slack connection closes, so nothing in flight is cut off mid-post.

With `[server] metrics_port` set, the health and metrics listener (`bot.runtime.health`) runs
beside all three, on `[server] host`; it starts first and stops last, so a probe sees the
whole life of the process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.alerting.store import Store
from bot.runtime.daemon import Background, start_background
from bot.runtime.health import (
    HEARTBEAT_STALE_SECONDS,
    Beat,
    HealthServer,
    ListenError,
    Readiness,
    SlackCheck,
    build_health_app,
)
from bot.runtime.metrics import Metrics
from bot.slack.app import build_app, build_client
from bot.slack.settings import Settings
from checks.model import Config, SlackMode

EVENTS_PATH = "/slack/events"
_log = logging.getLogger("relaycheck.serve")


def beat(background: Background | None) -> Beat:
    """The leader's scheduler heartbeat, or a follower's leadership loop."""
    if background is None:
        return Beat(what="scheduler", at=None)
    if background.scheduler is not None:
        return Beat(what="scheduler", at=background.scheduler.last_beat)
    leadership = background.leadership
    stale = max(HEARTBEAT_STALE_SECONDS, 3 * leadership.check_seconds)
    return Beat(what="leadership", at=leadership.last_check, stale_after=stale)


async def serve(
    config: Config,
    settings: Settings,
    *,
    stop: asyncio.Event,
    store: Store,
    host: str | None = None,
    port: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until `stop` is set; `on_ready` gets a short description once serving.

    `host`/`port` override `[slack] host`/`port` (http mode's bind address)."""
    metrics = Metrics(store)
    slack_state: dict[str, SlackCheck] = {}

    async def slack_check() -> str | None:
        check = slack_state.get("check")
        return "starting" if check is None else await check()

    health: HealthServer | None = None
    metrics_note = ""
    background = None
    client = None
    try:
        client = (
            None
            if settings.console
            else build_client(config, settings, on_api_error=metrics.slack_error)
        )
        background = await start_background(
            config=config, store=store, client=client, metrics=metrics
        )
        if config.server.enabled:
            assert config.server.metrics_port is not None
            readiness = Readiness(
                store=store,
                heartbeat=lambda: beat(background),
                slack=None if settings.console else slack_check,
            )
            health = HealthServer(
                build_health_app(readiness, metrics),
                host=config.server.host,
                port=config.server.metrics_port,
            )
            metrics_note = f"; metrics on {await health.start()}/metrics"
        if settings.console:
            _log.info("no Slack secrets: console mode (alerts are written to the console)")
            if on_ready:
                on_ready("console" + metrics_note)
            await stop.wait()
            return
        app = build_app(config, settings, client=client, store=store)
        await app.prepare()  # channel names in [slack] allowed_channels -> ids, once
        if settings.mode is SlackMode.SOCKET:
            assert settings.app_token is not None
            handler = AsyncSocketModeHandler(
                app, app_token=settings.app_token.reveal(), web_client=client
            )

            async def socket_connected() -> str | None:
                connected = await handler.client.is_connected()
                return None if connected else "the Socket Mode connection is down"

            slack_state["check"] = socket_connected
            await handler.connect_async()  # type: ignore[no-untyped-call]
            try:
                if on_ready:
                    on_ready("socket" + metrics_note)
                await stop.wait()
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]
            return
        runner = web.AppRunner(app.web_app(path=EVENTS_PATH), handle_signals=False)
        await runner.setup()
        try:
            bind_host = host if host is not None else config.slack.host
            bind_port = port if port is not None else config.slack.port
            site = web.TCPSite(runner, bind_host, bind_port)
            try:
                await site.start()
            except OSError as err:
                raise ListenError("[slack] port", bind_host, bind_port, err) from None

            async def listening() -> str | None:
                return None  # Slack connects to us; listening is all "connected" can mean

            slack_state["check"] = listening
            if on_ready:
                on_ready(f"http {site.name}{EVENTS_PATH}" + metrics_note)
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        if background is not None:
            await background.stop()
        if client is not None and client.session is not None:
            await client.session.close()
        if health is not None:
            await health.stop()


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
