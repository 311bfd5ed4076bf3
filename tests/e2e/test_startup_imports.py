"""What `relaycheck explain` and `relaycheck scan` import: only what they use.

Importing every command made a plain `explain` load Slack, aiohttp, APScheduler and the demo
(half a second of a 0.7 s start). The module set is `sys.modules` of the real entry point at
exit, so a new top-level import anywhere on the path shows up here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "contoso" / "relaycheck.toml"

# packages a command that neither talks to Slack nor schedules anything must not load
UNUSED = ("slack_bolt", "slack_sdk", "aiohttp", "apscheduler", "bot.demo", "bot.slack")


# Runs the real entry point (`python -m bot.cli ...`) and writes `sys.modules` at exit: the
# subcommand is imported with importlib, which `-X importtime` does not report.
DRIVER = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "relaycheck"
runpy.run_module("bot.cli", run_name="__main__", alter_sys=True)
"""


def imported_modules(*args: str, tmp_path: Path) -> set[str]:
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1, 2), done.stderr[-2000:]
    modules = set(json.loads(out.read_text()))
    assert "bot.cli.main" in modules
    return modules


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.mark.parametrize(
    "args",
    [
        ("explain", "--config", str(EXAMPLE), "john@fabrikam.com -> kate@tailspintoys.com"),
        ("explain", "--config", str(EXAMPLE), "--json", "<> -> kate@tailspintoys.com"),
    ],
)
def test_explain_imports_no_slack_scheduler_or_demo(args: tuple[str, ...], tmp_path: Path) -> None:
    modules = imported_modules(*args, tmp_path=tmp_path)
    assert "bot.cli.explain" in modules
    for package in UNUSED:
        assert not loaded(modules, package), f"explain imported {loaded(modules, package)}"
    # the other commands' modules stay unloaded too
    assert not loaded(modules, "bot.cli.serve")
    assert not loaded(modules, "bot.cli.run_once")
    assert not loaded(modules, "bot.alerting")
    assert not loaded(modules, "bot.runtime")


def test_explain_without_dns_or_graph_skips_dnspython_and_httpx(tmp_path: Path) -> None:
    # the example has [dns] enabled = false and no [microsoft365]
    modules = imported_modules(
        "explain", "--config", str(EXAMPLE), "a@contoso.com -> b@x.com", tmp_path=tmp_path
    )
    assert not loaded(modules, "dns")
    assert not loaded(modules, "httpx")
    # its connector certificate is a file: nothing to probe, so no event loop and no probe
    assert not loaded(modules, "asyncio")
    assert not loaded(modules, "checks.probes.smtp")


def test_scan_imports_no_slack_scheduler_or_demo(tmp_path: Path) -> None:
    # the example's endpoint is on loopback; a scan of it refuses quickly, which is fine here
    modules = imported_modules("scan", "--config", str(EXAMPLE), "--json", tmp_path=tmp_path)
    assert "checks.scan" in modules
    for package in UNUSED:
        assert not loaded(modules, package), f"scan imported {loaded(modules, package)}"
    assert not loaded(modules, "bot.alerting")
    # the preflight engine judges staged renewals only; difflib spells out misspelt keys only
    assert not loaded(modules, "checks.preflight")
    assert not loaded(modules, "difflib")


def test_help_lists_every_command_without_importing_them(tmp_path: Path) -> None:
    modules = imported_modules("--help", tmp_path=tmp_path)
    from bot.cli.main import COMMANDS

    # the parser and its output helper (bot.cli.text degrades `→` on cp1252), no command module
    assert loaded(modules, "bot.cli") == ["bot.cli", "bot.cli.main", "bot.cli.text"]
    assert not {c.module for c in COMMANDS} & set(modules)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    for name in ("explain", "config", "scan", "serve", "findings", "run-once", "demo", "triage"):
        assert f"    {name} " in done.stdout
