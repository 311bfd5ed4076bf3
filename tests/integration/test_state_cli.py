"""The state through the real CLI: two tenants on one store (sqlite file and PostgreSQL),
`--tenant`, `relaycheck state migrate`, and what a bad URL or an unreachable database says."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from checks.config import load_config, parse_config
from checks.errors import ConfigError
from tests.fakes.postgres import PostgresServer

LEGACY = Path(__file__).resolve().parents[1] / "data" / "state-schema3.sql"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, tenant: str, endpoint: str, state: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "relaycheck.toml"
    path.write_text(
        f"""
[tenant]
name = "{tenant}"
accepted_domains = ["{tenant}.com"]

[[endpoints]]
name = "{endpoint}"
host = "mail.{tenant}.com"
address = "127.0.0.1"
port = {closed_port()}

[probe]
timeout_seconds = 1
deadline_seconds = 3

[dns]
enabled = false  # tests never ask the system resolver

[state]
{state}
""",
        encoding="utf-8",
    )
    return path


def subjects(capsys: pytest.CaptureFixture[str], *args: str) -> set[str]:
    capsys.readouterr()
    assert main(["findings", *args, "--json"]) == 0
    return {f["subject"] for f in json.loads(capsys.readouterr().out)["findings"]}


def test_two_tenants_on_one_store_through_the_cli(
    tmp_path: Path,
    state_where: str | Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if isinstance(state_where, Path):
        state = f'path = "{state_where}"'
    else:
        # the config names the database; the password comes from the environment
        monkeypatch.setenv("RELAYCHECK_STATE_URL", state_where)
        state = 'url = "postgresql://relaycheck@127.0.0.1/unused"'
    contoso = write_config(tmp_path / "contoso", "contoso", "mail-contoso", state)
    fabrikam = write_config(tmp_path / "fabrikam", "fabrikam", "mail-fabrikam", state)
    assert main(["run-once", "--config", str(contoso)]) == 2
    assert main(["run-once", "--config", str(fabrikam)]) == 2
    assert main(["run-once", "--config", str(contoso)]) == 2  # resolves nothing of fabrikam's
    assert subjects(capsys, "--config", str(contoso)) == {"mail-contoso"}
    assert subjects(capsys, "--config", str(fabrikam)) == {"mail-fabrikam"}
    assert subjects(capsys, "--config", str(contoso), "--tenant", "fabrikam") == {"mail-fabrikam"}
    assert subjects(capsys, "--config", str(contoso), "--tenant", "nobody") == set()


def test_state_migrate_adopts_a_schema3_file_for_the_configs_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    db.executescript(LEGACY.read_text(encoding="utf-8"))
    db.close()
    config = write_config(tmp_path, "contoso", "smarthost", 'path = "state.sqlite3"')
    assert main(["state", "migrate", "--config", str(config)]) == 0
    assert "migrated from" in capsys.readouterr().out
    assert main(["state", "migrate", "--config", str(config)]) == 0
    assert "already at 0003_delivery_attempts" in capsys.readouterr().out
    assert subjects(capsys, "--config", str(config)) == {"smarthost", "contoso.com"}


def test_unreachable_database_is_one_line_without_the_password(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    postgres: PostgresServer,
) -> None:
    secret_file = tmp_path / "state-url"
    secret_file.write_text(f"postgresql://relaycheck:s3cret-pw@127.0.0.1:{closed_port()}/x\n")
    monkeypatch.setenv("RELAYCHECK_STATE_URL_FILE", str(secret_file))
    config = write_config(tmp_path, "contoso", "smarthost", "")
    capsys.readouterr()
    assert main(["findings", "--config", str(config)]) == 2
    assert main(["run-once", "--config", str(config)]) == 3  # like a scan that could not run
    assert main(["state", "migrate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith("relaycheck: error: postgresql") for line in lines), lines
    assert all("***" in line for line in lines)
    assert "s3cret-pw" not in err
    assert "Traceback" not in err
    # a wrong password is named as such, and not shown either
    monkeypatch.setenv(
        "RELAYCHECK_STATE_URL", postgres.url().replace(postgres.password, "wrong-pw")
    )
    assert main(["findings", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "password authentication failed" in err
    assert "wrong-pw" not in err


def test_state_url_in_the_config_is_checked() -> None:
    base = {"tenant": {"name": "contoso"}}
    config = parse_config(
        {**base, "state": {"url": "postgresql://rc@db/rc"}, "ha": {"lease_seconds": 5}},
        base_dir=Path("."),
    )
    assert config.state.url == "postgresql://rc@db/rc"
    assert config.ha.lease_seconds == 5.0
    assert parse_config(base, base_dir=Path(".")).ha.lease_seconds == 30.0
    with pytest.raises(ConfigError, match="not both"):
        parse_config(
            {**base, "state": {"url": "postgresql://rc@db/rc", "path": "x.sqlite3"}},
            base_dir=Path("."),
        )
    with pytest.raises(ConfigError, match="postgresql:// URL") as err:
        parse_config({**base, "state": {"url": "mysql://rc:hunter2@db/rc"}}, base_dir=Path("."))
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match="greater than 0"):
        parse_config({**base, "ha": {"lease_seconds": 0}}, base_dir=Path("."))


def test_the_shipped_ha_config_names_a_database_without_a_password() -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    config = load_config(deploy / "relaycheck.ha.toml")
    assert config.state.url == "postgresql://relaycheck@postgres:5432/relaycheck"
    assert config.ha.lease_seconds == 30.0
    compose = (deploy / "compose.ha.yaml").read_text(encoding="utf-8")
    assert "RELAYCHECK_STATE_URL_FILE" in compose
    assert compose.count('command: ["serve"') == 2  # two replicas
    assert "replicas: 2" in (deploy / "k8s-ha" / "relaycheck.yaml").read_text(encoding="utf-8")
