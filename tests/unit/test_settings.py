"""Slack secrets come from an environ mapping, are validated at start, and never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.slack.settings import load_settings
from checks.errors import SettingsError
from checks.model import SlackMode

BOT = "xoxb-123-456-abcdef"
APP = "xapp-1-A0-123-abcdef"
SECRET = "8f742231b10e8888abcd99aa85a5c3d1"


def test_no_variables_means_console_mode() -> None:
    assert load_settings({}, mode=SlackMode.SOCKET).console


def test_socket_mode_and_secrets_never_print() -> None:
    settings = load_settings(
        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP}, mode=SlackMode.SOCKET
    )
    assert not settings.console
    assert settings.bot_token is not None
    assert settings.bot_token.reveal() == BOT
    shown = f"{settings!r} {settings} {settings.app_token}"
    assert BOT not in shown
    assert APP not in shown
    assert "<SECRET>" in shown


def test_http_mode_needs_the_signing_secret() -> None:
    with pytest.raises(SettingsError, match=r"^SLACK_SIGNING_SECRET: is required"):
        load_settings({"SLACK_BOT_TOKEN": BOT}, mode=SlackMode.HTTP)
    settings = load_settings(
        {"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": SECRET}, mode=SlackMode.HTTP
    )
    assert settings.signing_secret is not None


@pytest.mark.parametrize(
    ("environ", "variable", "words"),
    [
        ({"SLACK_APP_TOKEN": APP}, "SLACK_BOT_TOKEN", "is required"),
        ({"SLACK_BOT_TOKEN": BOT}, "SLACK_APP_TOKEN", "is required"),
        ({"SLACK_BOT_TOKEN": APP, "SLACK_APP_TOKEN": APP}, "SLACK_BOT_TOKEN", "app-level token"),
        ({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": BOT}, "SLACK_APP_TOKEN", "bot token"),
        ({"SLACK_BOT_TOKEN": "xoxp-user", "SLACK_APP_TOKEN": APP}, "SLACK_BOT_TOKEN", "user token"),
    ],
)
def test_missing_or_malformed_names_the_variable_not_the_value(
    environ: dict[str, str], variable: str, words: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ, mode=SlackMode.SOCKET)
    message = str(info.value)
    assert message.startswith(f"{variable}:")
    assert words in message
    for value in environ.values():
        assert value not in message


def test_file_variants(tmp_path: Path) -> None:
    (tmp_path / "bot").write_text(BOT + "\n")
    (tmp_path / "app").write_text(APP)
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN_FILE": str(tmp_path / "bot"),
            "SLACK_APP_TOKEN_FILE": str(tmp_path / "app"),
        },
        mode=SlackMode.SOCKET,
    )
    assert settings.bot_token is not None
    assert settings.bot_token.reveal() == BOT
    with pytest.raises(SettingsError, match=r"^SLACK_BOT_TOKEN_FILE: file .* not found"):
        load_settings({"SLACK_BOT_TOKEN_FILE": str(tmp_path / "nope")}, mode=SlackMode.SOCKET)
    with pytest.raises(SettingsError, match="not both"):
        load_settings(
            {"SLACK_BOT_TOKEN": BOT, "SLACK_BOT_TOKEN_FILE": str(tmp_path / "bot")},
            mode=SlackMode.SOCKET,
        )


def test_bot_token_alone_for_run_once(tmp_path: Path) -> None:
    from bot.slack.settings import load_bot_token

    assert load_bot_token({}) is None
    secret = tmp_path / "token"
    secret.write_text("xoxb-1-abc\n", encoding="utf-8")
    token = load_bot_token({"SLACK_BOT_TOKEN_FILE": str(secret)})
    assert token is not None
    assert token.reveal() == "xoxb-1-abc"
    assert "xoxb-1-abc" not in repr(token)
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN: must be a bot token"):
        load_bot_token({"SLACK_BOT_TOKEN": "xapp-1-oops"})
