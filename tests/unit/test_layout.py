"""`checks` and `bot` are generic top-level names: make sure ours are the ones imported, and that
the layering contracts (checks never imports bot; rules do no I/O) are enforced for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bot
import checks

REPO = Path(__file__).resolve().parents[2]


def test_packages_resolve_inside_the_project() -> None:
    assert Path(checks.__file__).resolve().parent == REPO / "checks"
    assert Path(bot.__file__).resolve().parent == REPO / "bot"


def _lint_imports(cwd: Path, extra_path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(extra_path)}
    return subprocess.run(
        [exe, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_layering_contracts_hold() -> None:
    done = _lint_imports(REPO, REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_layering_contracts_catch_a_bad_import(tmp_path: Path) -> None:
    """The same contracts on a copy whose rules import a probe and checks import bot must fail."""
    _copy_tree(tmp_path)
    (tmp_path / "checks" / "rules" / "bad.py").write_text(
        "import checks.probes.certfile\nimport bot.cli\n"
    )
    done = _lint_imports(tmp_path, tmp_path)
    assert done.returncode != 0
    broken = [line for line in done.stdout.splitlines() if "BROKEN" in line]
    assert any("checks is a library" in line for line in broken), done.stdout
    assert any("rules are pure" in line for line in broken), done.stdout


def _copy_tree(tmp_path: Path) -> None:
    for package in ("checks", "bot"):
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("bot/alerting/store.py", "import bot.alerting.cycle", "no import circles"),
        ("checks/rules/names.py", "import checks.rules.tenant", "no import circles"),
        ("bot/slack/app.py", "import bot.runtime.serve", "bot's rooms import downwards"),
        ("bot/alerting/cycle.py", "import bot.slack.blocks", "bot's rooms import downwards"),
        ("bot/records.py", "import bot.alerting.alerts", "bot's rooms import downwards"),
        ("bot/slack/blocks.py", "import bot.alerting.store", "rendering imports no store"),
        ("bot/alerting/alerts.py", "import bot.alerting.store", "rendering imports no store"),
        ("bot/alerting/store.py", "import bot.alerting.alerts", "the store imports no rendering"),
        ("bot/alerting/lease.py", "import time", "the lease decision is pure"),
        (
            "bot/alerting/migrations/versions/r0002_tenants_ha.py",
            "import bot.alerting.schema",
            "migrations are frozen",
        ),
    ],
)
def test_each_room_contract_catches_a_planted_import(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    """Every layering contract of bot/ (and the no-circle rule) is enforced for real."""
    _copy_tree(tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    done = _lint_imports(tmp_path, tmp_path)
    assert done.returncode != 0, done.stdout
    broken = [line for line in done.stdout.splitlines() if "BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), done.stdout


def test_tests_cannot_reach_beyond_loopback() -> None:
    import socket

    import pytest

    with pytest.raises(OSError, match="only loopback"):
        socket.create_connection(("192.0.2.1", 25), timeout=0.2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(OSError, match="only loopback"):
            udp.sendto(b"x", ("198.51.100.53", 53))
        udp.sendto(b"x", ("127.0.0.1", 9))  # loopback stays allowed


def test_both_manifests_ask_for_the_history_and_read_scopes() -> None:
    """Exactly-once delivery needs conversations.history; allowed_channels needs names -> ids."""
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    for name in ("slack-manifest.http.yaml", "slack-manifest.socket.yaml"):
        text = (deploy / name).read_text(encoding="utf-8")
        scopes = {
            line.strip().removeprefix("- ").split("#")[0].strip()
            for line in text.split("scopes:", 1)[1].split("settings:", 1)[0].splitlines()
            if line.strip().startswith("- ")
        }
        assert {"channels:history", "groups:history", "channels:read", "groups:read"} <= scopes
