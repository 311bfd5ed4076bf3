"""What every listener needs: the config, the store, the clock and the trust anchors."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.store import Store
from bot.slack.access import Access
from checks.i18n import Language, language_of_locale
from checks.model import Config
from checks.observe import observe_connector_certificates
from checks.probes.trust import load_trust_anchors
from checks.rules.certificates import CertificateObservation
from checks.rules.chain import TrustAnchors
from checks.rules.tenant import TenantFacts
from checks.sources import explain_tenant

# how long an answer may reuse the tenant and certificates another answer read (unless a
# source file changed meanwhile): an incident's burst of commands reads them once
CONTEXT_TTL = timedelta(seconds=30)

# a file's identity for "has it changed": (path, mtime in ns, size), or None when unreadable
FileStamp = tuple[str, int, int] | None


@dataclass(frozen=True, slots=True)
class ExplainContext:
    """The tenant and the connector certificates as read at `loaded_at`."""

    facts: TenantFacts
    certificates: dict[str, CertificateObservation]
    loaded_at: datetime
    stamps: tuple[FileStamp, ...]


def _stamp(path: Path) -> FileStamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (str(path), info.st_mtime_ns, info.st_size)


def source_stamps(config: Config) -> tuple[FileStamp, ...]:
    """The files an explanation is read from: exports, certificate files, the trust file."""
    paths = [
        config.tenant.accepted_domains_file,
        config.tenant.connectors_file,
        config.trust.ca_file,
        *(c.certificate.file for c in config.connectors if c.certificate is not None),
    ]
    return tuple(_stamp(p) for p in paths if p is not None)


class FollowUps:
    """Work that follows an acknowledgement (explain, status, probes), run after the acks.

    bolt sends the acknowledgement when its request handler, polling every 10 ms, sees that
    `ack()` was called. Work that runs on the one event loop meanwhile (reading the tenant,
    explaining, rendering Block Kit, posting to response_url: a few milliseconds per answer)
    delays every acknowledgement still waiting for its poll. So each command is counted from
    the moment its listener starts (`arrived`) until `settle_seconds` after it acknowledged
    (`acked`), and follow-ups start only when no command is waiting for its acknowledgement,
    or after `max_defer_seconds` at the latest (a steady stream of commands must not starve the
    answers; Slack accepts response_url answers for 30 minutes). Answers run `lanes` at a
    time, in arrival order. Slow work (a live probe: seconds of waiting on the network, little
    CPU) starts at once in its own task and takes no lane, so it never holds up the answers.
    """

    def __init__(
        self,
        *,
        lanes: int = 2,
        settle_seconds: float = 0.015,
        max_defer_seconds: float = 2.0,
    ) -> None:
        self.lanes = lanes
        self.settle_seconds = settle_seconds
        self.max_defer_seconds = max_defer_seconds
        self.waiting = 0  # commands that have not been acknowledged (plus settle) yet
        self._quiet: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _event(self) -> asyncio.Event:
        if self._quiet is None:  # made on the running loop, on first use
            self._quiet = asyncio.Event()
            if self.waiting == 0:
                self._quiet.set()
        return self._quiet

    def arrived(self) -> None:
        """A command's listener started: its acknowledgement is pending."""
        self.waiting += 1
        self._event().clear()

    def acked(self) -> None:
        """The listener acknowledged; bolt sends it within its next poll."""
        asyncio.get_running_loop().call_later(self.settle_seconds, self._settled)

    def _settled(self) -> None:
        self.waiting = max(0, self.waiting - 1)
        if self.waiting == 0:
            self._event().set()

    def start(self, work: Coroutine[Any, Any, None], *, slow: bool = False) -> None:
        task = asyncio.ensure_future(self._run(work, slow=slow))
        self._tasks.add(task)  # a strong reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Coroutine[Any, Any, None], *, slow: bool) -> None:
        if slow:  # waits on the network, not the CPU: start at once, as bolt would
            await work
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.lanes)
        quiet = self._event()
        await asyncio.sleep(self.settle_seconds)  # this command's own ack goes out first
        try:
            async with asyncio.timeout(self.max_defer_seconds):
                await quiet.wait()
        except TimeoutError:
            pass  # a steady stream of commands: answer anyway
        async with self._slots:
            await work

    async def drain(self) -> None:
        """Wait for every follow-up started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


CERT_PROBES_PER_MINUTE = 5  # `/relaycheck cert` probes one user may start per minute


class RateLimiter:
    """At most `limit` events per `window` seconds per key (a sliding window).

    Why: `/relaycheck cert` makes the bot connect to mail servers on a user's behalf; one
    user (or a script with a user's session) must not turn it into a connection cannon."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}

    def take(self, key: str, now: float) -> float | None:
        """Count one event for `key` at `now` (monotonic seconds); when over the limit,
        count nothing and return the seconds until the next one is allowed."""
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) >= self.limit:
            return max(self.window - (now - events[0]), 0.0)
        events.append(now)
        return None


