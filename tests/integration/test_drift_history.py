"""Accepted-domain drift across runs: the store remembers what the tenant had, the next
scheduled run reports what appeared or disappeared (real scan, real store, DNS on loopback)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.alerting.cycle import run_cycle
from bot.alerting.store import Store
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


async def test_a_broken_export_judges_nothing_against_half_a_tenant(
    tmp_path: Path, dns_server
) -> None:  # type: ignore[no-untyped-def]
    """A truncated export: one tenant-source alert, no false accepted-domain alerts, nothing
    resolved, and the drift baseline kept for the next good run."""
    dns = dns_server(zone="contoso.com. 300 IN MX 0 contoso-com.mail.protection.outlook.com.\n")
    config = parse_config(
        {
            "tenant": {
                "name": "contoso",
                "accepted_domains_file": "domains.json",
                "sender_domains": ["contoso.com", "fabrikam.net"],
            },
            "connectors": [{"name": "cert", "tls_sender_certificate_name": "*.contoso.com"}],
            "dns": {"nameservers": ["127.0.0.1"], "port": dns.port, "timeout_seconds": 0.5},
            "state": {"path": "state.sqlite3"},
        },
        base_dir=tmp_path,
    )
    export = tmp_path / "domains.json"
    with Store.open(config.state.path) as store:
        write_export(export, ["contoso.com", "fabrikam.com"])
        first = await run_cycle(config, store, now=T0, job="domains", environ={})
        open_before = {o.finding.key for o in store.open_findings(now=T0)}
        export.write_text('[{"DomainName": "contoso.com", "DomainT', encoding="utf-8")
        broken = await run_cycle(
            config, store, now=T0 + timedelta(days=1), job="domains", environ={}
        )
        assert [f.check for f in broken.findings if f.severity is Severity.CRITICAL] == [
            CheckId.TENANT_SOURCE
        ]
        assert not [e for e in broken.events if e.kind.value == "resolved"]
        assert open_before <= {o.finding.key for o in store.open_findings(now=T0)}
        assert store.accepted_domains() == {"contoso.com", "fabrikam.com"}
        write_export(export, ["contoso.com", "fabrikam.com"])
        healed = await run_cycle(
            config, store, now=T0 + timedelta(days=2), job="domains", environ={}
        )
        assert not [f for f in healed.findings if f.cause.startswith("drift-")]
    assert first.ok
