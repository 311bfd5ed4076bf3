"""The Slack app: the bolt app and its listeners (slash command, buttons, App Home), the pure
Block Kit rendering of answers (`blocks`) and the Slack settings (tokens, secrets).

May import `bot.alerting` (listeners record acknowledgements in the store and read findings),
the shared modules (`bot.records`, `bot.mrkdwn`) and `checks`. Never the CLI or the runtime;
`blocks` renders records and imports no store.
"""
