"""`relaycheck config check` and `config schema` through the entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema

from tests.fakes.pki import Pki

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "contoso" / "relaycheck.toml"


def relaycheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
        env=env,
    )


FIVE_ERRORS = """\
[tenant]
name = "contoso"
accepted_domains = ["contoso..com"]

[[connectors]]
name = "From on-prem"
type = "Onprem"

[thresholds]
warning_day = 30

[probe]
concurrency = 0

[schedule]
digest = "0 9 * * 1"
"""


def test_five_different_errors_are_five_lines_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "relaycheck.toml"
    config.write_text(FIVE_ERRORS)
    done = relaycheck("config", "check", str(config))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"{config}: tenant.accepted_domains[0]: 'contoso..com' is not a valid domain "
        "(empty label (two dots in a row, or a leading dot))",
        f"{config}: connectors[0].type: must be one of OnPremises, Partner, got 'Onprem'",
        f"{config}: thresholds.warning_day: unknown key (did you mean 'warning_days'?)",
        f"{config}: probe.concurrency: must be greater than 0",
        f"{config}: schedule.digest: '0 9 * * 1': cron weekday '1': use day names (MON, TUE-FRI), "
        "not numbers; APScheduler counts Monday as 0 where crontab counts Sunday as 0",
    ]


def test_referenced_files_must_exist_and_parse(tmp_path: Path, pki: Pki) -> None:
    leaf = pki.leaf("mail.contoso.com")
    pfx = leaf.write_pfx(tmp_path / "mail.pfx", b"s3cret-pfx")
    (tmp_path / "domains.json").write_text("{not json")
    (tmp_path / "ca.pem").write_text("no certificate here\n")
    config = tmp_path / "relaycheck.toml"
    config.write_text(
        '[tenant]\nname = "contoso"\naccepted_domains_file = "domains.json"\n'
        'connectors_file = "missing-connectors.json"\n'
        '[[connectors]]\nname = "PFX"\n'
        f'certificate = {{ file = "{pfx.name}", password_env = "RC_TEST_PFX_PASSWORD" }}\n'
        '[[connectors]]\nname = "Gone"\ncertificate = { file = "gone.pem" }\n'
        '[trust]\nca_file = "ca.pem"\n'
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = relaycheck("config", "check", str(config), env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "tenant.accepted_domains_file",
        "tenant.connectors_file",
        "trust.ca_file",
        "connectors[0].certificate.file",
        "connectors[1].certificate.file",
    ]
    assert "password variable RC_TEST_PFX_PASSWORD is not set" in lines[3]
    assert "file not found" in lines[4]
    # with the password variable set, the PFX opens; a wrong one is named as such
    wrong = relaycheck("config", "check", str(config), env={**env, "RC_TEST_PFX_PASSWORD": "nope"})
    assert "wrong or missing PFX password" in wrong.stderr
    right = relaycheck(
        "config", "check", str(config), env={**env, "RC_TEST_PFX_PASSWORD": "s3cret-pfx"}
    )
    assert "connectors[0]" not in right.stderr
    assert "s3cret-pfx" not in right.stdout + right.stderr + wrong.stdout + wrong.stderr


def test_a_clean_file_says_which_parts_are_active(tmp_path: Path) -> None:
    config = tmp_path / "relaycheck.toml"
    config.write_text(
        '[tenant]\nname = "contoso"\naccepted_domains = ["contoso.com"]\n'
        '[microsoft365]\ntenant_id = "t-1"\nclient_id = "c-1"\n'
        '[dns]\nnameservers = ["127.0.0.1"]\n'
        '[slack]\nmode = "http"\nport = 3100\nhost = "127.0.0.1"\nalerts_channel = "C1"\n'
        "[server]\nmetrics_port = 9464\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-1-2",
        "SLACK_SIGNING_SECRET": "ab" * 16,
    }
    done = relaycheck("config", "check", str(config), env=env)
    assert done.returncode == 0, done.stderr
    active = done.stdout.split("Active:\n", 1)[1].splitlines()
    assert active[:4] == [
        "  Microsoft Graph: on (tenant t-1, secret $RELAYCHECK_M365_CLIENT_SECRET (not set))",
        "  DNS checks (mx, dns): on, asking 127.0.0.1",
        "  Slack: http mode on 127.0.0.1:3100/slack/events, alerts to C1",
        "  Metrics and health: on http://127.0.0.1:9464 (/metrics, /healthz, /readyz)",
    ]
    assert "xoxb-1-2" not in done.stdout


def test_schema_command_prints_a_schema_the_examples_satisfy() -> None:
    done = relaycheck("config", "schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8-sig"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(raw)) == []
    assert not jsonschema.Draft202012Validator(schema).is_valid(
        {"tenant": {}, "server": {"metrics_port": 70000}}
    )


def test_a_graph_certificate_credential_must_hold_certificate_and_key(tmp_path: Path) -> None:
    config = tmp_path / "relaycheck.toml"
    config.write_text(
        '[tenant]\nname = "contoso"\n[microsoft365]\ntenant_id = "t"\nclient_id = "c"\n'
    )
    (tmp_path / "graph.pem").write_text("-----BEGIN CERTIFICATE-----\nAA==\n")
    env = {"PATH": "/usr/bin:/bin"}
    for value, problem in (
        (str(tmp_path / "nope.pem"), "nope.pem: file not found"),
        (str(tmp_path / "graph.pem"), "graph.pem: holds no PEM key (it needs both)"),
    ):
        done = relaycheck(
            "config", "check", str(config), env={**env, "RELAYCHECK_M365_CLIENT_CERTIFICATE": value}
        )
        assert done.returncode == 2
        (line,) = done.stderr.splitlines()
        assert line.startswith(
            f"{config}: microsoft365.client_certificate_env: $RELAYCHECK_M365_CLIENT_CERTIFICATE: "
        )
        assert line.endswith(problem)
