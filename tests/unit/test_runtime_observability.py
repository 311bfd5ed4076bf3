"""Metrics, readiness and log lines of `serve`, each on its own (no process, no network)."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.alerting.store import Store
from bot.runtime.health import Beat, Readiness
from bot.runtime.logs import MASK, configure_logging
from bot.runtime.metrics import Metrics, relay_scenarios, split_source
from checks.model import CheckId, Finding, LogFormat, Severity


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging owns the root logger in serve; here it must give it back to pytest."""
    root = logging.getLogger()
    ours = logging.getLogger("relaycheck")  # bolt sets its level when an app named so is built
    handlers, level, our_level = list(root.handlers), root.level, ours.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    ours.setLevel(our_level)


def relay(scenario: str, accepted: bool) -> Finding:
    return Finding(
        check=CheckId.RELAY_SCENARIO,
        severity=Severity.OK if accepted else Severity.CRITICAL,
        subject=scenario,
        message="",
        details={"scenario": scenario, "accepted": accepted},
    )


def values(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_relay_scenarios_come_from_relay_findings_only() -> None:
    other = Finding(
        check=CheckId.CERT_EXPIRY,
        severity=Severity.WARNING,
        subject="relay",
        message="",
        details={"scenario": "ndr", "accepted": True},
    )
    assert relay_scenarios([relay("ndr", False), relay("accepted-sender", True), other]) == {
        "ndr": False,
        "accepted-sender": True,
    }


def test_scenario_gauge_follows_the_whole_run_and_keeps_partial_runs() -> None:
    metrics = Metrics()
    at = datetime(2026, 12, 1, tzinfo=UTC)
    metrics.job_finished(
        "certificates",
        outcome="ok",
        seconds=1.5,
        finished_at=at,
        findings=[relay("ndr", False), relay("forwarding", True)],
    )
    assert values(metrics, "relaycheck_relay_scenario_accepted") == {
        (("scenario", "forwarding"),): 1.0,
        (("scenario", "ndr"),): 0.0,
    }
    metrics.job_finished("domains", outcome="failed", seconds=0.5, finished_at=at, findings=[])
    assert len(values(metrics, "relaycheck_relay_scenario_accepted")) == 2
    metrics.job_finished(
        "certificates", outcome="ok", seconds=1, finished_at=at, findings=[relay("ndr", True)]
    )
    assert values(metrics, "relaycheck_relay_scenario_accepted") == {(("scenario", "ndr"),): 1.0}
    runs = values(metrics, "relaycheck_check_runs_total")
    assert runs == {
        (("job", "certificates"), ("outcome", "ok")): 2.0,
        (("job", "domains"), ("outcome", "failed")): 1.0,
    }
    # a failed run is no success
    assert values(metrics, "relaycheck_last_success_timestamp_seconds") == {
        (("job", "certificates"),): at.timestamp()
    }
    assert values(metrics, "relaycheck_check_duration_seconds_sum") == {
        (("job", "certificates"),): 2.5,
        (("job", "domains"),): 0.5,
    }
    metrics.slack_error("ratelimited")
    metrics.slack_error("ratelimited")
    assert values(metrics, "relaycheck_slack_api_errors_total") == {(("kind", "ratelimited"),): 2.0}


def test_certificate_sources_split_into_subject_and_address() -> None:
    assert split_source("relay/127.0.0.1") == ("relay", "127.0.0.1")
    assert split_source("relay/2001:db8::25") == ("relay", "2001:db8::25")
    assert split_source("From on-prem") == ("From on-prem", "")
    assert split_source("a/b connector") == ("a/b connector", "")


async def test_a_follower_is_ready_while_its_leadership_loop_runs(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state.sqlite3") as store:
        ready = Readiness(
            store=store,
            heartbeat=lambda: Beat(what="leadership", at=time.monotonic() - 100, stale_after=90),
        )
        assert await ready.problem() == "leadership heartbeat is 100s old (more than 90s)"


async def test_readiness_names_the_first_thing_wrong(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.sqlite3")
    beat: list[float | None] = [None]
    slack: list[str | None] = [None]

    async def slack_check() -> str | None:
        return slack[0]

    ready = Readiness(
        store=store, heartbeat=lambda: Beat(what="scheduler", at=beat[0]), slack=slack_check
    )
    assert await ready.problem() == "scheduler not started"
    beat[0] = time.monotonic() - 120
    assert await ready.problem() == "scheduler heartbeat is 120s old (more than 60s)"
    beat[0] = time.monotonic()
    assert await ready.problem() is None
    slack[0] = "the Socket Mode connection is down"
    assert await ready.problem() == "Slack not connected: the Socket Mode connection is down"
    # a state that refuses writes (here: a table the write needs is gone)
    with sqlite3.connect(tmp_path / "state.sqlite3") as raw:
        raw.execute("DROP TABLE alembic_version")
    problem = await ready.problem()
    store.close()
    assert problem is not None
    assert problem.startswith(f"state not writable: {tmp_path / 'state.sqlite3'}")


def _log(fmt: LogFormat, level: str = "info", secrets: tuple[str, ...] = ()) -> io.StringIO:
    out = io.StringIO()
    configure_logging(fmt=fmt, level=level, secrets=secrets, stream=out)
    return out


def test_key_value_lines_one_per_event() -> None:
    out = _log(LogFormat.KEYVALUE)
    logging.getLogger("relaycheck.scheduler").info("job %s started", "certificates")
    try:
        raise ValueError("two\nlines")
    except ValueError:
        logging.getLogger("relaycheck.cycle").exception("scheduled run failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split(" ", 1)[1] == (
        'level=info logger=relaycheck.scheduler msg="job certificates started"'
    )
    assert lines[0].startswith("ts=20")
    assert 'error="ValueError: two\\nlines"' in lines[1]
    assert "traceback=" in lines[1]


def test_json_lines_and_library_chatter_at_debug() -> None:
    out = _log(LogFormat.JSON)
    logging.getLogger("apscheduler.scheduler").info("Adding job tentatively")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    logging.getLogger("relaycheck.serve").info("console mode", extra={"mode": "console"})
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["logger"], r["level"], r["msg"]) for r in records] == [
        ("apscheduler.scheduler", "warning", "Run time of job was missed"),
        ("relaycheck.serve", "info", "console mode"),
    ]
    assert records[1]["mode"] == "console"
    debug = _log(LogFormat.JSON, level="debug")
    logging.getLogger("apscheduler.scheduler").info("Adding job tentatively")
    assert json.loads(debug.getvalue())["level"] == "debug"


def test_secrets_are_masked_wherever_they_appear() -> None:
    out = _log(LogFormat.KEYVALUE, secrets=("pfx-password-123", "graph-secret-456"))
    log = logging.getLogger("relaycheck.test")
    log.warning("Authorization: Bearer %s", "xoxb-1234-abcdef")
    log.warning("opened with %s and %s", "pfx-password-123", "graph-secret-456")
    log.warning("app token xapp-1-A111-222-abc", extra={"token": "graph-secret-456"})
    text = out.getvalue()
    for secret in ("xoxb-1234-abcdef", "pfx-password-123", "graph-secret-456", "xapp-1-A111"):
        assert secret not in text
    assert text.count(MASK) == 5
