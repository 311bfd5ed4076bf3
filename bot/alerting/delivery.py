"""The outbox worker: every queued alert reaches Slack once, in order, whatever Slack does.

Design (at-least-once with duplicate suppression):

1. A message is queued in the same transaction as the lifecycle event that caused it.
2. The worker takes messages strictly in queue order (head of line), so the messages about one
   finding (opened, escalated, resolved) arrive in the order they happened.
3. Before posting, a message that already has a Slack `ts` is not posted again: it was
   confirmed before a crash and only the "delivered" mark was missing.
4. After Slack confirms, the `ts` is committed FIRST, then the message is marked delivered.
   (healthchecks marks first and can lose an alert; we prefer a rare duplicate to a loss.)

The remaining window, stated honestly: if the process dies after Slack accepted a post but
before the `ts` commit (the time of one local sqlite write, about a millisecond), the restart
posts that message again. Each post carries `metadata.event_payload.outbox_id`, so a person
or tool reading the channel can tell such a twin from a new alert (relaycheck itself does not
look it up: that would cost a history read per retried post). chat.update is idempotent, so
only `post` and `reply` can ever double.

Retries are owned here, not by slack_sdk: the worker uses its own AsyncWebClient with NO retry
handlers, so a 429 or an outage is seen once by the worker instead of being retried inside
slack_sdk and again here (stacked retries). 429 waits exactly `Retry-After`; 5xx, connection
errors and timeouts back off exponentially with full jitter up to `max_backoff`; an hour-long
outage therefore delays alerts but drops none. Errors Slack calls permanent (channel_not_found,
invalid_auth, ...) mark the message failed (kept in the outbox, logged) instead of blocking
every later alert forever. Posts to one channel are spaced by `min_interval` (about 1 per second).

With no Slack client (console mode, the embedded default) messages are printed to stdout.

Several replicas may drain one outbox (`Store.claim_next`): the head is claimed while it is
delivered (PostgreSQL: a row lock taken with FOR UPDATE SKIP LOCKED; sqlite: a claim mark), a
replica that finds the head claimed waits `CLAIM_RETRY_SECONDS` instead of skipping ahead, so
queue order holds across replicas and no message is sent by two of them. The duplicate window
above widens in one case: a replica frozen in the middle of a post for longer than the claim's
hold (PostgreSQL ends its session, so the lock is released) can find the message re-posted by
another replica when it wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.store import StateError, Store
from bot.records import OutboxMessage

log = logging.getLogger("relaycheck.delivery")

# another replica is delivering the head: look again this soon
CLAIM_RETRY_SECONDS = 0.25

# Slack errors that no retry will fix: keep the message as failed and move on
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "too_many_attachments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_arguments",
        "restricted_action",
    }
)


class _Retry(Exception):
    """Internal: this attempt failed but a later one may succeed, after `delay` seconds."""

    def __init__(self, reason: str, delay: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class _Permanent(Exception):
    """Internal: Slack refused this message for good."""


def worker_client(client: AsyncWebClient) -> AsyncWebClient:
    """A twin of the app's client without slack_sdk's retry handlers (the outbox retries)."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=15,
        retry_handlers=[],
    )


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        client: AsyncWebClient | None,
        *,
        min_interval: float = 1.0,
        base_backoff: float = 2.0,
        max_backoff: float = 300.0,
        poll_interval: float = 5.0,
        out: TextIO | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_api_error: Callable[[str], None] | None = None,
        replica: str = "local",
    ) -> None:
        """`on_api_error(kind)` hears of every failed Slack call (kind: Slack's error code,
        `ratelimited`, `http_5xx`, `network`, `client`): serve counts them in its metrics."""
        self.on_api_error = on_api_error
        self.store = store
        self.replica = replica  # whose claim a message is under (see Store.claim_next)
        self.client = worker_client(client) if client is not None else None
        self.min_interval = min_interval
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.out = out
        self.now = now
        self._last_post: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """New messages were queued: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run_forever(self) -> None:
        while not self._stopping:
            try:
                wait = await self.drain()
            except (StateError, sqlite3.Error) as err:
                # the state file is busy or unwritable: keep the worker alive, try again later
                log.error("outbox not readable/writable: %s", err)
                wait = self.poll_interval
            except Exception:  # our bug: logged, and the alerts wait in the outbox for a retry
                log.exception("delivery failed inside relaycheck; retrying later")
                wait = self.poll_interval
            if self._stopping:
                break
            self._wake.clear()
            timeout = self.poll_interval if wait is None else min(wait, self.poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.01))

    async def drain(self) -> float | None:
        """Deliver queued messages in order until the queue is empty (None) or the head must
        wait; then return how many seconds until it may be tried again."""
        while not self._stopping:
            # the head is claimed (PostgreSQL: row lock, SKIP LOCKED) while it is delivered, so
            # a replica draining the same outbox never sends it too; it waits for the next head
            with self.store.claim_next(self.replica) as claim:
                msg = claim.message
                if msg is None:
                    return CLAIM_RETRY_SECONDS if claim.busy else None
                if msg.next_attempt_at is not None:
                    wait = (msg.next_attempt_at - self.now()).total_seconds()
                    if wait > 0:
                        return wait
                result = await self._deliver_one(msg)
                if result is not None:
                    return result
        return None

    async def _deliver_one(self, msg: OutboxMessage) -> float | None:
        try:
            if self.client is None:
                self._print(msg)
                self.store.mark_delivered(msg.seq, self.now())
                return None
            if msg.ts is not None:
                # confirmed by Slack before a crash: never post it twice
                self.store.mark_delivered(msg.seq, self.now())
                return None
            ts = await self._send(self.client, msg)
            if ts is not None:
                self.store.record_ts(msg.seq, ts)
            self.store.mark_delivered(msg.seq, self.now())
            return None
        except _Permanent as err:
            log.error("alert %s refused by Slack for good: %s", msg.id, err)
            self.store.record_attempt_failure(
                msg.seq, str(err), next_attempt_at=None, now=self.now()
            )
            return None
        except _Retry as err:
            delay = err.delay if err.delay is not None else self._backoff(msg.attempts)
            log.warning("alert %s not delivered (%s); retrying in %.1fs", msg.id, err.reason, delay)
            self.store.record_attempt_failure(
                msg.seq,
                err.reason,
                next_attempt_at=self.now() + timedelta(seconds=delay),
                now=self.now(),
            )
            return delay

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.max_backoff, self.base_backoff * (2 ** min(attempts, 20)))
        return random.uniform(ceiling / 2, ceiling)

    async def _pace(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            gap = self.min_interval - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
        self._last_post[channel] = time.monotonic()

    async def _send(self, client: AsyncWebClient, msg: OutboxMessage) -> str | None:
        blocks = list(msg.blocks) or None
        target = None
        if msg.action in ("update", "reply"):
            target = self.store.posted_message(msg.reply_to) if msg.reply_to else None
            if target is None:
                # the message it would edit was never posted (snoozed, or refused): nothing to do
                log.info("alert %s has no posted message to %s; skipped", msg.id, msg.action)
                return None
        await self._pace(target[0] if target else msg.channel)
        try:
            if msg.action == "update":
                assert target is not None
                await client.chat_update(
                    channel=target[0], ts=target[1], text=msg.text, blocks=blocks
                )
                return target[1]
            kwargs: dict[str, Any] = {
                "channel": target[0] if target else msg.channel,
                "text": msg.text,
                "metadata": {
                    "event_type": "relaycheck_alert",
                    "event_payload": {"outbox_id": msg.id},
                },
            }
            if blocks:
                kwargs["blocks"] = blocks
            if target is not None:
                kwargs["thread_ts"] = target[1]
            response = await client.chat_postMessage(**kwargs)
        except SlackApiError as err:
            self._api_error(error_kind(err))
            raise _classify(err) from None
        except SlackClientError as err:  # slack_sdk refused the request itself: will not improve
            self._api_error("client")
            raise _Permanent(f"{type(err).__name__}: {err}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            self._api_error("network")
            raise _Retry(f"network: {describe_network_error(err)}", None) from None
        ts = response.get("ts")
        return str(ts) if ts is not None else None

    def _api_error(self, kind: str) -> None:
        if self.on_api_error is not None:
            self.on_api_error(kind)

    def _print(self, msg: OutboxMessage) -> None:
        out = self.out or sys.stdout
        label = {"post": "ALERT", "update": "UPDATE", "reply": "REPLY"}.get(msg.action, "ALERT")
        lines = [f"[relaycheck {label}] {msg.text}"]
        for block in msg.blocks:
            text = block.get("text")
            if block.get("type") == "section" and isinstance(text, dict):
                lines.extend("    " + line for line in str(text.get("text", "")).splitlines())
        print("\n".join(lines), file=out, flush=True)


def error_kind(err: SlackApiError) -> str:
    """A short, bounded label for a failed call: Slack's error code, or the HTTP status class."""
    response = err.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = response.data if isinstance(response.data, dict) else {}
    if status == 429 or data.get("error") == "ratelimited":
        return "ratelimited"
    if status >= 500:
        return "http_5xx"
    code = str(data.get("error", ""))
    return code if code.replace("_", "").isalnum() and len(code) <= 40 else f"http_{status}"


def describe_network_error(err: BaseException) -> str:
    """A network failure in words (the exception's repr names Python classes and tuples)."""
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"connection to {err.host}:{err.port} failed ({err.strerror or 'refused'})"
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err) or type(err).__name__


def _classify(err: SlackApiError) -> Exception:
    response = err.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error", "")) or f"HTTP {status}"
    if status == 429 or error == "ratelimited":
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        raw = headers.get("retry-after")
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        try:
            delay = float(raw) if raw is not None else 1.0
        except ValueError:
            delay = 1.0
        return _Retry("rate limited (429)", max(delay, 0.0))
    if status >= 500:
        return _Retry(f"HTTP {status} {error}", None)
    if error in PERMANENT_ERRORS:
        return _Permanent(error)
    return _Retry(f"{error} ({json.dumps(data)[:200]})", None)
