"""One clear line for every bad input (issue 15), through the real CLI and the real store.

Each case: the exit code (2; `scan`/`run-once` never 0/1), exactly one line on stderr naming
the problem, no traceback, and nothing stored touched.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerting.store import StateError, Store

PAIR = "kate@contoso.com -> someone@tailspintoys.com"


def relaycheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def config_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "relaycheck.toml"
    path.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]
{extra}

[dns]
enabled = false

[state]
path = "state.sqlite3"
""",
        encoding="utf-8",
    )
    return path


def connectors_export(tmp_path: Path, data: bytes) -> Path:
    (tmp_path / "connectors.json").write_bytes(data)
    return config_with(tmp_path, 'connectors_file = "connectors.json"')


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, ("connectors.json", "nested too deeply")),
        (
            b'[{"Name": "x", "ConnectorType": "OnPremises", "Priority": ' + b"9" * 5000 + b"}]",
            ("connectors.json", "not a usable JSON export"),
        ),
        (
            json.dumps(
                [{"Name": "IP", "ConnectorType": "OnPremises", "SenderIPAddresses": ["not-an-ip"]}]
            ).encode(),
            ("connectors.json", "SenderIPAddresses", "'not-an-ip'", "not an IPv4 address"),
        ),
    ],
    ids=["nested", "5000-digits", "not-an-ip"],
)
def test_bad_exports_are_one_line(tmp_path: Path, data: bytes, words: tuple[str, ...]) -> None:
    config = connectors_export(tmp_path, data)
    done = relaycheck("explain", "--config", str(config), PAIR, cwd=tmp_path)
    assert done.returncode == 2
    one_line(done, *words)
    assert "RELAYED" not in done.stdout
    checked = relaycheck("config", "check", str(config), cwd=tmp_path)
    assert checked.returncode == 2
    one_line(checked, *words)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("[probe]\ntimeout_seconds = nan", ("probe.timeout_seconds", "finite")),
        ("[probe]\ndeadline_seconds = inf", ("probe.deadline_seconds", "finite")),
        ("[microsoft365]\ntimeout_seconds = -inf", ("microsoft365.timeout_seconds", "finite")),
        ("[probe]\ntimeout_seconds = " + "9" * 400, ("probe.timeout_seconds", "too large")),
        ("[probe]\nconcurrency = " + "9" * 5000, ("not valid TOML",)),
        ("x = " + "[" * 5000 + "]" * 5000, ("nested too deeply",)),
        ("x = " + "{a = " * 3000 + "1" + "}" * 3000, ("nested too deeply",)),
    ],
    ids=["nan", "inf", "minus-inf", "huge-float", "5000-digits", "nested-array", "nested-table"],
)
def test_bad_config_numbers_and_nesting_are_one_line(
    tmp_path: Path, extra: str, words: tuple[str, ...]
) -> None:
    config = config_with(tmp_path, "")
    config.write_text(config.read_text(encoding="utf-8") + "\n" + extra + "\n", encoding="utf-8")
    done = relaycheck("config", "check", str(config), cwd=tmp_path)
    assert done.returncode == 2
    one_line(done, "relaycheck.toml", *words)
    for command in ("scan", "run-once"):  # exit 3 once issue 10 lands; never 0 or 1
        ran = relaycheck(command, "--config", str(config), cwd=tmp_path)
        assert ran.returncode not in (0, 1)
        one_line(ran, *words)
    assert not (tmp_path / "state.sqlite3").exists()


def _state_with_findings(tmp_path: Path) -> Path:
    path = tmp_path / "state.sqlite3"
    with Store.open(path) as store:
        store.mark_job("certificates", datetime(2026, 1, 1, tzinfo=UTC))
    # fill a few pages so one in the middle can be broken
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("CREATE TABLE IF NOT EXISTS filler(x)")  # not relaycheck's: for page count only
    db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(200)])
    db.commit()
    db.close()
    return path


def test_corrupt_page_is_one_line_and_the_file_is_untouched(tmp_path: Path) -> None:
    config = config_with(tmp_path, "")
    path = _state_with_findings(tmp_path)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[5 * page : 6 * page] = b"\xa5" * page  # a b-tree page turned to noise
    path.write_bytes(bytes(data))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for command in ("findings", "run-once"):
        done = relaycheck(command, "--config", str(config), cwd=tmp_path)
        assert done.returncode not in (0, 1)
        one_line(done, "state.sqlite3")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not (tmp_path / "state.sqlite3-wal").exists()


def test_foreign_database_is_refused_before_anything_changes(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers(name) VALUES ('Contoso')")
    db.commit()
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StateError, match="not a relaycheck state file"):
        Store.open(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not Path(f"{path}-wal").exists()
    db = sqlite3.connect(path)
    (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    db.close()
    assert mode == "delete"  # never switched to WAL


def test_newer_schema_is_refused_before_anything_changes(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Store.open(path):
        pass
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 999")
    db.execute("PRAGMA journal_mode = DELETE")
    db.commit()
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StateError, match="newer relaycheck"):
        Store.open(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
