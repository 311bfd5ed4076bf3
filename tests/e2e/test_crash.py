"""kill -9 `relaycheck serve` while alerts are pending; restart; nothing lost, nothing doubled.

The real CLI runs in a subprocess in Socket Mode against the loopback Slack stand-in (Web API
through `[slack] api_url`, the WebSocket from apps.connections.open). The outbox is filled before
start, as a cycle would have left it.

The first kill lands while the worker waits between posts (the per-channel pacing) or backs off
from Slack 500s: that is where a process spends its time with alerts pending. The second lands
while Slack is slow to answer a post it has already carried out: the restarted worker finds the
message in the channel's history by its `outbox_id` and adopts its `ts` instead of posting it
again (the remaining window is documented in `bot/alerting/delivery.py`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from bot.alerting.store import Store
from bot.records import OutboxDraft
from tests.fakes.slack import SlackApiStandIn

EXPECTED = [f"alert {i}" for i in range(6)]


def write_config(tmp_path: Path, api: SlackApiStandIn) -> Path:
    path = tmp_path / "relaycheck.toml"
    path.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

[slack]
mode = "socket"
alerts_channel = "C0ALERTS"
api_url = "{api.base_url}"

[dns]
enabled = false  # tests never ask the system resolver

[schedule]
timezone = "UTC"
certificates = "every 24h"
domains = "every 24h"

[state]
path = "state.sqlite3"
""",
        encoding="utf-8",
    )
    return path


def seed(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with Store.open(tmp_path / "state.sqlite3", channel="C0ALERTS", tenant="contoso") as store:
        for job in ("certificates", "domains", "digest"):
            store.mark_job(job, now - timedelta(minutes=1))  # no scan runs during the test
        drafts = [
            OutboxDraft(id=f"e{i}#post", event_id=f"e{i}", action="post", text=text)
            for i, text in enumerate(EXPECTED[:5])
        ]
        drafts += [
            OutboxDraft(
                id="r0#update", event_id="r0", action="update", text="e0 resolved", reply_to="e0"
            ),
            OutboxDraft(
                id="r0#reply", event_id="r0", action="reply", text=EXPECTED[5], reply_to="e0"
            ),
        ]
        store.enqueue(drafts, now)


def start(config: Path, tmp_path: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-0000-crash-test",
        "SLACK_APP_TOKEN": "xapp-1-crash-test",
    }
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN_FILE", "SLACK_APP_TOKEN_FILE"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def delivered(api: SlackApiStandIn) -> list[str]:
    return [c.params["text"] for c in api.received("chat.postMessage") if c.status == 200]


def test_kill_9_with_alerts_pending_then_restart(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    seed(tmp_path)
    config = write_config(tmp_path, slack_api)
    with open(tmp_path / "serve.log", "ab") as log:
        _run(tmp_path, config, slack_api, log)


def _run(tmp_path: Path, config: Path, slack_api: SlackApiStandIn, log: IO[bytes]) -> None:
    first = start(config, tmp_path, log)
    try:
        slack_api.wait_until(lambda: len(delivered(slack_api)) >= 2, timeout=20)
        # Slack now answers 500 for a while: the worker backs off with alerts pending
        slack_api.fail_next("chat.postMessage", status=500, times=1)
        time.sleep(0.5)  # mid-pacing: the second post's ts is committed, the third not sent
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = delivered(slack_api)
    with Store.open(tmp_path / "state.sqlite3", tenant="contoso") as store:
        pending_at_kill = store.outbox_counts()["pending"]
    assert pending_at_kill >= 3, "the kill must land while alerts are still pending"

    second = start(config, tmp_path, log)
    try:
        slack_api.wait_until(lambda: EXPECTED[5] in delivered(slack_api), timeout=30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()

    got = delivered(slack_api)
    assert got == EXPECTED, (before, got)  # each once, in queue order
    (update,) = slack_api.received("chat.update")
    first_post = next(
        c for c in slack_api.received("chat.postMessage") if c.params["text"] == EXPECTED[0]
    )
    reply = next(
        c for c in slack_api.received("chat.postMessage") if c.params["text"] == EXPECTED[5]
    )
    with Store.open(tmp_path / "state.sqlite3", tenant="contoso") as store:
        assert store.outbox_counts() == {"delivered": 7, "failed": 0, "pending": 0}
        posted = store.posted_message("e0")
    assert posted is not None
    assert update.params["ts"] == posted[1]
    assert reply.params["thread_ts"] == posted[1]
    assert first_post.params["channel"] == "C0ALERTS"


def test_kill_9_while_slack_is_slow_to_answer_then_restart_posts_nothing_twice(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    seed(tmp_path)
    config = write_config(tmp_path, slack_api)
    slack_api.slow_next("chat.postMessage", seconds=30)  # in the channel at once, answered late
    with open(tmp_path / "serve.log", "ab") as log:
        first = start(config, tmp_path, log)
        try:
            slack_api.wait_until(lambda: len(delivered(slack_api)) == 1, timeout=20)
            time.sleep(0.3)  # the answer is still 29 s away
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        with Store.open(tmp_path / "state.sqlite3", tenant="contoso") as store:
            (unclear, *_) = store.pending()
        assert unclear.id == "e0#post"
        assert unclear.attempted_at is not None
        assert unclear.ts is None

        second = start(config, tmp_path, log)
        try:
            slack_api.wait_until(lambda: EXPECTED[5] in delivered(slack_api), timeout=30)
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
    assert delivered(slack_api) == EXPECTED  # e0 once: found in history, not posted again
    assert len(slack_api.received("conversations.history")) >= 1
    (update,) = slack_api.received("chat.update")
    with Store.open(tmp_path / "state.sqlite3", tenant="contoso") as store:
        assert store.outbox_counts() == {"delivered": 7, "failed": 0, "pending": 0}
        posted = store.posted_message("e0")
    assert posted is not None
    # the adopted ts is the slow post's own: the resolution edited that very message
    assert update.params["ts"] == posted[1]
    assert slack_api.messages[posted[1]]["text"] == "e0 resolved"
