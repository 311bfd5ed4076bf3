"""Slack mrkdwn text helpers, shared by every renderer of Slack messages.

Why here and not in `bot.slack.blocks`: alerts (`bot.alerting.alerts`) and answers
(`bot.slack.blocks`) both put text that came from a user, a certificate or the tenant into
mrkdwn; one helper, imported by both, keeps the escaping rule in one place without making the
alert pipeline depend on the Slack app. Pure string functions.
"""

from __future__ import annotations


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
