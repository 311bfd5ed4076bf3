"""What every listener needs: the config, the store, the clock and the trust anchors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.alerting.store import Store
from checks.model import Config
from checks.probes.trust import load_trust_anchors
from checks.rules.chain import TrustAnchors


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

    def trust_anchors(self) -> TrustAnchors:
        if self.anchors is None:
            self.anchors = load_trust_anchors(self.config.trust.ca_file)
        return self.anchors

    def channel_allowed(self, channel_id: str | None, channel_name: str | None = None) -> bool:
        allowed = self.config.slack.allowed_channels
        if not allowed:
            return True
        wanted = {c.lstrip("#") for c in allowed}
        return bool({channel_id, channel_name} & wanted)
