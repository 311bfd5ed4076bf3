"""Accepted-domain drift across runs: the store remembers what the tenant had, the next
scheduled run reports what appeared or disappeared (real scan, real store, DNS on loopback)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.cycle import run_cycle
from bot.store import Store
from checks.config import parse_config
from checks.model import CheckId, Config, Severity

T0 = datetime(2026, 11, 1, 7, 15, tzinfo=UTC)


def write_export(path: Path, names: list[str]) -> None:
    records = [
        {"DomainName": n, "DomainType": "Authoritative", "Default": i == 0}
        for i, n in enumerate(names)
    ]
    path.write_text(json.dumps(records), encoding="utf-8")


def make_config(tmp_path: Path, dns_port: int) -> Config:
    return parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains_file": "domains.json"},
            "dns": {"nameservers": ["127.0.0.1"], "port": dns_port, "timeout_seconds": 0.5},
            "state": {"path": "state.sqlite3"},
        },
        base_dir=tmp_path,
    )


async def test_disappeared_and_appeared_since_the_last_run(tmp_path: Path, dns_server) -> None:  # type: ignore[no-untyped-def]
    dns = dns_server(zone="contoso.com. 300 IN MX 0 contoso-com.mail.protection.outlook.com.\n")
    config = make_config(tmp_path, dns.port)
    export = tmp_path / "domains.json"
    with Store.open(config.state.path) as store:
        assert store.accepted_domains() is None
        write_export(export, ["contoso.com", "fabrikam.com"])
        first = await run_cycle(config, store, now=T0, job="domains", environ={})
        assert first.ok
        assert store.accepted_domains() == {"contoso.com", "fabrikam.com"}
        # no history and no config list: no baseline, so nothing "appeared" yet
        assert not [f for f in first.findings if f.cause.startswith("drift-")]

        write_export(export, ["contoso.com", "tailspintoys.com"])
        second = await run_cycle(
            config, store, now=T0 + timedelta(days=1), job="domains", environ={}
        )
        drift = {(f.subject, f.cause): f for f in second.findings if f.cause.startswith("drift-")}
        assert set(drift) == {
            ("fabrikam.com", "drift-disappeared"),
            ("tailspintoys.com", "drift-appeared"),
        }
        gone = drift[("fabrikam.com", "drift-disappeared")]
        assert gone.check is CheckId.ACCEPTED_DOMAIN
        assert gone.severity >= Severity.WARNING
        assert "since the last run" in drift[("tailspintoys.com", "drift-appeared")].message
        assert store.accepted_domains() == {"contoso.com", "tailspintoys.com"}
        # the disappearance is an alert in the outbox, not just a row
        assert any("fabrikam.com" in m.text for m in store.pending())
