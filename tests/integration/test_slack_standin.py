"""The Slack stand-in behaves like the parts of Slack the bot relies on, via the real clients."""

from __future__ import annotations

import asyncio
import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack import SlackApiStandIn


def test_post_update_and_record_through_the_sync_client(slack_api: SlackApiStandIn) -> None:
    client = WebClient(token="xoxb-test", base_url=slack_api.base_url)
    assert client.auth_test()["user_id"] == "U0BOTUSER"
    first = client.chat_postMessage(channel="C1", text="one", blocks=[{"type": "divider"}])
    second = client.chat_postMessage(channel="C1", text="two")
    assert float(second["ts"]) > float(first["ts"])
    assert first["channel"] == "C1"
    assert first["message"]["blocks"] == [{"type": "divider"}]
    client.chat_update(channel="C1", ts=first["ts"], text="one, edited")
    assert slack_api.messages[first["ts"]]["text"] == "one, edited"
    posts = slack_api.received("chat.postMessage")
    assert [p.params["text"] for p in posts] == ["one", "two"]
    assert posts[0].token == "xoxb-test"
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel="C1", ts="1.2", text="x")


def test_rate_limit_then_success_with_the_retry_handler(slack_api: SlackApiStandIn) -> None:
    slack_api.fail_next("chat.postMessage", status=429, retry_after=1)
    client = WebClient(
        token="xoxb-test",
        base_url=slack_api.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    client.chat_postMessage(channel="C1", text="after the wait")
    attempts = slack_api.received("chat.postMessage")
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[1].time - attempts[0].time >= 0.9
    assert time.monotonic() - started < 5


def test_server_errors_and_permanent_errors(slack_api: SlackApiStandIn) -> None:
    client = WebClient(token="xoxb-test", base_url=slack_api.base_url)
    slack_api.fail_next("chat.postMessage", status=500, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            client.chat_postMessage(channel="C1", text="x")
        assert info.value.response.status_code == 500
    slack_api.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.chat_postMessage(channel="C1", text="x")
    client.chat_postMessage(channel="C1", text="x")
    assert [c.status for c in slack_api.received("chat.postMessage")] == [500, 500, 200, 200]


def test_refused_then_accepted_on_the_same_port(slack_api: SlackApiStandIn) -> None:
    client = WebClient(token="xoxb-test", base_url=slack_api.base_url, timeout=2, retry_handlers=[])
    port = slack_api.port
    slack_api.refuse_connections()
    with pytest.raises(OSError, match=r"[Cc]onnection refused"):
        client.auth_test()
    slack_api.accept_connections()
    assert slack_api.port == port
    assert client.auth_test()["ok"]


async def test_response_url_and_async_client(slack_api: SlackApiStandIn) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=slack_api.base_url)
    await client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert slack_api.received("views.publish")[0].params["view"]["type"] == "home"
    webhook = AsyncWebhookClient(slack_api.response_url_for("abc"))
    await webhook.send(text="hello", response_type="ephemeral")
    assert slack_api.responses("abc")[0].params["text"] == "hello"


async def test_socket_mode_envelopes_are_acknowledged(slack_api: SlackApiStandIn) -> None:
    web = AsyncWebClient(token="xoxb-test", base_url=slack_api.base_url)
    client = SocketModeClient(app_token="xapp-1-test", web_client=web, auto_reconnect_enabled=False)
    seen: list[str] = []

    async def on_request(c: SocketModeClient, request: SocketModeRequest) -> None:
        seen.append(request.payload.get("text", ""))
        await c.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    client.socket_mode_request_listeners.append(on_request)
    await client.connect()
    try:
        await slack_api.await_until(lambda: slack_api.socket_connected)
        envelope = slack_api.push_slash_command("/relaycheck", "status")
        ack = await slack_api.ack_for(envelope)
        assert ack["envelope_id"] == envelope.envelope_id
        assert seen == ["status"]
        assert slack_api.received("apps.connections.open")[0].token == "xapp-1-test"
    finally:
        await client.close()
        await asyncio.sleep(0)
