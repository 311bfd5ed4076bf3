"""Scheduler and cycle: missed runs once, no double runs, failures become findings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.alerting.cycle import run_cycle
from bot.alerting.store import Store
from bot.runtime.scheduler import Scheduler, missed_run
from checks.config import parse_config
from checks.model import CheckId, Config, Finding, Severity
from checks.rules.certificates import CertificateFacts
from checks.rules.schedule import build_trigger
from checks.scan import ObservedCertificate, ScanReport

TOKYO = ZoneInfo("Asia/Tokyo")


def config(tmp_path: Path, **schedule: str) -> Config:
    raw: dict[str, Any] = {
        "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
        "schedule": {"timezone": "Asia/Tokyo", **schedule},
        "state": {"path": "state.sqlite3"},
    }
    return parse_config(raw, base_dir=tmp_path)


def facts(fp: str, names: tuple[str, ...], days: int) -> CertificateFacts:
    now = datetime.now(UTC)
    return CertificateFacts(
        subject=f"CN={names[0]}",
        issuer="CN=Contoso CA",
        common_name=names[0],
        san_dns_names=names,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=days),
        serial="1",
        fingerprint_sha256=fp,
        self_issued=False,
        is_ca=False,
        key_type="EC",
        key_bits=256,
        signature_hash="sha256",
        extended_key_usage=("serverAuth", "clientAuth"),
        der=b"",
    )


class ScriptedScan:
    """A scan stand-in: returns what the test scripted and records how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[datetime, CheckId | None]] = []
        self.findings: list[Finding] = []
        self.certificates: list[ObservedCertificate] = []
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def __call__(
        self, config: Config, *, now: datetime, only: frozenset[CheckId] | None, **_: Any
    ) -> ScanReport:
        self.calls.append((now, only))
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        findings = tuple(f for f in self.findings if only is None or f.check in only)
        return ScanReport(
            findings=findings,
            summary={},
            started_at=now,
            finished_at=now,
            certificates=tuple(self.certificates),
        )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "state.sqlite3")
    yield s
    s.close()


def test_missed_run_is_one_boolean_from_the_trigger() -> None:
    trigger = build_trigger("0 */6 * * *", "Asia/Tokyo")
    assert isinstance(trigger, CronTrigger)
    last = datetime(2026, 3, 1, 6, 0, tzinfo=TOKYO)
    assert not missed_run(trigger, last, datetime(2026, 3, 1, 11, 59, tzinfo=TOKYO))
    assert missed_run(trigger, last, datetime(2026, 3, 1, 12, 0, tzinfo=TOKYO))
    assert missed_run(trigger, last, datetime(2026, 3, 4, 9, 0, tzinfo=TOKYO))  # 3 days down
    assert missed_run(trigger, None, last)
    weekly = build_trigger("0 9 * * MON", "Asia/Tokyo")
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=TOKYO)  # a Monday
    assert not missed_run(weekly, monday, monday + timedelta(days=6))
    assert missed_run(weekly, monday, monday + timedelta(days=7))
    every = build_trigger("every 30m", "UTC")
    assert missed_run(every, last, last + timedelta(minutes=30))
    assert not missed_run(every, last, last + timedelta(minutes=29))


def test_trigger_fire_times_follow_the_configured_timezone() -> None:
    trigger = build_trigger("15 7 * * *", "Asia/Tokyo")
    now = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    nxt = trigger.get_next_fire_time(None, now)
    assert nxt == datetime(2026, 3, 2, 7, 15, tzinfo=TOKYO)