@dataclass(slots=True, kw_only=True)
class Deps:
    """Shared by the listeners of one app.

    `store` is None when the app runs without state (tests): the listeners then answer "no
    scan has run yet". `anchors` is loaded once, on first use (a few milliseconds, once; not in
    a worker thread: `load_trust_anchors` silences a warning with `warnings.catch_warnings`,
    which is process-global and not safe to run beside the scan's own load).
    """

    config: Config
    store: Store | None
    clock: Callable[[], datetime]
    anchors: TrustAnchors | None = None
    context_ttl: timedelta = CONTEXT_TTL
    follow_ups: FollowUps = field(default_factory=FollowUps, repr=False)
    _context: ExplainContext | None = field(default=None, repr=False)
    _context_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # users.info answers, per user id: a user's locale rarely changes, Slack's rate limits do not
    locales: dict[str, Language | None] = field(default_factory=dict)
    cert_limiter: RateLimiter = field(
        default_factory=lambda: RateLimiter(CERT_PROBES_PER_MINUTE, 60.0)
    )
    _slots: asyncio.Semaphore | None = None
    access: Access = field(init=False)

    def __post_init__(self) -> None:
        self.access = Access(self.config.slack)

    def probe_slots(self) -> asyncio.Semaphore:
        """`[probe] concurrency` connections at once, shared by every concurrent command."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.probe.concurrency)
        return self._slots

    def trust_anchors(self) -> TrustAnchors:
        if self.anchors is None:
            self.anchors = load_trust_anchors(self.config.trust.ca_file)
        return self.anchors

    async def explain_context(self, now: datetime) -> ExplainContext:
        """Tenant facts and connector certificates for an answer at `now`.

        Read once and reused for `context_ttl` (by this app's clock), unless an export, a
        certificate file or the trust file changed: twenty commands at once read the tenant
        and certificates once, so the event loop stays free for acknowledgements instead of
        parsing the same files twenty times. Answers that arrive while it is being read wait
        for that one read."""
        async with self._context_lock:
            stamps = source_stamps(self.config)
            cached = self._context
            if (
                cached is not None
                and cached.stamps == stamps
                and cached.loaded_at <= now < cached.loaded_at + self.context_ttl
            ):
                return cached
            facts = await explain_tenant(self.config, now=now, environ=os.environ)
            certificates = await observe_connector_certificates(
                self.config, facts, now=now, anchors=self.trust_anchors()
            )
            self._context = ExplainContext(
                facts=facts, certificates=certificates, loaded_at=now, stamps=stamps
            )
            return self._context


_log = logging.getLogger("relaycheck.slack")


async def language_for(deps: Deps, client: AsyncWebClient, user_id: str | None) -> Language:
    """The language of answers to `user_id`: their Slack locale (`users.info` with
    `include_locale`, scope users:read) when relaycheck speaks it, else `[locale] language`.

    A failing lookup (scope missing, Slack down) answers in the configured language rather than
    not answering; the result is remembered for the app's lifetime.
    """
    default = deps.config.locale.effective
    if not user_id:
        return default
    if user_id not in deps.locales:
        found: Language | None = None
        try:
            response: Any = await client.users_info(user=user_id, include_locale=True)
            found = language_of_locale(str((response.get("user") or {}).get("locale") or ""))
        except SlackApiError as err:
            _log.info(
                "users.info for %s failed (%s): answering in %s",
                user_id,
                err.response.get("error"),
                default.value,
            )
        deps.locales[user_id] = found
    return deps.locales[user_id] or default
