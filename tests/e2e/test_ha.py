"""Two `relaycheck serve` replicas on one PostgreSQL: one voice through crashes and freezes.

Real processes, a real PostgreSQL (tests/fakes/postgres.py), a loopback SMTP lab and the Slack
stand-in (Socket Mode; both replicas connect). The lab's smart host holds every connection a
few seconds before its banner, so a cycle is always long enough to be interrupted:

1. Both replicas start; the leader is killed with SIGKILL while its first cycle is still
   probing (nothing of that run is written). The follower takes over; the takeover time is
   printed and must stay below `lease_seconds` plus one lease check.
2. The new leader runs the interrupted job again, and is frozen with SIGSTOP while that run
   probes.
3. The killed replica is restarted; past the frozen leader's lease it takes over, runs the job
   to completion and its alert (the smart host's certificate expires in 5 days) arrives.
4. The frozen replica is woken with SIGCONT: it notices it lost the lease, its stale run does
   not complete, and it posts nothing. Every alert has arrived exactly once, and the job has
   exactly one completed run although three replicas started it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psycopg
import pytest

from tests.fakes.postgres import PostgresServer
from tests.fakes.slack import SlackApiStandIn

LEASE_SECONDS = 2.0
CHECK_SECONDS = LEASE_SECONDS / 3  # the leadership loop's tick (bot.runtime.leadership)
HOLD_SECONDS = 5.0  # the smart host's pause before its banner: a cycle's minimum length


def write_config(
    tmp_path: Path, *, url: str, api: SlackApiStandIn, ca: Path, ports: dict[str, int]
) -> Path:
    endpoints = "".join(
        f'[[endpoints]]\nname = "{name}"\nhost = "mail.contoso.com"\naddress = "127.0.0.1"\n'
        f"port = {port}\n"
        for name, port in ports.items()
    )
    path = tmp_path / "relaycheck.toml"
    path.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

{endpoints}
[trust]
ca_file = "{ca}"

[probe]
ehlo_name = "probe.contoso.com"
timeout_seconds = 8
greeting_timeout_seconds = 8
deadline_seconds = 12

[dns]
enabled = false  # tests never ask the system resolver

[slack]
mode = "socket"
alerts_channel = "C0ALERTS"
api_url = "{api.base_url}"

[schedule]
timezone = "UTC"
certificates = "every 1h"
domains = "every 24h"

[state]
url = "{url}"

[ha]
lease_seconds = {LEASE_SECONDS}
""",
        encoding="utf-8",
    )
    return path


class Replica:
    def __init__(self, name: str, config: Path, tmp_path: Path, state_url: str) -> None:
        self.name = name
        self.config = config
        self.tmp_path = tmp_path
        self.state_url = state_url
        self.log_path = tmp_path / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.offset = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELAYCHECK_"))}
        env.update(
            SLACK_BOT_TOKEN="xoxb-0000-ha-test",
            SLACK_APP_TOKEN="xapp-1-ha-test",
            RELAYCHECK_REPLICA=self.name,
            RELAYCHECK_STATE_URL=self.state_url,  # the password: only in the environment
        )
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(self.config)],
            cwd=self.tmp_path,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        """What this run of the replica wrote (since its last start)."""
        data = self.log_path.read_bytes()[self.offset :]
        return data.decode("utf-8", "replace")

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


