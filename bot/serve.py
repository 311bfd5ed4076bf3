"""`relaycheck serve`: the one place that wires config, secrets, Slack and background work.

Three ways to run, chosen by `[slack] mode` and which secrets exist:
socket (default: an outbound WebSocket, no public URL), http (bolt's aiohttp adapter on
`[slack] port`, path `/slack/events`) and console (no Slack secrets at all: the scheduled
checks still run and alerts go to the console). The background work (scheduler, delivery) is
started through `bot.daemon.start_background` and stopped again on SIGTERM/SIGINT, before the
Slack connection closes, so nothing in flight is cut off mid-post.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app, build_client
from bot.settings import Settings
from checks.model import Config, SlackMode

EVENTS_PATH = "/slack/events"
_log = logging.getLogger("relaycheck.serve")


def open_store(config: Config) -> Any:
    """The state store of `[state] path`, or None while bot.store is not available."""
    try:
        from bot.store import Store
    except ImportError:
        _log.warning("bot.store is not available; running without state")
        return None
    return Store.open(config.state.path)


async def _start_background(config: Config, store: Any, client: AsyncWebClient | None) -> Any:
    try:
        # imported by name: the daemon is optional for the Slack side, and lands separately
        daemon = importlib.import_module("bot.daemon")
    except ImportError:
        _log.warning("bot.daemon is not available; no scheduled checks will run")
        return None
    handle = daemon.start_background(config=config, store=store, client=client)
    if inspect.isawaitable(handle):
        handle = await handle
    return handle


async def _stop_background(handle: Any) -> None:
    if handle is None:
        return
    if isinstance(handle, asyncio.Task):
        handle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handle
        return
    for name in ("stop", "aclose", "shutdown", "close"):
        method = getattr(handle, name, None)
        if callable(method):
            result = method()
            if inspect.isawaitable(result):
                await result
            return


async def serve(
    config: Config,
    settings: Settings,
    *,
    stop: asyncio.Event,
    store: Any = None,
    host: str = "0.0.0.0",  # noqa: S104 - http mode must be reachable by Slack's request URL
    port: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until `stop` is set; `on_ready` gets a short description once serving."""
    client = None if settings.console else build_client(config, settings)
    background = await _start_background(config, store, client)
    try:
        if settings.console:
            _log.info("no Slack secrets: console mode (alerts are written to the console)")
            if on_ready:
                on_ready("console")
            await stop.wait()
            return
        app = build_app(config, settings, client=client, store=store)
        if settings.mode is SlackMode.SOCKET:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

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
        await _stop_background(background)
        if client is not None and client.session is not None:
            await client.session.close()


async def serve_until_signalled(config: Config, settings: Settings, **kwargs: Any) -> None:
    """`serve` with SIGTERM/SIGINT setting the stop event (the CLI entry point)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(config, settings, stop=stop, **kwargs)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
