"""A renewal staged but not bound: the scheduled run's `cert-not-deployed` alert carries the
preflight verdict for the waiting file (real loopback smart host, real scan, store and outbox)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.alerting.cycle import run_cycle
from bot.alerting.store import Store
from checks.config import parse_config
from checks.model import CheckId, Config, Severity
from tests.fakes.pki import Issued, Pki
from tests.fakes.smtp import ServerFactory


def staged_config(pki: Pki, port: int, renewal: Issued) -> Config:
    renewal.write_pem(pki.tmp_path / "mail1-renewed.pem")
    raw: dict[str, Any] = {
        "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
        "connectors": [
            {
                "name": "Inbound from Contoso on-prem",
                "tls_sender_certificate_name": "*.contoso.com",
                "certificate": {"endpoint": "mail1", "file": "mail1-renewed.pem"},
            }
        ],
        "endpoints": [
            {"name": "mail1", "host": "mail1.contoso.com", "address": "127.0.0.1", "port": port}
        ],
        "forwards": [{"mailbox": "kate@contoso.com", "to": "kate@tailspintoys.com"}],
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": {"ehlo_name": "probe.contoso.com", "timeout_seconds": 2},
        "dns": {"enabled": False},
        "state": {"path": "state.sqlite3"},
    }
    return parse_config(raw, base_dir=pki.tmp_path)


@pytest.mark.parametrize(
    ("names", "verdict", "expected"),
    [
        (
            ["smtp.contoso-mail.net"],
            "breaks",
            "preflight: the renewed certificate waiting on mail1 would break relay of mail from "
            "accepted domains, NDRs and forwards (550 5.7.64 TenantAttribution; Relay Access "
            "Denied SMTP); renewed but not bound",
        ),
        (
            ["mail1.contoso.com"],
            "safe",
            "preflight: the renewed certificate waiting on mail1 is safe to bind; "
            "renewed but not bound",
        ),
    ],
)
async def test_staged_renewal_alert_carries_the_preflight_verdict(
    tmp_path: Path,
    pki: Pki,
    smtp_server: ServerFactory,
    names: list[str],
    verdict: str,
    expected: str,
) -> None:
    served = pki.leaf(["mail1.contoso.com"], not_before=pki.now - timedelta(days=80), days=12)
    renewal = pki.leaf(names, not_before=pki.now - timedelta(days=1), days=380)
    server = await smtp_server(chain=served)
    config = staged_config(pki, server.port, renewal)
    with Store.open(config.state.path) as store:
        result = await run_cycle(config, store, now=pki.now, environ={})
        (staged,) = [f for f in result.findings if f.check is CheckId.CERT_NOT_DEPLOYED]
        assert staged.severity is Severity.WARNING
        assert staged.message.startswith(expected)
        preflight = staged.details["preflight"]
        assert preflight["result"] == verdict
        assert preflight["steps"][-1].endswith("relaycheck scan --only relay-scenario")
        alerts = [m for m in store.pending() if "cert-not-deployed" in m.text]
        assert len(alerts) == 1
        body = " ".join(str(b) for b in alerts[0].blocks)
        assert expected.split(";")[0].replace("<", "&lt;") in body
