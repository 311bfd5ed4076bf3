"""Acknowledgement latency of `/relaycheck`: the relaycheck app vs a bare bolt app, same run.

Both apps run behind bolt's aiohttp adapter on 127.0.0.1 and receive the same 400 signed slash
commands (`/relaycheck <> -> kate@tailspintoys.com`), 20 in flight at a time, over real HTTP.
Latency is time to the HTTP response (= the ack); the relaycheck app's follow-up answers go to
the loopback Slack stand-in. Run: `.venv/bin/python bench/bench_ack.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import build_app, build_client
from bot.serve import EVENTS_PATH
from bot.settings import Secret, Settings
from checks.model import SlackMode
from tests.fakes.slack import SlackApiStandIn
from tests.integration.slack_support import (
    SIGNING_SECRET,
    form,
    signed_headers,
    tenant_config,
)

REQUESTS = 400
CONCURRENCY = 20


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}{EVENTS_PATH}"


async def _measure(url: str, bodies: list[str]) -> list[float]:
    latencies: list[float] = []
    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:

        async def one(body: str) -> None:
            async with limit:
                headers = signed_headers(body)
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one(b) for b in bodies))
    return latencies


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


async def main() -> None:
    standin = SlackApiStandIn()
    standin.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = tenant_config(Path(tmp), slack={"mode": "http", "api_url": standin.base_url})
            settings = Settings(
                mode=SlackMode.HTTP,
                bot_token=Secret("xoxb-1-bench"),
                signing_secret=Secret(SIGNING_SECRET),
            )
            client = build_client(config, settings)
            ours = build_app(config, settings, client=client)
            bare = AsyncApp(client=client, signing_secret=SIGNING_SECRET)

            @bare.command("/relaycheck")
            async def ack_only(ack: object) -> None:
                await ack()  # type: ignore[operator]

            bodies = [
                form(standin.slash_command_payload("/relaycheck", "<> -> kate@tailspintoys.com"))
                for _ in range(REQUESTS)
            ]
            runners = []
            results = {}
            for name, app in (("bare", bare), ("relaycheck", ours)):
                runner, url = await _serve(app.web_app(path=EVENTS_PATH))
                runners.append(runner)
                await _measure(url, bodies[:20])  # warm-up (auth.test, imports, trust store)
                results[name] = await _measure(url, bodies)
            await standin.await_until(
                lambda: len(standin.received("response_url")) >= REQUESTS + 20, within=60
            )
            for runner in runners:
                await runner.cleanup()
            if client.session is not None:
                await client.session.close()
    finally:
        standin.stop()
    for name, values in results.items():
        print(
            f"{name:>10}: n={len(values)} concurrency={CONCURRENCY} "
            f"p50={_pct(values, 50):.2f} ms p99={_pct(values, 99):.2f} ms"
        )
    for q in (50, 99):
        ratio = _pct(results["relaycheck"], q) / _pct(results["bare"], q)
        print(f"ratio p{q} relaycheck/bare: {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