async def test_missed_runs_after_downtime_run_once_on_start(tmp_path: Path, store: Store) -> None:
    now = datetime.now(UTC)
    store.mark_job("certificates", now - timedelta(days=3))  # 12 runs missed
    store.mark_job("domains", now - timedelta(minutes=1))  # hourly: nothing missed yet
    cfg = config(tmp_path, certificates="0 */6 * * *", domains="every 1h")
    scan = ScriptedScan()
    queued: list[int] = []
    sched = Scheduler(cfg, store, scan=scan, on_queued=lambda: queued.append(1))
    sched.start()
    try:
        for _ in range(100):
            if queued:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # a burst would show up here
        assert [only for _, only in scan.calls] == [None]  # certificates once, full scan
        assert len(queued) == 1
        job = sched.aps.get_job("certificates")
        assert job.next_run_time > datetime.now(UTC)
        assert sched.aps.get_job("digest").next_run_time.weekday() == 0  # Monday
    finally:
        sched.shutdown()
    last = store.last_job_run("certificates")
    assert last is not None
    assert last > now - timedelta(seconds=5)


async def test_a_running_job_is_not_started_twice(tmp_path: Path, store: Store) -> None:
    now = datetime.now(UTC)
    for job in ("certificates", "domains", "digest"):
        store.mark_job(job, now)
    cfg = config(tmp_path, certificates="every 1h", domains="every 1h")
    scan = ScriptedScan()
    scan.gate = asyncio.Event()
    sched = Scheduler(cfg, store, scan=scan)
    sched.start()
    try:
        job = sched.aps.get_job("certificates")
        job.modify(next_run_time=datetime.now(UTC))
        await asyncio.sleep(0.2)
        job.modify(next_run_time=datetime.now(UTC))  # due again while the first still runs
        await asyncio.sleep(0.2)
        assert len(scan.calls) == 1
        scan.gate.set()
        await asyncio.sleep(0.1)
    finally:
        sched.shutdown()
    assert len(scan.calls) == 1


async def test_scan_that_raises_becomes_a_relaycheck_finding(tmp_path: Path, store: Store) -> None:
    cfg = config(tmp_path)
    scan = ScriptedScan()
    scan.error = RuntimeError("boom")
    t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    result = await run_cycle(cfg, store, now=t0, scan=scan)
    assert result.exit_code == 3
    (item,) = store.open_findings(now=t0)
    assert item.finding.check is CheckId.RELAYCHECK
    assert "boom" in item.finding.message
    assert [m.action for m in store.pending()] == ["post"]
    # the next run works again: the failure resolves, the scan's findings open
    scan.error = None
    scan.findings = [
        Finding(
            check=CheckId.CERT_CHAIN, severity=Severity.CRITICAL, subject="smarthost", message="x"
        )
    ]
    result = await run_cycle(cfg, store, now=t0 + timedelta(hours=6), scan=scan)
    assert result.exit_code == 2
    assert [o.finding.check for o in store.open_findings(now=t0)] == [CheckId.CERT_CHAIN]
    run = store.last_run()
    assert run is not None
    assert run.ok


async def test_domains_job_does_not_resolve_certificate_findings(
    tmp_path: Path, store: Store
) -> None:
    cfg = config(tmp_path)
    scan = ScriptedScan()
    scan.findings = [
        Finding(
            check=CheckId.CERT_CHAIN, severity=Severity.CRITICAL, subject="smarthost", message="x"
        )
    ]
    t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    await run_cycle(cfg, store, now=t0, scan=scan)
    scan.findings = []
    result = await run_cycle(cfg, store, now=t0 + timedelta(hours=1), job="domains", scan=scan)
    assert [only for _, only in scan.calls[1:]] == [
        frozenset({CheckId.ACCEPTED_DOMAIN, CheckId.MX, CheckId.DNS, CheckId.TENANT_SOURCE})
    ]
    assert result.events == ()
    assert len(store.open_findings(now=t0)) == 1


