"""The acknowledgement never waits for the work that follows it, and that work reads once.

Real parts only: the bolt app behind its aiohttp adapter, a loopback STARTTLS server that
holds its banner (a slow certificate source), the Slack stand-in for response_url.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.runtime.serve import EVENTS_PATH
from bot.slack.app import build_app, build_client
from bot.slack.listeners.common import Deps, FollowUps
from bot.slack.settings import Secret, Settings
from checks.config import parse_config
from checks.model import Config, SlackMode
from tests.fakes.pki import Pki
from tests.fakes.slack import SlackApiStandIn
from tests.fakes.smtp import ServerFactory
from tests.integration.slack_support import SIGNING_SECRET, form, signed_headers

SETTINGS = Settings(
    mode=SlackMode.HTTP, bot_token=Secret("xoxb-1-test"), signing_secret=Secret(SIGNING_SECRET)
)


def endpoint_config(pki: Pki, port: int, api_url: str = "http://127.0.0.1:9/") -> Config:
    """Contoso whose certificate connector is observed by probing a loopback endpoint."""
    return parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "endpoints": [
                {"name": "relay", "host": "mail.contoso.com", "address": "127.0.0.1", "port": port}
            ],
            "connectors": [
                {
                    "name": "cert",
                    "tls_sender_certificate_name": "*.contoso.com",
                    "certificate": {"endpoint": "relay"},
                }
            ],
            "trust": {"ca_file": str(pki.ca_file)},
            "probe": {"timeout_seconds": 5, "greeting_timeout_seconds": 5},
            "slack": {"mode": "http", "api_url": api_url},
        },
        base_dir=pki.tmp_path,
    )


@pytest.fixture
async def slow_bot(
    pki: Pki, smtp_server: ServerFactory, slack_api: SlackApiStandIn
) -> AsyncIterator[tuple[str, int]]:
    """The app, with a certificate source that takes a second to answer."""
    server = await smtp_server("good", pki.leaf(), hold=1.0)
    config = endpoint_config(pki, server.port, slack_api.base_url)
    client = build_client(config, SETTINGS)
    app = build_app(config, SETTINGS, client=client)
    runner = web.AppRunner(app.web_app(path=EVENTS_PATH), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{EVENTS_PATH}", server.port
    finally:
        await runner.cleanup()
        if client.session is not None:
            await client.session.close()


async def test_acks_come_back_while_the_answers_are_still_probing(
    slow_bot: tuple[str, int], slack_api: SlackApiStandIn
) -> None:
    url, _port = slow_bot
    bodies = [
        form(
            slack_api.slash_command_payload(
                "/relaycheck", "<> -> kate@tailspintoys.com", response_id=f"r{i}"
            )
        )
        for i in range(5)
    ]
    async with aiohttp.ClientSession() as session:

        async def post(body: str) -> None:
            async with session.post(url, data=body, headers=signed_headers(body)) as r:
                assert r.status == 200
                await r.read()

        await asyncio.gather(*(post(b) for b in bodies))
    # every ack is back while the certificate source still holds its banner: no answer yet
    assert not any(slack_api.responses(f"r{i}") for i in range(5))
    await slack_api.await_until(
        lambda: all(slack_api.responses(f"r{i}") for i in range(5)), within=20
    )
    for i in range(5):
        assert "(`ndr`)" in str(slack_api.responses(f"r{i}")[0].params["blocks"])


async def test_answers_share_one_read_of_tenant_and_certificates(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    server = await smtp_server("good", pki.leaf())
    now = pki.now
    deps = Deps(config=endpoint_config(pki, server.port), store=None, clock=lambda: now)
    first, second = await asyncio.gather(deps.explain_context(now), deps.explain_context(now))
    assert first is second
    assert await deps.explain_context(now + timedelta(seconds=29)) is first
    assert server.connections == 1  # twenty answers in a burst probe once
    assert first.certificates["cert"].verdict is not None
    assert first.certificates["cert"].verdict.trusted
    # older than the TTL: read again
    later = await deps.explain_context(now + timedelta(seconds=31))
    assert later is not first
    assert server.connections == 2


async def test_a_changed_certificate_file_is_read_again(pki: Pki, tmp_path: Path) -> None:
    pem = pki.leaf(["mail.contoso.com"]).write_pem(tmp_path / "chain.pem")
    config = parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "connectors": [
                {
                    "name": "cert",
                    "tls_sender_certificate_name": "*.contoso.com",
                    "certificate": {"file": str(pem)},
                }
            ],
            "trust": {"ca_file": str(pki.ca_file)},
        },
        base_dir=tmp_path,
    )
    now = pki.now
    deps = Deps(config=config, store=None, clock=lambda: now)
    first = await deps.explain_context(now)
    assert await deps.explain_context(now) is first
    renewed = pki.leaf(["relay.contoso.com"])
    renewed.write_pem(pem)
    again = await deps.explain_context(now)
    assert again is not first
    leaf = again.certificates["cert"].leaf
    assert leaf is not None
    assert leaf.fingerprint_sha256 == renewed.fingerprint


async def test_follow_ups_wait_for_pending_acknowledgements() -> None:
    follow_ups = FollowUps(settle_seconds=0.01, max_defer_seconds=5)
    ran: list[str] = []

    async def answer(name: str) -> None:
        ran.append(name)

    follow_ups.arrived()
    follow_ups.arrived()
    follow_ups.start(answer("first"))
    follow_ups.acked()
    await asyncio.sleep(0.1)
    assert ran == []  # one command still waits for its acknowledgement
    follow_ups.acked()
    await asyncio.wait_for(follow_ups.drain(), 2)
    assert ran == ["first"]


async def test_follow_ups_are_not_starved_by_a_stream_of_commands() -> None:
    follow_ups = FollowUps(settle_seconds=0.01, max_defer_seconds=0.2)
    ran: list[str] = []

    async def answer() -> None:
        ran.append("answered")

    follow_ups.arrived()  # never acknowledged: a stream that never pauses
    follow_ups.start(answer())
    await asyncio.wait_for(follow_ups.drain(), 2)
    assert ran == ["answered"]
