"""`relaycheck explain --batch`: the tenant and the certificates are read once for all lines."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.fakes.pki import Pki
from tests.fakes.smtp import ServerFactory


async def test_batch_probes_the_connector_certificate_once(
    pki: Pki,
    smtp_server: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await smtp_server("good", pki.leaf(["mail.contoso.com"]))
    config = tmp_path / "relaycheck.toml"
    config.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

[[connectors]]
name = "cert"
tls_sender_certificate_name = "*.contoso.com"
certificate = {{ endpoint = "relay" }}

[[endpoints]]
name = "relay"
host = "mail.contoso.com"
address = "127.0.0.1"
port = {server.port}

[trust]
ca_file = "{pki.ca_file}"

[probe]
timeout_seconds = 2
ehlo_name = "probe.relaycheck.test"
""",
        encoding="utf-8",
    )
    pairs = ["<> -> someone@fabrikam.com", "app@fabrikam.com -> x@tailspintoys.com"] * 50
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(pairs) + "\n"))
    # main() runs its own event loop; the fake server needs this one free meanwhile
    code = await asyncio.to_thread(main, ["explain", "--config", str(config), "--batch", "-"])
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert len(answers) == 100
    assert {a["scenario"] for a in answers} == {"ndr", "unregistered-sender"}
    assert all(a["accepted"] for a in answers)
    assert all(a["certificate"]["chain"] == "trusted" for a in answers)
    assert server.connections == 1  # one probe for a hundred answers
