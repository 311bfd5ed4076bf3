"""Exactly once as far as Slack allows, and backoff that matches the failure (issue 15).

The outbox worker against the Slack stand-in: a post that Slack carries out but answers only
after the client timeout, 429 storms followed by a 503, a rate-limited channel beside a healthy
one, and a restart with stored backoffs. The kill -9 variant is in tests/e2e/test_crash.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.delivery import DeliveryWorker
from bot.alerting.store import Store
from bot.records import OutboxDraft
from tests.fakes.slack import DEFAULT_SCOPES, SlackApiStandIn

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def post(event: str, text: str, channel: str | None = None) -> OutboxDraft:
    return OutboxDraft(
        id=f"{event}#post", event_id=event, action="post", text=text, channel=channel
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "state.sqlite3", channel="C0ALERTS")
    yield s
    s.close()


def client_for(api: SlackApiStandIn) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=api.base_url)


def posts(api: SlackApiStandIn, text: str | None = None) -> list[str]:
    """Texts Slack carried out (a slow answer counts: the message is in the channel)."""
    return [
        c.params["text"]
        for c in api.received("chat.postMessage")
        if c.status == 200 and (text is None or c.params["text"] == text)
    ]


async def run_until(worker: DeliveryWorker, api: SlackApiStandIn, done: object, within: float):
    task = asyncio.create_task(worker.run_forever())
    try:
        await api.await_until(done, within=within)  # type: ignore[arg-type]
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


async def test_answer_after_the_client_timeout_is_not_posted_twice(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post(f"e{i}", f"alert {i}") for i in range(4)], NOW)
    slack_api.slow_next("chat.postMessage", seconds=2.5)  # past the worker's 1 s timeout
    worker = DeliveryWorker(
        store, client_for(slack_api), min_interval=0.01, base_backoff=0.1, timeout=1
    )
    await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=20)
    assert posts(slack_api) == [f"alert {i}" for i in range(4)]  # 4 posts for 4 alerts
    (lookup,) = slack_api.received("conversations.history")
    assert lookup.params["channel"] == "C0ALERTS"
    # the ts Slack gave the slow post was adopted: a later edit finds the real message
    posted = store.posted_message("e0")
    assert posted is not None
    assert slack_api.messages[posted[1]]["text"] == "alert 0"
    assert store.outbox_counts() == {"delivered": 4, "failed": 0, "pending": 0}


async def test_thread_reply_answered_late_is_found_among_the_replies(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post("e1", "opened")], NOW)
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01, timeout=1)
    await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=10)
    reply = OutboxDraft(id="r1#reply", event_id="r1", action="reply", text="fixed", reply_to="e1")
    store.enqueue([reply], NOW)
    slack_api.slow_next("chat.postMessage", seconds=2.5)
    worker = DeliveryWorker(
        store, client_for(slack_api), min_interval=0.01, base_backoff=0.1, timeout=1
    )
    await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=20)
    assert posts(slack_api, "fixed") == ["fixed"]
    assert [c.params["ts"] for c in slack_api.received("conversations.replies")] == [
        store.posted_message("e1")[1]  # type: ignore[index]
    ]


async def test_without_history_scope_it_says_so_and_posts_again(
    slack_api: SlackApiStandIn, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    slack_api.scopes = tuple(s for s in DEFAULT_SCOPES if not s.endswith(":history"))
    store.enqueue([post("e1", "alert")], NOW)
    slack_api.slow_next("chat.postMessage", seconds=2.5)
    worker = DeliveryWorker(
        store, client_for(slack_api), min_interval=0.01, base_backoff=0.1, timeout=1
    )
    with caplog.at_level(logging.WARNING, logger="relaycheck.delivery"):
        await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=20)
    assert "channels:history" in caplog.text
    assert "at-least-once" in caplog.text
    assert posts(slack_api) == ["alert", "alert"]  # at least once: the documented fallback
    assert slack_api.received("conversations.history") == []


async def test_429_storm_then_503_then_healthy_delivers_everything_within_10_s(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    texts = [f"alert {i}" for i in range(5)]
    store.enqueue([post(f"e{i}", t) for i, t in enumerate(texts)], NOW)
    slack_api.fail_next("chat.postMessage", status=429, retry_after=1, times=14)
    slack_api.fail_next("chat.postMessage", status=503)
    worker = DeliveryWorker(store, client_for(slack_api))  # production pacing and backoff
    await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=45)
    calls = slack_api.received("chat.postMessage")
    statuses = [c.status for c in calls]
    assert statuses[:15] == [429] * 14 + [503]
    recovered = calls[14].time
    assert calls[-1].time - recovered < 10
    assert sorted(posts(slack_api)) == texts
    # the 429s waited Retry-After and nothing more: they did not grow the backoff
    gaps = [b.time - a.time for a, b in itertools.pairwise(calls[:14])]
    assert max(gaps) < 3


async def test_a_rate_limited_channel_does_not_hold_another(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post("a", "to A", channel="C0AAA"), post("b", "to B", channel="C0BBB")], NOW)
    slack_api.fail_next("chat.postMessage", status=429, retry_after=30)
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01)
    await run_until(worker, slack_api, lambda: posts(slack_api) == ["to B"], within=10)
    assert store.outbox_counts()["pending"] == 1  # A still waits out its Retry-After


async def test_restart_with_slack_healthy_ignores_a_stored_backoff(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post(f"e{i}", f"alert {i}") for i in range(3)], NOW)
    for msg in store.pending():
        # what a worker left behind after a long outage: the next try minutes away
        store.record_attempt_failure(
            msg.seq,
            "HTTP 503",
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=284),
            now=NOW,
            outage=True,
        )
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01)
    await run_until(worker, slack_api, lambda: len(posts(slack_api)) == 3, within=10)


async def test_5xx_backoff_is_capped_and_reset_by_a_success(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    worker = DeliveryWorker(store, client_for(slack_api))
    assert max(worker._backoff(n) for n in range(1, 40)) <= 60
    store.enqueue([post("e1", "first"), post("e2", "second")], NOW)
    slack_api.fail_next("chat.postMessage", status=500, times=2)
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01, base_backoff=0.05)
    await run_until(worker, slack_api, lambda: len(posts(slack_api)) == 2, within=10)
    assert posts(slack_api) == ["first", "second"]  # a short outage keeps the channel in order
    assert all(m.failures == 0 for m in store.pending())


async def test_a_rate_limited_lookup_keeps_looking_instead_of_posting_again(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post("e1", "alert")], NOW)
    slack_api.slow_next("chat.postMessage", seconds=2.5)
    slack_api.fail_next("conversations.history", status=429, retry_after=1)
    worker = DeliveryWorker(
        store, client_for(slack_api), min_interval=0.01, base_backoff=0.1, timeout=1
    )
    await run_until(worker, slack_api, lambda: store.outbox_counts()["pending"] == 0, within=20)
    assert posts(slack_api) == ["alert"]
    assert [c.status for c in slack_api.received("conversations.history")] == [429, 200]


async def test_a_message_that_keeps_failing_does_not_hold_its_channel_for_long(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post("bad", "poisoned"), post("ok", "fine")], NOW)
    # Slack chokes on the first message only; the channel itself is healthy
    slack_api.fail_next("chat.postMessage", status=500, times=1000, text="poisoned")
    worker = DeliveryWorker(
        store, client_for(slack_api), min_interval=0.01, base_backoff=0.05, hold_seconds=0.5
    )
    await run_until(worker, slack_api, lambda: posts(slack_api) == ["fine"], within=10)
    (stuck,) = store.pending()
    assert stuck.id == "bad#post"
    assert posts(slack_api, "poisoned") == []


async def test_another_channel_is_not_held_by_an_outage_of_one(
    slack_api: SlackApiStandIn, store: Store
) -> None:
    store.enqueue([post("a", "to A", channel="C0AAA"), post("b", "to B", channel="C0BBB")], NOW)
    slack_api.fail_next(
        "chat.postMessage", status=503, times=1000, channel="C0AAA", body="<html>down</html>"
    )
    worker = DeliveryWorker(store, client_for(slack_api), min_interval=0.01)
    await run_until(worker, slack_api, lambda: posts(slack_api) == ["to B"], within=10)
    assert store.outbox_counts()["pending"] == 1
    failed = [c for c in slack_api.received("chat.postMessage") if c.status == 503]
    assert failed
    assert all(c.params["channel"] == "C0AAA" for c in failed)
