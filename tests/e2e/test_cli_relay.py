"""Relay readiness through the real CLI: `scan` judges the KB scenarios, exit codes follow the
monitoring convention, and per-check policy and "not set up" answers are what a user sees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import relaycheck
from tests.fakes.pki import Pki

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "contoso" / "relaycheck.toml"
IP_ONLY = REPO / "examples" / "contoso-ip-only" / "relaycheck.toml"
ATTR36 = "550 5.7.64 Relay Access Denied ATTR36"


def relay_findings(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(done.stdout)
    return {
        f"{f['subject']}/{f['cause']}": f
        for f in report["findings"]
        if f["check"] == "relay-scenario"
    }


def test_ip_only_example_is_critical_for_ndr_and_forwarding_with_attr36_and_the_fix() -> None:
    done = relaycheck("scan", "--config", str(IP_ONLY), "--json")
    assert done.returncode == 2, done.stderr
    found = relay_findings(done)
    critical = {k: f for k, f in found.items() if f["severity"] == "critical"}
    assert sorted(critical) == ["forwarding/kate@contoso.com", "ndr/"]
    for finding in critical.values():
        assert ATTR36 in finding["message"]
        assert finding["details"]["smtp_response"] == ATTR36
        assert finding["details"]["accepted"] is False
        assert any("TlsSenderCertificateName" in step for step in finding["details"]["fix"])
    assert found["accepted-sender/contoso.com"]["severity"] == "ok"
    # the pair in the finding is one explain reads back, with the same verdict
    pair = critical["ndr/"]["details"]["pair"]
    answer = json.loads(relaycheck("explain", "--config", str(IP_ONLY), "--json", pair).stdout)
    assert (answer["scenario"], answer["accepted"]) == ("ndr", False)
    table = relaycheck("scan", "--config", str(IP_ONLY))
    assert table.returncode == 2
    assert "NDRs from on-prem to internet senders are refused: " + ATTR36 in table.stdout
    assert "fix: Make connector 'From on-prem' identify the on-prem server" in table.stdout


def test_the_certificate_example_relays_every_scenario() -> None:
    done = relaycheck("scan", "--config", str(EXAMPLE), "--json", "--only", "relay-scenario")
    assert done.returncode in (0, 1), done.stderr
    found = relay_findings(done)
    assert {f["details"]["scenario"] for f in found.values()} == {
        "accepted-sender",
        "ndr",
        "forwarding",
    }
    assert not [f for f in found.values() if f["severity"] == "critical"]


@pytest.mark.parametrize("command", ["scan", "run-once"])
@pytest.mark.parametrize(
    "args",
    [["--config", "missing.toml"], ["--config", "{bad}"], ["--bogus"]],
    ids=["missing-file", "bad-config", "bad-flag"],
)
def test_monitoring_commands_say_unknown_for_bad_input(
    command: str, args: list[str], tmp_path: Path
) -> None:
    if "{bad}" in args:
        bad = tmp_path / "bad.toml"
        bad.write_text('[tenant]\nname = "x"\nacepted_domains = ["contoso.com"]\n')
        args = ["--config", str(bad)]
    done = relaycheck(command, *args, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_unknown_only_id_is_unknown_and_other_commands_keep_exit_2(tmp_path: Path) -> None:
    done = relaycheck("scan", "--config", str(EXAMPLE), "--only", "relay-scenarios")
    assert done.returncode == 3
    assert "unknown check 'relay-scenarios'" in done.stderr
    explained = relaycheck("explain", "--config", str(tmp_path / "missing.toml"), "<> -> a@b.com")
    assert explained.returncode == 2


def test_version() -> None:
    done = relaycheck("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("relaycheck ")


def test_scan_help_states_the_exit_codes() -> None:
    text = " ".join(relaycheck("scan", "--help").stdout.split())
    assert "3 unknown: bad input" in text


def test_only_a_check_that_is_not_set_up_says_what_to_configure() -> None:
    done = relaycheck("scan", "--config", str(EXAMPLE), "--only", "mx")
    assert done.returncode == 0, done.stderr
    assert "not set up" in done.stdout
    assert "[dns]" in done.stdout
    assert "0 findings" not in done.stdout


def _eku_config(pki: Pki, extra: str) -> Path:
    chain = pki.leaf(["mail.contoso.com"], days=200, client_auth=False)
    pem = chain.write_pem(pki.tmp_path / "no-client-auth.pem")
    config = pki.tmp_path / "relaycheck.toml"
    config.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

[[connectors]]
name = "From on-prem"
tls_sender_certificate_name = "*.contoso.com"
certificate = {{ file = "{pem.name}" }}

[trust]
ca_file = "{pki.ca_file.name}"

[dns]
enabled = false
{extra}
"""
    )
    return config


