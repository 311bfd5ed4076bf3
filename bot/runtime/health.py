"""The health and metrics listener of `relaycheck serve` (aiohttp), off unless
`[server] metrics_port` is set, on `[server] host` (127.0.0.1 by default).

    GET /healthz   200 "ok": the process and its event loop answer (liveness: restart me if not)
    GET /readyz    200 "ready", or 503 with ONE line naming what is wrong (readiness): the store
                   takes a write, the scheduler's heartbeat is fresh, Slack is connected when
                   Slack is configured
    GET /metrics   Prometheus text format (see bot.runtime.metrics)

The heartbeat is a job of the scheduler itself (see `Scheduler.heartbeat`), so a stopped
scheduler or a blocked event loop makes it stale; a long check run does not (runs are async).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.alerting.store import StateError, Store
from bot.runtime.metrics import CONTENT_TYPE, Metrics
from checks.errors import RelaycheckError

log = logging.getLogger("relaycheck.health")

# three missed heartbeats (see bot.runtime.scheduler.HEARTBEAT_SECONDS) mean "not ready"
HEARTBEAT_STALE_SECONDS = 60.0

SlackCheck = Callable[[], Awaitable[str | None]]  # None: connected; else why not


@dataclass(frozen=True, slots=True, kw_only=True)
class Beat:
    """The last sign of life of what runs the schedule here: the scheduler's heartbeat on
    the replica that leads, the leadership loop's last check on one that follows."""

    what: str  # "scheduler" or "leadership"
    at: float | None  # time.monotonic(); None: not started yet
    stale_after: float = HEARTBEAT_STALE_SECONDS


@dataclass(slots=True, kw_only=True)
class Readiness:
    """What /readyz asks; each part answers None (fine) or a short reason."""

    store: Store
    heartbeat: Callable[[], Beat]
    slack: SlackCheck | None = None  # None: Slack is not configured (console mode)

    def leader_note(self) -> str:
        """`; leader REPLICA since TIME`: which replica runs the scheduled checks (HA)."""
        try:
            leader = self.store.leader()
        except StateError:
            return ""
        if leader is None:
            return ""
        held = "" if leader.active else " (lease expired)"
        return f"; leader {leader.replica} since {leader.since:%Y-%m-%dT%H:%M:%SZ}{held}"

    async def problem(self) -> str | None:
        try:
            self.store.check_writable()
        except StateError as err:
            return f"state not writable: {err}"
        beat = self.heartbeat()
        if beat.at is None:
            return f"{beat.what} not started"
        age = time.monotonic() - beat.at
        if age > beat.stale_after:
            return f"{beat.what} heartbeat is {age:.0f}s old (more than {beat.stale_after:.0f}s)"
        if self.slack is not None:
            reason = await self.slack()
            if reason is not None:
                return f"Slack not connected: {reason}"
        return None


def build_health_app(readiness: Readiness, metrics: Metrics) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        problem = await readiness.problem()
        if problem is None:
            return web.Response(text=f"ready{readiness.leader_note()}\n")
        return web.Response(status=503, text=problem.replace("\n", " ") + "\n")

    async def metrics_view(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app


class ListenError(RelaycheckError):
    """A port relaycheck was told to listen on cannot be had (in use, not allowed)."""

    def __init__(self, key: str, host: str, port: int, err: OSError) -> None:
        # asyncio's strerror names a Python tuple; the errno's own text does not
        reason = os.strerror(err.errno).lower() if err.errno else type(err).__name__
        super().__init__(f"{key}: cannot listen on {host}:{port} ({reason})")


class HealthServer:
    """The listener; `start()` returns the address it bound (port 0 picks a free one)."""

    def __init__(self, app: web.Application, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self.url = ""

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            raise ListenError("[server] metrics_port", self.host, self.port, err) from None
        host, port = self._runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self.url = f"http://{shown}:{port}"
        log.info("health and metrics listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        await self._runner.cleanup()
