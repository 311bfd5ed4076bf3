"""What every listener needs: the config, the store, the clock and the trust anchors."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.alerting.store import Store
from bot.slack.access import Access
from checks.model import Config
from checks.probes.trust import load_trust_anchors
from checks.rules.chain import TrustAnchors

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

    def channel_allowed(self, channel_id: str | None, channel_name: str | None = None) -> bool:
        """Channel ids only (names were resolved to ids at start): `#ops` must not match any
        channel that happens to be called ops. Prefer `access.command_allowed`."""
        del channel_name
        if not self.access.restricts_channels:
            return True
        return channel_id is not None and channel_id in self.access.channel_ids
