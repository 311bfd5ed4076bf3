"""Replacing an endpoint's certificate is one story in the channel: the `cert-changed` message
says what got better and worse, and the old certificate's findings are not announced as
"Resolved (no longer seen)" beside the new certificate's alerts (real scan of loopback servers,
real cycle, store and delivery to the Slack stand-in)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.cycle import run_cycle
from bot.alerting.delivery import DeliveryWorker
from bot.alerting.store import Store
from checks.config import parse_config
from checks.model import CheckId, Config, Severity
from tests.fakes.slack import SlackApiStandIn


def config(tmp_path: Path, pki: Any, port: int) -> Config:
    return parse_config(
        {
            "tenant": {"name": "contoso"},
            "endpoints": [
                {"name": "relay", "host": "mail.contoso.com", "address": "127.0.0.1", "port": port}
            ],
            "trust": {"ca_file": str(pki.ca_file)},
            "probe": {"timeout_seconds": 2},
            "dns": {"enabled": False},
        },
        base_dir=tmp_path,
    )


def calls(api: SlackApiStandIn, method: str) -> list[Any]:
    return [c for c in api.received(method) if c.status == 200]


def text_of(call: Any) -> str:
    return json.dumps(call.params.get("blocks") or []) + str(call.params.get("text"))


async def test_replacement_is_one_change_message_with_better_and_worse(
    tmp_path: Path, pki: Any, smtp_server: Any, slack_api: SlackApiStandIn
) -> None:
    # the old certificate expires in 5 days (critical); its replacement lasts a year but
    # names another host (cert-hostname)
    old = await smtp_server("good", pki.leaf(["mail.contoso.com"], days=5))
    new = await smtp_server("good", pki.leaf(["smtp.tailspintoys.com"], days=365))
    store = Store.open(tmp_path / "state.sqlite3", channel="C0ALERTS")
    worker = DeliveryWorker(
        store,
        AsyncWebClient(token="xoxb-test", base_url=slack_api.base_url),
        min_interval=0.0,
        poll_interval=0.1,
    )
    try:
        first = await run_cycle(config(tmp_path, pki, old.port), store, now=pki.now, environ={})
        assert {f.check for f in first.findings if f.severity is Severity.CRITICAL} == {
            CheckId.CERT_EXPIRY
        }
        await worker.drain()
        (expiry_alert,) = calls(slack_api, "chat.postMessage")
        assert "cert-expiry" in text_of(expiry_alert)

        later = pki.now + timedelta(hours=6)
        await run_cycle(config(tmp_path, pki, new.port), store, now=later, environ={})
        await worker.drain()
        posts = calls(slack_api, "chat.postMessage")[1:]
        changed = [p for p in posts if "Certificate changed" in str(p.params.get("text"))]
        assert len(changed) == 1
        story = text_of(changed[0])
        assert "Better" in story
        assert "cert-expiry" in story
        assert "Worse" in story
        assert "cert-hostname" in story
        # the new problem keeps its own alert (with the buttons); nothing announces the old
        # certificate's findings as resolved beside it
        assert any("cert-hostname" in str(p.params.get("text")) for p in posts)
        assert not [p for p in posts if "Resolved" in text_of(p)]
        # the old alert's message is edited to say it was replaced, not "no longer seen"
        (edit,) = calls(slack_api, "chat.update")
        assert "replaced by the new certificate" in text_of(edit)
        assert "no longer seen" not in text_of(edit)
    finally:
        store.close()
