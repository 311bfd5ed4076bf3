"""The app's Web API client counts failed calls for /metrics, by kind, after its own retries."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError

from bot.runtime.metrics import Metrics
from bot.slack.app import build_client
from bot.slack.settings import Secret, Settings
from checks.config import parse_config
from checks.model import SlackMode
from tests.fakes.slack import SlackApiStandIn


async def test_failed_calls_are_counted_by_kind(slack_api: SlackApiStandIn) -> None:
    config = parse_config(
        {"tenant": {}, "slack": {"api_url": slack_api.base_url}}, base_dir=Path(".")
    )
    metrics = Metrics()
    settings = Settings(mode=SlackMode.SOCKET, bot_token=Secret("xoxb-1-count"))
    client = build_client(config, settings, on_api_error=metrics.slack_error)
    try:
        slack_api.fail_next("chat.postMessage", status=200, error="channel_not_found")
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel="C1", text="x")
        slack_api.fail_next("chat.postMessage", status=503)
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel="C1", text="x")
        await client.chat_postMessage(channel="C1", text="fine")
    finally:
        assert client.session is not None
        await client.session.close()
    text = metrics.render().decode()
    assert 'relaycheck_slack_api_errors_total{kind="channel_not_found"} 1.0' in text
    assert 'relaycheck_slack_api_errors_total{kind="http_5xx"} 1.0' in text
    assert text.count("relaycheck_slack_api_errors_total{") == 2
