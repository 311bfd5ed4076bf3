"""Channel alerts and the digest speak `[locale] language`, whoever set it up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.alerting.cycle import run_cycle, run_digest
from bot.alerting.store import Store
from checks.config import parse_config
from checks.model import CheckId, Finding, Severity
from checks.scan import ScanReport

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def config(tmp_path: Path, language: str | None) -> Any:
    raw: dict[str, Any] = {
        "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
        "alerts": {"runbook_url": "https://wiki.contoso.com/mail/relay"},
    }
    if language:
        raw["locale"] = {"language": language}
    return parse_config(raw, base_dir=tmp_path)


async def scan(*_args: Any, **_kwargs: Any) -> ScanReport:
    finding = Finding(
        check=CheckId.CERT_EXPIRY,
        severity=Severity.CRITICAL,
        subject="mail1",
        message="expires in 3 days",
    )
    return ScanReport(findings=(finding,), summary={}, started_at=NOW, finished_at=NOW)


async def posted(tmp_path: Path, language: str | None) -> list[str]:
    store = Store.open(tmp_path / f"state-{language}.sqlite3", channel="C0ALERTS")
    try:
        await run_cycle(config(tmp_path, language), store, now=NOW, job="certificates", scan=scan)
        await run_digest(config(tmp_path, language), store, now=NOW)
        return [json.dumps([m.text, m.blocks], ensure_ascii=False) for m in store.pending()]
    finally:
        store.close()


async def test_alerts_and_digest_follow_the_configured_language(tmp_path: Path) -> None:
    japanese = await posted(tmp_path, "ja")
    english = await posted(tmp_path, None)
    assert len(japanese) == len(english) == 2
    alert, digest = japanese
    assert "新規 cert-expiry: mail1" in alert
    assert "証明書の有効期限" in alert
    assert "https://wiki.contoso.com/mail/relay#cert-expiry" in alert
    assert "対応中にする" in alert
    assert "relaycheck 週次ダイジェスト 2026年12月1日" in digest
    assert "New cert-expiry: mail1" in english[0]
    assert "relaycheck weekly digest 2026-12-01" in english[1]
