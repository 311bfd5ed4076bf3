"""`relaycheck status`: what `/relaycheck status` shows in Slack, for the shell.

The last run of each scheduled job and its outcome, when each job runs next (from
`[schedule]`, as `serve` computes it), the open findings by severity, and the outbox
(pending, failed for good, how long the oldest pending alert has waited). It reads the state
file (it never changes what is in it): safe beside a running `serve`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.alerting.store import Store, state_url
from bot.cli.common import add_config_argument, add_tenant_argument, resolve_config
from bot.cli.text import ago
from bot.records import LeaderRecord
from bot.runtime.scheduler import JOBS
from checks.model import Config, Severity
from checks.rules.schedule import build_trigger


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show the last run of each scheduled job and its outcome, the next runs, open findings "
        "by severity, the Slack outbox and the replica that leads, from the state ([state] path "
        "or url)."
    )
    add_config_argument(parser)
    add_tenant_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    job: str
    last_run: datetime | None
    outcome: str | None  # "ok", "failed", or None (never ran)
    next_run: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    jobs: tuple[JobStatus, ...]
    open_findings: dict[str, int]
    pending: int
    failed: int
    oldest_pending: datetime | None
    state_exists: bool
    leader: LeaderRecord | None = None  # the replica that runs the scheduled checks


def gather(config: Config, now: datetime, *, tenant: str | None = None) -> Status:
    triggers = {
        "certificates": config.schedule.certificates,
        "domains": config.schedule.domains,
        "digest": config.schedule.digest,
    }
    counts = {s.value: 0 for s in reversed(Severity) if s is not Severity.OK}
    pending = failed = 0
    oldest = None
    leader = None
    last: dict[str, tuple[datetime | None, str | None]] = dict.fromkeys(JOBS, (None, None))
    # an sqlite file that does not exist yet stays so: status creates nothing
    exists = bool(state_url(config.state, os.environ)) or config.state.path.exists()
    if exists:
        with Store.from_config(config, os.environ, tenant=tenant) as store:
            for job in JOBS:
                if job == "digest":
                    at = store.last_job_run(job)
                    last[job] = (at, "ok" if at else None)
                    continue
                record = store.last_run(job)
                if record is not None:
                    last[job] = (record.started_at, "ok" if record.ok else "failed")
            for item in store.open_findings(now=now):
                severity = item.finding.severity.value
                if severity in counts:
                    counts[severity] += 1
            outbox = store.outbox_counts()
            pending, failed = outbox["pending"], outbox["failed"]
            oldest = store.oldest_pending_at()
            leader = store.leader()
    jobs = []
    for job in JOBS:
        trigger = build_trigger(triggers[job], config.schedule.timezone)
        next_run = trigger.get_next_fire_time(None, now)
        at, outcome = last[job]
        jobs.append(JobStatus(job=job, last_run=at, outcome=outcome, next_run=next_run))
    return Status(
        jobs=tuple(jobs),
        open_findings=counts,
        pending=pending,
        failed=failed,
        oldest_pending=oldest,
        state_exists=exists,
        leader=leader,
    )


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def to_json(status: Status, now: datetime) -> dict[str, Any]:
    age = (now - status.oldest_pending).total_seconds() if status.oldest_pending else None
    return {
        "jobs": [
            {
                "job": j.job,
                "last_run": _iso(j.last_run),
                "outcome": j.outcome,
                "next_run": _iso(j.next_run),
            }
            for j in status.jobs
        ],
        "open_findings": status.open_findings,
        "outbox": {
            "pending": status.pending,
            "failed": status.failed,
            "oldest_pending_age_seconds": round(max(age, 0.0)) if age is not None else None,
        },
        "leader": None
        if status.leader is None
        else {
            "replica": status.leader.replica,
            "since": _iso(status.leader.since),
            "lease_until": _iso(status.leader.until),
            "active": status.leader.active,
        },
    }


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(status: Status, now: datetime, config: Config) -> str:
    lines = []
    if not status.state_exists:
        lines.append(
            f"no state yet at {config.state.path}: nothing has run (relaycheck serve or run-once)"
        )
    lines.append("Scheduled jobs:")
    width = max(len(j.job) for j in status.jobs)
    for j in status.jobs:
        if j.last_run is None:
            last = "never ran"
        else:
            outcome = "completed" if j.outcome == "ok" else "FAILED"
            last = f"last run {_when(j.last_run)} {outcome}"
        lines.append(f"  {j.job:<{width}}  {last}; next {_when(j.next_run)}")
    total = sum(status.open_findings.values())
    shown = ", ".join(f"{n} {s}" for s, n in status.open_findings.items() if n)
    lines.append(f"Open findings: {total} ({shown})" if total else "Open findings: none")
    outbox = f"Outbox: {status.pending} pending, {status.failed} failed"
    if status.oldest_pending is not None:
        outbox += f", oldest pending queued {ago(now - status.oldest_pending)}"
    lines.append(outbox)
    if status.leader is not None:
        held = "leads" if status.leader.active else "led (its lease has expired)"
        lines.append(
            f"Scheduled checks: replica {status.leader.replica} {held} since "
            f"{_when(status.leader.since)}"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    now = datetime.now(UTC)
    status = gather(config, now, tenant=args.tenant)
    if args.json:
        print(json.dumps(to_json(status, now), indent=2))
    else:
        sys.stdout.write(render(status, now, config))
    return 0
