"""One certificate served on several endpoints is one alert listing them all (real scan of two
loopback STARTTLS servers, real lifecycle, real store)."""

from __future__ import annotations

from pathlib import Path

from bot.alerting.cycle import run_cycle
from bot.alerting.store import Store
from checks.config import parse_config


async def test_same_certificate_on_two_endpoints_is_one_alert(
    tmp_path: Path, pki, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    expiring = pki.leaf(["mail.contoso.com"], days=3)
    first = await smtp_server(kind="good", chain=expiring)
    second = await smtp_server(kind="good", chain=expiring)
    config = parse_config(
        {
            "tenant": {"name": "contoso"},
            "endpoints": [
                {
                    "name": name,
                    "host": "mail.contoso.com",
                    "address": "127.0.0.1",
                    "port": server.port,
                }
                for name, server in (("mail-a", first), ("mail-b", second))
            ],
            "trust": {"ca_file": str(pki.ca_file)},
            "probe": {"ehlo_name": "probe.contoso.com", "timeout_seconds": 2},
            "state": {"path": "state.sqlite3"},
        },
        base_dir=tmp_path,
    )
    with Store.open(config.state.path) as store:
        result = await run_cycle(config, store, now=pki.now, environ={})
        expiry = [f for f in result.findings if f.check.value == "cert-expiry"]
        assert {f.subject for f in expiry} == {"mail-a", "mail-b"}
        alerts = [m for m in store.pending() if "cert-expiry" in m.text]
        assert len(alerts) == 1
        body = alerts[0].text + " ".join(str(b) for b in alerts[0].blocks)
        assert "mail-a" in body
        assert "mail-b" in body
