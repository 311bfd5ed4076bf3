"""What every listener needs: the config, the store, the clock and the trust anchors."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from checks.model import Config


@dataclass(slots=True, kw_only=True)
class Deps:
    """Shared by the listeners of one app; `anchors` is loaded once, on first use."""

    config: Config
    store: Any
    clock: Callable[[], datetime]
    anchors: Any = None

    def trust_anchors(self) -> Any:
        if self.anchors is None:
            from checks.chain import load_trust_anchors

            self.anchors = load_trust_anchors(self.config.trust.ca_file)
        return self.anchors

    def channel_allowed(self, channel_id: str | None, channel_name: str | None = None) -> bool:
        allowed = self.config.slack.allowed_channels
        if not allowed:
            return True
        wanted = {c.lstrip("#") for c in allowed}
        return bool({channel_id, channel_name} & wanted)


async def store_call(store: Any, name: str, default: Any) -> Any:
    """Call a store method whether the store is sync (sqlite3) or async; None store -> default."""
    if store is None or not hasattr(store, name):
        return default
    result = getattr(store, name)()
    if inspect.isawaitable(result):
        result = await result
    return result
