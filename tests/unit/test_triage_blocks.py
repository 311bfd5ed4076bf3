"""Block Kit rendering of a triage answer: every entry fits Slack's limits and names its checks."""

from __future__ import annotations

import pytest

from bot.slack.blocks import help_message, triage_message
from checks.rules.replies import triage
from tests.unit.test_replies import ROWS


@pytest.mark.parametrize(("reply", "key", "checks"), ROWS)
def test_every_entry_renders_within_slack_limits(reply: str, key: str, checks: object) -> None:
    result = triage(f"&lt;{reply}&gt;")
    assert result is not None
    rendered = triage_message(result).to_dict()  # slack_sdk validates the limits here
    blocks = rendered["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == f"Exchange Online: {result.code}"
    assert rendered["text"].startswith(result.code)
    flat = str(blocks)
    for check in result.check_ids:
        assert f"`{check.value}`" in flat
    assert "<" not in flat.replace("<@", "")  # nothing Slack would parse as a link or mention
    assert len(blocks) <= 5


def test_help_mentions_triage() -> None:
    flat = str(help_message().to_dict())
    assert "/relaycheck triage TEXT" in flat
    assert "/relaycheck triage 550 5.7.64 TenantAttribution" in flat
