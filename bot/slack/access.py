"""Who may see relaycheck's answers: one policy for `/relaycheck` and the App Home tab.

Why one policy: App Home shows the same connectors, certificates and open findings as
`/relaycheck status`; a tab open to everyone in the workspace made `[slack] allowed_channels`
pointless. The rule (README, "Access policy"):

- `[slack] allowed_users` set: only those user ids may use `/relaycheck` or see App Home.
- `[slack] allowed_channels` set: `/relaycheck` works only in those channels, and App Home is
  shown only to members of at least one of them (read with `conversations.members`).
- Both set: both must hold. Neither set: everyone, as before.

Entries of `allowed_channels` match channel *ids* only. A name (`#ops`) is resolved to its id
once, at start (`conversations.list`), so a channel renamed to `ops` later, or another
workspace's `#ops`, matches nothing. A name that cannot be resolved matches nothing (said at
start). Denied App Home users get a view saying so, with no tenant data in it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.delivery import slack_error
from checks.model import SlackSettings

_log = logging.getLogger("relaycheck.slack")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
MEMBERSHIP_SECONDS = 300.0  # how long a channel's member list is trusted
_PAGES = 20


def split_channels(entries: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(channel ids, names still to resolve) of `allowed_channels`."""
    ids: set[str] = set()
    names: list[str] = []
    for entry in entries:
        if _CHANNEL_ID.fullmatch(entry):
            ids.add(entry)
        else:
            names.append(entry.lstrip("#").lower())
    return frozenset(ids), tuple(names)


class Access:
    """The access policy of one app; `resolve()` runs once, before the first decision."""

    def __init__(self, settings: SlackSettings) -> None:
        self.users = frozenset(settings.allowed_users)
        self._ids, self._names = split_channels(settings.allowed_channels)
        self.restricts_channels = bool(settings.allowed_channels)
        self._resolved = not self._names
        self._lock = asyncio.Lock()
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    @property
    def channel_ids(self) -> frozenset[str]:
        return self._ids

    async def resolve(self, client: AsyncWebClient) -> None:
        """Channel names to ids, once (`conversations.list`, scopes channels:read and
        groups:read); a name not found is logged and matches nothing."""
        async with self._lock:
            if self._resolved:
                return
            self._resolved = True
            wanted = set(self._names)
            found: dict[str, str] = {}
            cursor: str | None = None
            try:
                for _ in range(_PAGES):
                    response = await client.conversations_list(
                        types="public_channel,private_channel",
                        exclude_archived=True,
                        limit=1000,
                        cursor=cursor,
                    )
                    for channel in response.get("channels") or []:
                        name = str(channel.get("name", "")).lower()
                        if name in wanted and channel.get("id"):
                            found[name] = str(channel["id"])
                    meta = response.get("response_metadata") or {}
                    cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
                    if not cursor or wanted <= found.keys():
                        break
            except SlackApiError as err:
                _log.warning(
                    "[slack] allowed_channels: cannot resolve channel names (%s); use channel "
                    "ids, or add the channels:read and groups:read scopes",
                    slack_error(err).code,
                )
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                _log.warning(
                    "[slack] allowed_channels: cannot resolve channel names (%s)",
                    type(err).__name__,
                )
            for name in self._names:
                if name in found:
                    _log.info("[slack] allowed_channels: #%s is %s", name, found[name])
                else:
                    _log.warning(
                        "[slack] allowed_channels: no channel named #%s; the entry matches nothing",
                        name,
                    )
            self._ids = self._ids | frozenset(found.values())

    def user_allowed(self, user: str | None) -> bool:
        return not self.users or (user is not None and user in self.users)

    async def command_allowed(
        self, client: AsyncWebClient, *, user: str | None, channel: str | None
    ) -> bool:
        """`/relaycheck` (every subcommand) and the Share button."""
        if not self.user_allowed(user):
            return False
        if not self.restricts_channels:
            return True
        await self.resolve(client)
        return channel is not None and channel in self._ids

    async def home_allowed(self, client: AsyncWebClient, *, user: str | None) -> bool:
        """App Home: whoever could run `/relaycheck status` in some allowed channel."""
        if user is None or not self.user_allowed(user):
            return False
        if not self.restricts_channels:
            return True
        await self.resolve(client)
        for channel in sorted(self._ids):
            if user in await self._channel_members(client, channel):
                return True
        return False

    async def _channel_members(self, client: AsyncWebClient, channel: str) -> frozenset[str]:
        cached = self._members.get(channel)
        now = time.monotonic()
        if cached is not None and now - cached[0] < MEMBERSHIP_SECONDS:
            return cached[1]
        members: set[str] = set()
        cursor: str | None = None
        try:
            for _ in range(_PAGES):
                response = await client.conversations_members(
                    channel=channel, limit=1000, cursor=cursor
                )
                members.update(str(m) for m in response.get("members") or [])
                meta = response.get("response_metadata") or {}
                cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
                if not cursor:
                    break
        except SlackApiError as err:
            _log.warning("cannot read the members of %s (%s)", channel, slack_error(err).code)
            return frozenset()  # fail closed, and ask again next time
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            _log.warning("cannot read the members of %s (%s)", channel, type(err).__name__)
            return frozenset()
        result = frozenset(members)
        self._members[channel] = (now, result)
        return result
