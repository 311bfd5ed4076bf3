"""The outbox worker against the Slack stand-in: 429s, 500s, refused connections, crashes."""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.delivery import DeliveryWorker
from bot.alerting.store import Store
from bot.records import OutboxDraft
from tests.fakes.slack import SlackApiStandIn

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def post(event: str, text: str) -> OutboxDraft:
    return OutboxDraft(id=f"{event}#post", event_id=event, action="post", text=text)


def resolution(event: str, original: str, text: str) -> list[OutboxDraft]:
    return [
        OutboxDraft(
            id=f"{event}#update", event_id=event, action="update", text=text, reply_to=original
        ),
        OutboxDraft(
            id=f"{event}#reply", event_id=event, action="reply", text=text, reply_to=original
        ),
    ]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "state.sqlite3", channel="C0ALERTS")
    yield s
    s.close()


def client_for(api: SlackApiStandIn) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=api.base_url)


async def run_until(
    worker: DeliveryWorker, api: SlackApiStandIn, done: object, within: float
) -> None:
    task = asyncio.create_task(worker.run_forever())
    try:
        await api.await_until(done, within=within)  # type: ignore[arg-type]
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


def posted_texts(api: SlackApiStandIn) -> list[str]:
    return [c.params["text"] for c in api.received("chat.postMessage") if c.status == 200]


async def test_every_alert_once_in_order_through_429_500_and_an_outage(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue(
        [
            post("a1", "A opened"),
            post("b1", "B opened"),
            post("a2", "A escalated"),
            *resolution("a3", "a2", "A resolved"),
            post("b2", "B escalated"),
        ],
        NOW,
    )
    slack_api.fail_next("chat.postMessage", status=429, retry_after=1)
    slack_api.fail_next("chat.postMessage", status=500, times=2)
    worker = DeliveryWorker(
        store, client_for(slack_api), min_interval=0.05, base_backoff=0.05, poll_interval=0.1
    )
    # Slack goes away for a while in the middle of the run
    outage = threading.Timer(1.3, slack_api.refuse_connections)
    back = threading.Timer(2.3, slack_api.accept_connections)
    outage.start()
    back.start()
    try:
        await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=20)
    finally:
        outage.cancel()
        back.cancel()
    assert posted_texts(slack_api) == [
        "A opened",
        "B opened",
        "A escalated",
        "A resolved",
        "B escalated",
    ]
    statuses = [c.status for c in slack_api.received("chat.postMessage")]
    assert statuses[:4] == [429, 500, 500, 200]
    # Retry-After: 1 honoured (not retried inside slack_sdk, not earlier)
    calls = slack_api.received("chat.postMessage")
    assert calls[1].time - calls[0].time >= 0.95
    # the resolution edited the escalation's message and replied in its thread
    (update,) = slack_api.received("chat.update")
    escalated = next(c for c in calls if c.status == 200 and c.params["text"] == "A escalated")
    reply = next(c for c in calls if c.status == 200 and c.params["text"] == "A resolved")
    ts = store.posted_message("a2")
    assert ts is not None
    assert update.params["ts"] == ts[1]
    assert reply.params["thread_ts"] == ts[1]
    assert escalated.params["channel"] == "C0ALERTS"
    assert store.outbox_counts() == {"delivered": 6, "failed": 0, "pending": 0}


async def test_posts_to_one_channel_are_paced(slack_api: SlackApiStandIn, store: Store) -> None:
    store.enqueue([post(f"e{i}", f"m{i}") for i in range(4)], NOW)
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.3, poll_interval=0.1)
    await run_until(worker, slack_api, lambda: len(posted_texts(slack_api)) == 4, within=10)
    times = [c.time for c in slack_api.received("chat.postMessage")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.28


async def test_permanent_error_is_kept_as_failed_and_does_not_block(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post("e1", "doomed"), post("e2", "fine")], NOW)
    slack_api.fail_next("chat.postMessage", status=200, error="channel_not_found")
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01, poll_interval=0.1)
    await run_until(worker, slack_api, lambda: "fine" in posted_texts(slack_api), within=5)
    assert store.outbox_counts() == {"delivered": 1, "failed": 1, "pending": 0}


async def test_message_with_recorded_ts_is_never_posted_again(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post("e1", "already sent"), post("e2", "new")], NOW)
    (first, _) = store.pending()
    store.record_ts(first.seq, "1699999999.000001")  # crash after ts, before "delivered"
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01, poll_interval=0.1)
    await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=5)
    assert posted_texts(slack_api) == ["new"]


async def test_console_sink_prints_and_delivers(store: Store) -> None:
    store.enqueue([post("e1", "certificate expires soon")], NOW)
    out = io.StringIO()
    worker = DeliveryWorker(store, None, out=out)
    assert await worker.drain() is None
    assert "[relaycheck ALERT] certificate expires soon" in out.getvalue()
    assert store.outbox_counts()["delivered"] == 1


async def test_update_without_posted_original_is_skipped(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue(resolution("r1", "never-posted", "resolved quietly"), NOW)
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01)
    assert await worker.drain() is None
    assert slack_api.received("chat.update") == []
    assert posted_texts(slack_api) == []
    assert store.outbox_counts()["pending"] == 0
