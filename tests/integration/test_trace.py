"""Message-trace exports: the three documented layouts, as PowerShell and the admin center write
them (UTF-16 with BOM, UTF-8 with BOM, a `#TYPE` line), read from files and summarised."""

from __future__ import annotations

import codecs
import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks.errors import RelaycheckError
from checks.i18n import Language, using
from checks.model import AcceptedDomain, Forward
from checks.probes.trace import (
    LAYOUT_DETAIL,
    LAYOUT_HISTORICAL,
    LAYOUT_SUMMARY,
    TraceFileError,
    read_trace,
)
from checks.rules.trace import summarise

REPO = Path(__file__).resolve().parents[2]
ACCEPTED = (AcceptedDomain(name="contoso.com"),)
FORWARDS = (Forward(mailbox="kate@contoso.com", to="kate@tailspintoys.com"),)

# Get-MessageTraceV2 output properties (Microsoft Learn), in Export-Csv's order
SUMMARY_COLUMNS = [
    "Received", "SenderAddress", "RecipientAddress", "Subject", "Status", "ToIP", "FromIP",
    "Size", "MessageId", "MessageTraceId",
]  # fmt: skip
DETAIL_COLUMNS = [
    "Date", "Event", "Action", "Detail", "Data", "MessageId", "MessageTraceId",
    "RecipientAddress", "SenderAddress",
]  # fmt: skip
HISTORICAL_COLUMNS = [
    "origin_timestamp_utc", "sender_address", "recipient_status", "message_subject",
    "total_bytes", "message_id", "network_message_id", "original_client_ip", "directionality",
    "connector_id", "delivery_priority",
]  # fmt: skip
TA = "550 5.7.64 TenantAttribution; Relay Access Denied SMTP"
ATTR36 = "550 5.7.64 Relay Access Denied ATTR36"


def csv_text(columns: list[str], rows: list[list[str]], *, type_line: bool = False) -> str:
    out = io.StringIO()
    if type_line:
        out.write("#TYPE Deserialized.Microsoft.Exchange.Management.FfoReporting.MessageTrace\r\n")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def summary_rows() -> list[list[str]]:
    def row(when: str, sender: str, recipient: str, status: str) -> list[str]:
        return [when, sender, recipient, "Report", status, "", "203.0.113.10", "2048", "<m@x>", "7c4d1e8a-0000-0000-0000-000000000001"]  # fmt: skip

    return [
        row("11/20/2026 9:12:01 AM", "", "someone@internet.example", "Failed"),
        row("11/20/2026 9:13:01 AM", "", "other@internet.example", "Failed"),
        row("11/20/2026 9:14:01 AM", "john@fabrikam.com", "kate@tailspintoys.com", "Failed"),
        row("11/20/2026 9:15:01 AM", "scanner@fabrikam.com", "a@tailspintoys.com", "Failed"),
        row("11/21/2026 7:00:00 AM", "kate@contoso.com", "x@tailspintoys.com", "Delivered"),
        row("11/21/2026 8:30:00 AM", "scanner@fabrikam.com", "b@tailspintoys.com", "Failed"),
    ]


def test_get_messagetracev2_export_in_utf16_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    text = csv_text(SUMMARY_COLUMNS, summary_rows(), type_line=True)
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    layout, rows = read_trace(path)
    assert layout == LAYOUT_SUMMARY
    assert len(rows) == 6
    summary = summarise(rows, layout=layout, accepted=ACCEPTED, forwards=FORWARDS)
    assert summary.rows == 6
    assert summary.failures == 5
    assert [(s.code, s.count) for s in summary.statuses] == [("Failed", 5)]
    assert dict(summary.scenarios) == {"ndr": 2, "forwarding": 1, "unregistered-sender": 2}
    assert summary.first_seen == datetime(2026, 11, 20, 9, 12, 1, tzinfo=UTC)
    assert summary.last_seen == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
    assert summary.top_senders[:2] == (("<>", 2), ("scanner@fabrikam.com", 2))
    assert summary.top_recipients[0][1] == 1
    assert any("certificate-based OnPremises connector" in f for f in summary.fixes)


