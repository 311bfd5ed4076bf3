"""What every listener needs: the config, the store, the clock and the trust anchors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.store import Store
from checks.chain import TrustAnchors, load_trust_anchors
from checks.model import Config


@dataclass(slots=True, kw_only=True)
class Deps:
    """Shared by the listeners of one app.

    `store` is None when `serve` runs without state (tests, or before the first scan): the
    listeners then answer "no scan has run yet". `anchors` is loaded once, on first use, off
    the event loop (reading and parsing the system bundle would stall every pending ack).
    """

    config: Config
    store: Store | None
    clock: Callable[[], datetime]
    anchors: TrustAnchors | None = None

    async def trust_anchors(self) -> TrustAnchors:
        if self.anchors is None:
            self.anchors = await asyncio.to_thread(load_trust_anchors, self.config.trust.ca_file)
        return self.anchors

    def channel_allowed(self, channel_id: str | None, channel_name: str | None = None) -> bool:
        allowed = self.config.slack.allowed_channels
        if not allowed:
            return True
        wanted = {c.lstrip("#") for c in allowed}
        return bool({channel_id, channel_name} & wanted)