def test_a_disabled_check_is_not_reported(pki: Pki) -> None:
    plain = relaycheck("scan", "--json", "--config", str(_eku_config(pki, "")))
    assert "cert-eku" in {f["check"] for f in json.loads(plain.stdout)["findings"]}
    assert plain.returncode == 1  # the clientAuth warning
    config = _eku_config(pki, '\n[checks]\ndisabled = ["cert-eku"]\n')
    done = relaycheck("scan", "--json", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cert-eku" not in {f["check"] for f in json.loads(done.stdout)["findings"]}


def test_a_check_read_at_another_severity(pki: Pki) -> None:
    config = _eku_config(pki, '\n[checks.severity]\ncert-eku = "info"\n')
    done = relaycheck("scan", "--json", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    (eku,) = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "cert-eku"]
    assert eku["severity"] == "info"
    assert eku["details"]["severity_by_policy"] == "warning"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('\n[checks]\ndisabled = ["cert-ekus"]\n', "checks.disabled[0]: unknown check id"),
        ('\n[checks.severity]\ncert-eku = "loud"\n', "checks.severity.cert-eku: must be one of"),
    ],
)
def test_check_policy_mistakes_name_the_key(pki: Pki, extra: str, problem: str) -> None:
    done = relaycheck("scan", "--config", str(_eku_config(pki, extra)))
    assert done.returncode == 3
    assert problem in done.stderr


def test_relay_scenarios_key_names_an_unknown_id(pki: Pki, tmp_path: Path) -> None:
    config = tmp_path / "relaycheck.toml"
    config.write_text('[tenant]\nname = "x"\nrelay_scenarios = ["ndr", "bounces"]\n')
    done = relaycheck("explain", "--config", str(config), "<> -> a@b.com")
    assert done.returncode == 2
    assert "tenant.relay_scenarios[1]: unknown scenario id 'bounces'" in done.stderr


async def test_explain_against_a_silent_endpoint_says_the_certificate_was_assumed(
    pki: Pki, smtp_server: Any
) -> None:
    server = await smtp_server("silent", pki.leaf(["mail.contoso.com"]))
    config = pki.tmp_path / "relaycheck.toml"
    config.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

[[connectors]]
name = "From on-prem"
tls_sender_certificate_name = "*.contoso.com"
certificate = {{ endpoint = "mail1" }}

[[endpoints]]
name = "mail1"
host = "mail.contoso.com"
address = "127.0.0.1"
port = {server.port}

[probe]
timeout_seconds = 0.5
greeting_timeout_seconds = 5
deadline_seconds = 1

[dns]
enabled = false
"""
    )
    import asyncio

    done = await asyncio.to_thread(relaycheck, "explain", "--config", str(config), "<> -> a@b.com")
    assert done.returncode == 0, done.stderr
    verdict = next(line for line in done.stdout.splitlines() if line.startswith("Verdict:"))
    assert "RELAYED" in verdict
    assert "assuming the configured certificate" in verdict
    assert "deadline of 1 s ran out" in verdict  # the endpoint deadline, not the 5 s greeting
    answer = json.loads(
        (
            await asyncio.to_thread(
                relaycheck, "explain", "--json", "--config", str(config), "<> -> a@b.com"
            )
        ).stdout
    )
    assert answer["certificate_assumed"] is True


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_verdict_and_its_alias_are_two_lines_not_an_escaped_break(lang: str) -> None:
    done = relaycheck(
        "--lang", lang, "explain", "--config", str(IP_ONLY), "<> -> john@fabrikam.com"
    )
    assert done.returncode == 0, done.stderr
    assert "\\x0a" not in done.stdout
    assert any(
        "451 4.4.4" in line and "550 5.7.64" not in line for line in done.stdout.splitlines()
    )
