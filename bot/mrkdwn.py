"""Slack mrkdwn text helpers, shared by every renderer of Slack messages.

Why here and not in `bot.slack.blocks`: alerts (`bot.alerting.alerts`) and answers
(`bot.slack.blocks`) both put text that came from a user, a certificate or the tenant into
mrkdwn; one helper, imported by both, keeps the escaping rule in one place without making the
alert pipeline depend on the Slack app. Pure string functions.

Two rules, both for text we did not write ourselves: `& < >` are escaped (otherwise
`<!channel>` in a slash command pings everyone through the bot), and control, bidirectional
and zero-width characters are neutralised into visible escapes (`rtl\u202emoc.live` would
otherwise render as a spoofed name), in mrkdwn and in plain text alike.
"""

from __future__ import annotations

from checks.report import escape_invisible


def neutralise(text: str) -> str:
    """Control and bidi/zero-width format characters as visible `\x1b` / `U+202E` escapes
    (newlines and tabs kept); for plain_text fields, which Slack shows literally."""
    return escape_invisible(text, keep="\n\t")


def escape_mrkdwn(text: str) -> str:
    """Neutralise invisible characters and escape the three characters Slack treats as
    control characters in mrkdwn."""
    text = neutralise(text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