def test_detail_export_counts_each_reply_as_pasted(tmp_path: Path) -> None:
    def row(when: str, event: str, detail: str, sender: str = "john@fabrikam.com") -> list[str]:
        return [when, event, "", detail, "", "<m@x>", "7c4d1e8a-0000-0000-0000-000000000002", "kate@tailspintoys.com", sender]  # fmt: skip

    rows = [
        row("2026-11-20T09:12:00.0000000Z", "Receive", "Message received by: AM0PR01MB1234"),
        row("2026-11-20T09:12:01.0000000Z", "Fail", f"Reason: [{{LED={ATTR36}}};{{MSG=}}]"),
        row("2026-11-20T10:00:00.0000000Z", "Fail", f"Reason: [{{LED={ATTR36}}};{{MSG=}}]"),
        row("2026-11-21T10:00:00.0000000Z", "Fail", f"Reason: [{{LED={TA}}}]", "kate@contoso.com"),
        row("2026-11-21T11:00:00.0000000Z", "Defer", "Reason: [{LED=451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35.}]"),
    ]  # fmt: skip
    path = tmp_path / "detail.csv"
    path.write_bytes(codecs.BOM_UTF8 + csv_text(DETAIL_COLUMNS, rows).encode())
    layout, parsed = read_trace(path)
    assert layout == LAYOUT_DETAIL
    summary = summarise(parsed, layout=layout, accepted=ACCEPTED, forwards=FORWARDS)
    assert summary.failures == 4
    assert [(s.code, s.key, s.count) for s in summary.statuses] == [
        ("550 5.7.64 ATTR36", "attr36", 2),
        ("550 5.7.64 TenantAttribution", "tenant-attribution", 1),
        ("451 4.4.62 ATTR35", "wrong-region", 1),
    ]
    assert dict(summary.scenarios) == {"forwarding": 3, "accepted-sender": 1}
    data = summary.to_json()
    assert data["statuses"][0]["class"] == "permanent"
    assert data["statuses"][2]["class"] == "temporary"
    assert data["first_seen"] == "2026-11-20T09:12:01+00:00"


def test_historical_search_report(tmp_path: Path) -> None:
    rows = [
        ["2026-11-20T09:12:01.0000000Z", "john@fabrikam.com", "kate@tailspintoys.com##Receive, Fail;x@tailspintoys.com##Receive, Send", "Report", "2048", "<m@x>", "0f0f", "203.0.113.10", "Originating", "From on-prem", "Normal"],
        ["2026-11-20T09:15:01.0000000Z", "", "someone@internet.example##Receive, Fail", "NDR", "1024", "<n@x>", "0f10", "203.0.113.10", "Originating", "From on-prem", "Normal"],
    ]  # fmt: skip
    path = tmp_path / "report.csv"
    path.write_text(csv_text(HISTORICAL_COLUMNS, rows), encoding="utf-8")
    layout, parsed = read_trace(path)
    assert layout == LAYOUT_HISTORICAL
    assert [(r.recipient, r.status) for r in parsed] == [
        ("kate@tailspintoys.com", "Fail"),
        ("x@tailspintoys.com", "Send"),
        ("someone@internet.example", "Fail"),
    ]
    summary = summarise(parsed, layout=layout, accepted=ACCEPTED)
    assert summary.failures == 2
    assert dict(summary.scenarios) == {"unregistered-sender": 1, "ndr": 1}


def test_without_accepted_domains_only_ndrs_are_known(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(csv_text(SUMMARY_COLUMNS, summary_rows()), encoding="utf-8")
    layout, rows = read_trace(path)
    summary = summarise(rows, layout=layout)
    assert dict(summary.scenarios) == {"ndr": 2, "unknown": 3}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"a,b,c\r\n1,2,3\r\n", "not a message trace export relaycheck knows (columns: a, b, c)"),
        (b"\xff\xfe\x00\xd8", "is not UTF-8 or UTF-16 text"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(TraceFileError) as caught:
        read_trace(path)
    assert isinstance(caught.value, RelaycheckError)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def relaycheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


def test_cli_trace_json_and_japanese_text(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    text = csv_text(SUMMARY_COLUMNS, summary_rows(), type_line=True)
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    config = REPO / "examples" / "contoso-ip-only" / "relaycheck.toml"
    done = relaycheck("triage", "--trace", str(path), "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["failures"] == 5
    assert data["scenarios"]["ndr"] == 2
    assert data["message"] == "5 of 6 trace rows are relay failures"
    ja = relaycheck("--lang", "ja", "triage", "--trace", str(path), "--config", str(config))
    assert ja.returncode == 0, ja.stderr
    assert "トレース 6 行のうち 5 行がリレーの失敗です" in ja.stdout
    assert "2026年11月20日 09:12 UTC" in ja.stdout
    missing = relaycheck("triage", "--trace", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("relaycheck: error: ")
    assert "file not found" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


def test_the_json_message_follows_the_language(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(csv_text(SUMMARY_COLUMNS, summary_rows()), encoding="utf-8")
    layout, rows = read_trace(path)
    with using(Language.JA):
        data = summarise(rows, layout=layout).to_json()
    assert data["message"] == "トレース 6 行のうち 5 行がリレーの失敗です"
    assert set(data["scenarios"]) == {"ndr", "unknown"}  # ids stay English
