"""The outbox worker: every queued alert reaches Slack once, whatever Slack does.

Design (exactly once as far as Slack allows; at least once without the history scopes):

1. A message is queued in the same transaction as the lifecycle event that caused it.
2. Order is kept per *lane*: a message and everything that edits it or replies in its thread
   (`reply_to or event_id`). Lanes do not wait for each other, so one failing message never
   holds the rest. Within a channel, queue order is also kept while the head is rate limited
   (429: the channel waits `Retry-After`) or has been failing for less than `hold_seconds`
   (30 s: an outage keeps the channel in order); after that, other lanes pass it.
3. Before a post is sent, `attempted_at` is committed. A clear refusal (429, ok=false,
   connection refused) clears it; an unclear outcome (timeout, connection lost after sending,
   5xx, or the process killed mid-call) leaves it. A message with `attempted_at` set is first
   looked up in the channel (`conversations.history`, or `conversations.replies` for a thread
   reply) by the `outbox_id` every post carries in its message metadata; when found, its `ts`
   is adopted and nothing is posted again.
4. A message that already has a Slack `ts` is not posted again: it was confirmed before a crash
   and only the "delivered" mark was missing. After Slack confirms, the `ts` is committed FIRST,
   then the message is marked delivered (healthchecks marks first and can lose an alert).

The one remaining window, stated exactly: Slack makes a message visible in history only once it
has processed it. If a post is still being processed inside Slack when the lookup runs (the
answer was lost and the lookup came first), or the message dropped out of the last 1,000
messages of the channel or thread before the lookup, it is posted twice. Without the
`channels:history` / `groups:history` scopes (said at start-up), or where the bot is not a
member of the channel (`not_in_channel`), there is no lookup and an unclear outcome is posted
again (at least once). chat.update is idempotent, so only `post` and `reply` can ever double.

Retries are owned here, not by slack_sdk: the worker uses its own AsyncWebClient with NO retry
handlers (no stacked retries). 429 waits exactly `Retry-After` and does not count as a failure;
5xx, network errors and timeouts back off exponentially with full jitter, capped at
`max_backoff` (60 s), and any success (or a restart) resets every backoff, so alerts flow again
within seconds of Slack recovering. Errors Slack calls permanent (channel_not_found,
invalid_auth, ...) mark the message failed (kept in the outbox, logged). Posts to one channel
are spaced by `min_interval` (about 1 per second).

With no Slack client (console mode, the embedded default) messages are printed to stdout.

Several replicas may drain one outbox. Each message is claimed while it is delivered
(`Store.claim`; PostgreSQL: a row lock taken with FOR UPDATE SKIP LOCKED, sqlite: a claim
mark), so no message is sent by two replicas at once. A replica that finds a message claimed
by another treats it like a waiting head: its lane and its channel wait `CLAIM_RETRY_SECONDS`
instead of skipping ahead, so the order of a lane and, while Slack is healthy, of a channel
holds across replicas. On PostgreSQL committing `attempted_at` before a post ends the row lock
for a moment; the claim is taken again at once, and a replica that lost it in between does not
post (the one that took it looks the message up first). The duplicate window above widens in
one case: a replica frozen in the middle of a post for longer than the claim's hold
(PostgreSQL ends its session, so the lock is released) can find the message re-posted by
another replica when it wakes, if its post was still being processed inside Slack when the
other replica looked it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.store import StateError, Store
from bot.records import OutboxMessage

log = logging.getLogger("relaycheck.delivery")

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


HISTORY_SCOPES = ("channels:history", "groups:history")
_HISTORY_PAGES = 5  # at most 5 x 200 messages are read per lookup
_HISTORY_SLACK_SECONDS = 600.0  # clock skew tolerated between this host and Slack's ts

# another replica is delivering a message: its lane and channel look again this soon
CLAIM_RETRY_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class SlackErrorInfo:
    """What a failed Slack call said, whatever its body was (JSON, text, HTML or nothing)."""

    status: int
    code: str
    retry_after: float | None


def slack_error(err: SlackApiError) -> SlackErrorInfo:
    """Read a SlackApiError safely: slack_sdk hands over a SlackResponse whose `data` may be a
    str (text/plain 5xx), or even a raw aiohttp response (a body that is not JSON)."""
    response = err.response
    status = getattr(response, "status_code", None) or getattr(response, "status", 0) or 0
    try:
        status = int(status)
    except (TypeError, ValueError):
        status = 0
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        code = f"HTTP {status}" if isinstance(data, dict) else f"HTTP {status}, not a JSON answer"
    retry_after: float | None = None
    headers = getattr(response, "headers", None) or {}
    try:
        raw = {str(k).lower(): v for k, v in dict(headers).items()}.get("retry-after")
    except (TypeError, ValueError):
        raw = None
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is not None:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if math.isfinite(value):
            retry_after = min(max(value, 0.0), 3600.0)
    if status == 429 and retry_after is None:
        retry_after = 1.0
    return SlackErrorInfo(status=status, code=code[:200], retry_after=retry_after)


class _Retry(Exception):
    """Internal: this attempt failed but a later one may succeed.

    `delay` None: back off by the message's failure count; `unclear`: Slack may have posted it;
    `outage`: a 5xx/network failure (counts toward the backoff; a 429 does not)."""

    def __init__(
        self,
        reason: str,
        delay: float | None,
        *,
        unclear: bool = False,
        outage: bool = True,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.unclear = unclear
        self.outage = outage


class _Permanent(Exception):
    """Internal: Slack refused this message for good."""


class _Claimed(Exception):
    """Internal: another replica took this message's claim just before it was posted."""


