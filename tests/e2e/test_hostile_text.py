"""Text that cannot lie (issue 15): control, bidi and zero-width characters from a certificate,
the tenant or a user are escaped visibly in the CLI and neutralised in Slack (the Slack half is tests/integration/test_slack_hostile_text.py).

A certificate whose CN is `ESC[2K CR ESC[32mOK` would erase its own CRITICAL row in a terminal
and paint "OK" there; `rtl U+202E moc.live` renders as a spoofed name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

# shared with the Slack half
REPAINT = "\x1b[2K\r\x1b[32mOK"
SPOOF = "rtl\u202emoc.live\u200b"


def relaycheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def _hostile_config(tmp_path: Path, pki: Any) -> Path:
    leaf = pki.leaf(["mail.contoso.com"], cn=REPAINT, not_after=pki.now + timedelta(days=2))
    leaf.write_pem(tmp_path / "relay.pem")
    path = tmp_path / "relaycheck.toml"
    raw = {
        "tenant": json.dumps(SPOOF),
        "connector": json.dumps(f"From on-prem {SPOOF}"),
        "ca": json.dumps(str(pki.ca_file)),
    }
    path.write_text(
        f"""
[tenant]
name = {raw["tenant"]}
accepted_domains = ["contoso.com"]

[[connectors]]
name = {raw["connector"]}
tls_sender_certificate_name = "*.contoso.com"
certificate = {{ file = "relay.pem" }}

[trust]
ca_file = {raw["ca"]}

[dns]
enabled = false
""",
        encoding="utf-8",
    )
    return path


def test_scan_table_escapes_a_repainting_certificate_subject(tmp_path: Path, pki: Any) -> None:
    config = _hostile_config(tmp_path, pki)
    done = relaycheck("scan", "--config", str(config), "--only", "cert-expiry", cwd=tmp_path)
    assert done.returncode == 2, done.stderr  # critical: expires in 2 days
    assert "\x1b" not in done.stdout
    assert "\r" not in done.stdout
    assert "\u202e" not in done.stdout
    assert "\u200b" not in done.stdout
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("CRITICAL")]
    assert "\\x1b[2K\\x0d\\x1b[32mOK" in row  # visible, and still on the CRITICAL row
    assert "U+202E" in row  # the subject column is clipped; the escape shows where it starts


def test_config_check_and_explain_escape_tenant_names(tmp_path: Path, pki: Any) -> None:
    config = _hostile_config(tmp_path, pki)
    shown = relaycheck("config", "check", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "\u202e" not in shown.stdout
    assert "rtlU+202Emoc.liveU+200B" in shown.stdout
    answered = relaycheck(
        "explain", "--config", str(config), "kate@contoso.com -> x@tailspintoys.com", cwd=tmp_path
    )
    assert answered.returncode == 0, answered.stderr
    assert "\x1b" not in answered.stdout
    assert "\u202e" not in answered.stdout
    assert "U+202E" in answered.stdout


def test_a_bad_pair_with_escapes_is_one_visible_line(tmp_path: Path) -> None:
    done = relaycheck("explain", f"a@b{REPAINT} -> \u202ec@d", cwd=tmp_path)
    assert done.returncode == 2
    assert "\x1b" not in done.stderr
    assert "\u202e" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
