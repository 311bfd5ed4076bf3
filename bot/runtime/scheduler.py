"""Scheduled jobs: APScheduler 3.11 triggers built from `[schedule]`, run inside `serve`.

APScheduler's in-memory job store forgets everything on restart: after a night of downtime it
simply computes the next fire time from "now", silently skipping the missed runs; a persistent
job store would instead replay them. Neither is what a monitor wants. So the store keeps, per
job, when it last ran (`job_marks`), and on start `missed_run()` asks the job's own trigger
whether a fire time fell between that mark and now; if so the job runs ONCE immediately
(however many runs were missed), then follows its schedule. `coalesce=True` and
`max_instances=1` cover the same ground while running: a stalled loop does not produce a
burst, and a run that is still going is not started a second time.

With replicas, only the leader runs a Scheduler (`bot.runtime.leadership`), built with the
`Fence` of its lease: every write of a run carries it, so a run that outlives the lease
(the leader was frozen or cut off) is discarded by the store instead of completing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.alerting.cycle import run_cycle, run_digest
from bot.alerting.lease import Fence
from bot.alerting.store import LeaseLost, Store
from bot.runtime.metrics import Metrics
from checks.model import Config
from checks.rules.schedule import build_trigger

log = logging.getLogger("relaycheck.scheduler")

JOBS = ("certificates", "domains", "digest")
# a run delayed by a blocked loop still happens if it is at most this late (then coalesced)
MISFIRE_GRACE_SECONDS = 3600
# the scheduler's own job that proves it (and the event loop) still runs: /readyz reads it
HEARTBEAT_JOB = "heartbeat"
HEARTBEAT_SECONDS = 15.0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def missed_run(trigger: BaseTrigger, last_run: datetime | None, now: datetime) -> bool:
    """Whether the trigger fired at least once after `last_run` and up to `now`.

    The answer is one boolean, not a count: three missed runs are made up by one run.
    """
    if last_run is None:
        return True
    if isinstance(trigger, IntervalTrigger):
        interval: timedelta = trigger.interval
        return last_run + interval <= now
    after = trigger.get_next_fire_time(None, last_run + timedelta(seconds=1))
    return after is not None and after <= now


class Scheduler:
    """The three jobs of `[schedule]`, each calling back `on_queued` when alerts were queued."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        on_queued: Callable[[], None] = lambda: None,
        scan: Callable[..., Awaitable[Any]] | None = None,
        channel: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fence: Fence | None = None,
        metrics: Metrics | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.fence = fence
        self.config = config
        self.metrics = metrics
        self.heartbeat_seconds = heartbeat_seconds
        self.last_beat: float | None = None
        self.store = store
        self.on_queued = on_queued
        self.scan = scan
        self.channel = channel
        self.clock = clock
        self.aps = AsyncIOScheduler(
            timezone=ZoneInfo(config.schedule.timezone),
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
        )
        self.aps.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
        self._running: set[asyncio.Task[Any]] = set()

    def triggers(self) -> dict[str, BaseTrigger]:
        s = self.config.schedule
        texts = {"certificates": s.certificates, "domains": s.domains, "digest": s.digest}
        return {name: build_trigger(texts[name], s.timezone) for name in JOBS}

    def start(self) -> None:
        now = self.clock()
        for name, trigger in self.triggers().items():
            last = self.store.last_job_run(name)
            kwargs: dict[str, Any] = {}
            if name == "digest" and last is None:
                # first start ever: no digest is owed yet; count from now
                self.store.mark_job(name, now, fence=self.fence)
            elif missed_run(trigger, last, now):
                if last is None:
                    log.info("job %s: first start, running once now", name)
                else:
                    log.info(
                        "job %s missed a run while stopped (last run %s): running once now",
                        name,
                        f"{last.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
                    )
                kwargs["next_run_time"] = now
            self.aps.add_job(self.run_job, trigger, args=[name], id=name, name=name, **kwargs)
        self.last_beat = time.monotonic()
        self.aps.add_job(
            self.heartbeat,
            IntervalTrigger(seconds=self.heartbeat_seconds),
            id=HEARTBEAT_JOB,
            name=HEARTBEAT_JOB,
        )
        self.aps.start()

    async def heartbeat(self) -> None:
        """Runs on the event loop like the jobs: a stale beat means the scheduler or the loop
        stopped (async, so a beat is never a thread that outlives a blocked loop)."""
        self.last_beat = time.monotonic()

    def next_runs(self) -> dict[str, datetime | None]:
        """When each job runs next (None: paused or never)."""
        out: dict[str, datetime | None] = {}
        for name in JOBS:
            job = self.aps.get_job(name)
            out[name] = job.next_run_time if job is not None else None
        return out

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """No new runs; a run in progress may finish its store write (then it is cancelled),
        so the store is never closed under a cycle that is still writing."""
        if self.aps.running:
            self.aps.pause()  # no new runs; APScheduler's shutdown would cancel running ones
        running = set(self._running)
        if running:
            _done, late = await asyncio.wait(running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        self.shutdown()

    async def run_job(self, name: str) -> None:
        now = self.clock()
        started = time.monotonic()
        log.info("job %s started", name)
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        outcome = "error"  # an exception out of the cycle (the store, or worse)
        findings = None
        try:
            if name == "digest":
                await run_digest(
                    self.config, self.store, now=now, channel=self.channel, fence=self.fence
                )
                outcome = "ok"
            else:
                result = await run_cycle(
                    self.config,
                    self.store,
                    now=now,
                    job=name,
                    scan=self.scan,
                    channel=self.channel,
                    fence=self.fence,
                )
                outcome = "ok" if result.ok else "failed"
                findings = result.findings
                log.info(
                    "job %s finished: %s, %s, %s queued",
                    name,
                    _count(len(result.findings), "finding"),
                    _count(len(result.events), "event"),
                    _count(result.drafts, "message"),
                )
        except LeaseLost as err:
            # another replica leads now; it runs this job again (nothing of ours was written)
            outcome = "discarded"
            log.warning("job %s discarded: %s", name, err.problem)
        finally:
            if task is not None:
                self._running.discard(task)
            if self.metrics is not None:
                self.metrics.job_finished(
                    name,
                    outcome=outcome,
                    seconds=time.monotonic() - started,
                    finished_at=self.clock(),
                    findings=findings,
                )
            self.on_queued()

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning("job %s is still running; this run is skipped", event.job_id)
        elif event.exception is not None:
            # run_cycle already turns scan failures into findings; this is the store or worse
            log.error(
                "job %s failed: %s: %s",
                event.job_id,
                type(event.exception).__name__,
                event.exception,
            )
