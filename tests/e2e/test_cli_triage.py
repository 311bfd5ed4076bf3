"""`relaycheck triage` through the CLI entry point: JSON, text, stdin, and exit 2 on unknown text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def relaycheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_json_names_the_code_meaning_and_checks() -> None:
    done = relaycheck(
        "triage", "--json", "Remote Server returned '550 5.7.64 TenantAttribution; Relay Access"
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["key"] == "tenant-attribution"
    assert data["code"] == "550 5.7.64 TenantAttribution"
    assert data["check_ids"][:4] == ["san-coverage", "cert-chain", "cert-expiry", "tls-handshake"]
    assert data["causes"]
    assert data["fixes"]
    assert done.stderr == ""


def test_text_is_short_and_readable_and_words_are_joined() -> None:
    done = relaycheck("triage", "550", "5.7.64", "Relay", "Access", "Denied", "ATTR36")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("550 5.7.64 ATTR36: relay refused")
    assert "Likely causes:" in out
    assert "Check and fix:" in out
    assert "Caught by: accepted-domain, san-coverage" in out
    assert "Scenarios: ndr, unregistered-sender, forwarding" in out
    assert len(out.splitlines()) < 30
    assert max(len(line) for line in out.splitlines()) <= 100


def test_dash_reads_a_pasted_block_from_stdin() -> None:
    pasted = (
        "Diagnostic information for administrators:\n"
        "Generating server: AM0PR01MB1234.eurprd01.prod.outlook.com\n"
        "Remote Server returned '450 4.4.317 Cannot connect to remote server "
        "[Message=UntrustedRoot]'\n"
    )
    done = relaycheck("triage", "--json", "-", stdin=pasted)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["check_ids"][0] == "cert-chain"


def test_unknown_text_is_one_line_and_exit_2() -> None:
    done = relaycheck("triage", "mail is slow today")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("relaycheck: error: no Exchange Online reply recognised")
    assert len(done.stderr.splitlines()) == 1


def test_too_long_text_is_one_line_and_exit_2() -> None:
    done = relaycheck("triage", "-", stdin="ATTR36 " * 200_000)
    assert done.returncode == 2
    assert "too long" in done.stderr
    assert len(done.stderr.splitlines()) == 1
