"""Which replica leads is visible where operators look: `relaycheck status`, `/readyz`'s
answer and the `relaycheck_leader{replica}` metric (real store, real lease)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bot.alerting.store import Store
from bot.cli.status import gather, render, to_json
from bot.runtime.health import Beat, Readiness
from bot.runtime.metrics import Metrics
from checks.config import parse_config


def test_status_readyz_and_metrics_name_the_leader(tmp_path: Path) -> None:
    config = parse_config(
        {"tenant": {"name": "contoso"}, "state": {"path": "state.sqlite3"}}, base_dir=tmp_path
    )
    with Store.open(config.state.path, tenant="contoso") as store:
        assert store.try_lead("replica-a", lease_seconds=30) is not None
        now = datetime.now(UTC)
        status = gather(config, now, tenant="contoso")
        assert status.leader is not None
        assert status.leader.replica == "replica-a"
        assert "Scheduled checks: replica replica-a leads since" in render(status, now, config)
        assert to_json(status, now)["leader"]["replica"] == "replica-a"

        readiness = Readiness(store=store, heartbeat=lambda: Beat(what="scheduler", at=None))
        assert readiness.leader_note().startswith("; leader replica-a since ")

        metrics = Metrics(store)
        metrics.replica = "replica-b"
        scraped = metrics.render().decode()
        assert 'relaycheck_leader{replica="replica-a"} 1.0' in scraped
        assert 'relaycheck_leader{replica="replica-b"} 0.0' in scraped
        json.dumps(to_json(status, now))  # JSON-ready
