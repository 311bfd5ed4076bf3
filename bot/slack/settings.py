"""Slack secrets, read only from the environment, never printed.

Tokens do not belong in the TOML file (it is shared, diffed and pasted into tickets), so they
come from an `environ` mapping passed in (tests pass a dict; `serve` passes `os.environ`). Each
variable also has a `*_FILE` form for container secrets. Values are wrapped in `Secret`, whose
repr is `<SECRET>`, so a settings object can be logged or shown in a traceback without leaking.

No Slack variable at all is a valid choice ("console mode": scheduled checks still run and
alerts go to the console). Anything else that is incomplete or malformed is one
`SettingsError` naming the variable, raised at start rather than on the first Slack request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from checks.errors import SettingsError
from checks.model import SlackMode

# names of environment variables, not secrets
BOT_TOKEN = "SLACK_BOT_TOKEN"  # noqa: S105
APP_TOKEN = "SLACK_APP_TOKEN"  # noqa: S105
SIGNING_SECRET = "SLACK_SIGNING_SECRET"  # noqa: S105
_ALL = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)

_BOT_TOKEN_RE = re.compile(r"^xoxb-[A-Za-z0-9-]+$")
_APP_TOKEN_RE = re.compile(r"^xapp-[A-Za-z0-9-]+$")
_SIGNING_SECRET_RE = re.compile(r"^[0-9a-fA-F]{16,128}$")


class Secret:
    """A string that refuses to show itself; call `reveal()` at the one place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<SECRET>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The Slack credentials for one mode; all None means console mode."""

    mode: SlackMode
    bot_token: Secret | None = None
    app_token: Secret | None = None
    signing_secret: Secret | None = None

    @property
    def console(self) -> bool:
        return self.bot_token is None


def _read(environ: Mapping[str, str], name: str) -> str | None:
    direct = environ.get(name, "").strip()
    file_var = f"{name}_FILE"
    file_name = environ.get(file_var, "").strip()
    if direct and file_name:
        raise SettingsError(name, f"set either {name} or {file_var}, not both")
    if file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SettingsError(file_var, f"file {file_name!r} not found") from None
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "not UTF-8 text"
            raise SettingsError(file_var, f"cannot read {file_name!r} ({reason})") from None
        if not value:
            raise SettingsError(file_var, f"file {file_name!r} is empty")
        return value
    return direct or None


def _prefix_hint(value: str) -> str:
    # Naming the kind of token found (never the token) makes the common swap obvious.
    for prefix, kind in (("xoxb-", "a bot token"), ("xapp-", "an app-level token")):
        if value.startswith(prefix):
            return f"; the value is {kind} ({prefix}...)"
    if value.startswith(("xoxp-", "xoxe")):
        return "; the value is a user token, not a bot token"
    return ""


def load_bot_token(environ: Mapping[str, str]) -> Secret | None:
    """Only the bot token (or None): what posting alerts needs, for `run-once` from cron,
    which neither receives slash commands nor holds a WebSocket."""
    bot = _read(environ, BOT_TOKEN)
    if bot is None:
        return None
    if not _BOT_TOKEN_RE.match(bot):
        raise SettingsError(
            BOT_TOKEN, f"must be a bot token starting with xoxb-{_prefix_hint(bot)}"
        )
    return Secret(bot)


def load_settings(environ: Mapping[str, str], *, mode: SlackMode) -> Settings:
    """Read and validate the Slack secrets `mode` needs, or return console-mode settings."""
    values = {name: _read(environ, name) for name in _ALL}
    if not any(values.values()):
        return Settings(mode=mode)
    bot = values[BOT_TOKEN]
    if bot is None:
        present = next(name for name, value in values.items() if value)
        raise SettingsError(
            BOT_TOKEN,
            f"is required when {present} is set (unset all Slack variables for console mode)",
        )
    if not _BOT_TOKEN_RE.match(bot):
        raise SettingsError(
            BOT_TOKEN, f"must be a bot token starting with xoxb-{_prefix_hint(bot)}"
        )
    app = values[APP_TOKEN]
    secret = values[SIGNING_SECRET]
    if mode is SlackMode.SOCKET:
        if app is None:
            raise SettingsError(
                APP_TOKEN, 'is required for [slack] mode = "socket" (an xapp- token)'
            )
        if not _APP_TOKEN_RE.match(app):
            raise SettingsError(
                APP_TOKEN, f"must be an app-level token starting with xapp-{_prefix_hint(app)}"
            )
        return Settings(mode=mode, bot_token=Secret(bot), app_token=Secret(app))
    if secret is None:
        raise SettingsError(SIGNING_SECRET, 'is required for [slack] mode = "http"')
    if not _SIGNING_SECRET_RE.match(secret):
        raise SettingsError(
            SIGNING_SECRET,
            "must be the app's signing secret (hexadecimal, from Basic Information)"
            + _prefix_hint(secret),
        )
    return Settings(mode=mode, bot_token=Secret(bot), signing_secret=Secret(secret))