async def until(
    predicate: Callable[[], bool], *, deadline: float, what: str, step: float = 0.02
) -> float:
    """Poll without blocking the event loop (the SMTP lab runs on it); returns when it held."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline}s: {what}")
        await asyncio.sleep(step)
    return time.monotonic()


def leads(replica: Replica) -> bool:
    return f"replica {replica.name} leads tenant contoso" in replica.text()


def posted(api: SlackApiStandIn) -> list[str]:
    return [c.params["text"] for c in api.received("chat.postMessage") if c.status == 200]


@pytest.mark.timeout(180)
async def test_two_replicas_crash_freeze_and_restart_alert_once(
    tmp_path: Path, postgres: PostgresServer, slack_api: SlackApiStandIn, pki, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    expiring = pki.leaf(["mail.contoso.com"], days=5)
    smarthost = await smtp_server(kind="good", chain=expiring, hold=HOLD_SECONDS)
    full = postgres.create_database("ha")
    database = full.rsplit("/", 1)[1]
    config = write_config(
        tmp_path,
        url=postgres.url(database, password=False),
        api=slack_api,
        ca=pki.ca_file,
        ports={"smarthost": smarthost.port},
    )
    a = Replica("a", config, tmp_path, full)
    b = Replica("b", config, tmp_path, full)
    try:
        a.start()
        b.start()
        await until(lambda: leads(a) or leads(b), deadline=30, what="a leader")
        first, second = (a, b) if leads(a) else (b, a)
        await until(
            lambda: "serving (socket)" in second.text(), deadline=30, what="the follower serving"
        )
        # 1. kill -9 the leader in the middle of its first cycle (the smart host holds it)
        await until(lambda: smarthost.active >= 1, deadline=15, what="the leader's cycle probing")
        seen = smarthost.connections
        first.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert first.process is not None
        await asyncio.to_thread(first.process.wait, 10)
        took_over = await until(lambda: leads(second), deadline=15, what="the takeover")
        takeover = took_over - killed_at
        print(
            f"\ntakeover after kill -9: {takeover:.2f}s "
            f"(lease {LEASE_SECONDS}s + one check {CHECK_SECONDS:.2f}s)"
        )
        assert takeover < LEASE_SECONDS + CHECK_SECONDS
        assert posted(slack_api) == []  # the interrupted run wrote and posted nothing

        # 2. the new leader runs the interrupted job again; freeze it while that run probes
        await until(lambda: smarthost.connections > seen, deadline=15, what="the re-run probing")
        second.signal(signal.SIGSTOP)
        frozen_at = time.monotonic()

        # 3. restart the killed replica: it takes over from the frozen one, past its lease
        first.stop()
        first.start()
        await until(lambda: leads(first), deadline=30, what="the takeover from the frozen leader")
        # not before the frozen leader's lease ran out: it renewed at most one check before
        # it was frozen, so its lease ends no sooner than LEASE - CHECK after the freeze
        assert time.monotonic() - frozen_at > LEASE_SECONDS - CHECK_SECONDS
        await until(
            lambda: any("smarthost" in t for t in posted(slack_api)),
            deadline=30,
            what="the alert of the interrupted run, from the leader that ran it to completion",
        )
        await asyncio.sleep(1.0)  # anything else that run queued
        calls_before_wake = len(slack_api.received("chat.postMessage"))

        # 4. wake the frozen replica: its stale run must not complete, it must not post
        second.signal(signal.SIGCONT)
        await until(
            lambda: f"replica {second.name} no longer leads" in second.text(),
            deadline=15,
            what="the woken replica noticing it lost the lease",
        )
        await asyncio.sleep(HOLD_SECONDS + 1.5)  # its stale probe had time to finish
        assert len(slack_api.received("chat.postMessage")) == calls_before_wake, posted(slack_api)
    finally:
        for replica in (a, b):
            replica.stop()

    texts = posted(slack_api)
    assert any("smarthost" in t for t in texts)
    twice = {text: n for text, n in collections.Counter(texts).items() if n > 1}
    assert twice == {}, texts  # every alert exactly once
    with psycopg.connect(full) as conn:
        completed = conn.execute(
            "SELECT count(*) FROM runs WHERE tenant = 'contoso' AND job = 'certificates'"
        ).fetchone()
    assert completed == (1,)  # three replicas started that run; one completed it
    logs = a.log_path.read_text(errors="replace") + b.log_path.read_text(errors="replace")
    assert postgres.password not in logs
    assert "Traceback" not in logs, logs[-3000:]
