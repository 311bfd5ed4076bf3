"""`relaycheck status` after real runs: jobs, findings by severity, the outbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.alerting.store import Store
from bot.records import OutboxDraft
from tests.fakes.smtp import closed_port

REPO = Path(__file__).resolve().parents[2]


def relaycheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "NO_COLOR"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


def test_status_after_a_run_and_with_alerts_waiting(tmp_path: Path) -> None:
    config = tmp_path / "relaycheck.toml"
    config.write_text(
        '[tenant]\nname = "contoso"\naccepted_domains = ["contoso.com"]\n'
        '[[endpoints]]\nname = "down"\nhost = "mail.contoso.com"\naddress = "127.0.0.1"\n'
        f"port = {closed_port()}\n"
        '[probe]\nehlo_name = "probe.relaycheck.test"\ntimeout_seconds = 1\n'
        "[dns]\nenabled = false\n"
        '[schedule]\ntimezone = "UTC"\ncertificates = "@daily"\ndomains = "0 7 * * SUN-SAT"\n'
        '[state]\npath = "state.sqlite3"\n'
    )
    before = relaycheck("status", "--config", str(config), "--json", cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert [j["last_run"] for j in json.loads(before.stdout)["jobs"]] == [None, None, None]
    assert not (tmp_path / "state.sqlite3").exists()  # status never creates the state file

    ran = relaycheck("run-once", "--config", str(config), cwd=tmp_path)
    assert ran.returncode == 2, ran.stderr  # the endpoint is down: critical
    queued_at = datetime.now(UTC) - timedelta(minutes=5)
    with Store.open(tmp_path / "state.sqlite3", tenant="contoso") as store:
        store.enqueue(
            [OutboxDraft(id="late#post", event_id="late", action="post", text="late alert")],
            queued_at,
        )

    done = relaycheck("status", "--config", str(config), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    jobs = {j["job"]: j for j in status["jobs"]}
    assert jobs["certificates"]["outcome"] == "ok"
    assert jobs["domains"]["last_run"] is None
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert jobs["certificates"]["next_run"] == f"{tomorrow}T00:00:00+00:00"
    assert jobs["domains"]["next_run"].endswith("T07:00:00+00:00")
    assert status["open_findings"] == {"critical": 1, "warning": 0, "info": 0}
    assert status["outbox"]["pending"] == 1
    assert status["outbox"]["failed"] == 0
    assert 290 <= status["outbox"]["oldest_pending_age_seconds"] <= 400

    listed = relaycheck("findings", "--config", str(config), cwd=tmp_path).stdout.splitlines()
    assert listed[0].startswith("last run (certificates) completed ")
    assert listed[1].startswith("CRITICAL  endpoint-unreachable  down (")
    assert "cannot connect (connection refused by 127.0.0.1:" in listed[1]
    assert listed[-1] == "1 open finding"

    text = relaycheck("status", "--config", str(config), cwd=tmp_path).stdout
    lines = text.splitlines()
    assert lines[0] == "Scheduled jobs:"
    assert lines[1].startswith("  certificates  last run ")
    assert " completed; next " in lines[1]
    assert lines[2].startswith("  domains       never ran; next ")
    assert "Open findings: 1 (1 critical)" in lines
    assert "Outbox: 1 pending, 0 failed, oldest pending queued 5 minutes ago" in lines
