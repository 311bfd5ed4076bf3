"""Prometheus metrics of `relaycheck serve`, through prometheus-client.

Two kinds, kept apart on purpose:
- events counted while serving (runs per job and outcome, their duration, the last success,
  Slack API errors) live in prometheus-client's own Counter/Histogram/Gauge objects, updated
  by the scheduler and the delivery worker through the small callbacks they were given;
- state (open findings, certificates, the outbox) is read from the store at scrape time by
  `_StateCollector`, so /metrics is right after a restart and never drifts from what
  `relaycheck findings` says.

Every instance has its own `CollectorRegistry` (tests start several servers in one process;
the global default registry would refuse the second). The metric names are a public contract
(dashboards and `deploy/prometheus/relaycheck.rules.yaml` use them): never rename one.
"""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.alerting.store import StateError, Store
from checks.model import Finding, Severity

log = logging.getLogger("relaycheck.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RELAY_SCENARIO_CHECK = "relay-scenario"  # issue 10's check id; its details carry the scenario
# a check run takes seconds (loopback) to minutes (many endpoints, slow DNS)
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, float("inf"))


def split_source(source: str) -> tuple[str, str]:
    """A certificate snapshot's source ("subject/address" or "subject") as its two labels."""
    subject, slash, address = source.rpartition("/")
    if slash:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return source, ""
        return subject, address
    return source, ""


def relay_scenarios(findings: Iterable[Finding]) -> dict[str, bool]:
    """scenario -> accepted, from the relay-readiness findings of one run (any later one wins
    over an earlier one for the same scenario, as the run reported them)."""
    out: dict[str, bool] = {}
    for finding in findings:
        if finding.check.value != RELAY_SCENARIO_CHECK:
            continue
        scenario = finding.details.get("scenario")
        accepted = finding.details.get("accepted")
        if isinstance(scenario, str) and isinstance(accepted, bool):
            out[scenario] = accepted
    return out


class _StateCollector(Collector):
    """What the store holds, read when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        store = self.metrics.store
        certificates = GaugeMetricFamily(
            "relaycheck_certificate_not_after_timestamp_seconds",
            "When the certificate last seen at a source expires (Unix time); subject is the "
            "endpoint or connector name from the configuration",
            labels=["subject", "address"],
        )
        findings = GaugeMetricFamily(
            "relaycheck_findings_open",
            "Open findings by check and severity",
            labels=["check", "severity"],
        )
        pending = GaugeMetricFamily(
            "relaycheck_outbox_pending", "Alerts queued for Slack and not delivered yet"
        )
        leader = GaugeMetricFamily(
            "relaycheck_leader",
            "1 for the replica whose lease currently runs the scheduled checks, 0 for others",
            labels=["replica"],
        )
        scenarios = GaugeMetricFamily(
            "relaycheck_relay_scenario_accepted",
            "1 when Exchange Online would relay the scenario as configured, 0 when refused",
            labels=["scenario"],
        )
        if store is not None:
            try:
                for source, snapshot in sorted(store.latest_certificates().items()):
                    subject, address = split_source(source)
                    certificates.add_metric([subject, address], snapshot.not_after.timestamp())
                counts: dict[tuple[str, str], int] = {}
                for item in store.open_findings():
                    f = item.finding
                    if f.severity is Severity.OK:
                        continue
                    key = (f.check.value, f.severity.value)
                    counts[key] = counts.get(key, 0) + 1
                for (check, severity), count in sorted(counts.items()):
                    findings.add_metric([check, severity], count)
                pending.add_metric([], store.outbox_counts()["pending"])
                record = store.leader()
                leading = record.replica if record is not None and record.active else None
                if leading is not None:
                    leader.add_metric([leading], 1)
                mine = self.metrics.replica
                if mine is not None and mine != leading:
                    leader.add_metric([mine], 0)
            except (StateError, sqlite3.Error) as err:  # busy or broken: the gauges stay empty
                log.warning("metrics: state file not readable: %s", err)
        for scenario, accepted in sorted(self.metrics.scenarios.items()):
            scenarios.add_metric([scenario], 1 if accepted else 0)
        yield from (certificates, findings, scenarios, pending, leader)


class Metrics:
    """The registry of one `serve` process and the hooks that feed it."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self.replica: str | None = None  # this process's replica id, once the daemon names it
        self.registry = CollectorRegistry()
        self.scenarios: dict[str, bool] = {}
        self.check_runs = Counter(
            "relaycheck_check_runs_total",
            "Scheduled runs by job and outcome (ok; failed: the scan could not run; error: "
            "relaycheck's bug; discarded: another replica took the lease mid-run)",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.check_duration = Histogram(
            "relaycheck_check_duration_seconds",
            "How long a scheduled run took",
            ["job"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.last_success = Gauge(
            "relaycheck_last_success_timestamp_seconds",
            "When a job last completed successfully (Unix time)",
            ["job"],
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "relaycheck_slack_api_errors_total",
            "Slack Web API calls that failed, by kind (Slack's error code, http_5xx, network)",
            ["kind"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(self))

    def job_finished(
        self,
        job: str,
        *,
        outcome: str,
        seconds: float,
        finished_at: datetime,
        findings: Sequence[Finding] | None = None,
    ) -> None:
        """A scheduled run ended: count it, time it, and keep what it said about relaying."""
        self.check_runs.labels(job=job, outcome=outcome).inc()
        self.check_duration.labels(job=job).observe(seconds)
        if outcome == "ok":
            self.last_success.labels(job=job).set(finished_at.timestamp())
        if findings is not None:
            seen = relay_scenarios(findings)
            # the job that runs every check replaces the picture (a scenario no longer judged
            # disappears); a job that runs some checks only adds what it judged
            if job == "certificates":
                self.scenarios = seen
            else:
                self.scenarios = {**self.scenarios, **seen}

    def slack_error(self, kind: str) -> None:
        self.slack_errors.labels(kind=kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
