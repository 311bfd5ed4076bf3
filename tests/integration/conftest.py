"""Fixtures shared by the integration tests (the Slack bot runner lives in slack_support)."""

from tests.integration.slack_support import run_bot

__all__ = ["run_bot"]
