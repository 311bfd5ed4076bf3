"""`relaycheck run-once` and `relaycheck findings` through the real CLI, on loopback only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, port: int, extra: str = "") -> Path:
    path = tmp_path / "relaycheck.toml"
    path.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

[[endpoints]]
name = "smarthost"
host = "relay.contoso.com"
address = "127.0.0.1"
port = {port}

[probe]
timeout_seconds = 1
deadline_seconds = 3

[dns]
enabled = false  # tests never ask the system resolver

[state]
path = "state.sqlite3"
{extra}
""",
        encoding="utf-8",
    )
    return path


def test_run_once_queues_prints_and_findings_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, closed_port())
    code = main(["run-once", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 2
    assert "[relaycheck ALERT]" in out
    assert "endpoint-unreachable" in out
    # a second run: nothing new to say
    assert main(["run-once", "--config", str(config)]) == 2
    assert "[relaycheck ALERT]" not in capsys.readouterr().out
    assert main(["findings", "--config", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    checks = {f["check"] for f in data["findings"]}
    assert "endpoint-unreachable" in checks
    assert data["last_run"] is not None
    assert main(["findings", "--config", str(config)]) == 0
    assert "CRITICAL" in capsys.readouterr().out


def test_findings_without_state_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, closed_port())
    assert main(["findings", "--config", str(config)]) == 0
    assert "no scheduled run" in capsys.readouterr().out
    assert not (tmp_path / "state.sqlite3").exists()


def test_corrupt_state_file_is_a_one_line_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, closed_port())
    (tmp_path / "state.sqlite3").write_bytes(b"garbage" * 200)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "findings", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "state.sqlite3" in lines[0]
    assert "Traceback" not in proc.stderr
