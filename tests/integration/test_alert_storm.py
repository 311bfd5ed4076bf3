"""An outage of 12 endpoints is one Slack message, resolved piece by piece (real scan of loopback
endpoints that refuse and then answer, real lifecycle and store, delivery to the Slack stand-in).

Three come back: one thread reply that says how many are still open, and no edit of the original
message (which would make it look resolved). The rest come back: the edit, listing all twelve.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.cycle import run_cycle
from bot.alerting.delivery import DeliveryWorker
from bot.alerting.store import Store
from checks.config import parse_config
from checks.model import CheckId, Config
from tests.fakes.slack import SlackApiStandIn
from tests.fakes.smtp import closed_port

NAMES = [f"relay-{i:02d}" for i in range(12)]


def config(tmp_path: Path, pki: Any, ports: dict[str, int]) -> Config:
    return parse_config(
        {
            "tenant": {"name": "contoso"},
            "endpoints": [
                {"name": name, "host": "mail.contoso.com", "address": "127.0.0.1", "port": port}
                for name, port in ports.items()
            ],
            "trust": {"ca_file": str(pki.ca_file)},
            "probe": {"ehlo_name": "probe.contoso.com", "timeout_seconds": 2},
            "state": {"path": "state.sqlite3"},
        },
        base_dir=tmp_path,
    )


def alert_calls(api: SlackApiStandIn, method: str) -> list[Any]:
    return [c for c in api.received(method) if c.status == 200]


async def test_outage_of_twelve_is_one_alert_and_resolves_piece_by_piece(
    tmp_path: Path, pki: Any, smtp_server: Any, slack_api: SlackApiStandIn
) -> None:
    healthy = await smtp_server(kind="good", chain=pki.leaf(["mail.contoso.com"], days=365))
    refused = {name: closed_port() for name in NAMES}
    store = Store.open(tmp_path / "state.sqlite3", channel="C0ALERTS")
    worker = DeliveryWorker(
        store,
        AsyncWebClient(token="xoxb-test", base_url=slack_api.base_url),
        min_interval=0.0,
        poll_interval=0.1,
    )
    now = pki.now
    try:
        # run 1: all twelve refuse connections
        first = await run_cycle(config(tmp_path, pki, refused), store, now=now, environ={})
        down = [f for f in first.findings if f.check is CheckId.ENDPOINT_UNREACHABLE]
        assert sorted(f.subject for f in down) == NAMES
        await worker.drain()
        (alert,) = alert_calls(slack_api, "chat.postMessage")
        assert "12 at once" in alert.params["text"]
        assert all(name in alert.params["text"] for name in NAMES)
        (storm,) = [e for e in first.events if e.details.get("storm")]
        # the buttons act on every endpoint of the message
        assert sorted(k[1] for k in store.keys_for_event(storm.id)) == NAMES

        # run 2: three come back
        partly = {**refused, **dict.fromkeys(NAMES[:3], healthy.port)}
        await run_cycle(
            config(tmp_path, pki, partly), store, now=now + timedelta(hours=1), environ={}
        )
        await worker.drain()
        posts = alert_calls(slack_api, "chat.postMessage")
        assert len(posts) == 2
        reply = posts[1]
        assert "thread_ts" in reply.params
        assert "9 still open" in reply.params["text"]
        assert "relay-00" in reply.params["text"]
        assert alert_calls(slack_api, "chat.update") == []
        assert len(store.open_findings(now=now)) == 9

        # run 3: all back
        everyone = dict.fromkeys(NAMES, healthy.port)
        await run_cycle(
            config(tmp_path, pki, everyone), store, now=now + timedelta(hours=2), environ={}
        )
        await worker.drain()
        (update,) = alert_calls(slack_api, "chat.update")
        posted = store.posted_message(storm.id)
        assert posted is not None
        assert update.params["ts"] == posted[1]
        assert reply.params["thread_ts"] == posted[1]
        edited = str(update.params["blocks"])
        assert all(name in edited for name in NAMES)
        assert "all 12" in update.params["text"]
        final = alert_calls(slack_api, "chat.postMessage")[2]
        assert final.params["thread_ts"] == posted[1]
        assert "all 12 resolved" in final.params["text"]
        assert len(alert_calls(slack_api, "chat.postMessage")) == 3
        assert store.open_findings(now=now) == []
    finally:
        store.close()
