"""relaycheck's application shell around the `checks` library: one room per concern.

    bot/cli/       the `relaycheck` command line: parser and one module per subcommand
    bot/runtime/   long-running wiring: serve (the one place that wires things), daemon, scheduler
    bot/slack/     the Slack app: bolt app, listeners, Block Kit rendering (pure), settings
    bot/alerting/  the alert pipeline: event rendering (pure), cycle, store, outbox delivery
    bot/demo.py    the loopback demo story behind `relaycheck demo`
    bot/records.py record types shared by rendering and storage
    bot/mrkdwn.py  Slack mrkdwn escaping, shared by every Slack renderer
    bot/terminal.py plain-text rendering of an explanation for the terminal

Imports point down this list only (cli > demo > runtime > slack > alerting > the shared
modules); import-linter's contracts in pyproject.toml keep it so, and `checks` never imports
anything here.
"""