def worker_client(client: AsyncWebClient, *, timeout: float = 15.0) -> AsyncWebClient:
    """A twin of the app's client without slack_sdk's retry handlers (the outbox retries)."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=max(1, math.ceil(timeout)),
        retry_handlers=[],
    )


def _lane(msg: OutboxMessage) -> str:
    """Messages that must stay in order: a post and whatever edits it or replies under it."""
    return msg.reply_to or msg.event_id


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        client: AsyncWebClient | None,
        *,
        min_interval: float = 1.0,
        base_backoff: float = 2.0,
        max_backoff: float = 60.0,
        poll_interval: float = 5.0,
        out: TextIO | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: float = 15.0,
        history: bool | None = None,
        hold_seconds: float = 30.0,
        on_api_error: Callable[[str], None] | None = None,
        replica: str = "local",
    ) -> None:
        """`on_api_error(kind)` hears of every failed Slack call (kind: Slack's error code,
        `ratelimited`, `http_5xx`, `network`, `client`): serve counts them in its metrics.
        `replica` names whose claim a message is under (see `Store.claim`)."""
        self.on_api_error = on_api_error
        self.replica = replica
        self.store = store
        self.client = worker_client(client, timeout=timeout) if client is not None else None
        self.min_interval = min_interval
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.out = out
        self.now = now
        self.hold_seconds = hold_seconds
        self._failing_since: dict[int, float] = {}  # seq -> monotonic time of its first failure
        # None: not known yet (looked up at start; `missing_scope` later switches it off)
        self.history = history
        self._last_post: dict[str, float] = {}
        self._channel_ready: dict[str, datetime] = {}  # 429: the channel waits Retry-After
        self._backoff_waiting = True  # rows may carry a stored backoff (a restart): reset once
        self._started = False
        self._no_history_channels: set[str] = set()
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

    async def _start(self) -> None:
        """Once per worker: a restart is a fresh look at Slack (stored backoffs are dropped, so
        a healthy Slack gets the backlog within seconds), and say whether the history scopes
        are there (without them delivery is at-least-once)."""
        self._started = True
        waiting = self.store.reset_backoff()
        if waiting:
            log.info("%d queued alert(s) retried now (backoff reset on start)", waiting)
        if self.client is None or self.history is not None:
            return
        try:
            response = await self.client.auth_test()
        except SlackApiError as err:
            self._api_error(error_kind(err))
            return  # Slack is not answering well now: the lookup itself will tell
        except SlackClientError:
            self._api_error("client")
            return
        except (aiohttp.ClientError, TimeoutError, OSError):
            self._api_error("network")
            return  # Slack is not reachable now: the lookup itself will tell
        raw = (response.headers or {}).get("x-oauth-scopes")
        if isinstance(raw, list):
            raw = ",".join(str(v) for v in raw)
        if raw is None:
            return
        scopes = {part.strip() for part in str(raw).split(",")}
        missing = [s for s in HISTORY_SCOPES if s not in scopes]
        if len(missing) == len(HISTORY_SCOPES):
            self.history = False
            log.warning(
                "the Slack token lacks %s: alert delivery is at-least-once (a post whose "
                "answer was lost may appear twice); add the scopes in deploy/slack-manifest.*.yaml "
                "and reinstall the app",
                " and ".join(HISTORY_SCOPES),
            )
        elif missing:
            log.warning(
                "the Slack token lacks %s: alerts in such channels are delivered at least once",
                missing[0],
            )
            self.history = True
        else:
            self.history = True

    async def drain(self) -> float | None:
        """Deliver what is due, lane by lane, until nothing more is (None: the queue is empty);
        then return how many seconds until the next message may be tried."""
        if not self._started:
            await self._start()
        while not self._stopping:
            batch = self.store.pending(limit=500)
            if not batch:
                return None
            progressed = False
            soonest: float | None = None
            held_lanes: set[str] = set()
            held_channels: set[str] = set()
            for msg in batch:
                if self._stopping:
                    return None
                lane, channel = _lane(msg), self._channel(msg)
                if lane in held_lanes or channel in held_channels:
                    continue
                wait = self._wait(msg, channel)
                if wait <= 0:
                    result = await self._claim_and_deliver(msg, channel)
                    if result is None:
                        progressed = True
                        continue
                    wait, holds = result
                else:
                    holds = self._holds_channel(channel, msg.seq)
                held_lanes.add(lane)
                if holds:
                    held_channels.add(channel)
                soonest = wait if soonest is None else min(soonest, wait)
            if not progressed:
                return soonest
        return None

    def _channel(self, msg: OutboxMessage) -> str:
        if msg.action in ("update", "reply") and msg.reply_to:
            target = self.store.posted_message(msg.reply_to)
            if target is not None:
                return target[0]
        return msg.channel

    def _wait(self, msg: OutboxMessage, channel: str) -> float:
        now = self.now()
        waits = [0.0]
        if msg.next_attempt_at is not None:
            waits.append((msg.next_attempt_at - now).total_seconds())
        ready = self._channel_ready.get(channel)
        if ready is not None:
            waits.append((ready - now).total_seconds())
        return max(waits)

    def _holds_channel(self, channel: str, seq: int) -> bool:
        """Does a waiting message keep the rest of its channel waiting (queue order)?

        While rate limited, yes (the limit is the channel's). While failing with 5xx or network
        errors, for `hold_seconds`: an outage keeps its order; a message that keeps failing
        when Slack may be fine no longer holds the others."""
        ready = self._channel_ready.get(channel)
        if ready is not None and ready > self.now():
            return True
        since = self._failing_since.get(seq)
        return since is not None and time.monotonic() - since < self.hold_seconds

    async def _claim_and_deliver(
        self, msg: OutboxMessage, channel: str
    ) -> tuple[float, bool] | None:
        """Deliver `msg` under this replica's claim (see `Store.claim`), as it stands now."""
        with self.store.claim(msg.seq, self.replica) as claim:
            current = claim.message
            if current is None:
                if claim.busy:  # another replica is delivering it: its lane and channel wait
                    return CLAIM_RETRY_SECONDS, True
                return None  # delivered or failed meanwhile (by another replica)
            wait = self._wait(current, channel)
            if wait > 0:  # another replica tried it meanwhile and it must wait
                return wait, self._holds_channel(channel, current.seq)
            return await self._deliver_one(current, channel)

    async def _deliver_one(self, msg: OutboxMessage, channel: str) -> tuple[float, bool] | None:
        """None when the message left the queue (delivered, skipped or failed for good);
        otherwise (seconds to wait, whether its channel waits too)."""
        try:
            if self.client is None:
                self._print(msg)
                self.store.mark_delivered(msg.seq, self.now())
                return None
            if msg.ts is not None:
                # confirmed by Slack before a crash: never post it twice
                self.store.mark_delivered(msg.seq, self.now())
                return None
            if msg.action in ("post", "reply") and msg.attempted_at is not None:
                found = await self._find_posted(self.client, msg)
                if found is not None:
                    log.info(
                        "alert %s was already in Slack (ts %s): not posted again", msg.id, found
                    )
                    self.store.record_ts(msg.seq, found)
                    self.store.mark_delivered(msg.seq, self.now())
                    return None
            ts = await self._send(self.client, msg)
            if ts is not None:
                self.store.record_ts(msg.seq, ts)
            self.store.mark_delivered(msg.seq, self.now())
            self._succeeded(msg.seq, channel)
            return None
        except _Claimed:
            log.info("alert %s was claimed by another replica; it delivers it", msg.id)
            return CLAIM_RETRY_SECONDS, True
        except _Permanent as err:
            log.error("alert %s refused by Slack for good: %s", msg.id, err)
            self.store.record_attempt_failure(
                msg.seq, str(err), next_attempt_at=None, now=self.now()
            )
            return None
        except _Retry as err:
            if err.delay is not None:
                delay = err.delay
                if not err.outage:  # 429: the channel waits, the backoff does not grow
                    self._channel_ready[channel] = self.now() + timedelta(seconds=delay)
            else:
                delay = self._backoff(msg.failures + 1)
            log.warning("alert %s not delivered (%s); retrying in %.1fs", msg.id, err.reason, delay)
            if not self._given_up_holding(msg.seq):
                # a success after this is a recovery: it resets every backoff. A message that
                # has failed for longer than hold_seconds is not waited for that way (another
                # message's success says nothing about it, and it would be retried at once)
                self._backoff_waiting = True
            self.store.record_attempt_failure(
                msg.seq,
                err.reason,
                next_attempt_at=self.now() + timedelta(seconds=delay),
                now=self.now(),
                unclear=err.unclear,
                outage=err.outage,
            )
            if err.outage:
                self._failing_since.setdefault(msg.seq, time.monotonic())
            return delay, self._holds_channel(channel, msg.seq)

    def _given_up_holding(self, seq: int) -> bool:
        since = self._failing_since.get(seq)
        return since is not None and time.monotonic() - since >= self.hold_seconds

    def _succeeded(self, seq: int, channel: str) -> None:
        """Slack works again: every backoff is reset (a recovery is not waited out)."""
        self._channel_ready.pop(channel, None)
        self._failing_since.pop(seq, None)
        if self._backoff_waiting:
            self._backoff_waiting = False
            self.store.reset_backoff()

    def _backoff(self, failures: int) -> float:
        exponent = min(max(failures - 1, 0), 20)
        ceiling = min(self.max_backoff, self.base_backoff * (2**exponent))
        return random.uniform(ceiling / 2, ceiling)

    async def _pace(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            gap = self.min_interval - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
        self._last_post[channel] = time.monotonic()

    async def _find_posted(self, client: AsyncWebClient, msg: OutboxMessage) -> str | None:
        """The `ts` of this message if an earlier, unclear attempt did post it; None if it is
        not in the channel (or cannot be looked up: then it is posted again, at least once)."""
        if self.history is False:
            return None
        if msg.action == "reply":
            target = self.store.posted_message(msg.reply_to) if msg.reply_to else None
            if target is None:
                return None
            channel, thread_ts = target
        else:
            channel, thread_ts = msg.channel, None
        if channel in self._no_history_channels:
            return None
        assert msg.attempted_at is not None
        horizon = msg.attempted_at.timestamp() - _HISTORY_SLACK_SECONDS
        cursor: str | None = None
        try:
            for _page in range(_HISTORY_PAGES):
                args: dict[str, Any] = {
                    "channel": channel,
                    "limit": 200,
                    "include_all_metadata": True,
                }
                if cursor:
                    args["cursor"] = cursor
                if thread_ts is not None:
                    response = await client.conversations_replies(ts=thread_ts, **args)
                else:
                    response = await client.conversations_history(**args)
                messages = response.get("messages") or []
                oldest: float | None = None
                for item in messages:
                    if not isinstance(item, dict):
                        continue
                    if _outbox_id(item) == msg.id and item.get("ts"):
                        return str(item["ts"])
                    with contextlib.suppress(TypeError, ValueError):
                        stamp = float(item.get("ts", ""))
                        oldest = stamp if oldest is None else min(oldest, stamp)
                meta = response.get("response_metadata") or {}
                cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
                if not cursor or (oldest is not None and oldest < horizon):
                    return None
        except SlackApiError as err:
            self._api_error(error_kind(err))
            info = slack_error(err)
            if info.code == "missing_scope":
                self.history = False
                log.warning(
                    "conversations.history refused (missing_scope: add %s): alert delivery is "
                    "at-least-once from now on",
                    " and ".join(HISTORY_SCOPES),
                )
                return None
            if info.code in PERMANENT_ERRORS:
                # not_in_channel (posting through chat:write.public) and the like: no lookup
                self._no_history_channels.add(channel)
                log.warning(
                    "cannot read %s's history (%s): alerts there are delivered at least once",
                    channel,
                    info.code,
                )
                return None
            failure = _classify(err, unclear=True)
            if isinstance(failure, _Retry):
                failure.unclear = True  # still unknown whether the post went through
            raise failure from None
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            self._api_error("network")
            raise _Retry(
                f"history lookup: {describe_network_error(err)}", None, unclear=True
            ) from None
        return None

    async def _send(self, client: AsyncWebClient, msg: OutboxMessage) -> str | None:
        blocks = list(msg.blocks) or None
        target = None
        if msg.action in ("update", "reply"):
            target = self.store.posted_message(msg.reply_to) if msg.reply_to else None
            if target is None:
                # the message it would edit was never posted (snoozed, or refused): nothing to do
                log.info("alert %s has no posted message to %s; skipped", msg.id, msg.action)
                return None
        channel = target[0] if target else msg.channel
        try:
            if msg.action == "update":
                assert target is not None
                await self._pace(channel)
                await client.chat_update(
                    channel=target[0], ts=target[1], text=msg.text, blocks=blocks
                )
                return target[1]
            kwargs: dict[str, Any] = {
                "channel": channel,
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
            # committed before the call: an answer that never comes makes the next attempt
            # look for this message in Slack first (False: another replica took the claim in
            # the moment the commit released it; that replica delivers it)
            if not self.store.record_attempt_start(msg.seq, self.now()):
                raise _Claimed()
            await self._pace(channel)  # last: the spacing is that of the calls themselves
            response = await client.chat_postMessage(**kwargs)
        except SlackApiError as err:
            self._api_error(error_kind(err))
            raise _classify(err, unclear=msg.action != "update") from None
        except SlackClientError as err:  # slack_sdk refused the request itself: will not improve
            self._api_error("client")
            raise _Permanent(f"{type(err).__name__}: {err}") from None
        except aiohttp.ClientConnectorError as err:  # never connected: clearly not posted
            self._api_error("network")
            raise _Retry(f"network: {describe_network_error(err)}", None) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            # the request may have reached Slack: look before posting again
            self._api_error("network")
            raise _Retry(f"network: {describe_network_error(err)}", None, unclear=True) from None
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


def _outbox_id(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict):
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        return None
    value = payload.get("outbox_id")
    return value if isinstance(value, str) else None


def _classify(err: SlackApiError, *, unclear: bool) -> Exception:
    """429 and ok=false are clear refusals; a 5xx may have been processed (`unclear`)."""
    info = slack_error(err)
    if info.status == 429 or info.code == "ratelimited":
        return _Retry("rate limited (429)", info.retry_after or 1.0, outage=False)
    if info.status >= 500:
        return _Retry(f"HTTP {info.status} {info.code}", None, unclear=unclear)
    if info.code in PERMANENT_ERRORS:
        return _Permanent(info.code)
    return _Retry(info.code, None)


def error_kind(err: SlackApiError) -> str:
    """A short, bounded label for a failed call: Slack's error code, or the HTTP status class."""
    info = slack_error(err)  # any body: JSON, text, HTML or nothing
    if info.status == 429 or info.code == "ratelimited":
        return "ratelimited"
    if info.status >= 500:
        return "http_5xx"
    code = info.code
    return code if code.replace("_", "").isalnum() and len(code) <= 40 else f"http_{info.status}"


def describe_network_error(err: BaseException) -> str:
    """A network failure in words (the exception's repr names Python classes and tuples)."""
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"connection to {err.host}:{err.port} failed ({err.strerror or 'refused'})"
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err) or type(err).__name__
