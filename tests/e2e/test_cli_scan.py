"""`relaycheck scan` through the installed entry point against loopback STARTTLS servers.

The servers run in the test's event loop while the CLI runs as a real subprocess, so what is
asserted is exactly what a monitor or an admin sees: stdout, and the exit code.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from tests.fakes.pki import Pki
from tests.fakes.smtp import ServerFactory

REPO = Path(__file__).resolve().parents[2]


async def relaycheck(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_config(
    tmp_path: Path, endpoints: list[tuple[str, int]], *, ca_file: Path | None = None
) -> Path:
    lines = [
        "[tenant]",
        'name = "contoso"',
        'accepted_domains = ["contoso.com"]',
        "[thresholds]",
        "warning_days = 30",
        "critical_days = 7",
        "[probe]",
        'ehlo_name = "probe.relaycheck.test"',
        "timeout_seconds = 2",
        "greeting_timeout_seconds = 2",
        "deadline_seconds = 5",
        "[dns]",
        "enabled = false",
    ]
    if ca_file is not None:
        lines += ["[trust]", f'ca_file = "{ca_file}"']
    for name, port in endpoints:
        lines += [
            "[[endpoints]]",
            f'name = "{name}"',
            f'host = "{name}.contoso.com"',
            'address = "127.0.0.1"',
            f"port = {port}",
        ]
    path = tmp_path / "relaycheck.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def findings_of(stdout: str) -> list[dict[str, Any]]:
    data = json.loads(stdout)
    findings = data["findings"]
    assert isinstance(findings, list)
    return findings


async def test_private_ca_chain_without_trusted_root_is_untrusted_root_not_missing(
    pki: Pki, smtp_server: ServerFactory, tmp_path: Path
) -> None:
    """Leaf + intermediate of a private CA, the root not in [trust] ca_file."""
    fake = await smtp_server("good", pki.leaf(["mail1.contoso.com"]))
    config = write_config(tmp_path, [("mail1", fake.port)])
    code, out, err = await relaycheck("scan", "--config", str(config), "--json")
    assert code == 2, err
    (chain,) = [f for f in findings_of(out) if f["check"] == "cert-chain"]
    assert chain["severity"] == "critical"
    assert chain["details"]["chain_status"] == "untrusted-root"
    assert "missing" not in chain["message"]
    assert "[trust] ca_file" in chain["message"]
    assert "next intermediate" in chain["message"]
    assert "CN=Relaycheck Test Root CA" in chain["message"]


async def test_leaf_sent_alone_is_still_a_missing_intermediate(
    pki: Pki, smtp_server: ServerFactory, tmp_path: Path
) -> None:
    fake = await smtp_server("good", pki.leaf(["mail1.contoso.com"]), with_intermediates=False)
    config = write_config(tmp_path, [("mail1", fake.port)], ca_file=pki.ca_file)
    code, out, err = await relaycheck("scan", "--config", str(config), "--json")
    assert code == 2, err
    (chain,) = [f for f in findings_of(out) if f["check"] == "cert-chain"]
    assert chain["details"]["chain_status"] == "missing-intermediate"


NAGIOS_LINE = re.compile(r"^RELAYCHECK (OK|WARNING|CRITICAL|UNKNOWN) - (.*?)(?: \| (.*))?$")
PERF_ITEM = re.compile(r"'((?:[^']|'')+)'=(-?\d+);(\d*);(\d*);(\d*);(\d*)")


def parse_nagios(stdout: str) -> tuple[str, str, dict[str, tuple[int, int, int]], list[str]]:
    first, *rest = stdout.rstrip("\n").split("\n")
    match = NAGIOS_LINE.match(first)
    assert match is not None, first
    status, text, perf = match.groups()
    values = {
        m.group(1).replace("''", "'"): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
        for m in PERF_ITEM.finditer(perf or "")
    }
    assert PERF_ITEM.sub("", perf or "").strip() == "", perf  # nothing but well-formed items
    return status, text, values, rest


async def test_nagios_format_status_line_and_perfdata(
    pki: Pki, smtp_server: ServerFactory, tmp_path: Path
) -> None:
    mail1 = await smtp_server("good", pki.leaf(["mail1.contoso.com"], days=3.2))
    mail2 = await smtp_server("good", pki.leaf(["mail2.contoso.com"], days=20.2))
    mail3 = await smtp_server("good", pki.leaf(["mail3.contoso.com"], days=90))
    config = write_config(
        tmp_path,
        [("mail1", mail1.port), ("mail2", mail2.port), ("mail3", mail3.port)],
        ca_file=pki.ca_file,
    )
    code, out, err = await relaycheck("scan", "--config", str(config), "--format", "nagios")
    assert code == 2, err
    status, text, perf, long_text = parse_nagios(out)
    assert status == "CRITICAL"
    assert text.startswith("1 critical, 1 warning: mail1 expires in 3 days; mail2 expires in 20")
    assert perf == {
        "mail1 days": (3, 30, 7),
        "mail2 days": (20, 30, 7),
        "mail3 days": (90, 30, 7),
    }
    assert len(long_text) == 2
    assert long_text[0].startswith("CRITICAL cert-expiry mail1: certificate mail1.contoso.com")


async def test_nagios_ok_and_format_json_is_json(
    pki: Pki, smtp_server: ServerFactory, tmp_path: Path
) -> None:
    fake = await smtp_server("good", pki.leaf(["mail1.contoso.com"], days=90))
    config = write_config(tmp_path, [("mail1", fake.port)], ca_file=pki.ca_file)
    code, out, _ = await relaycheck("scan", "--config", str(config), "--format", "nagios")
    assert code == 0
    status, _, perf, long_text = parse_nagios(out)
    assert status == "OK"
    assert perf == {"mail1 days": (90, 30, 7)}
    assert long_text == []
    code_a, json_a, _ = await relaycheck("scan", "--config", str(config), "--json")
    code_b, json_b, _ = await relaycheck("scan", "--config", str(config), "--format", "json")
    assert code_a == code_b == 0
    strip = {"elapsed_seconds"}
    a = [{k: v for k, v in f.items() if k not in strip} for f in findings_of(json_a)]
    b = [{k: v for k, v in f.items() if k not in strip} for f in findings_of(json_b)]
    assert a == b
    assert json.loads(json_a).keys() == json.loads(json_b).keys()
