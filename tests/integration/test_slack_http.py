"""HTTP mode: the real bolt app behind its aiohttp adapter on 127.0.0.1, signed as Slack signs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.runtime.serve import EVENTS_PATH
from bot.slack.app import build_app, build_client
from bot.slack.settings import Secret, Settings
from checks.model import SlackMode
from tests.fakes.slack import SlackApiStandIn
from tests.integration.slack_support import (
    IP_CONNECTOR,
    SIGNING_SECRET,
    form,
    signed_headers,
    tenant_config,
)

SETTINGS = Settings(
    mode=SlackMode.HTTP, bot_token=Secret("xoxb-1-test"), signing_secret=Secret(SIGNING_SECRET)
)


@pytest.fixture
async def bot_url(tmp_path: Path, slack_api: SlackApiStandIn) -> AsyncIterator[str]:
    config = tenant_config(
        tmp_path, with_certificate=False, slack={"mode": "http", "api_url": slack_api.base_url}
    )
    client = build_client(config, SETTINGS)
    app = build_app(config, SETTINGS, client=client)
    runner = web.AppRunner(app.web_app(path=EVENTS_PATH), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}{EVENTS_PATH}"
    finally:
        await runner.cleanup()
        if client.session is not None:
            await client.session.close()


async def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status, await r.text()


async def test_signed_slash_command_is_answered_and_explained_through_response_url(
    bot_url: str, slack_api: SlackApiStandIn
) -> None:
    body = form(
        slack_api.slash_command_payload(
            "/relaycheck", "&lt;&gt; -&gt; kate@tailspintoys.com", response_id="ndr1"
        )
    )
    started = time.monotonic()
    status, _ = await _post(bot_url, body, signed_headers(body))
    assert status == 200
    assert time.monotonic() - started < 3
    await slack_api.await_until(lambda: bool(slack_api.responses("ndr1")))
    answer = slack_api.responses("ndr1")[0].params
    assert answer["response_type"] == "ephemeral"
    rendered = str(answer["blocks"])
    assert "(`ndr`)" in rendered
    assert "550 5.7.64 Relay Access Denied ATTR36" in rendered
    assert "On-prem IP &lt;!channel&gt; &amp; co" in rendered
    assert IP_CONNECTOR not in rendered  # never raw: it would ping the channel
    assert "relaycheck_share" in rendered


async def test_help_is_in_the_acknowledgement(bot_url: str, slack_api: SlackApiStandIn) -> None:
    body = form(slack_api.slash_command_payload("/relaycheck", "what is this <!channel>"))
    status, text = await _post(bot_url, body, signed_headers(body))
    assert status == 200
    assert "could not read" in text
    assert "&lt;!channel&gt;" in text
    assert "<!channel>" not in text


@pytest.mark.parametrize(
    "case", ["wrong-signature", "stale-timestamp", "missing-headers", "missing-signature"]
)
async def test_unsigned_or_badly_signed_requests_get_401(
    bot_url: str, slack_api: SlackApiStandIn, case: str
) -> None:
    body = form(slack_api.slash_command_payload("/relaycheck", "help"))
    if case == "wrong-signature":
        headers = signed_headers(body, secret="0" * 32)
    elif case == "stale-timestamp":
        headers = signed_headers(body, timestamp=int(time.time()) - 6 * 60)
    elif case == "missing-headers":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        headers = signed_headers(body)
        del headers["X-Slack-Signature"]
    status, _ = await _post(bot_url, body, headers)
    assert status == 401
    await asyncio.sleep(0.05)
    assert slack_api.received("response_url") == []


MALFORMED = [
    "payload={",
    "payload=%7B%22type%22%3A",
    "\udcff\udcfe=1",  # not UTF-8 once encoded with surrogateescape
    "a" * 200_000,
    "",
]


def _raw(body: str) -> bytes:
    return body.encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("body", MALFORMED, ids=["open-brace", "cut-json", "latin", "big", "empty"])
async def test_unsigned_malformed_bodies_get_401_and_one_short_log_line(
    bot_url: str, slack_api: SlackApiStandIn, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": "not-a-number",
        "X-Slack-Signature": "v0=deadbeef",
    }
    with caplog.at_level(logging.DEBUG):
        async with (
            aiohttp.ClientSession() as session,
            session.post(bot_url, data=_raw(body), headers=headers) as r,
        ):
            status = r.status
    assert status == 401
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(records) <= 1
    assert all(len(r.getMessage()) < 200 and r.exc_info is None for r in records)
    assert "Traceback" not in caplog.text


async def test_signed_but_malformed_payload_is_400_without_traceback(
    bot_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = "payload=%7B"  # payload={ , correctly signed
    with caplog.at_level(logging.DEBUG):
        status, _ = await _post(bot_url, body, signed_headers(body))
    assert status == 400
    assert "Traceback" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)
