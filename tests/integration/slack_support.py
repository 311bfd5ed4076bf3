"""Shared set-up for the Slack tests: a tenant config with hostile names, signed requests, and
the `run_bot` fixture (the real bolt app over Socket Mode to the stand-in)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import trustme
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.signature import SignatureVerifier

from bot.slack.app import build_app, build_client, utc_now
from bot.slack.settings import Secret, Settings
from checks.config import parse_config
from checks.model import Config, SlackMode
from tests.fakes.slack import SlackApiStandIn

SIGNING_SECRET = "8f742231b10e8888abcd99aa85a5c3d1"
IP_CONNECTOR = "On-prem IP <!channel> & co"
CERT_CONNECTOR = "Cert <@U123> & more"


def tenant_config(
    tmp: Path, *, with_certificate: bool = True, slack: dict[str, Any] | None = None
) -> Config:
    """Contoso with an IP connector and (optionally) a certificate connector backed by a file."""
    connectors: list[dict[str, Any]] = [
        {"name": IP_CONNECTOR, "sender_ip_addresses": ["203.0.113.10"]}
    ]
    raw: dict[str, Any] = {
        "tenant": {"name": "Contoso <!here>", "accepted_domains": ["contoso.com"]},
        "connectors": connectors,
        "slack": slack or {},
        "state": {"path": str(tmp / "state.sqlite3")},
    }
    if with_certificate:
        ca = trustme.CA()
        cert = ca.issue_cert("mail.contoso.com")
        ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
        (tmp / "chain.pem").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        connectors.append(
            {
                "name": CERT_CONNECTOR,
                "tls_sender_certificate_name": "*.contoso.com",
                "certificate": {"file": "chain.pem"},
            }
        )
        raw["trust"] = {"ca_file": "ca.pem"}
    return parse_config(raw, base_dir=tmp)


def signed_headers(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Headers exactly as Slack sends them: v0 HMAC-SHA256 over 'v0:{ts}:{body}'."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def form(payload: dict[str, Any]) -> str:
    return urlencode(payload)


SOCKET_SETTINGS = Settings(
    mode=SlackMode.SOCKET, bot_token=Secret("xoxb-1-test"), app_token=Secret("xapp-1-test")
)

Runner = Callable[..., Any]


@pytest.fixture
async def run_bot(slack_api: SlackApiStandIn) -> AsyncIterator[Runner]:
    handlers: list[tuple[AsyncSocketModeHandler, Any]] = []

    async def start(config: Config, clock: Callable[[], datetime] = utc_now) -> None:
        config = replace(config, slack=replace(config.slack, api_url=slack_api.base_url))
        client = build_client(config, SOCKET_SETTINGS)
        app = build_app(config, SOCKET_SETTINGS, client=client, clock=clock)
        handler = AsyncSocketModeHandler(app, app_token="xapp-1-test", web_client=client)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        handlers.append((handler, client))
        await slack_api.await_until(lambda: slack_api.socket_connected)

    yield start
    for handler, client in handlers:
        await handler.close_async()  # type: ignore[no-untyped-call]
        if client.session is not None:
            await client.session.close()
    await asyncio.sleep(0)
