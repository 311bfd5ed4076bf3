"""Acknowledgement latency of `/relaycheck`: the relaycheck app vs a bare bolt app, same run.

Both apps run behind bolt's aiohttp adapter on 127.0.0.1 and receive the same 400 signed slash
commands (`/relaycheck <> -> kate@tailspintoys.com`), 20 in flight at a time, over real HTTP,
in 5 interleaved rounds (bare, relaycheck, bare, ...); the medians over the rounds are compared
(target: relaycheck p99 <= 1.3x bare, or bare + 20 ms). Latency is time to the HTTP response
(= the ack); the relaycheck app's follow-up answers go to the loopback Slack stand-in, and each
round waits for all of them before the next round starts, so no app is measured while the
other's answers are still being built. Run: `.venv/bin/python bench/bench_ack.py`.

The stand-in plays Slack, which is another machine in production, so it runs in a child process
(`--standin`): as a thread of this process it would compete for the GIL with the app's event
loop, and only in the relaycheck run (the bare app never answers), inflating the ratio with
work that is not the bot's. The load generator stays in this process for both apps alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.runtime.serve import EVENTS_PATH
from bot.slack.app import build_app, build_client
from bot.slack.settings import Secret, Settings
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
ROUNDS = 5


def parse_args(argv: list[str]) -> None:
    """`--requests N`, `--concurrency N`, `--rounds N` (defaults: 400, 20, 5)."""
    global REQUESTS, CONCURRENCY, ROUNDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds) < 1:
        parser.error("--requests, --concurrency and --rounds must be at least 1")
    REQUESTS, CONCURRENCY, ROUNDS = args.requests, args.concurrency, args.rounds


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


def standin_child() -> None:
    """`--standin`: serve the stand-in, print its port, answer `count` lines until stdin ends."""
    standin = SlackApiStandIn()
    standin.start()
    try:
        print(standin.port, flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print(len(standin.received("response_url")), flush=True)
    finally:
        standin.stop()


class RemoteStandIn:
    """The parent's handle on the child: payloads and response counts, over stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.payloads = SlackApiStandIn()  # never started: only builds payloads for `port`
        self.payloads.port = port
        self.base_url = self.payloads.base_url

    async def responses(self) -> int:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"count\n")
        await self.process.stdin.drain()
        return int(await self.process.stdout.readline())

    async def await_responses(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        while await self.responses() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} answers within {within} s")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def remote_standin() -> AsyncIterator[RemoteStandIn]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--standin",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        yield RemoteStandIn(process, int(await process.stdout.readline()))
    finally:
        process.stdin.close()
        await process.wait()


async def main() -> None:
    async with remote_standin() as standin:
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
                form(
                    standin.payloads.slash_command_payload(
                        "/relaycheck", "<> -> kate@tailspintoys.com"
                    )
                )
                for _ in range(REQUESTS)
            ]
            runners = {}
            results: dict[str, list[list[float]]] = {"bare": [], "relaycheck": []}
            answered = 0
            for name, app in (("bare", bare), ("relaycheck", ours)):
                runner, url = await _serve(app.web_app(path=EVENTS_PATH))
                runners[name] = (runner, url)
                warm = bodies[:20]
                await _measure(url, warm)  # warm-up (auth.test, imports, trust store)
                if name == "relaycheck":
                    answered += len(warm)  # the warm-up's answers are part of the warm-up
                    await standin.await_responses(answered, within=60)
            for _ in range(ROUNDS):  # interleaved, so machine noise hits both alike
                for name in ("bare", "relaycheck"):
                    results[name].append(await _measure(runners[name][1], bodies))
                    if name == "relaycheck":
                        # the answers follow the acks; let them finish before the next round
                        # measures anything, so neither app pays for them
                        answered += REQUESTS
                        await standin.await_responses(answered, within=120)
            for runner, _url in runners.values():
                await runner.cleanup()
            if client.session is not None:
                await client.session.close()
    summary = {}
    for name, rounds in results.items():
        p50 = statistics.median(_pct(values, 50) for values in rounds)
        p99 = statistics.median(_pct(values, 99) for values in rounds)
        summary[name] = (p50, p99)
        each = ", ".join(f"{_pct(v, 99):.1f}" for v in rounds)
        print(
            f"{name:>10}: {ROUNDS} rounds x n={REQUESTS} concurrency={CONCURRENCY} "
            f"median p50={p50:.2f} ms p99={p99:.2f} ms (p99 per round: {each})"
        )
    for index, q in enumerate((50, 99)):
        ours_q, bare_q = summary["relaycheck"][index], summary["bare"][index]
        print(
            f"ratio p{q} relaycheck/bare: {ours_q / bare_q:.2f} "
            f"(difference {ours_q - bare_q:+.1f} ms)"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--standin"]:
        standin_child()
    else:
        parse_args(sys.argv[1:])
        asyncio.run(main())
