"""`relaycheck explain` and `relaycheck config check` through the installed entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import relaycheck

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "contoso" / "relaycheck.toml"
IP_ONLY = REPO / "examples" / "contoso-ip-only" / "relaycheck.toml"


@pytest.mark.parametrize(
    ("pair", "scenario"),
    [
        ("<> -> john@fabrikam.com", "ndr"),
        ("app@fabrikam.com -> someone@tailspintoys.com", "unregistered-sender"),
        ("john@fabrikam.com -> kate@tailspintoys.com", "forwarding"),
        ("kate@contoso.com -> kate@tailspintoys.com", "accepted-sender"),
        ("john@fabrikam.com -> kate@contoso.com", "to-tenant"),
    ],
)
def test_example_tenant_answers_the_kb_scenarios(pair: str, scenario: str) -> None:
    done = relaycheck("explain", "--config", str(EXAMPLE), "--json", pair)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["scenario"] == scenario
    assert data["accepted"] is True
    assert data["smtp_response"] is None
    if scenario != "to-tenant":
        assert data["connector"] == "Inbound from Contoso on-prem"
        assert data["certificate"]["chain"] == "trusted"


def test_text_output_is_short_and_readable() -> None:
    done = relaycheck(
        "explain", "--config", str(EXAMPLE), "kate@contoso.com -> kate@tailspintoys.com"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Scenario:    accepted-sender" in out
    assert "RELAYED through connector 'Inbound from Contoso on-prem'" in out
    assert "'forwarding' scenario and would be relayed" in out
    assert len(out.splitlines()) < 25


def test_ip_only_tenant_refuses_the_kb_scenarios_with_attr36() -> None:
    done = relaycheck("explain", "--config", str(IP_ONLY), "--json", "<> -> john@fabrikam.com")
    data = json.loads(done.stdout)
    assert data["accepted"] is False
    assert data["smtp_response"] == "550 5.7.64 Relay Access Denied ATTR36"
    assert data["connector"] == "From on-prem"
    assert any("TlsSenderCertificateName" in step for step in data["fix"])


def test_via_flag() -> None:
    done = relaycheck(
        "explain",
        "--config",
        str(IP_ONLY),
        "--json",
        "--via",
        "kate@contoso.com",
        "a@fabrikam.com -> b@tailspintoys.com",
    )
    assert json.loads(done.stdout)["scenario"] == "forwarding"


def test_what_if_after_the_certificate_expires() -> None:
    done = relaycheck(
        "explain",
        "--config",
        str(EXAMPLE),
        "--json",
        "--at",
        "2037-01-01T00:00Z",
        "<> -> john@fabrikam.com",
    )
    data = json.loads(done.stdout)
    assert data["accepted"] is False
    assert (
        data["smtp_response"] == "550 5.7.64 Relay Access Denied ATTR36"
    )  # the IP connector is left
    assert any("expired" in r for r in data["reasons"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "--config", str(EXAMPLE), "kate -> x@y.com"], "sender has no '@'"),
        (["explain", "--config", str(EXAMPLE), "kate@contoso.com"], "no separator"),
        (
            ["explain", "--config", "/nonexistent/relaycheck.toml", "a@b.com -> c@d.com"],
            "file not found",
        ),
        (
            ["explain", "--config", str(EXAMPLE), "--at", "tomorrow", "a@b.com -> c@d.com"],
            "ISO 8601",
        ),
        (["explain"], "required"),
        (["bogus"], "invalid choice"),
        (["config", "check", "/nonexistent.toml"], "file not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = relaycheck(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3  # argparse adds its usage line


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "relaycheck.toml"
    config.write_text('[tenant]\nname = "x"\n[thresholds]\nwarning_day = 30\n')
    done = relaycheck("config", "check", str(config))
    assert done.returncode == 2
    assert "thresholds.warning_day: unknown key" in done.stderr


def test_config_check_prints_what_it_understood() -> None:
    done = relaycheck("config", "check", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    for text in (
        "contoso.com (Authoritative, default)",
        "Inbound from Contoso on-prem: OnPremises, enabled, certificate *.contoso.com",
        "Scanner relay (IP)",
        "mail1: mail1.contoso.com",
    ):
        assert text in done.stdout


def test_embedded_default_without_any_config(tmp_path: Path) -> None:
    done = relaycheck("explain", "<> -> john@fabrikam.com", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "built-in Contoso example" in done.stderr
    assert "Scenario:    ndr" in done.stdout


def test_a_closed_pipe_is_not_a_traceback() -> None:
    """`relaycheck ... --json | head -1`: the reader goes away early."""
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "explain",
            "--config",
            str(EXAMPLE),
            "--json",
            "<> -> a@fabrikam.com",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # before the child has written anything: its write gets EPIPE
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=60)
    assert "Traceback" not in stderr
