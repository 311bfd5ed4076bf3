"""`relaycheck serve` as a process: socket mode against the stand-in, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fakes.slack import SlackApiStandIn

BOT = "xoxb-1-e2e-secret"
APP = "xapp-1-e2e-secret"


def _config(tmp_path: Path, api_url: str) -> Path:
    path = tmp_path / "relaycheck.toml"
    path.write_text(
        '[tenant]\nname = "Contoso"\naccepted_domains = ["contoso.com"]\n'
        f'[slack]\nmode = "socket"\napi_url = "{api_url}"\n'
        '[state]\npath = "state.sqlite3"\n'
        "[dns]\nenabled = false\n"  # tests never ask the system resolver
    )
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update(extra)
    return env


def test_socket_mode_serves_and_stops_on_sigterm(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    config = _config(tmp_path, slack_api.base_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
        env=_env(SLACK_BOT_TOKEN=BOT, SLACK_APP_TOKEN=APP),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        slack_api.wait_until(lambda: slack_api.socket_connected, timeout=15)
        envelope = slack_api.push_slash_command("/relaycheck", "help")
        assert "Examples" in str(slack_api.wait_for_ack(envelope))
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert BOT not in out + err
    assert APP not in out + err


def test_malformed_token_is_one_line_naming_the_variable(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    config = _config(tmp_path, slack_api.base_url)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
        env=_env(SLACK_BOT_TOKEN="not-a-token", SLACK_APP_TOKEN=APP),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "relaycheck: error: SLACK_BOT_TOKEN: must be a bot token starting with xoxb-"
    ]