async def test_certificate_change_is_queued_once(tmp_path: Path, store: Store) -> None:
    cfg = config(tmp_path)
    scan = ScriptedScan()
    old = facts("aa" * 32, ("mail.contoso.com", "relay.contoso.com"), 20)
    new = facts("bb" * 32, ("mail.contoso.com",), 400)
    scan.certificates = [
        ObservedCertificate(
            subject="smarthost", source="endpoint", address="192.0.2.1", chain=(old,)
        ),
        ObservedCertificate(
            subject="smarthost", source="endpoint", address="192.0.2.2", chain=(old,)
        ),
    ]
    t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    await run_cycle(cfg, store, now=t0, scan=scan)
    assert store.pending() == []
    scan.certificates = [
        ObservedCertificate(
            subject="smarthost", source="endpoint", address="192.0.2.1", chain=(new,)
        ),
        ObservedCertificate(
            subject="smarthost", source="endpoint", address="192.0.2.2", chain=(new,)
        ),
    ]
    result = await run_cycle(cfg, store, now=t0 + timedelta(hours=6), scan=scan)
    (change,) = result.events
    assert change.details["sources"] == ["smarthost/192.0.2.1", "smarthost/192.0.2.2"]
    assert change.details["names_removed"] == ["relay.contoso.com"]
    (msg,) = store.pending()
    assert "Names removed" in str(msg.blocks)
    await run_cycle(cfg, store, now=t0 + timedelta(hours=12), scan=scan)
    assert len(store.pending()) == 1


async def test_digest_summarises_open_findings_and_expiring_certificates(
    tmp_path: Path, store: Store
) -> None:
    cfg = config(tmp_path)
    scan = ScriptedScan()
    scan.findings = [
        Finding(
            check=CheckId.CERT_CHAIN, severity=Severity.CRITICAL, subject="smarthost", message="x"
        )
    ]
    scan.certificates = [
        ObservedCertificate(
            subject="smarthost",
            source="endpoint",
            address="192.0.2.1",
            chain=(facts("cc" * 32, ("soon.contoso.com",), 30),),
        ),
        ObservedCertificate(
            subject="mx",
            source="endpoint",
            address="192.0.2.9",
            chain=(facts("dd" * 32, ("later.contoso.com",), 200),),
        ),
    ]
    t0 = datetime.now(UTC)
    await run_cycle(cfg, store, now=t0, scan=scan)
    sched = Scheduler(cfg, store, scan=scan, clock=lambda: t0 + timedelta(days=7))
    await sched.run_job("digest")
    await sched.run_job("digest")  # the same scheduled time twice: one digest (id = the time)
    digests = [m for m in store.pending() if m.event_id.startswith("digest@")]
    assert len(digests) == 1
    text = str(digests[0].blocks)
    assert "soon.contoso.com" in text
    assert "later.contoso.com" not in text
    assert "cert-chain" in text
    assert store.last_job_run("digest") is not None


async def test_one_failing_job_does_not_resolve_another_jobs_failure(
    tmp_path: Path, store: Store
) -> None:
    cfg = config(tmp_path)
    scan = ScriptedScan()
    scan.error = RuntimeError("dns stage broke")
    t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    await run_cycle(cfg, store, now=t0, job="domains", scan=scan)
    scan.error = RuntimeError("probe broke")
    result = await run_cycle(cfg, store, now=t0 + timedelta(hours=1), scan=scan)
    assert not [e for e in result.events if e.kind.value == "resolved"]
    causes = sorted(o.finding.cause for o in store.open_findings(now=t0))
    assert causes == ["job:certificates", "job:domains"]


async def test_stop_lets_a_running_cycle_finish_before_the_store_closes(
    tmp_path: Path, store: Store
) -> None:
    cfg = config(tmp_path, certificates="every 24h", domains="every 24h")
    scan = ScriptedScan()
    scan.gate = asyncio.Event()
    sched = Scheduler(cfg, store, scan=scan)
    sched.start()
    for _ in range(100):
        if scan.calls:
            break
        await asyncio.sleep(0.02)
    assert scan.calls  # a run is in progress, waiting on the gate
    stopping = asyncio.create_task(sched.stop(grace_seconds=5))
    await asyncio.sleep(0.1)
    assert not stopping.done()  # it waits for the run instead of abandoning it
    scan.gate.set()
    await stopping
    run = store.last_run()
    assert run is not None
    assert run.ok  # the cycle's store write landed before stop returned
