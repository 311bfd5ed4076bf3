"""What every listener needs: the config, the store, the clock and the trust anchors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.store import Store
from checks.i18n import Language, language_of_locale
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
    # users.info answers, per user id: a user's locale rarely changes, Slack's rate limits do not
    locales: dict[str, Language | None] = field(default_factory=dict)

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
